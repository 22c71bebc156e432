/* North-south forwarding at XDP to backends on other nodes: SNAT (the
 * default) or DSR with IP-in-IP (config lb.mode), next hop by
 * bpf_fib_lookup, out with XDP_TX (or a redirect to another node device).
 * docs/design-services.md, "North-south to other nodes".
 *
 * SNAT: client C:cp -> frontend F:fp becomes S:sp -> B:bp (S: this node's
 * address toward B, sp from SLUICE_NP_SNAT_PORT_*); B's replies come back
 * here and become F:fp -> C:cp. DSR: the packet is translated to B:bp
 * (client kept) and wrapped in an outer header F -> B with fp in the IPv4
 * identification / IPv6 flow label; B's node unwraps it at its XDP hook
 * (sluice_np_decap), makes the connection entry with frontend F:fp, and
 * the pod's replies leave that node reverse-translated, straight to C.
 *
 * State lives in two small maps of its own, not in conntrack: the
 * forwarding node applies no policy (the backend's node does) and an
 * established packet costs one lookup. */
#ifndef SLUICE_BPF_NODEPORT_FWD_H
#define SLUICE_BPF_NODEPORT_FWD_H

#include "common.h"
#include "l4.h"
#include "ct.h"
#include "lb.h"
#include "config.h"
#include "events.h"
#include "xdp_nat.h"
#include "np_fast.h"

/* BPF_FIB_LOOKUP_SRC (Linux 6.7): also return the preferred source
 * address. Not in the build machine's UAPI headers yet. */
#define SLUICE_FIB_LOOKUP_SRC (1U << 4)

/* sluice_np_fwd: LRU_HASH with per-CPU LRU lists, key struct
 * sluice_ct_key (the client's tuple as it arrives), value struct
 * sluice_np_fwd, SLUICE_NP_FWD_MAX. Written by sluice_xdp when a new
 * north-south connection picks a backend on another node; refreshed by
 * its packets; dead entries (idle, see SLUICE_NP_IDLE_*) are replaced on
 * the next new connection with that tuple; the LRU evicts the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_np_fwd);
	__uint(max_entries, SLUICE_NP_FWD_MAX);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} sluice_np_fwd SEC(".maps");

/* sluice_np_rev: LRU_HASH (per-CPU LRU lists), key struct sluice_ct_key
 * (a SNAT reply's tuple: backend -> this node's address and SNAT port),
 * value struct sluice_np_rev, SLUICE_NP_FWD_MAX. Written by sluice_xdp
 * with the forward entry (the insert that fails on a taken port is the
 * port allocator); replies refresh it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sluice_ct_key);
	__type(value, struct sluice_np_rev);
	__uint(max_entries, SLUICE_NP_FWD_MAX);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} sluice_np_rev SEC(".maps");

/* sluice_np_neigh: HASH, key struct sluice_np_neigh_key, value __u64
 * (coarse ns), SLUICE_NP_NEIGH_MAX. Written by sluice_xdp when a next hop
 * has no resolved MAC (XDP cannot resolve one); the agent adds a managed
 * neighbour entry for it, which the kernel then keeps resolved, and
 * deletes the request. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct sluice_np_neigh_key);
	__type(value, __u64);
	__uint(max_entries, SLUICE_NP_NEIGH_MAX);
} sluice_np_neigh SEC(".maps");

/* sluice_np_scratch: PERCPU_ARRAY, 1 entry of struct sluice_np_fwd:
 * where a new connection's entry is built (the stack is nearly full). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sluice_np_fwd);
	__uint(max_entries, 1);
} sluice_np_scratch SEC(".maps");

static __always_inline int sluice_np_drop(struct xdp_md *ctx,
					  const struct sluice_flow *f,
					  __u32 reason)
{
	sluice_drop_flow(ctx->ingress_ifindex, SLUICE_DIR_INGRESS, reason,
			 sluice_xdp_len(ctx), f, NULL);
	return XDP_DROP;
}

static __always_inline void sluice_np_key_of(const struct sluice_flow *f,
					     struct sluice_ct_key *k)
{
	__builtin_memcpy(k->saddr, f->saddr, 32);
	k->sport = f->sport;
	k->dport = f->dport;
	k->proto = f->proto;
	k->family = f->family;
	k->pad = 0;
}

/* fl of sluice_np_route: the family and an IP length (BPF-to-BPF calls
 * take five arguments). */
#define SLUICE_NP_FL(family, len) (((__u32)(family) << 16) | ((len) & 0xffff))

/* Route lookup toward dst for a packet arriving on ctx's device (an input
 * lookup, as the stack would forward it), fl = SLUICE_NP_FL(family, IP
 * length): fills hop, and src (16 bytes, may be NULL) with the preferred
 * source address. Returns 0 or a drop reason; an unresolved next hop is
 * handed to the agent. */
static __noinline int sluice_np_route(struct xdp_md *ctx, const __u8 *dst,
				      __u32 fl, struct sluice_np_hop *hop,
				      __u8 *src)
{
	__u8 family = fl >> 16;
	__u32 tot_len = fl & 0xffff;
	struct bpf_fib_lookup p = {};
	struct sluice_np_neigh_key nk = {};
	__u64 now;
	int rc;

	if (!ctx || !dst || !hop)
		return SLUICE_DROP_LB_NO_ROUTE;
	p.family = family;
	p.tot_len = tot_len;
	p.ifindex = ctx->ingress_ifindex;
	if (family == AF_INET)
		__builtin_memcpy(&p.ipv4_dst, dst, 4);
	else
		__builtin_memcpy(p.ipv6_dst, dst, 16);
	rc = bpf_fib_lookup(ctx, &p, sizeof(p), src ? SLUICE_FIB_LOOKUP_SRC : 0);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return SLUICE_DROP_LB_MTU_EXCEEDED;
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* p holds the egress device and the next hop (the gateway, or
		 * dst itself on a connected route). */
		nk.ifindex = p.ifindex;
		nk.family = family;
		if (family == AF_INET)
			__builtin_memcpy(nk.addr, &p.ipv4_dst, 4);
		else
			__builtin_memcpy(nk.addr, p.ipv6_dst, 16);
		now = bpf_ktime_get_coarse_ns();
		bpf_map_update_elem(&sluice_np_neigh, &nk, &now, BPF_ANY);
		return SLUICE_DROP_LB_NO_NEIGH;
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return SLUICE_DROP_LB_NO_ROUTE;
	__builtin_memcpy(hop->smac, p.smac, ETH_ALEN);
	__builtin_memcpy(hop->dmac, p.dmac, ETH_ALEN);
	hop->ifindex = p.ifindex;
	hop->at = bpf_ktime_get_coarse_ns();
	if (src) {
		__builtin_memset(src, 0, 16);
		if (family == AF_INET)
			__builtin_memcpy(src, &p.ipv4_src, 4);
		else
			__builtin_memcpy(src, p.ipv6_src, 16);
	}
	return 0;
}

/* IP length of f's packet (untagged). */
static __always_inline __u32 sluice_np_ip_len(struct xdp_md *ctx,
					      const struct sluice_flow *f)
{
	return sluice_xdp_len(ctx) - ETH_HLEN;
}

/* Bytes the forwarding adds: DSR's outer header. */
static __always_inline __u32 sluice_np_olen(const struct sluice_flow *f,
					    __u8 mode)
{
	if (mode != SLUICE_NP_DSR)
		return 0;
	return f->family == AF_INET ? 20 : 40;
}

/* Sends the rewritten packet to hop: back out of the device it came in
 * on, or to another node device. */
static __always_inline int sluice_np_xmit(struct xdp_md *ctx,
					  const struct sluice_np_hop *hop,
					  int set_macs)
{
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;

	if (set_macs) {
		if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
			return XDP_DROP;
		__builtin_memcpy(eth->h_dest, hop->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, hop->smac, ETH_ALEN);
	}
	if (hop->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(hop->ifindex, 0);
}

/* The idle time after which an entry is dead. */
static __always_inline __u64 sluice_np_idle_max(__u8 proto, __u8 closing)
{
	if (closing)
		return SLUICE_NP_IDLE_CLOSING_NS;
	return proto == IPPROTO_TCP ? SLUICE_NP_IDLE_TCP_NS :
				      SLUICE_NP_IDLE_DGRAM_NS;
}

/* A packet of an established forwarded connection (v: its entry). */
static __always_inline int sluice_np_fwd_out(struct xdp_md *ctx,
					     struct sluice_flow *f,
					     struct sluice_np_fwd *v,
					     __u64 now)
{
	__u8 front[16];
	__be16 front_port = f->dport;
	__u32 mtu;
	int rc;

	if (now - v->hop.at > SLUICE_NP_HOP_TTL_NS) {
		rc = sluice_np_route(ctx, v->back,
				     SLUICE_NP_FL(f->family,
						  sluice_np_ip_len(ctx, f) +
							  sluice_np_olen(f, v->mode)),
				     &v->hop, NULL);
		if (rc)
			return sluice_np_drop(ctx, f, rc);
	}
	if (v->mode == SLUICE_NP_SNAT) {
		if (sluice_xdp_nat(ctx, f, v->snat, v->back,
				   SLUICE_PORTS(v->snat_port, v->back_port)))
			return sluice_np_drop(ctx, f, SLUICE_DROP_LB_NAT_FAILED);
		return sluice_np_xmit(ctx, &v->hop, 1);
	}
	/* The route's MTU was checked with this connection's first packet;
	 * later ones may be larger (XDP cannot fragment). */
	mtu = 0;
	if (bpf_check_mtu(ctx, v->hop.ifindex, &mtu, sluice_np_olen(f, v->mode), 0))
		return sluice_np_drop(ctx, f, SLUICE_DROP_LB_MTU_EXCEEDED);
	__builtin_memcpy(front, f->daddr, 16);
	if (sluice_xdp_nat(ctx, f, f->saddr, v->back,
			   SLUICE_PORTS(f->sport, v->back_port)) ||
	    sluice_xdp_encap(ctx, f->family, front, v->back, front_port,
			     v->hop.smac, v->hop.dmac))
		return sluice_np_drop(ctx, f, SLUICE_DROP_LB_NAT_FAILED);
	return sluice_np_xmit(ctx, &v->hop, 0);
}

/* The reverse (reply) key of SNAT connection v of client tuple f. */
static __always_inline void sluice_np_rev_key(const struct sluice_np_fwd *v,
					      const struct sluice_flow *f,
					      struct sluice_ct_key *rk)
{
	__builtin_memcpy(rk->saddr, v->back, 16);
	__builtin_memcpy(rk->daddr, v->snat, 16);
	rk->sport = v->back_port;
	rk->dport = v->snat_port;
	rk->proto = f->proto;
	rk->family = f->family;
	rk->pad = 0;
}

/* FIN/RST: both entries of the connection go to the short timeout. */
static __always_inline void sluice_np_closing(struct sluice_np_fwd *v,
					      const struct sluice_flow *f)
{
	struct sluice_ct_key rk __attribute__((aligned(8)));
	struct sluice_np_rev *r;

	v->closing = 1;
	if (f->family == AF_INET)
		sluice_np_fast_forget(f->saddr, f->daddr, f->sport, f->dport,
				      f->proto);
	if (v->mode != SLUICE_NP_SNAT)
		return;
	sluice_np_rev_key(v, f, &rk);
	if (f->family == AF_INET)
		sluice_np_fast_forget(rk.saddr, rk.daddr, rk.sport, rk.dport,
				      rk.proto);
	r = bpf_map_lookup_elem(&sluice_np_rev, &rk);
	if (r)
		r->closing = 1;
}

/* Once a second per connection: is entry v still what it says? Its backend
 * must still be that backend (a removed one's address may be reused), and
 * a SNAT connection's port must still be its own (the reverse entry may
 * have been evicted and the port given to another client); the reverse
 * entry is refreshed with it, so a one-way flow (no replies) keeps its
 * port. 0: dead, pick again. */
static __always_inline int sluice_np_still_valid(struct sluice_np_fwd *v,
						 const struct sluice_flow *f,
						 __u64 now)
{
	struct sluice_ct_key rk __attribute__((aligned(8)));
	struct sluice_lb_backend *be;
	struct sluice_np_rev *r;

	be = bpf_map_lookup_elem(&sluice_lb_be, &v->backend_id);
	if (!be || be->port != v->back_port || !sluice_addr_eq(be->addr, v->back))
		return 0;
	if (v->mode != SLUICE_NP_SNAT)
		return 1;
	sluice_np_rev_key(v, f, &rk);
	r = bpf_map_lookup_elem(&sluice_np_rev, &rk);
	if (!r || r->client_port != f->sport ||
	    !sluice_addr_eq(r->client, f->saddr))
		return 0;
	r->last_seen = now;
	return 1;
}

/* The jiffy after which a cached rewrite of an entry last checked at
 * `seen`, with a next hop from `at`, must go back to the slow path (both
 * are renewed there once a second), or 0 if it already must. The hit
 * compares jiffies, which the verifier inlines (a clock helper would be a
 * tenth of the hit's cost); counting each jiffy as the longest one
 * (SLUICE_NP_FAST_JIFFY_NS_MAX) never lets a slot outlive its time. */
static __always_inline __u64 sluice_np_fast_until(__u64 seen, __u64 at,
						  __u64 now)
{
	__u64 end = (seen < at ? seen : at) + SLUICE_NP_HOP_TTL_NS, k;

	if (end <= now)
		return 0;
	/* A hit needs jiffies < until: the current jiffy began before now,
	 * so k more of them end by now + k longest jiffies <= end. k = 0
	 * (less than one left) caches nothing. */
	k = (end - now) / SLUICE_NP_FAST_JIFFY_NS_MAX;
	return k ? bpf_jiffies64() + k : 0;
}

/* Caches forwarded connection v (IPv4, live, next hop fresh) for its
 * client's next packets (the slow path's, at least once a second). */
static __always_inline void sluice_np_fast_fwd(struct xdp_md *ctx,
					       const struct sluice_flow *f,
					       const struct sluice_np_fwd *v,
					       __u64 now)
{
	__u64 until = sluice_np_fast_until(v->last_seen, v->hop.at, now);
	__u32 mtu = 0;

	/* Its replies must pass the gate: set again here, as a gate from
	 * another version may hash to other bits (upgrade). */
	if (v->mode == SLUICE_NP_SNAT)
		sluice_lb_gate_set(v->snat);
	if (f->family != AF_INET || !until)
		return;
	if (v->mode == SLUICE_NP_SNAT) {
		sluice_np_fast_put(f, v->snat, v->back,
				   SLUICE_PORTS(v->snat_port, v->back_port),
				   &v->hop, SLUICE_NP_FAST_NAT, 0, until, 0);
		return;
	}
	/* On return mtu holds the device's MTU, whatever the verdict. */
	bpf_check_mtu(ctx, v->hop.ifindex, &mtu, 0, 0);
	sluice_np_fast_put(f, f->saddr, v->back,
			   SLUICE_PORTS(f->sport, v->back_port), &v->hop,
			   SLUICE_NP_FAST_DSR, mtu, until, 0);
}

/* The client's packets of a forwarded connection: the XDP verdict, or
 * -1 when the tuple has no live entry. */
static __noinline int sluice_np_fwd_established(struct xdp_md *ctx,
						struct sluice_flow *f)
{
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_np_fwd *v;
	__u64 now;

	if (!ctx || !f)
		return -1;
	sluice_np_key_of(f, &k);
	v = bpf_map_lookup_elem(&sluice_np_fwd, &k);
	if (!v)
		return -1;
	now = bpf_ktime_get_coarse_ns();
	/* Dead: a new connection reusing the tuple picks again. */
	if (now - v->last_seen > sluice_np_idle_max(f->proto, v->closing))
		return -1;
	if (now - v->last_seen > 1000000000ull) {
		if (!sluice_np_still_valid(v, f, now))
			return -1;
		v->last_seen = now;
	}
	if (unlikely(f->tcp_flags & (SLUICE_TCP_FIN | SLUICE_TCP_RST)) &&
	    !v->closing)
		sluice_np_closing(v, f);
	if (!v->closing && now - v->hop.at <= SLUICE_NP_HOP_TTL_NS)
		sluice_np_fast_fwd(ctx, f, v, now);
	return sluice_np_fwd_out(ctx, f, v, now);
}

/* Caches SNAT reply path r (IPv4) for the backend's next packets, or,
 * once the connection closes, forgets both directions. */
static __always_inline void sluice_np_fast_rev(const struct sluice_flow *f,
					       const struct sluice_np_rev *r,
					       __u64 now)
{
	__u64 until;
	__u32 *gen;

	if (r->closing) {
		sluice_np_fast_forget(f->saddr, f->daddr, f->sport, f->dport,
				      f->proto);
		sluice_np_fast_forget(r->client, r->front, r->client_port,
				      r->front_port, f->proto);
		return;
	}
	if (!r->hop.ifindex)
		return;
	until = sluice_np_fast_until(r->last_seen, r->hop.at, now);
	gen = sluice_np_port_gen_of(f->dport);
	if (until && gen)
		sluice_np_fast_put(f, r->front, r->client,
				   SLUICE_PORTS(r->front_port, r->client_port),
				   &r->hop, SLUICE_NP_FAST_REPLY, 0, until,
				   *gen);
}

/* A SNAT connection's reply (backend -> this node's SNAT port): the XDP
 * verdict, or -1 when it is not one. */
static __noinline int sluice_np_rev_in(struct xdp_md *ctx,
				       struct sluice_flow *f)
{
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_np_rev *r;
	__u64 now;
	__u16 port;
	int rc;

	if (!ctx || !f)
		return -1;
	port = bpf_ntohs(f->dport);
	if (port < SLUICE_NP_SNAT_PORT_MIN || port > SLUICE_NP_SNAT_PORT_MAX)
		return -1;
	sluice_np_key_of(f, &k);
	r = bpf_map_lookup_elem(&sluice_np_rev, &k);
	if (!r)
		return -1;
	now = bpf_ktime_get_coarse_ns();
	if (now - r->last_seen > 1000000000ull)
		r->last_seen = now;
	if (unlikely(f->tcp_flags & (SLUICE_TCP_FIN | SLUICE_TCP_RST)))
		r->closing = 1;
	if (unlikely(!r->replied))
		r->replied = 1;
	if (!r->hop.ifindex || now - r->hop.at > SLUICE_NP_HOP_TTL_NS) {
		rc = sluice_np_route(ctx, r->client,
				     SLUICE_NP_FL(f->family,
						  sluice_np_ip_len(ctx, f)),
				     &r->hop, NULL);
		if (rc)
			return sluice_np_drop(ctx, f, rc);
	}
	if (f->family == AF_INET) /* before f follows the rewrite */
		sluice_np_fast_rev(f, r, now);
	if (sluice_xdp_nat(ctx, f, r->front, r->client,
			   SLUICE_PORTS(r->front_port, r->client_port)))
		return sluice_np_drop(ctx, f, SLUICE_DROP_LB_NAT_FAILED);
	return sluice_np_xmit(ctx, &r->hop, 1);
}

/* Takes a SNAT port toward v's backend for client tuple f: the reverse
 * entry's insert is the allocation (a taken port fails it; a dead
 * connection's port is taken over). 0 or SLUICE_DROP_LB_SNAT_NO_PORT. */
static __noinline int sluice_np_snat_port(const struct sluice_flow *f,
					  struct sluice_np_fwd *v)
{
	struct sluice_ct_key rk __attribute__((aligned(8)));
	struct sluice_np_rev r = {};
	const __u32 range = SLUICE_NP_SNAT_PORT_MAX - SLUICE_NP_SNAT_PORT_MIN + 1;
	__u32 base, *gen;

	if (!f || !v)
		return SLUICE_DROP_LB_SNAT_NO_PORT;
	sluice_np_rev_key(v, f, &rk); /* dport: each try's port, below */
	__builtin_memcpy(r.client, f->saddr, 16);
	__builtin_memcpy(r.front, f->daddr, 16);
	r.client_port = f->sport;
	r.front_port = f->dport;
	r.last_seen = bpf_ktime_get_coarse_ns();
	base = bpf_get_prandom_u32();
	for (int i = 0; i < SLUICE_NP_SNAT_TRIES; i++) {
		struct sluice_np_rev *old;

		rk.dport = bpf_htons(SLUICE_NP_SNAT_PORT_MIN +
				     (base + i * 2654435761u) % range);
		if (!bpf_map_update_elem(&sluice_np_rev, &rk, &r, BPF_NOEXIST))
			goto got;
		old = bpf_map_lookup_elem(&sluice_np_rev, &rk);
		/* Never answered (a SYN from a spoofed source, say): the short
		 * timeout, so a flood cannot hold the ports for hours. */
		if (old && r.last_seen - old->last_seen >
				   (old->replied ?
					    sluice_np_idle_max(f->proto, old->closing) :
					    SLUICE_NP_IDLE_DGRAM_NS) &&
		    !bpf_map_update_elem(&sluice_np_rev, &rk, &r, BPF_EXIST))
			goto got;
	}
	return SLUICE_DROP_LB_SNAT_NO_PORT;
got:
	v->snat_port = rk.dport;
	/* Reply slots of the port's previous owner stop matching. */
	gen = sluice_np_port_gen_of(rk.dport);
	if (gen)
		__sync_fetch_and_add(gen, 1);
	return 0;
}

/* A new connection to an external frontend whose picked backend is on
 * another node: its translation is in sluice_lb_scratch (nodeport.h
 * returned SLUICE_NP_FORWARD). Called from the program's entry, not from
 * sluice_xdp_nodeport: the two frames together would pass 512 bytes. */
static __noinline int sluice_np_fwd_new(struct xdp_md *ctx,
					struct sluice_flow *f)
{
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_config *cfg = sluice_cfg();
	struct sluice_lb_xlate *x = sluice_lb_scratch_get();
	struct sluice_lb_backend *be;
	struct sluice_np_fwd *v;
	__u32 zero = 0, len;
	int rc;

	if (!ctx || !f || !x)
		return XDP_DROP;
	v = bpf_map_lookup_elem(&sluice_np_scratch, &zero);
	be = bpf_map_lookup_elem(&sluice_lb_be, &x->backend_id);
	if (!v || !be)
		return XDP_DROP;
	len = sluice_np_ip_len(ctx, f);
	if (f->l3_off != ETH_HLEN) /* VLAN-tagged: not forwarded here */
		return XDP_PASS;
	__builtin_memset(v, 0, sizeof(*v));
	v->mode = cfg && (cfg->flags & SLUICE_CFG_LB_DSR) ? SLUICE_NP_DSR :
							    SLUICE_NP_SNAT;
	__builtin_memcpy(v->back, be->addr, 16);
	v->back_port = be->port;
	v->backend_id = x->backend_id;
	v->svc_id = x->svc_id;
	v->last_seen = bpf_ktime_get_coarse_ns();
	/* SCTP's CRC32c covers the ports and no helper redoes it: only DSR
	 * with an unchanged port can carry it. Refused before any state. */
	if (f->proto == IPPROTO_SCTP &&
	    (v->mode == SLUICE_NP_SNAT || v->back_port != f->dport))
		return sluice_np_drop(ctx, f, SLUICE_DROP_LB_NAT_FAILED);
	rc = sluice_np_route(ctx, v->back,
			     SLUICE_NP_FL(f->family,
					  len + sluice_np_olen(f, v->mode)),
			     &v->hop, v->mode == SLUICE_NP_SNAT ? v->snat : NULL);
	if (!rc && v->mode == SLUICE_NP_SNAT)
		rc = sluice_np_snat_port(f, v);
	if (rc)
		return sluice_np_drop(ctx, f, rc);
	if (v->mode == SLUICE_NP_SNAT) /* its replies must pass the gate */
		sluice_lb_gate_set(v->snat);
	sluice_np_key_of(f, &k);
	if (bpf_map_update_elem(&sluice_np_fwd, &k, v, BPF_ANY))
		return sluice_np_drop(ctx, f, SLUICE_DROP_CT_FULL);
	if (x->affinity)
		sluice_lb_affine_set(x, f->family);
	sluice_emit_xlate(ctx->ingress_ifindex, SLUICE_DIR_INGRESS,
			  sluice_xdp_len(ctx), f, v->back, v->back_port, NULL);
	return sluice_np_fwd_out(ctx, f, v, v->last_seen);
}

#endif
