/* sluice_events_test: the event helpers of bpf/lib/events.h behind the
 * parser sluice_lxc uses, so the tests check what a real call site emits.
 * One run of test_events emits, in this order and as far as the event
 * level allows: sluice_drop_flow (policy-deny-ingress), sluice_emit_verdict
 * (denied, rule 7), sluice_emit_xlate (backend 10.200.9.9:8080 / fd10::9),
 * sluice_emit_trace. test_drop_l3 is sluice_drop() with l3 only, as
 * sluice_xdp calls it. Identities: src 256, dst 257, endpoint 3. */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/l4.h"
#include "lib/events.h"

static __always_inline int parse(struct __sk_buff *skb, struct sluice_flow *f,
				 struct sluice_l3 *l3)
{
	void *data, *data_end;

	bpf_skb_pull_data(skb, skb->len < 256 ? skb->len : 256);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (sluice_parse_l3(data, data_end, l3) != SLUICE_PARSE_OK)
		return -1;
	if (sluice_parse_flow(data, data_end, l3, f))
		return -1;
	return 0;
}

SEC("tc")
int test_events(struct __sk_buff *skb)
{
	struct sluice_event_ids ids = {.src_identity = 256,
				       .dst_identity = 257,
				       .ep_id = 3};
	struct sluice_flow f = {};
	struct sluice_l3 l3 = {};
	__u8 be[16] = {};

	if (parse(skb, &f, &l3))
		return 99;
	if (f.family == AF_INET) {
		be[0] = 10; be[1] = 200; be[2] = 9; be[3] = 9;
	} else {
		be[0] = 0xfd; be[1] = 0x10; be[15] = 9;
	}
	sluice_drop_flow(skb->ifindex, SLUICE_DIR_INGRESS,
			 SLUICE_DROP_POLICY_DENY_INGRESS, skb->len, &f, &ids);
	ids.rule_id = 7;
	sluice_emit_verdict(skb->ifindex, SLUICE_DIR_INGRESS,
			    SLUICE_VERDICT_DENIED, skb->len, &f, &ids);
	ids.rule_id = 0;
	sluice_emit_xlate(skb->ifindex, SLUICE_DIR_EGRESS, skb->len, &f, be,
			  bpf_htons(8080), &ids);
	sluice_emit_trace(skb->ifindex, SLUICE_DIR_EGRESS, SLUICE_TRACE_TO_STACK,
			  skb->len, &f, &ids);
	return 0;
}

SEC("tc")
int test_drop_l3(struct __sk_buff *skb)
{
	struct sluice_flow f = {};
	struct sluice_l3 l3 = {};

	if (parse(skb, &f, &l3))
		return 99;
	sluice_drop(skb->ifindex, SLUICE_DIR_INGRESS, SLUICE_DROP_PREFILTER_DENY,
		    skb->len, &l3);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
