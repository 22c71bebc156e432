// sluice-bench: ns/packet of BPF programs through BPF_PROG_TEST_RUN, as
// ratios to a floor measured in the same run. Run via scripts/bench.sh.
// Benchmarks report numbers; they do not assert timings. The exit status
// is non-zero only when the bench itself fails (load error, wrong verdict).
#include "bench.h"
#include "restore.h"

#include <CLI/CLI.hpp>
#include <bpf/libbpf.h>
#include <cstdio>
#include <sched.h>
#include <unistd.h>

using namespace sluice::bench;

namespace {
int quiet_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return std::vfprintf(stderr, fmt, args);
}
} // namespace

int main(int argc, char **argv)
{
	Options o;
	std::string json;
	bool restore_demo = false, list = false;

	CLI::App app{"sluice-bench: BPF_PROG_TEST_RUN benchmarks (ns/packet, ratio to the floor)"};
	app.add_option("--repeat", o.repeat, "iterations per BPF_PROG_TEST_RUN call")
		->check(CLI::Range(1u, 100000000u));
	app.add_option("--runs", o.runs, "timed calls per case; the median is reported")
		->check(CLI::Range(1, 1000));
	app.add_option("--json", json, "also write the results as JSON to this file");
	app.add_option("--seed", o.seed, "seed of the pseudo-random deny entries");
	app.add_option("--cpu", o.cpu, "pin to this CPU (-1: do not pin)");
	app.add_option("--filter", o.filter,
		       "only cases whose name contains one of these (baselines are added)");
	app.add_flag("--quick", o.quick, "skip the 1M-entry case (smoke run)");
	app.add_flag("--restore-demo", restore_demo,
		     "also time the restore wrapper (floor for rewriting paths) and its demo");
	app.add_flag("--list", list, "list the cases and exit (loads and fills maps)");
	CLI11_PARSE(app, argc, argv);

	if (geteuid() != 0) {
		std::fprintf(stderr, "sluice-bench: must run as root (BPF_PROG_TEST_RUN, map creation)\n");
		return 2;
	}
	libbpf_set_print(quiet_libbpf);
	if (o.cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(o.cpu, &set);
		if (sched_setaffinity(0, sizeof set, &set)) {
			std::perror("sluice-bench: sched_setaffinity");
			return 2;
		}
	}

	try {
		Bench b(o);
		check_restore_facility();
		add_floor_cases(b);
		add_prefilter_cases(b);
		if (restore_demo)
			add_restore_cases(b);
		add_tc_floor_cases(b);
		add_policy_cases(b);
		add_lb_tc_cases(b);
		add_lb_xdp_cases(b); // last: it moves the process into its own netns
		// Later groups (load balancer) are added here.
		if (list) {
			for (const Case &c : b.cases())
				std::printf("%-28s %s\n", c.name.c_str(), c.what.c_str());
			return 0;
		}
		const std::vector<Result> rs = b.run();
		print_table(rs, o);
		if (!json.empty())
			write_json(json, rs, o);
	} catch (const VerifyError &e) {
		std::fprintf(stderr, "sluice-bench: VERIFICATION FAILED, no numbers reported:\n  %s\n", e.what());
		return 1;
	} catch (const std::exception &e) {
		std::fprintf(stderr, "sluice-bench: %s\n", e.what());
		return 1;
	}
	return 0;
}
