/* Local endpoints (pods) by host-veth ifindex and by address. */
#ifndef SLUICE_BPF_ENDPOINT_H
#define SLUICE_BPF_ENDPOINT_H

#include "common.h"

/* sluice_ep_if: HASH, key __u32 host-veth ifindex, value struct
 * sluice_endpoint, SLUICE_ENDPOINTS_MAX. Written by the agent when it
 * creates or updates an endpoint (CNI ADD, pod labels change); read by
 * sluice_lxc for every packet that is not of an established connection
 * (who sent this? anti-spoofing, policy); an established connection's
 * conntrack entry records the veth its packets must arrive on instead. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sluice_endpoint);
	__uint(max_entries, SLUICE_ENDPOINTS_MAX);
} sluice_ep_if SEC(".maps");

/* sluice_ep_ip: HASH, key struct sluice_addr_key, value struct
 * sluice_endpoint, 2 x SLUICE_ENDPOINTS_MAX (IPv4 + IPv6). Written by the
 * agent with sluice_ep_if; read on new connections (and when a conntrack
 * entry's endpoints are resolved again) to find a local endpoint by
 * address. Established packets never read it: their conntrack entry holds
 * the delivery target. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sluice_addr_key);
	__type(value, struct sluice_endpoint);
	__uint(max_entries, 2 * SLUICE_ENDPOINTS_MAX);
} sluice_ep_ip SEC(".maps");

/* sluice_ep_epoch: ARRAY, key __u32 0, value __u32, 1 entry. Written by
 * the agent: incremented after it deletes an endpoint or changes what an
 * endpoint's ifindex, addresses or MACs are (never on label, identity or
 * policy changes), and after it deleted conntrack entries (ct flush, GC:
 * every flow-cache slot, lib/flowcache.h, is invalid at once). Read by sluice_lxc on every packet of an established
 * connection (an inlined array load): a conntrack entry delivers from the
 * endpoints it stored only while its ep_epoch is current; after a change
 * it resolves both ends again (sluice_ep_if / sluice_ep_ip) on its next
 * packet, and a connection whose endpoints are no longer the same is
 * decided by policy again. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} sluice_ep_epoch SEC(".maps");

static __always_inline __u32 sluice_ep_epoch_now(void)
{
	__u32 zero = 0;
	__u32 *e = bpf_map_lookup_elem(&sluice_ep_epoch, &zero);

	return e ? *e : 0;
}

static __always_inline struct sluice_endpoint *
sluice_ep_by_addr(__u8 family, const __u8 *addr)
{
	struct sluice_addr_key k = { .family = family };

	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(&sluice_ep_ip, &k);
}

/* The endpoint's own address of the packet's family? (anti-spoofing) */
static __always_inline int sluice_ep_owns(const struct sluice_endpoint *ep,
					  __u8 family, const __u8 *addr)
{
	const __u32 *a = (const __u32 *)addr;
	const __u32 *mine;

	if (family == AF_INET) {
		mine = (const __u32 *)ep->ipv4;
		return mine[0] != 0 && mine[0] == a[0];
	}
	mine = (const __u32 *)ep->ipv6;
	return (mine[0] | mine[1] | mine[2] | mine[3]) != 0 &&
	       mine[0] == a[0] && mine[1] == a[1] && mine[2] == a[2] &&
	       mine[3] == a[3];
}

#endif
