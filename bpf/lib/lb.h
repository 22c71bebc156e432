/* Service load balancing: frontend lookup, backend selection (random
 * slots, Maglev, ClientIP affinity, connection caps) and the address
 * rewrite. Maps and their layout: include/sluice/lb_abi.h. */
#ifndef SLUICE_BPF_LB_H
#define SLUICE_BPF_LB_H

#include "common.h"
#include "l4.h"
#include "ct.h"

/* sluice_lb_svc: HASH, key struct sluice_lb_svc_key, value struct
 * sluice_lb_svc, SLUICE_LB_SVC_MAX. Written by the agent (LbEngine): one
 * entry per frontend; a backend change rewrites the set's slots first and
 * the count last. Read on new connections only (established ones are
 * found by conntrack first). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sluice_lb_svc_key);
	__type(value, struct sluice_lb_svc);
	__uint(max_entries, SLUICE_LB_SVC_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_lb_svc SEC(".maps");

/* sluice_lb_slots: HASH, key struct sluice_lb_slot_key, value __u32
 * backend id, SLUICE_LB_SLOTS_MAX. Written by the agent; read when a new
 * connection of a random-selection service picks its backend. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sluice_lb_slot_key);
	__type(value, __u32);
	__uint(max_entries, SLUICE_LB_SLOTS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_lb_slots SEC(".maps");

/* Inner Maglev table template: ARRAY of ceil(M / 16) blocks of 16 backend
 * ids. BPF_F_INNER_MAP lets each service's table have its own size. Never
 * filled: the agent's template for new tables. */
struct sluice_lb_maglev_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sluice_lb_maglev_block);
	__uint(max_entries, (SLUICE_LB_MAGLEV_M_MAX + 15) / 16);
	__uint(map_flags, BPF_F_INNER_MAP);
} sluice_lb_mg_tmpl SEC(".maps");

/* sluice_lb_maglev: ARRAY_OF_MAPS, key __u32 svc id, value a Maglev table,
 * SLUICE_LB_SVC_IDS_MAX. Written by the agent: a backend change builds a
 * new table and swaps it in with one update (old or new, never a mix). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, SLUICE_LB_SVC_IDS_MAX);
	__type(key, __u32);
	__array(values, struct sluice_lb_maglev_inner);
} sluice_lb_maglev SEC(".maps");

/* sluice_lb_be: HASH, key __u32 backend id, value struct
 * sluice_lb_backend, SLUICE_LB_BE_MAX. Written by the agent; an id stays
 * until no slot or table names it. Read on new connections only: the
 * conntrack service entry keeps the backend's address for the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sluice_lb_backend);
	__uint(max_entries, SLUICE_LB_BE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_lb_be SEC(".maps");

/* sluice_lb_aff: LRU_HASH, key struct sluice_lb_affinity_key, value
 * struct sluice_lb_affinity, SLUICE_LB_AFFINITY_MAX. Written by the
 * datapath when a ClientIP-affinity service gives a client a backend;
 * entries older than the service's timeout are ignored (and the agent
 * removes entries of deleted services). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sluice_lb_affinity_key);
	__type(value, struct sluice_lb_affinity);
	__uint(max_entries, SLUICE_LB_AFFINITY_MAX);
} sluice_lb_aff SEC(".maps");

/* sluice_lb_conns: HASH, key __u32 backend id, value __u32 open
 * connections. The agent creates an entry for each backend of a service
 * with a connection cap and, every conntrack GC pass, rewrites it with the
 * count of live, not closing service entries naming it; the datapath adds
 * one per connection it gives the backend, so the cap holds between
 * passes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, SLUICE_LB_BE_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_lb_conns SEC(".maps");

/* sluice_lb_gate: ARRAY, key __u32 word, value __u64 (64 bits),
 * SLUICE_LB_GATE_BITS / 64 entries. A superset filter of the destinations
 * north-south traffic can have: the agent sets the bit of every external
 * frontend address it writes (never clears: a stale bit only costs the
 * lookups below it), sluice_xdp sets the bit of every SNAT address it
 * uses. Everything else on a node device skips the load balancer with one
 * array load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, SLUICE_LB_GATE_BITS / 64);
} sluice_lb_gate SEC(".maps");

static __always_inline int sluice_lb_gate_test(__u32 bit)
{
	__u32 word = bit / 64;
	__u64 *w = bpf_map_lookup_elem(&sluice_lb_gate, &word);

	return w && (*w & (1ull << (bit & 63)));
}

/* Whether the packet's destination may be north-south traffic: straight
 * from the IP header, so the rest of a node's traffic is not parsed past
 * it. */
static __always_inline int sluice_lb_gate_has_l3(const struct sluice_l3 *l3)
{
	if (l3->family == AF_INET)
		return sluice_lb_gate_test(
			sluice_lb_gate_bit4(l3->ip4->daddr, 0, 0, 0));
	return sluice_lb_gate_test(
		sluice_lb_gate_bit((const __u32 *)&l3->ip6->daddr));
}

static __always_inline void sluice_lb_gate_set(const __u8 *addr)
{
	__u32 bit = sluice_lb_gate_bit((const __u32 *)addr);
	__u32 word = bit / 64;
	__u64 *w = bpf_map_lookup_elem(&sluice_lb_gate, &word);

	if (w && !(*w & (1ull << (bit & 63))))
		__sync_fetch_and_or(w, 1ull << (bit & 63));
}

/* sluice_lb_scratch: PERCPU_ARRAY, 1 entry of struct sluice_lb_xlate.
 * Only service packets use it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sluice_lb_xlate);
	__uint(max_entries, 1);
} sluice_lb_scratch SEC(".maps");

static __always_inline struct sluice_lb_xlate *sluice_lb_scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sluice_lb_scratch, &zero);
}

static __always_inline void sluice_lb_hairpin_addr(__u8 family, __u8 *a)
{
	__u32 *w = (__u32 *)a;

	if (family == AF_INET) {
		w[0] = bpf_htonl(SLUICE_LB_HAIRPIN_V4);
		w[1] = w[2] = w[3] = 0;
	} else {
		w[0] = bpf_htonl(SLUICE_LB_HAIRPIN_V6_W0);
		w[1] = w[2] = 0;
		w[3] = bpf_htonl(SLUICE_LB_HAIRPIN_V6_W3);
	}
}

static __always_inline int sluice_addr_eq(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* The translation of an established connection, from its service entry. */
static __always_inline void sluice_lb_xlate_of(struct sluice_lb_xlate *x,
					       const struct sluice_flow *f,
					       const struct sluice_ct_value *v)
{
	__builtin_memcpy(x->front, f->daddr, 16);
	__builtin_memcpy(x->back, v->nat_addr, 16);
	__builtin_memcpy(x->orig_saddr, f->saddr, 16);
	x->front_port = f->dport;
	x->back_port = v->nat_port;
	x->backend_id = v->backend_id;
	x->svc_id = v->svc_id;
	x->active = 1;
	x->created = 0;
	x->hairpin = !!(v->flags & SLUICE_CT_HAIRPIN);
	x->capped = 0;
	x->affinity = 0;
	x->nodeport = 0;
}

/* The translation of a new connection of svc (f: the client's packet, as
 * sent) to backend id at be. */
static __always_inline void
sluice_lb_xlate_new(struct sluice_lb_xlate *x, const struct sluice_flow *f,
		    const struct sluice_lb_svc *svc, __u32 id,
		    const struct sluice_lb_backend *be, int nodeport)
{
	__builtin_memcpy(x->front, f->daddr, 16);
	__builtin_memcpy(x->back, be->addr, 16);
	__builtin_memcpy(x->orig_saddr, f->saddr, 16);
	x->front_port = f->dport;
	x->back_port = be->port;
	x->backend_id = id;
	x->svc_id = svc->svc_id;
	x->active = 1;
	x->created = 1;
	x->hairpin = !nodeport && sluice_addr_eq(be->addr, f->saddr);
	x->capped = svc->conn_cap != 0;
	x->affinity = !!(svc->flags & SLUICE_LB_AFFINITY);
	x->nodeport = nodeport;
}

/* Is the entry found for a translated packet the connection entry of
 * that translation? Anything else holding the translated tuple (a direct
 * connection of the same client port to the backend, another service's
 * connection, a reply direction) is a clash: taking it over would deliver
 * without reverse NAT, or with the wrong one. */
static __always_inline int sluice_lb_is_conn_of(const struct sluice_ct_hit *h,
						const struct sluice_lb_xlate *x)
{
	const struct sluice_ct_value *v = h->v;

	return !h->reply && (v->flags & SLUICE_CT_REVNAT) &&
	       v->nat_port == x->front_port &&
	       sluice_addr_eq(v->nat_addr, x->front);
}

/* Can the backend take one more connection of this service? */
static __always_inline int sluice_lb_has_room(const struct sluice_lb_svc *svc,
					      __u32 id)
{
	__u32 *n;

	if (!svc->conn_cap)
		return 1;
	n = bpf_map_lookup_elem(&sluice_lb_conns, &id);
	/* Signed: racing closes may take the running count below zero until
	 * the agent's next exact recount; that must read as room, not as
	 * four billion connections. */
	return !n || (__s32)*n < (__s32)svc->conn_cap;
}

static __always_inline __u32 sluice_lb_slot(__u32 svc_id, __u32 slot,
					    int maglev)
{
	if (maglev) {
		__u32 blk = slot / SLUICE_LB_MAGLEV_BLOCK;
		struct sluice_lb_maglev_block *b;
		void *table = bpf_map_lookup_elem(&sluice_lb_maglev, &svc_id);

		if (!table)
			return 0;
		b = bpf_map_lookup_elem(table, &blk);
		return b ? b->ids[slot & (SLUICE_LB_MAGLEV_BLOCK - 1)] : 0;
	} else {
		struct sluice_lb_slot_key k = { .svc_id = svc_id, .slot = slot };
		__u32 *id = bpf_map_lookup_elem(&sluice_lb_slots, &k);

		return id ? *id : 0;
	}
}

/* ClientIP affinity: the backend this client had, if still in time. */
static __always_inline __u32 sluice_lb_affine(const struct sluice_lb_svc *svc,
					      const struct sluice_flow *f,
					      __u64 now)
{
	struct sluice_lb_affinity_key k = { .svc_id = svc->svc_id,
					    .family = f->family };
	struct sluice_lb_affinity *a;

	__builtin_memcpy(k.addr, f->saddr, 16);
	a = bpf_map_lookup_elem(&sluice_lb_aff, &k);
	if (!a || now - a->last_seen > (__u64)svc->affinity_s * 1000000000ull)
		return 0;
	return a->backend_id;
}

/* Remembers the client's backend: only once its connection passed
 * anti-spoofing and policy and is in conntrack, so a packet that is
 * dropped (a spoofed source above all) cannot steer another client. */
static __always_inline void
sluice_lb_affine_set(const struct sluice_lb_xlate *x, __u8 family)
{
	struct sluice_lb_affinity_key k = { .svc_id = x->svc_id,
					    .family = family };
	struct sluice_lb_affinity a = { .last_seen = bpf_ktime_get_coarse_ns(),
					.backend_id = x->backend_id };

	__builtin_memcpy(k.addr, x->orig_saddr, 16);
	bpf_map_update_elem(&sluice_lb_aff, &k, &a, BPF_ANY);
}

/* Picks the backend of a new connection: affinity, then Maglev (the
 * flow's hash, the same on every node) or a random slot; a backend at its
 * connection cap passes the turn to the next slot. 0 and *id, or a drop
 * reason. */
static __always_inline int sluice_lb_pick(const struct sluice_lb_svc *svc,
					  const struct sluice_flow *f,
					  __u32 *id)
{
	int maglev = !!(svc->flags & SLUICE_LB_MAGLEV);
	__u32 n = maglev ? svc->maglev_m : svc->count;
	__u64 now = 0;
	__u32 slot;

	if (!svc->count || !n)
		return SLUICE_DROP_LB_NO_BACKEND;
	if (svc->flags & SLUICE_LB_AFFINITY) {
		now = bpf_ktime_get_coarse_ns();
		*id = sluice_lb_affine(svc, f, now);
		if (*id && sluice_lb_has_room(svc, *id) &&
		    bpf_map_lookup_elem(&sluice_lb_be, id))
			goto picked;
	}
	if (maglev)
		slot = sluice_lb_flow_hash((const __u32 *)f->saddr,
					   (const __u32 *)f->daddr, f->sport,
					   f->dport, f->proto) % n;
	else
		slot = bpf_get_prandom_u32() % n;
	for (int i = 0; i < SLUICE_LB_CAP_TRIES; i++) {
		*id = sluice_lb_slot(svc->svc_id, slot, maglev);
		if (*id && sluice_lb_has_room(svc, *id))
			goto picked;
		if (!svc->conn_cap && *id)
			break;
		slot = slot + 1 >= n ? 0 : slot + 1;
	}
	return *id ? SLUICE_DROP_LB_BACKENDS_AT_CAP : SLUICE_DROP_LB_NO_BACKEND;
picked:
	return 0;
}

/* One connection more (d = 1) or less (-1) on a backend. Only backends of
 * capped services have a counter; the agent's recount corrects drift. */
static __always_inline void sluice_lb_conn_add(__u32 id, int d)
{
	__u32 *n = bpf_map_lookup_elem(&sluice_lb_conns, &id);

	if (n)
		__sync_fetch_and_add(n, d);
}

/* Rewrites the packet's source (src) or destination address and port, its
 * checksums, and f. 0 or -1. Later fragments carry no L4 header: only
 * the address changes (the checksum covering it was in the first one). */
static __always_inline int sluice_lb_rewrite(struct __sk_buff *skb,
					     struct sluice_flow *f, int src,
					     const __u8 *to, __be16 port)
{
	__u8 *cur = src ? f->saddr : f->daddr;
	__be16 *curp = src ? &f->sport : &f->dport;
	__u32 csum_off = 0, mangled = 0;

	if (f->frag != SLUICE_FRAG_LATER) {
		if (f->proto == IPPROTO_TCP) {
			csum_off = f->l4_off + 16;
		} else if (f->proto == IPPROTO_UDP) {
			csum_off = f->l4_off + 6;
			mangled = BPF_F_MARK_MANGLED_0; /* 0 = no checksum */
		}
	}
	if (f->family == AF_INET) {
		__be32 o = *(__be32 *)cur, n = *(__be32 *)to;

		if (csum_off &&
		    bpf_l4_csum_replace(skb, csum_off, o, n,
					BPF_F_PSEUDO_HDR | mangled | 4))
			return -1;
		if (bpf_l3_csum_replace(skb, f->l3_off + 10, o, n, 4))
			return -1;
		if (bpf_skb_store_bytes(skb, f->l3_off + (src ? 12 : 16), &n, 4,
					0))
			return -1;
	} else {
		__s64 d = bpf_csum_diff((__be32 *)cur, 16, (__be32 *)to, 16, 0);

		if (d < 0)
			return -1;
		if (csum_off && bpf_l4_csum_replace(skb, csum_off, 0, d,
						    BPF_F_PSEUDO_HDR | mangled))
			return -1;
		if (bpf_skb_store_bytes(skb, f->l3_off + (src ? 8 : 24), to, 16,
					0))
			return -1;
	}
	__builtin_memcpy(cur, to, 16);
	if (port == *curp || f->frag == SLUICE_FRAG_LATER)
		return 0;
	/* SCTP's CRC32c covers the ports and BPF has no helper to redo it: a
	 * port change would corrupt the packet, so it fails (lb-nat-failed).
	 * SCTP services work when port and targetPort are equal
	 * (docs/design-services.md, "Limits"). */
	if (f->proto == IPPROTO_SCTP)
		return -1;
	if (csum_off && bpf_l4_csum_replace(skb, csum_off, *curp, port,
					    mangled | 2))
		return -1;
	if (bpf_skb_store_bytes(skb, f->l4_off + (src ? 0 : 2), &port, 2, 0))
		return -1;
	*curp = port;
	return 0;
}

#endif
