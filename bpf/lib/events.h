/* Drop and trace events to the agent through one ring buffer. */
#ifndef SLUICE_BPF_EVENTS_H
#define SLUICE_BPF_EVENTS_H

#include "common.h"
#include "config.h"
#include "counters.h"
#include "parse.h"

/* sluice_events: RINGBUF, SLUICE_EVENTS_BYTES bytes of struct sluice_event
 * records. Written by every program on drops (event level >= drops);
 * drained by the agent. A full buffer never blocks the datapath: the
 * record is skipped and the loss counted by the agent from ringbuf stats. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SLUICE_EVENTS_BYTES);
} sluice_events SEC(".maps");

static __always_inline void sluice_fill_addrs(struct sluice_event *ev,
					      const struct sluice_l3 *l3)
{
	ev->family = l3->family;
	ev->proto = l3->l4_proto;
	if (l3->family == AF_INET) {
		__builtin_memcpy(ev->saddr, &l3->ip4->saddr, 4);
		__builtin_memcpy(ev->daddr, &l3->ip4->daddr, 4);
	} else if (l3->family == AF_INET6) {
		__builtin_memcpy(ev->saddr, &l3->ip6->saddr, 16);
		__builtin_memcpy(ev->daddr, &l3->ip6->daddr, 16);
	}
}

/* Counts a drop and, when enabled, emits its event. l3 may be NULL when the
 * packet did not parse far enough to have addresses. */
static __always_inline void sluice_drop(__u32 ifindex, __u32 dir,
					__u32 reason, __u32 len,
					const struct sluice_l3 *l3)
{
	struct sluice_config *cfg = sluice_cfg();
	struct sluice_event *ev;

	sluice_count(dir, reason, len);
	if (!cfg || cfg->event_level < SLUICE_EVENTS_DROPS)
		return;
	ev = bpf_ringbuf_reserve(&sluice_events, sizeof(*ev), 0);
	if (!ev)
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	/* A coarse clock: a drop flood must not pay for a precise VM clock. */
	ev->ts_ns = bpf_ktime_get_coarse_ns();
	ev->ifindex = ifindex;
	ev->type = SLUICE_EVENT_DROP;
	ev->reason = reason;
	ev->dir = dir;
	ev->pkt_len = len;
	if (l3)
		sluice_fill_addrs(ev, l3);
	bpf_ringbuf_submit(ev, 0);
}

#endif
