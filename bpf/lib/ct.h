/* Connection tracking: one entry per connection, keyed as the initiator
 * sent it; replies look up the reversed tuple. */
#ifndef SLUICE_BPF_CT_H
#define SLUICE_BPF_CT_H

#include "common.h"
#include "l4.h"

/* sluice_ct: LRU_HASH, key struct sluice_ct_key, value struct
 * sluice_ct_value, max entries from config conntrack.max (set by the agent
 * before load; default SLUICE_CT_MAX_DEFAULT). Written by sluice_lxc when a
 * new connection is allowed; refreshed per packet; expired and flushed by
 * the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_ct_value);
	__uint(max_entries, SLUICE_CT_MAX_DEFAULT);
} sluice_ct SEC(".maps");

enum sluice_ct_result {
	SLUICE_CT_NEW = 0,
	SLUICE_CT_ESTABLISHED = 1, /* same direction as the opening packet */
	SLUICE_CT_REPLY = 2,
};

static __always_inline void sluice_ct_tuple(const struct sluice_flow *f,
					    struct sluice_ct_key *k, int rev)
{
	__builtin_memcpy(k->saddr, rev ? f->daddr : f->saddr, 16);
	__builtin_memcpy(k->daddr, rev ? f->saddr : f->daddr, 16);
	k->sport = rev ? f->dport : f->sport;
	k->dport = rev ? f->sport : f->dport;
	k->proto = f->proto;
	k->family = f->family;
	k->pad = 0;
}

static __always_inline void sluice_ct_touch(struct sluice_ct_value *v,
					    const struct sluice_flow *f,
					    __u64 now, int reply)
{
	/* Write only what changed: the entry's cache line is shared by every
	 * CPU carrying this flow. */
	if (v->last_seen != now)
		v->last_seen = now;
	if (reply && !(v->flags & SLUICE_CT_SEEN_REPLY))
		__sync_fetch_and_or(&v->flags, SLUICE_CT_SEEN_REPLY);
	if ((f->tcp_flags & (SLUICE_TCP_FIN | SLUICE_TCP_RST)) &&
	    !(v->flags & SLUICE_CT_CLOSING))
		__sync_fetch_and_or(&v->flags, SLUICE_CT_CLOSING);
}

static __always_inline int sluice_ct_lookup(const struct sluice_flow *f,
					    __u64 now)
{
	struct sluice_ct_key k;
	struct sluice_ct_value *v;

	sluice_ct_tuple(f, &k, 0);
	v = bpf_map_lookup_elem(&sluice_ct, &k);
	if (v) {
		sluice_ct_touch(v, f, now, 0);
		return SLUICE_CT_ESTABLISHED;
	}
	sluice_ct_tuple(f, &k, 1);
	v = bpf_map_lookup_elem(&sluice_ct, &k);
	if (v) {
		sluice_ct_touch(v, f, now, 1);
		return SLUICE_CT_REPLY;
	}
	return SLUICE_CT_NEW;
}

/* Returns 0 or SLUICE_DROP_CT_FULL. */
static __always_inline int sluice_ct_create(const struct sluice_flow *f,
					    __u64 now, __u32 rule,
					    __u32 src_id, __u32 dst_id)
{
	struct sluice_ct_key k;
	struct sluice_ct_value v = {
		.created = now,
		.last_seen = now,
		.rule_id = rule,
		.src_identity = src_id,
		.dst_identity = dst_id,
	};

	sluice_ct_tuple(f, &k, 0);
	if (bpf_map_update_elem(&sluice_ct, &k, &v, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&sluice_ct, &k))
		return SLUICE_DROP_CT_FULL;
	return 0;
}

#endif
