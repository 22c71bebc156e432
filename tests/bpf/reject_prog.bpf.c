/* sluice_reject_test: sluice_reject behind the same parsing sluice_lxc
 * does, so the tests drive it with whole frames and the offsets it gets
 * are the ones a real caller passes.
 *   test_reject        the TC verdict of sluice_reject
 *   test_reject_build  sluice_reject_build's result (as __u32): tells
 *                      "nothing to answer" from "failed"
 * l4_off is passed as sluice_lxc will: 0 for a non-first fragment.
 * A frame the parser refuses returns TEST_REJECT_UNPARSED: the tests only
 * mean to exercise sluice_reject. */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/l4.h"
#include "lib/reject.h"

#define TEST_REJECT_UNPARSED 99

static __always_inline int parse(struct __sk_buff *skb, struct sluice_flow *f)
{
	struct sluice_l3 l3 = {};
	void *data, *data_end;

	bpf_skb_pull_data(skb, skb->len < 256 ? skb->len : 256);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (sluice_parse_l3(data, data_end, &l3) != SLUICE_PARSE_OK)
		return -1;
	if (sluice_parse_flow(data, data_end, &l3, f))
		return -1;
	return 0;
}

/* As a caller passes it: none for a non-first fragment. */
static __always_inline __u32 l4_off(const struct sluice_flow *f)
{
	return f->frag == SLUICE_FRAG_LATER ? 0 : f->l4_off;
}

SEC("tc")
int test_reject(struct __sk_buff *skb)
{
	struct sluice_flow f = {};

	if (parse(skb, &f))
		return TEST_REJECT_UNPARSED;
	return sluice_reject(skb, f.l3_off, f.family, f.proto, l4_off(&f));
}

SEC("tc")
int test_reject_build(struct __sk_buff *skb)
{
	struct sluice_flow f = {};

	if (parse(skb, &f))
		return TEST_REJECT_UNPARSED;
	/* cb[0] set: f.l4_off even for a non-first fragment, as a careless
	 * caller would pass it. */
	return sluice_reject_build(skb, f.l3_off, f.family, f.proto,
				   skb->cb[0] ? f.l4_off : l4_off(&f));
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
