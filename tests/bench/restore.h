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
struct sluice_bench_restore_tc;

namespace sluice::bench {

class Restore {
public:
	// Loads a fresh wrapper instance (own maps) around target_fd for frame.
	// sport_off > 0: iteration n also gets source port frame's + n (a new
	// connection each), counted from reset().
	static std::shared_ptr<Restore> wrap(int target_fd, const Bytes &frame, int sport_off = -1);
	~Restore();
	int fd() const; // the program to time
	void reset() const;
	// The demo rewriting program of this instance (pushes a VLAN tag).
	int demo_vlan_push_fd() const;

private:
	Restore() = default;
	sluice_bench_restore *skel_ = nullptr;
};

// The TC counterpart (restore_tc.bpf.c): bench_tc_restore copies the
// original frame over the skb every iteration (bpf_skb_store_bytes) and,
// with vary_sport, writes sport_base + n into the source port of iteration
// n (n = 0, 1, ... from a counter that reset() zeroes), then tail-calls the
// TC program under test. Iteration 0 therefore sees `frame` unchanged, so
// the one-run verification checks the real frame. Frames keep their length.
//
//   auto w = TcRestore::wrap(bpf_program__fd(lxc->progs.sluice_lxc_out), syn, 34);
//   c.prog_fd = w->fd(); c.prepare = [w] { w->reset(); ... };
//   c.wrapper_floor = "tc/wrap/empty";     // the same wrapper around the empty TC program
class TcRestore {
public:
	// sport_off: offset of the L4 source port in frame; < 0 = restore only.
	static std::shared_ptr<TcRestore> wrap(int target_fd, const Bytes &frame, int sport_off = -1);
	~TcRestore();
	int fd() const; // the program to time
	void reset() const; // next iteration uses the frame's own source port

private:
	TcRestore() = default;
	sluice_bench_restore_tc *skel_ = nullptr;
};

void add_restore_cases(Bench &b);

} // namespace sluice::bench
