/* Local endpoints (pods) by host-veth ifindex and by address. */
#ifndef SLUICE_BPF_ENDPOINT_H
#define SLUICE_BPF_ENDPOINT_H

#include "common.h"

/* sluice_ep_if: HASH, key __u32 host-veth ifindex, value struct
 * sluice_endpoint, SLUICE_ENDPOINTS_MAX. Written by the agent when it
 * creates or updates an endpoint (CNI ADD, pod labels change); read by
 * sluice_lxc on every packet (who sent this?). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sluice_endpoint);
	__uint(max_entries, SLUICE_ENDPOINTS_MAX);
} sluice_ep_if SEC(".maps");

/* sluice_ep_ip: HASH, key struct sluice_addr_key, value struct
 * sluice_endpoint, 2 x SLUICE_ENDPOINTS_MAX (IPv4 + IPv6). Written by the
 * agent with sluice_ep_if; read on new flows to find a local destination. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sluice_addr_key);
	__type(value, struct sluice_endpoint);
	__uint(max_entries, 2 * SLUICE_ENDPOINTS_MAX);
} sluice_ep_ip SEC(".maps");

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
