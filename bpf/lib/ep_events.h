/* The event level at a pod's hooks: the endpoint's override (Pod
 * annotation sluice.io/events-level, bits SLUICE_EP_EVENTS_MASK of its
 * flags) if it has one, else the global events.level. Both directions at
 * a pod's veth follow that pod's level; a packet with no endpoint at hand
 * (unknown veth) follows the global one.
 *
 * Cost: while no endpoint overrides its level (SLUICE_CFG_EP_EVENTS clear,
 * the endpoint manager keeps sluice_config.flags) the level is the config
 * array's, as for sluice_xdp; only with overrides does a drop or verdict
 * also look its endpoint up (sluice_ep_if). Per-packet trace is gated the
 * same way on established packets: one array load and one branch while
 * neither the global level nor any override is trace. */
#ifndef SLUICE_BPF_EP_EVENTS_H
#define SLUICE_BPF_EP_EVENTS_H

#include "common.h"
#include "config.h"
#include "endpoint.h"
#include "events.h"

static __always_inline __u32
sluice_ep_level_of(const struct sluice_endpoint *ep, __u32 global)
{
	__u32 o = ep ? (ep->flags & SLUICE_EP_EVENTS_MASK) >>
			       SLUICE_EP_EVENTS_SHIFT :
		       0;

	return o ? o - 1 : global;
}

/* The level in force at the hook on ifindex (a pod's host veth). A
 * global function: its lookup key lives in its own frame, not in those of
 * the paths that call it (a call chain shares 512 bytes of stack). */
__attribute__((noinline)) int sluice_ep_level(__u32 ifindex)
{
	struct sluice_config *cfg = sluice_cfg();

	if (!cfg)
		return SLUICE_EVENTS_OFF;
	if (!(cfg->flags & SLUICE_CFG_EP_EVENTS))
		return cfg->event_level;
	return sluice_ep_level_of(bpf_map_lookup_elem(&sluice_ep_if, &ifindex),
				  cfg->event_level);
}

/* Trace a packet forwarded at the hook on ifindex? peer: the host veth of
 * the local pod it is delivered straight into (bpf_redirect_peer skips
 * that pod's own hooks), 0 for none: the packet is traced when either
 * pod's level is trace. */
static __always_inline int sluice_ep_trace(__u32 ifindex, __u32 peer)
{
	struct sluice_config *cfg = sluice_cfg();

	if (likely(!cfg || (cfg->event_level < SLUICE_EVENTS_TRACE &&
			    !(cfg->flags & SLUICE_CFG_EP_TRACE))))
		return 0;
	if (sluice_ep_level(ifindex) >= SLUICE_EVENTS_TRACE)
		return 1;
	return peer && sluice_ep_level(peer) >= SLUICE_EVENTS_TRACE;
}

#endif
