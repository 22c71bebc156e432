#!/usr/bin/env bash
# scripts/bench.sh [sluice-bench flags]: build (if needed) and run the
# BPF_PROG_TEST_RUN benchmarks; prints ns/packet per case and its ratio to
# the floor of its hook (empty XDP program for the prefilter, empty TC
# program for the pod datapath's policy cases) measured in the same run.
# See docs/benchmarks.md.
#
#   sudo scripts/bench.sh                      # all cases, 1M repeats, median of 5
#   sudo scripts/bench.sh --json bench.json    # also write JSON
#   sudo scripts/bench.sh --quick --runs 3     # skip the 1M-entry fill
#   sudo scripts/bench.sh --filter policy/     # only the TC policy cases (+ floors)
#   sudo scripts/bench.sh --cpu 1 --runs 7     # pinned, median of 7 (noisy machines)
#   sudo scripts/bench.sh --help               # all flags
#
# Then sluice-policy-scale reports the control plane: time and peak memory
# to compile 1,000 NetworkPolicies over 1,000 pods into the maps, and the
# time to apply one changed policy with those in place, and sluice-lb-scale
# the load balancer's: 10,000 Services x 10 backends into the maps, then
# the latency of one changed backend, and sluice-events-bench the agent's
# flow-event reader (events/s on one core, losses).
#
# Benchmarks report, they do not assert: the exit status is non-zero only if
# the bench could not run or a case returned the wrong verdict.
# SLUICE_BUILD_DIR overrides the build directory (default: build).
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
	echo "bench.sh: must run as root: BPF_PROG_TEST_RUN and BPF map creation need" \
		"CAP_BPF/CAP_SYS_ADMIN. Try: sudo scripts/bench.sh $*" >&2
	exit 1
fi

build=${SLUICE_BUILD_DIR:-build}
if [[ ! -d $build ]]; then
	if [[ $build == build && -x scripts/setup.sh ]]; then
		echo "bench.sh: no build/ yet, running scripts/setup.sh" >&2
		scripts/setup.sh >&2
	fi
fi
# Build output goes to stderr so that stdout is only the results table.
{
	cmake -S . -B "$build"
	cmake --build "$build" -j"$(nproc)" --target sluice-bench sluice-policy-scale sluice-lb-scale sluice-events-bench
} >&2

"$build/bin/sluice-bench" "$@"

# Control plane: NetworkPolicy compiled into maps at scale (1,000 policies
# over 1,000 pods by default; SLUICE_POLICY_SCALE_ARGS adds flags, e.g.
# "--policies 5000 --json scale.json"; SLUICE_POLICY_SCALE=0 skips it).
if [[ ${SLUICE_POLICY_SCALE:-1} != 0 ]]; then
	echo
	# shellcheck disable=SC2086  # word splitting of the extra flags is intended
	"$build/bin/sluice-policy-scale" ${SLUICE_POLICY_SCALE_ARGS:-}
fi

# Control plane: Services and backends into the load-balancer maps (10,000
# Services x 10 backends by default; SLUICE_LB_SCALE_ARGS adds flags, e.g.
# "--algorithm maglev --json lb.json"; SLUICE_LB_SCALE=0 skips it).
if [[ ${SLUICE_LB_SCALE:-1} != 0 ]]; then
	echo
	# shellcheck disable=SC2086  # word splitting of the extra flags is intended
	"$build/bin/sluice-lb-scale" ${SLUICE_LB_SCALE_ARGS:-}
fi

# Flow events: the agent's event reader on one core against a BPF producer
# at 1M and 2M events/s and flat out (SLUICE_EVENTS_BENCH_ARGS adds flags,
# e.g. "--seconds 10 --json events.json"; SLUICE_EVENTS_BENCH=0 skips it).
if [[ ${SLUICE_EVENTS_BENCH:-1} != 0 ]]; then
	echo
	# shellcheck disable=SC2086  # word splitting of the extra flags is intended
	"$build/bin/sluice-events-bench" ${SLUICE_EVENTS_BENCH_ARGS:-}
fi
