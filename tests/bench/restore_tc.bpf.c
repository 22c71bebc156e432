/* sluice_bench_restore_tc: the restore wrapper for TC (skb) paths, with an
 * optional per-iteration source port, so that a path which consumes state
 * (a new connection creates its conntrack entry) sees a NEW connection on
 * every iteration of one BPF_PROG_TEST_RUN call.
 *
 * Every iteration, bench_tc_restore
 *   1. copies the original frame (bench_tc_pkt[0]) over the packet with
 *      bpf_skb_store_bytes, undoing whatever the previous iteration wrote
 *      (e.g. the MAC rewrite of local delivery);
 *   2. when vary is set, writes sport_base + n into the TCP/UDP source port
 *      (bytes sport_off..+2), n = 0, 1, 2, ... from bench_tc_ctr[0], which
 *      user space resets before each call: every iteration is a distinct
 *      5-tuple, so up to 65536 iterations are 65536 conntrack misses;
 *   3. tail-calls the program under test (bench_tc_target[0]), whose verdict
 *      is the iteration's verdict.
 * Checksums are not fixed up: the programs timed here do not verify them.
 * The wrapper's own cost is in every number taken through it; the bench
 * measures the same wrapper around the empty TC program in the same run and
 * reports the difference (tests/bench/README.md, docs/benchmarks.md).
 * Frames must keep their length (no encapsulation paths in TC yet). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define BENCH_TC_PKT_MAX 2048
#define BENCH_TC_BROKEN 99 /* not a TC_ACT_*: the runner reports it */

struct bench_tc_pkt {
	__u32 len;
	__u32 vary;       /* 0: restore only; 1: also vary the source port */
	__u32 sport_off;  /* offset of the L4 source port in the frame */
	__u16 sport_base; /* host order; iteration n uses sport_base + n */
	__u16 pad;
	__u8 data[BENCH_TC_PKT_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct bench_tc_pkt);
	__uint(max_entries, 1);
} bench_tc_pkt SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} bench_tc_ctr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 1);
} bench_tc_target SEC(".maps");

SEC("tc")
int bench_tc_restore(struct __sk_buff *skb)
{
	__u32 zero = 0, len, *ctr;
	struct bench_tc_pkt *p = bpf_map_lookup_elem(&bench_tc_pkt, &zero);

	if (!p)
		return BENCH_TC_BROKEN;
	len = p->len;
	if (len < 1 || len > BENCH_TC_PKT_MAX || skb->len != len)
		return BENCH_TC_BROKEN;
	if (bpf_skb_store_bytes(skb, 0, p->data, len, 0))
		return BENCH_TC_BROKEN;
	if (p->vary) {
		__be16 port;

		ctr = bpf_map_lookup_elem(&bench_tc_ctr, &zero);
		if (!ctr)
			return BENCH_TC_BROKEN;
		port = bpf_htons((__u16)(p->sport_base + *ctr));
		*ctr += 1;
		if (bpf_skb_store_bytes(skb, p->sport_off, &port, sizeof(port), 0))
			return BENCH_TC_BROKEN;
	}
	bpf_tail_call(skb, &bench_tc_target, 0);
	return BENCH_TC_BROKEN; /* empty slot: fail loudly */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
