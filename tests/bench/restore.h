// Restore wrapper: time a packet-REWRITING XDP path with BPF_PROG_TEST_RUN.
//
// With repeat > 1 the kernel runs the program again and again on the same
// buffer, so from iteration 2 on a rewriting program (NAT, encapsulation)
// would process its own output. Time such a path through a Restore: its
// program (bench_restore in restore_xdp.bpf.c) puts the original frame back
// (length via bpf_xdp_adjust_head, bytes via bpf_xdp_store_bytes) at the
// start of every iteration and then tail-calls the program under test.
//
//   auto r = Restore::wrap(target_prog_fd, frame);
//   b.keep(r);
//   Case c; c.prog_fd = r->fd(); c.packet = frame;
//   c.baseline = "restore/empty";          // wrapper around sluice_empty
//   c.expect_out = <the rewritten frame of ONE run>;
//
// Bench::verify checks the verdict and output of one run; the timed runs
// check the verdict of the last iteration. The wrapper's cost is in every
// number taken through it, hence the "restore/empty" baseline (enable with
// --restore-demo, which also times a demo rewriting program).
#pragma once

#include "bench.h"

struct sluice_bench_restore;

namespace sluice::bench {

class Restore {
public:
	// Loads a fresh wrapper instance (own maps) around target_fd for frame.
	static std::shared_ptr<Restore> wrap(int target_fd, const Bytes &frame);
	~Restore();
	int fd() const; // the program to time
	// The demo rewriting program of this instance (pushes a VLAN tag).
	int demo_vlan_push_fd() const;

private:
	Restore() = default;
	sluice_bench_restore *skel_ = nullptr;
};

void add_restore_cases(Bench &b);

} // namespace sluice::bench
