/* Flow events to the agent through one ring buffer: drops, policy verdicts
 * of new connections, service translations, and (trace level) packets.
 *
 * Cost is bounded by the event level (sluice_config.event_level, config
 * `events.level`; a pod's hooks use its endpoint's override, see
 * lib/ep_events.h): every helper checks it first and returns when its
 * level is off, so nothing but that array lookup is paid on the paths
 * that emit. The *_at variants take the level the caller found in force.
 * Verdicts and translations are meant for the slow path only (new
 * connections): one event per connection, never per established packet.
 *
 * Loss: a full ring buffer never blocks the datapath. The record is
 * skipped and counted in sluice_counters at SLUICE_COUNTER_EVENTS_LOST
 * (packets = events, bytes = record bytes); the agent exports it as
 * sluice_events_lost_total and in `sluicectl status`. */
#ifndef SLUICE_BPF_EVENTS_H
#define SLUICE_BPF_EVENTS_H

#include "common.h"
#include "config.h"
#include "counters.h"
#include "parse.h"
#include "l4.h"

/* sluice_events: RINGBUF, SLUICE_EVENTS_BYTES bytes of struct sluice_event
 * records. Written by every program (see above); drained by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SLUICE_EVENTS_BYTES);
} sluice_events SEC(".maps");

/* Identities and endpoint of an event, as far as the caller knows them
 * (0 = unknown). */
struct sluice_event_ids {
	__u32 src_identity;
	__u32 dst_identity;
	__u32 ep_id;
	__u32 rule_id;
};

/* The global level (events.level). Pod hooks use their endpoint's level
 * instead (lib/ep_events.h) and pass it to the *_at helpers below. */
static __always_inline __u32 sluice_event_level(void)
{
	struct sluice_config *cfg = sluice_cfg();

	return cfg ? cfg->event_level : SLUICE_EVENTS_OFF;
}

static __always_inline int sluice_events_enabled(__u32 level)
{
	return sluice_event_level() >= level;
}

/* A zeroed record with the common fields set, or NULL (ring buffer full:
 * the loss is counted). */
static __always_inline struct sluice_event *
sluice_event_begin(__u32 type, __u32 ifindex, __u32 dir, __u32 len)
{
	struct sluice_event *ev;

	ev = bpf_ringbuf_reserve(&sluice_events, sizeof(*ev), 0);
	if (!ev) {
		__u32 idx = SLUICE_COUNTER_EVENTS_LOST;
		struct sluice_counter *c =
			bpf_map_lookup_elem(&sluice_counters, &idx);

		if (c) {
			c->packets++;
			c->bytes += sizeof(*ev);
		}
		return NULL;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	/* A coarse clock: a drop flood must not pay for a precise VM clock. */
	ev->ts_ns = bpf_ktime_get_coarse_ns();
	ev->ifindex = ifindex;
	ev->type = type;
	ev->dir = dir;
	ev->pkt_len = len;
	return ev;
}

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

/* The 5-tuple of a parsed flow (struct sluice_flow from lib/l4.h). */
static __always_inline void sluice_fill_flow(struct sluice_event *ev,
					     const struct sluice_flow *f)
{
	ev->family = f->family;
	ev->proto = f->proto;
	ev->sport = f->sport;
	ev->dport = f->dport;
	__builtin_memcpy(ev->saddr, f->saddr, 16);
	__builtin_memcpy(ev->daddr, f->daddr, 16);
}

static __always_inline void sluice_fill_ids(struct sluice_event *ev,
					    const struct sluice_event_ids *ids)
{
	ev->src_identity = ids->src_identity;
	ev->dst_identity = ids->dst_identity;
	ev->ep_id = ids->ep_id;
	ev->rule_id = ids->rule_id;
}

/* Counts the drop; its event record (NULL: level, the event level in
 * force for this packet, is below drops, or the ring buffer is full) for
 * the caller to fill and submit. */
static __always_inline struct sluice_event *
sluice_drop_begin_at(__u32 level, __u32 ifindex, __u32 dir, __u32 reason,
		     __u32 len)
{
	struct sluice_event *ev;

	sluice_count(dir, reason, len);
	if (level < SLUICE_EVENTS_DROPS)
		return NULL;
	ev = sluice_event_begin(SLUICE_EVENT_DROP, ifindex, dir, len);
	if (!ev)
		return NULL;
	ev->reason = reason;
	ev->verdict = SLUICE_VERDICT_DROPPED;
	return ev;
}

/* sluice_drop_begin_at() at the global level. */
static __always_inline struct sluice_event *
sluice_drop_begin(__u32 ifindex, __u32 dir, __u32 reason, __u32 len)
{
	return sluice_drop_begin_at(sluice_event_level(), ifindex, dir, reason,
				    len);
}

/* Counts a drop and, at event level >= drops, emits its event. l3 may be
 * NULL when the packet did not parse far enough to have addresses (ports
 * are not known here: use sluice_drop_flow() once the flow is parsed). */
static __always_inline void sluice_drop(__u32 ifindex, __u32 dir,
					__u32 reason, __u32 len,
					const struct sluice_l3 *l3)
{
	struct sluice_event *ev = sluice_drop_begin(ifindex, dir, reason, len);

	if (!ev)
		return;
	if (l3)
		sluice_fill_addrs(ev, l3);
	bpf_ringbuf_submit(ev, 0);
}

/* sluice_drop() for a packet whose flow is parsed: the event carries the
 * 5-tuple, the identities and the endpoint (ids may be NULL; f may be NULL,
 * then it is sluice_drop() without addresses). For sluice_lxc's drop(). */
static __always_inline void
sluice_drop_flow_at(__u32 level, __u32 ifindex, __u32 dir, __u32 reason,
		    __u32 len, const struct sluice_flow *f,
		    const struct sluice_event_ids *ids)
{
	struct sluice_event *ev =
		sluice_drop_begin_at(level, ifindex, dir, reason, len);

	if (!ev)
		return;
	if (f)
		sluice_fill_flow(ev, f);
	if (ids)
		sluice_fill_ids(ev, ids);
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline void sluice_drop_flow(__u32 ifindex, __u32 dir,
					     __u32 reason, __u32 len,
					     const struct sluice_flow *f,
					     const struct sluice_event_ids *ids)
{
	sluice_drop_flow_at(sluice_event_level(), ifindex, dir, reason, len, f,
			    ids);
}

/* The policy verdict of a NEW connection (call once, where the policy is
 * evaluated, not for established packets), at event level >= flows.
 *   dir       SLUICE_DIR_EGRESS: the endpoint's egress policy decided
 *             (ifindex/ep_id: the source pod); SLUICE_DIR_INGRESS: the
 *             destination pod's ingress policy
 *   verdict   SLUICE_VERDICT_ALLOWED or SLUICE_VERDICT_DENIED
 *   ids       identities of both ends, the endpoint, and rule_id: the rule
 *             that allowed it (0 for a deny or "no policy selects it")
 * A denied connection also takes sluice_drop*() with
 * SLUICE_DROP_POLICY_DENY_*: both events are emitted (the verdict at flows
 * level, the drop at drops level), so `observe --type drop` and
 * `--type policy-verdict` each see it. */
static __always_inline void
sluice_emit_verdict_at(__u32 level, __u32 ifindex, __u32 dir, __u32 verdict,
		       __u32 len, const struct sluice_flow *f,
		       const struct sluice_event_ids *ids)
{
	struct sluice_event *ev;

	if (level < SLUICE_EVENTS_FLOWS)
		return;
	ev = sluice_event_begin(SLUICE_EVENT_POLICY_VERDICT, ifindex, dir, len);
	if (!ev)
		return;
	ev->verdict = verdict;
	sluice_fill_flow(ev, f);
	if (ids)
		sluice_fill_ids(ev, ids);
	bpf_ringbuf_submit(ev, 0);
}

static __always_inline void
sluice_emit_verdict(__u32 ifindex, __u32 dir, __u32 verdict, __u32 len,
		    const struct sluice_flow *f,
		    const struct sluice_event_ids *ids)
{
	sluice_emit_verdict_at(sluice_event_level(), ifindex, dir, verdict, len,
			       f, ids);
}

/* A new service connection was translated (call once, where the backend
 * is chosen), at event level >= flows. f is the client's packet before
 * translation (daddr:dport = the frontend); be_addr (16 bytes, IPv4 in the
 * first 4, network order) and be_port (network order) the chosen backend.
 * dir is the client pod's direction (SLUICE_DIR_EGRESS at sluice_lxc_out).
 * The verdict is SLUICE_VERDICT_TRANSLATED. */
static __always_inline void
sluice_emit_xlate(__u32 ifindex, __u32 dir, __u32 len,
		  const struct sluice_flow *f, const __u8 *be_addr,
		  __be16 be_port, const struct sluice_event_ids *ids)
{
	struct sluice_event *ev;

	if (!sluice_events_enabled(SLUICE_EVENTS_FLOWS))
		return;
	ev = sluice_event_begin(SLUICE_EVENT_SERVICE_XLATE, ifindex, dir, len);
	if (!ev)
		return;
	ev->verdict = SLUICE_VERDICT_TRANSLATED;
	sluice_fill_flow(ev, f);
	__builtin_memcpy(ev->fe_addr, f->daddr, 16);
	ev->fe_port = f->dport;
	__builtin_memcpy(ev->be_addr, be_addr, 16);
	ev->be_port = be_port;
	if (ids)
		sluice_fill_ids(ev, ids);
	bpf_ringbuf_submit(ev, 0);
}

/* A packet passed a hook and went on to point (enum sluice_trace_point;
 * verdict FORWARDED). The caller decided that trace is on for it: pod
 * hooks by their endpoint's level (lib/ep_events.h). f, ids may be NULL. */
static __always_inline void
sluice_trace_submit(__u32 ifindex, __u32 dir, __u32 point, __u32 len,
		    const struct sluice_flow *f,
		    const struct sluice_event_ids *ids)
{
	struct sluice_event *ev;

	ev = sluice_event_begin(SLUICE_EVENT_TRACE, ifindex, dir, len);
	if (!ev)
		return;
	ev->verdict = SLUICE_VERDICT_FORWARDED;
	ev->reason = point;
	if (f)
		sluice_fill_flow(ev, f);
	if (ids)
		sluice_fill_ids(ev, ids);
	bpf_ringbuf_submit(ev, 0);
}

/* sluice_trace_submit() at global level trace only. */
static __always_inline void sluice_emit_trace(__u32 ifindex, __u32 dir,
					      __u32 point, __u32 len,
					      const struct sluice_flow *f,
					      const struct sluice_event_ids *ids)
{
	if (sluice_events_enabled(SLUICE_EVENTS_TRACE))
		sluice_trace_submit(ifindex, dir, point, len, f, ids);
}

#endif
