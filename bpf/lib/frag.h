/* Ports of fragmented datagrams: the first fragment carries them, later
 * fragments are matched to it by {src, dst, id, proto}. */
#ifndef SLUICE_BPF_FRAG_H
#define SLUICE_BPF_FRAG_H

#include "common.h"
#include "l4.h"

/* sluice_frag: LRU_HASH, key struct sluice_frag_key, value struct
 * sluice_frag_value, SLUICE_FRAG_MAX. Written by sluice_lxc for allowed
 * first fragments; read for later fragments (no entry: drop). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sluice_frag_key);
	__type(value, struct sluice_frag_value);
	__uint(max_entries, SLUICE_FRAG_MAX);
} sluice_frag SEC(".maps");

static __always_inline void sluice_frag_key_of(const struct sluice_flow *f,
					       struct sluice_frag_key *k)
{
	__builtin_memcpy(k->saddr, f->saddr, 16);
	__builtin_memcpy(k->daddr, f->daddr, 16);
	k->id = f->frag_id;
	k->proto = f->proto;
	k->family = f->family;
	k->pad = 0;
}

/* Later fragment: fills the ports from its first fragment, or fails. */
static __always_inline int sluice_frag_ports(struct sluice_flow *f)
{
	struct sluice_frag_key k;
	struct sluice_frag_value *v;

	sluice_frag_key_of(f, &k);
	v = bpf_map_lookup_elem(&sluice_frag, &k);
	if (!v)
		return SLUICE_DROP_FRAG_NO_STATE;
	f->sport = v->sport;
	f->dport = v->dport;
	return 0;
}

static __always_inline void sluice_frag_remember(const struct sluice_flow *f)
{
	struct sluice_frag_key k;
	struct sluice_frag_value v = { .sport = f->sport, .dport = f->dport };

	sluice_frag_key_of(f, &k);
	bpf_map_update_elem(&sluice_frag, &k, &v, BPF_ANY);
}

/* The first fragment of a service connection, remembered by the tuple the
 * client sent (saddr, daddr, dport) rather than the translated one in f:
 * that is what its later fragments carry. */
static __always_inline void sluice_frag_remember_as(const struct sluice_flow *f,
						    const __u8 *saddr,
						    const __u8 *daddr,
						    __be16 dport)
{
	struct sluice_frag_key k;
	struct sluice_frag_value v = { .sport = f->sport, .dport = dport };

	__builtin_memcpy(k.saddr, saddr, 16);
	__builtin_memcpy(k.daddr, daddr, 16);
	k.id = f->frag_id;
	k.proto = f->proto;
	k.family = f->family;
	k.pad = 0;
	bpf_map_update_elem(&sluice_frag, &k, &v, BPF_ANY);
}

#endif
