/* sluice_events_bench: one drop event per run, exactly as sluice_xdp emits
 * a prefilter drop (parse, count, reserve/fill/submit a struct
 * sluice_event), so BPF_PROG_TEST_RUN with a repeat count drives the
 * agent's ring buffer at a known number of events. A TC program, not XDP:
 * every XDP test run toggles a static key on entry and exit (about 3 ms
 * per call on this VM), which would pace the producer, not the reader. */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/counters.h"
#include "lib/events.h"

SEC("tc")
int sluice_events_bench(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct sluice_l3 l3 = {};

	if (sluice_parse_l3(data, data_end, &l3) != SLUICE_PARSE_OK)
		return 1;
	sluice_drop(skb->ifindex, SLUICE_DIR_INGRESS,
		    SLUICE_DROP_PREFILTER_DENY, skb->len, &l3);
	return 2; /* TC_ACT_SHOT */
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
