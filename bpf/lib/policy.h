/* Per-endpoint NetworkPolicy verdicts for new connections. */
#ifndef SLUICE_BPF_POLICY_H
#define SLUICE_BPF_POLICY_H

#include "common.h"

/* Inner map template: HASH (no prealloc), key struct sluice_policy_key,
 * value struct sluice_policy_value, SLUICE_POLICY_ENTRIES_MAX. The agent
 * builds a complete new inner map for an endpoint and swaps it into
 * sluice_policy with one update: a packet sees the old or the new policy,
 * never a mix. */
struct sluice_policy_inner {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sluice_policy_key);
	__type(value, struct sluice_policy_value);
	__uint(max_entries, SLUICE_POLICY_ENTRIES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_pol_tmpl SEC(".maps");
/* sluice_pol_tmpl is never filled: it makes the inner map's key and value
 * types complete in BTF (clang emits only forward declarations for types
 * reached through __array) and is the agent's template for new inner maps.
 * The agent sizes each endpoint's map to its entries: for hash inner maps
 * the kernel checks type, key, value and flags, not max_entries, and a
 * small bucket array is most of what makes a swap cheap. */

/* sluice_policy: ARRAY_OF_MAPS, key __u32 endpoint id, value an inner
 * policy map, SLUICE_ENDPOINTS_MAX. Written by the agent (policy compiler);
 * read by sluice_lxc on new flows of enforced endpoints. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, SLUICE_ENDPOINTS_MAX);
	__type(key, __u32);
	__array(values, struct sluice_policy_inner);
} sluice_policy SEC(".maps");

static __always_inline int sluice_policy_match(void *inner,
					       struct sluice_policy_key *k,
					       __u16 dport, __u32 *rule)
{
	struct sluice_policy_value *v = bpf_map_lookup_elem(inner, k);

	if (!v)
		return 0;
	if (v->any_port) {
		*rule = v->any_rule;
		return 1;
	}
#pragma unroll
	for (int i = 0; i < SLUICE_POLICY_RANGES; i++) {
		if (i >= v->nranges)
			break;
		if (dport >= v->ranges[i].lo && dport <= v->ranges[i].hi) {
			*rule = v->rule_ids[i];
			return 1;
		}
	}
	return 0;
}

/* Allowed by the endpoint's policy for `dir`? Peer identity first, then
 * any peer, then the peer's CIDR identity (ipBlock rules). An enforced
 * endpoint without an installed map fails closed. */
static __always_inline int sluice_policy_allows(__u32 ep_id, __u8 dir,
						__u8 proto, __u16 dport,
						__u32 peer_id, __u32 cidr_id,
						__u32 *rule)
{
	void *inner = bpf_map_lookup_elem(&sluice_policy, &ep_id);
	struct sluice_policy_key k = { .identity = peer_id, .dir = dir };

	if (!inner)
		return 0;
	/* Kubernetes rules name TCP, UDP or SCTP; everything else (ICMP)
	 * is only allowed by rules without ports, stored under proto 0. */
	k.proto = (proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
		   proto == 132) ? proto : 0;
	if (!k.proto)
		dport = 0;
	if (sluice_policy_match(inner, &k, dport, rule))
		return 1;
	k.identity = SLUICE_ID_ANY;
	if (sluice_policy_match(inner, &k, dport, rule))
		return 1;
	if (cidr_id == peer_id)
		return 0;
	k.identity = cidr_id;
	return sluice_policy_match(inner, &k, dport, rule);
}

#endif
