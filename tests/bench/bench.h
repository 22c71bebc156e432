// sluice-bench: BPF_PROG_TEST_RUN benchmark runner (tests/bench/README.md).
//
// A benchmark is a list of cases. Each case names a loaded program, an input
// frame, the verdict (and optionally the output bytes) of ONE run, and the
// baseline case it is reported against. The runner verifies every case once
// before timing anything (a wrong verdict aborts the whole run: numbers of a
// broken path are meaningless), then times all cases interleaved, `runs`
// times, and reports per case the median ns/packet and the ratio to the
// median of its baseline measured in the same process, same run.
//
// Adding a group (load balancer, ...): write a
// `void add_<group>_cases(Bench &)` in its own .cpp that loads its
// skeleton(s), fills maps, and calls Bench::add(); register it in
// main.cpp next to the others. Keep objects alive with Bench::keep(). A path
// that rewrites the packet must be timed through the restore wrapper
// (restore.h), against the restore floor, never directly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::bench {

using Bytes = std::vector<uint8_t>;

struct Options {
	uint32_t repeat = 1000000;
	int runs = 5;
	uint64_t seed = 1;
	int cpu = -1; // pin to this CPU; -1 = do not pin
	bool quick = false; // skip the 1M-entry case (fast smoke run)
	std::vector<std::string> filter; // substrings; empty = all cases
};

// Which hook a case's program runs at: decides how verdicts are named
// (XDP_* and TC_ACT_* overlap numerically) and which floor it may be
// compared with.
enum class Hook { Xdp, Tc };

// Output of one BPF_PROG_TEST_RUN call.
struct RunResult {
	uint32_t retval = 0;
	uint32_t kernel_ns = 0; // opts.duration: kernel's average ns/iteration (truncated)
	double wall_ns = 0; // wall time of the syscall / repeat
	double cpu_ns = 0; // thread CPU time of the syscall / repeat
	Bytes out;
};

// BPF_PROG_TEST_RUN with data_in = pkt and, when not empty, ctx_in = ctx
// (a struct __sk_buff for TC programs, e.g. to set ifindex). Throws on
// syscall failure.
RunResult test_run(int prog_fd, const Bytes &pkt, uint32_t repeat, const Bytes &ctx = {});

struct Case {
	std::string name; // "group/what/size", unique
	std::string what; // one line for the docs/JSON
	std::string baseline; // name of the case it is a ratio to; "" = is a floor
	Hook hook = Hook::Xdp;
	int prog_fd = -1;
	Bytes packet;
	Bytes ctx; // ctx_in (TC: struct __sk_buff, e.g. ifindex); empty = none
	uint32_t expect_verdict = 0; // XDP_* / TC_ACT_*
	// Expected output bytes of one run; nullopt = must equal the input
	// (non-rewriting paths).
	std::optional<Bytes> expect_out;
	// Instead of expect_out: the expected frame given the one run's result,
	// for paths with a random choice (the backend, a SNAT port) whose
	// output the function checks and then rebuilds independently.
	std::function<Bytes(const RunResult &)> expect_out_fn;
	// The path rewrites the packet but is a fixed point: run once more on
	// its own output, it returns the same verdict and the same bytes (e.g.
	// the MAC rewrite of local delivery, which the program never reads).
	// Then iterations 2..N of a timed call see exactly iteration 1's
	// output and take the same path, so the case may be timed directly;
	// Bench::verify() proves the fixed point before timing.
	bool fixed_point = false;
	// Iterations per timed call for this case (0 = Options::repeat, capped
	// by it). For paths that consume state per iteration (a new CT entry).
	uint32_t repeat = 0;
	// Called before the verification run and before every timed run
	// (e.g. set a config knob, drain a ring buffer, clear conntrack).
	std::function<void()> prepare;
	// Extra check after the single verification run; throw on failure.
	std::function<void(const RunResult &)> check;
	// Extra check after every timed call (given its iteration count), e.g.
	// "every iteration created its own CT entry"; throw VerifyError.
	std::function<void(const RunResult &, uint32_t iterations)> check_timed;
	// The case runs through a wrapper (restore/vary the packet, then tail
	// call). wrapper_floor names the same wrapper around the empty program
	// of the hook; the runner then also reports the net time, ns minus the
	// wrapper's overhead (wrapper_floor - baseline), and its ratio to the
	// baseline.
	std::string wrapper_floor;
	// Target: ratio to baseline must be <= max_ratio (reported, not asserted).
	std::optional<double> max_ratio;
};

// Per case, one sample per timed run. The primary number is the kernel's
// own per-iteration time (opts.duration): it excludes the per-call setup
// (for XDP with repeat > 1 the kernel swaps the program into the XDP
// dispatcher and back, ~0.3-1.5 ms per call) and reschedules, but it is
// truncated to whole ns. The thread-CPU-time number has sub-ns resolution
// but includes that setup spread over `repeat` iterations, so it is an
// upper bound; it is reported as a cross-check, never used for ratios.
struct Result {
	const Case *c = nullptr;
	std::vector<double> ns; // kernel ns/packet
	std::vector<double> cpu_ns; // thread CPU time / repeat
	std::vector<double> wall_ns; // wall time / repeat (includes preemption)
	double median_ns = 0;
	double median_cpu_ns = 0;
	double ratio = 0; // median_ns / baseline's median_ns (1.0 for floors)
	// Bounds of the true ratio given whole-ns truncation: the true time t
	// of a case with kernel median k and cpu median c is in [k, min(k+1, c)].
	double ratio_lo = 0, ratio_hi = 0;
	// Only for cases with a wrapper_floor: ns minus the wrapper's overhead,
	// its ratio to the baseline and the bounds of that ratio.
	bool has_net = false;
	double net_ns = 0, net_ratio = 0, net_ratio_lo = 0, net_ratio_hi = 0;
};

class Bench {
public:
	explicit Bench(Options o) : opts_(std::move(o)) {}
	const Options &opts() const { return opts_; }
	void add(Case c);
	// Keeps a loaded object (skeleton, ring buffer, ...) alive for the run.
	template <class T> void keep(std::shared_ptr<T> p) { keep_.push_back(std::move(p)); }
	bool selected(const std::string &name) const;
	// Verify every case, then time them. Throws on a wrong verdict/output.
	std::vector<Result> run();
	const std::vector<Case> &cases() const { return cases_; }

private:
	void verify(const Case &c);
	Options opts_;
	std::vector<Case> cases_;
	std::vector<std::shared_ptr<void>> keep_;
};

struct VerifyError : std::runtime_error {
	using std::runtime_error::runtime_error;
};

// Groups. Each adds its cases (and loads what it needs).
void add_floor_cases(Bench &b); // "xdp/empty": the XDP floor
void add_prefilter_cases(Bench &b);
void add_tc_floor_cases(Bench &b); // "tc/empty": the TC floor (policy_cases.cpp)
void add_policy_cases(Bench &b); // sluice_lxc: new/established/denied x policy size
void add_lb_tc_cases(Bench &b); // sluice_lxc: ClusterIP new/established x services (policy_cases.cpp)
void add_lb_xdp_cases(Bench &b); // sluice_xdp: NodePort SNAT/DSR to another node (lb_xdp_cases.cpp)
void check_restore_facility(); // self-test of restore.h; throws VerifyError

// Printing.
void print_table(const std::vector<Result> &rs, const Options &o);
void write_json(const std::string &path, const std::vector<Result> &rs, const Options &o);

std::string hex(const Bytes &b);
const char *xdp_verdict_name(uint32_t v);
const char *tc_verdict_name(uint32_t v);
const char *verdict_name(Hook h, uint32_t v);

} // namespace sluice::bench
