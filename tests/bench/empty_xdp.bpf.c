/* sluice_empty: the floor of every XDP benchmark. It does nothing but
 * return XDP_PASS, so BPF_PROG_TEST_RUN on it measures only the cost of the
 * test-run loop itself (per-iteration bookkeeping, the indirect call into
 * the program); every other XDP case is reported as a ratio to it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int sluice_empty(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
