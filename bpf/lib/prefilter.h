/* XDP prefilter: drop packets whose source is in a deny CIDR, before the
 * kernel allocates anything for them. */
#ifndef SLUICE_BPF_PREFILTER_H
#define SLUICE_BPF_PREFILTER_H

#include "common.h"
#include "parse.h"

/* sluice_pf_v4 / sluice_pf_v6: LPM_TRIE (BPF_F_NO_PREALLOC), key
 * struct sluice_lpm_v{4,6}_key (prefixlen + source prefix, network order),
 * value struct sluice_prefilter_value, SLUICE_PREFILTER_MAX entries.
 * Written by the agent from config `prefilter.deny` and `sluicectl
 * prefilter add|delete`; read by sluice_xdp on every IP packet. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sluice_lpm_v4_key);
	__type(value, struct sluice_prefilter_value);
	__uint(max_entries, SLUICE_PREFILTER_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_pf_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct sluice_lpm_v6_key);
	__type(value, struct sluice_prefilter_value);
	__uint(max_entries, SLUICE_PREFILTER_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_pf_v6 SEC(".maps");

/* Returns non-zero when the packet's source is denied. */
static __always_inline int sluice_prefilter_denied(const struct sluice_l3 *l3)
{
	if (l3->family == AF_INET) {
		struct sluice_lpm_v4_key k = { .prefixlen = 32 };

		__builtin_memcpy(k.addr, &l3->ip4->saddr, 4);
		return bpf_map_lookup_elem(&sluice_pf_v4, &k) != NULL;
	}
	struct sluice_lpm_v6_key k6 = { .prefixlen = 128 };

	__builtin_memcpy(k6.addr, &l3->ip6->saddr, 16);
	return bpf_map_lookup_elem(&sluice_pf_v6, &k6) != NULL;
}

#endif
