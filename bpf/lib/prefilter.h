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

/* sluice_pf_v4_bm / sluice_pf_v6_bm: ARRAY (BPF_F_MMAPABLE), key __u32
 * word index, value __u64 (64 bucket bits), SLUICE_PF_BITMAP_WORDS entries
 * (2 MiB each). Written by the agent through mmap (set before a trie insert
 * takes effect, cleared only after the trie delete); read by sluice_xdp on
 * every IP packet. An array lookup is inlined by the JIT, so a source whose
 * bucket holds no deny entry costs one load instead of a trie walk. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, SLUICE_PF_BITMAP_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
} sluice_pf_v4_bm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, SLUICE_PF_BITMAP_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
} sluice_pf_v6_bm SEC(".maps");

static __always_inline int sluice_pf_bucket_set(void *bitmap, __u32 bucket)
{
	__u32 w = bucket >> 6;
	__u64 *word = bpf_map_lookup_elem(bitmap, &w);

	return word && ((*word >> (bucket & 63)) & 1);
}

/* Returns non-zero when the packet's source is denied. */
static __always_inline int sluice_prefilter_denied(const struct sluice_l3 *l3)
{
	if (l3->family == AF_INET) {
		struct sluice_lpm_v4_key k = { .prefixlen = 32 };
		__u32 saddr = l3->ip4->saddr;

		if (likely(!sluice_pf_bucket_set(
			    &sluice_pf_v4_bm,
			    sluice_pf_v4_bucket(bpf_ntohl(saddr)))))
			return 0;
		__builtin_memcpy(k.addr, &saddr, 4);
		return bpf_map_lookup_elem(&sluice_pf_v4, &k) != NULL;
	}
	struct sluice_lpm_v6_key k6 = { .prefixlen = 128 };

	if (likely(!sluice_pf_bucket_set(
		    &sluice_pf_v6_bm,
		    sluice_pf_v6_bucket(bpf_ntohl(l3->ip6->saddr.in6_u.u6_addr32[0])))))
		return 0;
	__builtin_memcpy(k6.addr, &l3->ip6->saddr, 16);
	return bpf_map_lookup_elem(&sluice_pf_v6, &k6) != NULL;
}

#endif
