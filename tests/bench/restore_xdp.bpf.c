/* sluice_bench_restore: the "restore the packet before each iteration"
 * facility for benchmarks of packet-rewriting XDP paths.
 *
 * The trap: BPF_PROG_TEST_RUN with repeat > 1 runs the program again and
 * again on the SAME xdp_buff. A program that rewrites the packet (NAT,
 * encapsulation, VLAN push) sees its own output from the second iteration
 * on, so the benchmark would time a different path (often the "already
 * encapsulated -> drop" one) than the one it claims to.
 *
 * The pattern: run this wrapper instead of the program under test.
 *   1. user space stores the original frame in bench_pkt[0] (len + bytes),
 *      and the program under test in bench_target[0] (a PROG_ARRAY);
 *   2. every iteration, bench_restore first moves ctx->data back so the
 *      frame has its original length (undoing bpf_xdp_adjust_head pushes
 *      and pops), then copies the original bytes over the packet, and
 *      finally tail-calls the program under test, whose verdict is the
 *      verdict of the iteration.
 * The wrapper's own cost (one array lookup, one bpf_xdp_store_bytes, one
 * tail call) is part of every number measured through it, so a rewriting
 * case must be compared with the same wrapper around sluice_empty (the
 * "restore floor"), never with the plain empty program. The verdict and
 * the output bytes of ONE run (repeat = 1, no wrapper needed) are checked
 * separately; see tests/bench/restore.cpp and tests/bench/README.md.
 *
 * Limitation: the length is restored with bpf_xdp_adjust_head, which is
 * right for programs that push/pop headers at the front (all encap/decap
 * paths). A program that grows or shrinks the tail (bpf_xdp_adjust_tail)
 * needs a tail-restoring variant.
 *
 * bench_demo_vlan_push is a tiny rewriting program used only to self-check
 * this facility: it pushes an 802.1Q tag on untagged IPv4 frames (XDP_TX)
 * and drops frames that are already tagged. Without the wrapper, iteration
 * 2..N see the tagged output and drop; through the wrapper every iteration
 * pushes the tag.
 */
#include "lib/common.h"

#define SLUICE_BENCH_PKT_MAX 2048

struct sluice_bench_pkt {
	__u32 len;
	/* Nonzero: iteration n also writes sport_base + n at this offset (a
	 * new connection per iteration; the checksum is left stale, which no
	 * path under test verifies). */
	__u16 sport_off;
	__u16 sport_base; /* host order */
	__u8 data[SLUICE_BENCH_PKT_MAX];
};

/* Iteration counter for sport_off; Restore::reset() zeroes it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} bench_ctr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sluice_bench_pkt);
	__uint(max_entries, 1);
} bench_pkt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 1);
} bench_target SEC(".maps");

SEC("xdp")
int bench_restore(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct sluice_bench_pkt *p = bpf_map_lookup_elem(&bench_pkt, &zero);
	int cur, delta;
	__u32 len;

	if (!p)
		return XDP_ABORTED;
	len = p->len;
	if (len < 1 || len > SLUICE_BENCH_PKT_MAX)
		return XDP_ABORTED;
	/* Not data_end - data: with alu32 (-mcpu=v3) clang subtracts the two
	 * packet pointers in 32 bits, which the verifier refuses. */
	cur = (int)bpf_xdp_get_buff_len(ctx);
	delta = cur - (int)len;
	if (delta && bpf_xdp_adjust_head(ctx, delta))
		return XDP_ABORTED;
	if (bpf_xdp_store_bytes(ctx, 0, p->data, len))
		return XDP_ABORTED;
	if (p->sport_off) {
		__u32 *ctr = bpf_map_lookup_elem(&bench_ctr, &zero);
		__be16 port;

		if (!ctr)
			return XDP_ABORTED;
		port = bpf_htons((__u16)(p->sport_base + *ctr));
		*ctr += 1;
		if (bpf_xdp_store_bytes(ctx, p->sport_off, &port, sizeof(port)))
			return XDP_ABORTED;
	}
	bpf_tail_call(ctx, &bench_target, 0);
	return XDP_ABORTED; /* empty slot: fail loudly */
}

struct vlan_tag_hdr {
	__be16 tci;
	__be16 encap_proto;
};

SEC("xdp")
int bench_demo_vlan_push(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data, eth_copy;
	struct vlan_tag_hdr *vh;

	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_DROP; /* already tagged (or not IPv4) */
	__builtin_memcpy(&eth_copy, eth, sizeof(eth_copy));
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(*vh)))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)eth + sizeof(*eth) + sizeof(*vh) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, eth_copy.h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth_copy.h_source, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_8021Q);
	vh = (void *)(eth + 1);
	vh->tci = bpf_htons(42);
	vh->encap_proto = bpf_htons(ETH_P_IP);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
