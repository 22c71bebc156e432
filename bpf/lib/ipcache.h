/* Address -> identity, for every address the node may talk to. */
#ifndef SLUICE_BPF_IPCACHE_H
#define SLUICE_BPF_IPCACHE_H

#include "common.h"

/* sluice_ipcache: LPM_TRIE (no prealloc), key struct sluice_ipcache_key,
 * value struct sluice_ipcache_value, SLUICE_IPCACHE_MAX. Written by the
 * agent (pod addresses, node addresses, policy CIDRs); read by sluice_lxc
 * on new flows only. A miss means world. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sluice_ipcache_key);
	__type(value, struct sluice_ipcache_value);
	__uint(max_entries, SLUICE_IPCACHE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_ipcache SEC(".maps");

static __always_inline void sluice_ipcache_get(__u8 family, const __u8 *addr,
					       __u32 *id, __u32 *cidr_id)
{
	struct sluice_ipcache_key k = {
		.prefixlen = 32 + (family == AF_INET ? 32 : 128),
		.family = family,
	};
	struct sluice_ipcache_value *v;

	__builtin_memcpy(k.addr, addr, 16);
	v = bpf_map_lookup_elem(&sluice_ipcache, &k);
	*id = v ? v->identity : SLUICE_ID_WORLD;
	*cidr_id = v ? v->cidr_identity : SLUICE_ID_WORLD;
}

#endif
