/* Connection tracking: one entry per connection, found by packets of both
 * directions with one lookup (canonical key, see struct sluice_ct_key). The
 * entry holds what delivering a packet of the connection needs: for each
 * end, the local endpoint there (host veth, endpoint id, MACs), so an
 * established packet costs one CT lookup and no endpoint lookup. */
#ifndef SLUICE_BPF_CT_H
#define SLUICE_BPF_CT_H

#include "common.h"
#include "l4.h"

/* sluice_ct: LRU_HASH, key struct sluice_ct_key (canonical), value struct
 * sluice_ct_value, max entries from config conntrack.max (set by the agent
 * before load; default SLUICE_CT_MAX_DEFAULT). Written by sluice_lxc when a
 * new connection is allowed; refreshed per packet; ends re-resolved when
 * sluice_ep_epoch moved; expired and flushed by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_ct_value);
	__uint(max_entries, SLUICE_CT_MAX_DEFAULT);
} sluice_ct SEC(".maps");

/* A service connection's translation: filled when a new connection picks
 * its backend, or from the conntrack service entry of an established one.
 * Lives in sluice_lb_scratch (the programs' stack is nearly full). */
struct sluice_lb_xlate {
	__u8 front[16];      /* the service address the client sent to */
	__u8 back[16];       /* the backend */
	__u8 orig_saddr[16]; /* the client, as it sent */
	__be16 front_port;
	__be16 back_port;
	__u32 backend_id;
	__u32 svc_id;
	__u8 active;  /* a service connection */
	__u8 created; /* a new one: the slow path records it */
	__u8 hairpin; /* the client is the backend */
	__u8 capped;  /* the service caps connections per backend */
	__u8 affinity; /* ClientIP affinity: remembered once the connection is */
	__u8 nodeport; /* north-south, translated at XDP (SLUICE_CT_NODEPORT) */
};

/* sluice_ct_scratch: PERCPU_ARRAY, 1 entry of struct sluice_ct_value.
 * Where a new entry is built before it is inserted: on the stack it would
 * push the programs' combined stack (caller + slow path) past 512 bytes.
 * Used by new connections only. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sluice_ct_value);
	__uint(max_entries, 1);
} sluice_ct_scratch SEC(".maps");

/* The canonical key of a packet's connection. Returns 1 when the packet
 * travels from the key's daddr end to its saddr end. Word-wise: the
 * addresses in struct sluice_flow are 4-aligned, and k must be too (the
 * callers' keys are aligned(8) stack variables). */
static __always_inline int sluice_ct_key_of_addrs(const __u32 *s,
						  const __u32 *d, __be16 sp,
						  __be16 dp, __u8 proto,
						  __u8 family,
						  struct sluice_ct_key *k)
{
	__u32 *ks = (__u32 *)k->saddr, *kd = (__u32 *)k->daddr;
	int rev = sluice_ct_swapped(s, d, sp, dp);

	if (rev) {
		const __u32 *t = s;
		__be16 tp = sp;

		s = d;
		d = t;
		sp = dp;
		dp = tp;
	}
	ks[0] = s[0];
	ks[1] = s[1];
	ks[2] = s[2];
	ks[3] = s[3];
	kd[0] = d[0];
	kd[1] = d[1];
	kd[2] = d[2];
	kd[3] = d[3];
	k->sport = sp;
	k->dport = dp;
	k->proto = proto;
	k->family = family;
	k->pad = 0;
	return rev;
}

static __always_inline int sluice_ct_key_of(const struct sluice_flow *f,
					    struct sluice_ct_key *k)
{
	return sluice_ct_key_of_addrs((const __u32 *)f->saddr,
				      (const __u32 *)f->daddr, f->sport,
				      f->dport, f->proto, f->family, k);
}

/* A hit: the entry, and where the packet comes from and goes to. */
struct sluice_ct_hit {
	struct sluice_ct_value *v;
	struct sluice_ct_end *src; /* end the packet comes from */
	struct sluice_ct_end *dst; /* end it goes to */
	int reply;                 /* sent by the responder */
};

/* Looks the packet's connection up: one lookup for either direction. On
 * a miss h->v is NULL. k gets the canonical key (for a later create or
 * delete); returns its orientation (sluice_ct_key_of). */
static __always_inline int sluice_ct_find(const struct sluice_flow *f,
					  struct sluice_ct_key *k,
					  struct sluice_ct_hit *h)
{
	int rev = sluice_ct_key_of(f, k);
	struct sluice_ct_value *v = bpf_map_lookup_elem(&sluice_ct, k);
	int from;

	h->v = v;
	if (!v)
		return rev;
	from = (rev ^ !!(v->flags & SLUICE_CT_KEY_SWAPPED)) & 1;
	h->reply = from;
	h->src = &v->ends[from];
	h->dst = &v->ends[from ^ 1];
	return rev;
}

/* TCP flags that change an entry's state (rare: kept out of line). A
 * first FIN or RST marks it closing; a pure SYN on a closing entry is a
 * new connection reusing the tuple (after TIME_WAIT) and opens it again.
 * Returns the change in open service connections: -1 closed, +1 opened
 * again (SLUICE_CT_REVNAT entries only, for circuit breaking), else 0. */
static __always_inline int sluice_ct_touch_flags(struct sluice_ct_value *v,
						 const struct sluice_flow *f)
{
	__u32 old;

	if (f->tcp_flags & (SLUICE_TCP_FIN | SLUICE_TCP_RST)) {
		if (v->flags & SLUICE_CT_CLOSING)
			return 0;
		old = __sync_fetch_and_or(&v->flags, SLUICE_CT_CLOSING);
		return (old & (SLUICE_CT_CLOSING | SLUICE_CT_REVNAT)) ==
				       SLUICE_CT_REVNAT ?
			       -1 :
			       0;
	}
	if ((f->tcp_flags & SLUICE_TCP_ACK) || !(v->flags & SLUICE_CT_CLOSING))
		return 0;
	old = __sync_fetch_and_and(&v->flags, ~(__u32)SLUICE_CT_CLOSING);
	return (old & (SLUICE_CT_CLOSING | SLUICE_CT_REVNAT)) ==
			       (SLUICE_CT_CLOSING | SLUICE_CT_REVNAT) ?
		       1 :
		       0;
}

/* Refreshes the entry; returns sluice_ct_touch_flags' count change. */
static __always_inline int sluice_ct_touch(struct sluice_ct_value *v,
					   const struct sluice_flow *f,
					   __u64 now, int reply)
{
	/* Write only what changed: the entry's cache line is shared by every
	 * CPU carrying this flow. */
	if (v->last_seen != now)
		v->last_seen = now;
	if (reply && !(v->flags & SLUICE_CT_SEEN_REPLY))
		__sync_fetch_and_or(&v->flags, SLUICE_CT_SEEN_REPLY);
	if (f->tcp_flags & (SLUICE_TCP_FIN | SLUICE_TCP_RST | SLUICE_TCP_SYN))
		return sluice_ct_touch_flags(v, f);
	return 0;
}

/* The end record of a local endpoint (ep may be NULL: not local). */
static __always_inline void sluice_ct_end_of(struct sluice_ct_end *e,
					     const struct sluice_endpoint *ep)
{
	if (!ep) {
		__builtin_memset(e, 0, sizeof(*e));
		return;
	}
	e->ifindex = ep->ifindex;
	e->ep_id = ep->ep_id;
	__builtin_memcpy(e->pod_mac, ep->pod_mac, ETH_ALEN);
	__builtin_memcpy(e->host_mac, ep->host_mac, ETH_ALEN);
}

/* Is this end (still) exactly that endpoint (or, for NULL, no endpoint)? */
static __always_inline int sluice_ct_end_is(const struct sluice_ct_end *e,
					    const struct sluice_endpoint *ep)
{
	const __u32 *a = (const __u32 *)e->pod_mac, *b;

	if (!ep)
		return !(e->ifindex | e->ep_id | a[0] | a[1] | a[2]);
	/* pod_mac + host_mac are 12 contiguous bytes, 4-aligned, in both. */
	b = (const __u32 *)ep->pod_mac;
	return e->ifindex == ep->ifindex && e->ep_id == ep->ep_id &&
	       a[0] == b[0] && a[1] == b[1] && a[2] == b[2];
}

/* A zeroed scratch value to build a new entry in (NULL: cannot happen
 * for a 1-entry array, but the verifier wants the check). */
static __always_inline struct sluice_ct_value *sluice_ct_new_value(void)
{
	__u32 zero = 0;
	struct sluice_ct_value *v =
		bpf_map_lookup_elem(&sluice_ct_scratch, &zero);

	if (v)
		__builtin_memset(v, 0, sizeof(*v));
	return v;
}

/* Inserts a new entry unless the connection has one already (another CPU
 * won the race: that one stays). 0 or SLUICE_DROP_CT_FULL. */
static __always_inline int sluice_ct_insert(const struct sluice_ct_key *k,
					    const struct sluice_ct_value *v)
{
	if (bpf_map_update_elem(&sluice_ct, k, v, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&sluice_ct, k))
		return SLUICE_DROP_CT_FULL;
	return 0;
}

/* The service entry of a service connection: keyed by the tuple the
 * client sent, it says what the client's established packets are
 * translated to. No delivery ends: those are the connection entry's. v:
 * the value to insert, holding the connection's created/last_seen, rule
 * and identities; the rest is set here. k is overwritten. Returns 0 or
 * SLUICE_DROP_CT_FULL. */
static __always_inline int sluice_ct_svc_insert(const struct sluice_flow *f,
						struct sluice_ct_key *k,
						struct sluice_ct_value *v,
						const struct sluice_lb_xlate *x)
{
	int rev = sluice_ct_key_of_addrs((const __u32 *)x->orig_saddr,
					 (const __u32 *)x->front, f->sport,
					 x->front_port, f->proto, f->family, k);

	v->flags = SLUICE_CT_SVC | (rev ? SLUICE_CT_KEY_SWAPPED : 0) |
		   (x->hairpin ? SLUICE_CT_HAIRPIN : 0) |
		   (x->nodeport ? SLUICE_CT_NODEPORT : 0);
	v->ep_epoch = 0;
	__builtin_memset(v->ends, 0, sizeof(v->ends));
	__builtin_memcpy(v->nat_addr, x->back, 16);
	v->nat_port = x->back_port;
	v->backend_id = x->backend_id;
	v->svc_id = x->svc_id;
	return sluice_ct_insert(k, v);
}

/* A service entry again, for a connection whose service entry was lost
 * (LRU) while its connection entry conn lived on. */
static __always_inline int sluice_ct_svc_recreate(const struct sluice_flow *f,
						  struct sluice_ct_key *k,
						  __u64 now,
						  const struct sluice_ct_value *conn,
						  const struct sluice_lb_xlate *x)
{
	struct sluice_ct_value *v = sluice_ct_new_value();

	if (!v)
		return SLUICE_DROP_CT_FULL;
	v->created = conn->created;
	v->last_seen = now;
	v->rule_id = conn->rule_id;
	v->src_identity = conn->src_identity;
	v->dst_identity = conn->dst_identity;
	return sluice_ct_svc_insert(f, k, v, x);
}

/* Returns 0 or SLUICE_DROP_CT_FULL. init/resp: the local endpoints at the
 * initiator's (this packet's source) and responder's end, or NULL. x: the
 * service translation of the connection (NULL or inactive: none); f and k
 * are of the translated packet. A new service connection also gets its
 * service entry (k is overwritten then). */
static __always_inline int
sluice_ct_create(const struct sluice_flow *f, struct sluice_ct_key *k,
		 int rev, __u64 now, __u32 epoch, __u32 rule, __u32 src_id,
		 __u32 dst_id, const struct sluice_endpoint *init,
		 const struct sluice_endpoint *resp,
		 const struct sluice_lb_xlate *x)
{
	struct sluice_ct_value *v = sluice_ct_new_value();
	int rc;

	if (!v)
		return SLUICE_DROP_CT_FULL;
	v->created = now;
	v->last_seen = now;
	v->flags = rev ? SLUICE_CT_KEY_SWAPPED : 0;
	v->rule_id = rule;
	v->src_identity = src_id;
	v->dst_identity = dst_id;
	v->ep_epoch = epoch;
	sluice_ct_end_of(&v->ends[0], init);
	sluice_ct_end_of(&v->ends[1], resp);
	if (!x || !x->active)
		return sluice_ct_insert(k, v);
	v->flags |= SLUICE_CT_REVNAT | (x->hairpin ? SLUICE_CT_HAIRPIN : 0) |
		    (x->nodeport ? SLUICE_CT_NODEPORT : 0);
	__builtin_memcpy(v->nat_addr, x->front, 16);
	v->nat_port = x->front_port;
	v->backend_id = x->backend_id;
	v->svc_id = x->svc_id;
	rc = sluice_ct_insert(k, v);
	if (rc || !x->created)
		return rc;
	return sluice_ct_svc_insert(f, k, v, x);
}

#endif
