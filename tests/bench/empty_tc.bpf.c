/* sluice_empty_tc: the floor of every TC benchmark. It does nothing but
 * return TC_ACT_OK, so BPF_PROG_TEST_RUN on it measures only the cost of
 * the skb test-run loop itself (per-iteration bookkeeping, the indirect
 * call into the program); every policy case (sluice_lxc, a TC program) is
 * reported as a ratio to it, never to the XDP floor. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int sluice_empty_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
