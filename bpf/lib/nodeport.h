/* North-south load balancing at XDP on the node's devices: NodePort,
 * LoadBalancer ingress IPs and externalIPs (frontends of scope external).
 *
 * As built (docs/design-services.md, "North-south at XDP"): backends on
 * this node. A new connection picks its backend as the ClusterIP path
 * does, passes the backend's ingress policy for the client's identity,
 * and gets the same two conntrack entries the ClusterIP path makes (the
 * service entry keyed by the client's tuple, the connection entry with the
 * frontend for reverse NAT). The packet is then translated in place
 * (destination only: the client address is kept) and passed to the stack,
 * which routes it to the pod's veth, where sluice_lxc_in finds the
 * connection and delivers it. The pod's replies are reverse-translated by
 * sluice_lxc_out from the connection entry, exactly like a ClusterIP
 * reply, and leave through the host stack. Backends on other nodes:
 * nodeport_fwd.h (SNAT or DSR); the DSR packets such a node receives are
 * unwrapped here (sluice_np_decap) and admitted like local ones. */
#ifndef SLUICE_BPF_NODEPORT_H
#define SLUICE_BPF_NODEPORT_H

#include "common.h"
#include "parse.h"
#include "l4.h"
#include "ct.h"
#include "lb.h"
#include "endpoint.h"
#include "ipcache.h"
#include "policy.h"
#include "events.h"
#include "prefilter.h"
#include "xdp_nat.h"
#include "nodeport_fwd.h"
#define SLUICE_REJECT_XDP 1
#include "reject.h"

/* sluice_xdp_nodeport: the pick is a backend on another node. */
#define SLUICE_NP_FORWARD 0x100
/* sluice_xdp_nodeport: no backend may take the connection (counted as a
 * drop with its reason): answer the client with a RST or ICMP port
 * unreachable. */
#define SLUICE_NP_REJECT 0x101

/* Replaces the 16-bit checksum at off: the words from[] become to[]
 * (n bytes, a multiple of 4). 0 or -1. */
static __always_inline int sluice_xdp_csum_update(struct xdp_md *ctx,
						  __u32 off, __be32 *from,
						  __be32 *to, __u32 n, int udp)
{
	__u16 c;
	__s64 d;

	if (bpf_xdp_load_bytes(ctx, off, &c, 2))
		return -1;
	d = bpf_csum_diff(from, n, to, n, (__u16)~c);
	if (d < 0)
		return -1;
	c = ~sluice_xdp_csum_fold(d);
	/* UDP sends a computed 0 as 0xffff: 0 means "no checksum" (IPv4)
	 * or is invalid (IPv6). */
	if (udp && !c)
		c = 0xffff;
	return bpf_xdp_store_bytes(ctx, off, &c, 2) ? -1 : 0;
}

/* Not sluice_xdp_nat (xdp_nat.h): this runs inside sluice_xdp_nodeport's
 * frame, and that out-of-line call would take the chain past the 512-byte
 * stack; it also handles VLAN-tagged frames (f->l3_off).
 * Destination address and port of the packet (and f) become to/port:
 * the IPv4 header checksum and the L4 checksum (pseudo-header and port)
 * follow; an IPv4 UDP datagram without checksum keeps none. SCTP needs
 * the port unchanged (its CRC32c covers it). 0 or -1. */
static __always_inline int sluice_xdp_dnat(struct xdp_md *ctx,
					   struct sluice_flow *f,
					   const __u8 *to, __be16 port)
{
	__be32 from[5] = {}, nw[5] = {};
	__u32 alen = f->family == AF_INET ? 4 : 16;
	__u32 daddr_off = f->l3_off + (f->family == AF_INET ? 16 : 24);
	__u32 csum_off = 0;

	if (f->proto == IPPROTO_SCTP && port != f->dport)
		return -1;
	__builtin_memcpy(from, f->daddr, 16);
	__builtin_memcpy(nw, to, 16);
	if (f->proto == IPPROTO_TCP) {
		csum_off = f->l4_off + 16;
	} else if (f->proto == IPPROTO_UDP) {
		__u16 c = 0;

		if (bpf_xdp_load_bytes(ctx, f->l4_off + 6, &c, 2))
			return -1;
		if (c || f->family == AF_INET6)
			csum_off = f->l4_off + 6;
	}
	if (f->family == AF_INET) {
		if (sluice_xdp_csum_update(ctx, f->l3_off + 10, from, nw, 4, 0))
			return -1;
		if (bpf_xdp_store_bytes(ctx, daddr_off, nw, 4))
			return -1;
	} else if (bpf_xdp_store_bytes(ctx, daddr_off, nw, 16)) {
		return -1;
	}
	if (csum_off) {
		/* The address words, then the port as a fifth word. */
		from[4] = f->dport;
		nw[4] = port;
		if (alen == 4) {
			from[1] = from[4];
			nw[1] = nw[4];
			if (sluice_xdp_csum_update(ctx, csum_off, from, nw, 8,
						   f->proto == IPPROTO_UDP))
				return -1;
		} else if (sluice_xdp_csum_update(ctx, csum_off, from, nw, 20,
						  f->proto == IPPROTO_UDP)) {
			return -1;
		}
	}
	if (port != f->dport &&
	    bpf_xdp_store_bytes(ctx, f->l4_off + 2, &port, 2))
		return -1;
	__builtin_memcpy(f->daddr, to, 16);
	f->dport = port;
	return 0;
}

/* The translated packet f of connection x (x->created: a new pick) is
 * admitted to local backend ep (NULL: looked up here, only when the
 * connection entry must be made, so established packets pay no endpoint
 * lookup): its ingress policy for the client, then conntrack. The translated tuple may hold an entry already: this
 * connection's own (only its service entry was lost: made again), or
 * another connection's (a clash: dropped). Returns an XDP verdict. */
static __always_inline int sluice_np_admit(struct xdp_md *ctx,
					   struct sluice_flow *f,
					   struct sluice_lb_xlate *x,
					   const struct sluice_endpoint *ep)
{
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_ct_hit h = {};
	struct sluice_event_ids ids;
	__u32 src_id, src_cidr, rule = 0;
	__u64 now = bpf_jiffies64();
	int rc, rev, allowed;

	rev = sluice_ct_find(f, &k, &h);
	if (h.v) {
		if (!sluice_lb_is_conn_of(&h, x))
			return sluice_np_drop(ctx, f, SLUICE_DROP_LB_TUPLE_CLASH);
		if (x->created && sluice_ct_svc_recreate(f, &k, now, h.v, x))
			return sluice_np_drop(ctx, f, SLUICE_DROP_CT_FULL);
		return XDP_PASS;
	}
	if (!ep)
		ep = sluice_ep_by_addr(f->family, x->back);
	if (!ep) /* the backend left this node */
		return XDP_PASS;
	sluice_ipcache_get(f->family, f->saddr, &src_id, &src_cidr);
	allowed = !(ep->flags & SLUICE_EP_INGRESS_ENFORCED) ||
		  sluice_policy_allows(ep->ep_id, SLUICE_DIR_INGRESS, f->proto,
				       bpf_ntohs(f->dport), src_id, src_cidr,
				       &rule);
	/* The backend's policy decided here, for a new north-south
	 * connection: its verdict event, as the pod hook would emit. */
	ids.src_identity = src_id;
	ids.dst_identity = ep->identity;
	ids.ep_id = ep->ep_id;
	ids.rule_id = allowed ? rule : 0;
	sluice_emit_verdict(ctx->ingress_ifindex, SLUICE_DIR_INGRESS,
			    allowed ? SLUICE_VERDICT_ALLOWED : SLUICE_VERDICT_DENIED,
			    sluice_xdp_len(ctx), f, &ids);
	if (!allowed)
		return sluice_np_drop(ctx, f, SLUICE_DROP_POLICY_DENY_INGRESS);
	rc = sluice_ct_create(f, &k, rev, now, sluice_ep_epoch_now(), rule,
			      src_id, ep->identity, NULL, ep, x);
	if (rc)
		return sluice_np_drop(ctx, f, rc);
	if (!x->created)
		return XDP_PASS;
	if (x->capped)
		sluice_lb_conn_add(x->backend_id, 1);
	if (x->affinity)
		sluice_lb_affine_set(x, f->family);
	return XDP_PASS;
}

/* A new connection to an external frontend. x: scratch for the
 * translation. Returns an XDP verdict. */
static __always_inline int sluice_np_new(struct xdp_md *ctx,
					 struct sluice_flow *f,
					 struct sluice_lb_xlate *x)
{
	struct sluice_lb_svc_key sk = {};
	struct sluice_endpoint *ep;
	struct sluice_lb_backend *be;
	struct sluice_lb_svc *svc;
	__u32 id = 0;
	int rc;

	__builtin_memcpy(sk.addr, f->daddr, 16);
	sk.port = f->dport;
	sk.proto = f->proto;
	sk.family = f->family;
	sk.scope = SLUICE_LB_SCOPE_EXTERNAL;
	svc = bpf_map_lookup_elem(&sluice_lb_svc, &sk);
	if (!svc)
		return XDP_PASS;
	rc = sluice_lb_pick(svc, f, &id);
	if (rc) {
		sluice_np_drop(ctx, f, rc);
		return SLUICE_NP_REJECT;
	}
	be = bpf_map_lookup_elem(&sluice_lb_be, &id);
	if (!be || be->family != f->family)
		return sluice_np_drop(ctx, f, SLUICE_DROP_LB_NO_BACKEND);
	sluice_lb_xlate_new(x, f, svc, id, be, 1);
	ep = sluice_ep_by_addr(f->family, be->addr);
	if (!ep)
		return SLUICE_NP_FORWARD;
	sluice_emit_xlate(ctx->ingress_ifindex, SLUICE_DIR_INGRESS,
			  sluice_xdp_len(ctx), f, be->addr, be->port,
			  NULL);
	if (sluice_xdp_dnat(ctx, f, x->back, x->back_port))
		return sluice_np_drop(ctx, f, SLUICE_DROP_LB_NAT_FAILED);
	return sluice_np_admit(ctx, f, x, ep);
}

/* DSR, on the backend's node: an IP-in-IP packet to a local endpoint, sent
 * by the node that balanced it (nodeport_fwd.h). The outer source is the
 * frontend address and the IPv4 identification / IPv6 flow label its
 * port; the inner packet is already translated to the backend. Unwrapped
 * and admitted like a local north-south connection (the backend's ingress
 * policy, the connection entry with the frontend), so the pod's replies
 * are reverse-translated at its hook and go straight to the client.
 * Anything else in IP-in-IP is not ours: passed. */
static __noinline int sluice_np_decap(struct xdp_md *ctx,
				      struct sluice_flow *f)
{
	struct sluice_lb_xlate *x = sluice_lb_scratch_get();
	int olen = f->family == AF_INET ? 20 : 40;
	const struct sluice_endpoint *ep;
	struct sluice_l3 l3 = {};
	__u8 family = f->family;
	void *data, *end;
	__be16 tag;

	if (!ctx || !f || !x)
		return XDP_PASS;
	if (f->l3_off != ETH_HLEN || f->frag != SLUICE_FRAG_NONE ||
	    f->l4_off != ETH_HLEN + olen)
		return XDP_PASS;
	ep = sluice_ep_by_addr(family, f->daddr);
	if (!ep)
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (family == AF_INET) {
		struct iphdr *o = data + ETH_HLEN;

		if ((void *)(o + 1) > end)
			return XDP_PASS;
		tag = o->id;
	} else {
		struct ipv6hdr *o = data + ETH_HLEN;

		if ((void *)(o + 1) > end)
			return XDP_PASS;
		__builtin_memcpy(&tag, &o->flow_lbl[1], 2);
	}
	__builtin_memcpy(x->front, f->saddr, 16);
	__builtin_memcpy(x->back, f->daddr, 16);
	x->front_port = tag;
	if (sluice_xdp_decap(ctx, olen))
		return sluice_np_drop(ctx, f, SLUICE_DROP_MALFORMED);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	__builtin_memset(f, 0, sizeof(*f));
	if (sluice_parse_l3(data, end, &l3) != SLUICE_PARSE_OK ||
	    sluice_parse_flow(data, end, &l3, f) || f->family != family ||
	    f->frag != SLUICE_FRAG_NONE || !sluice_addr_eq(f->daddr, x->back) ||
	    (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP &&
	     f->proto != IPPROTO_SCTP))
		return sluice_np_drop(ctx, NULL, SLUICE_DROP_MALFORMED);
	/* The prefilter saw the outer source only. */
	if (sluice_prefilter_denied(&l3))
		return sluice_np_drop(ctx, f, SLUICE_DROP_PREFILTER_DENY);
	__builtin_memcpy(x->orig_saddr, f->saddr, 16);
	x->back_port = f->dport;
	x->backend_id = 0;
	x->svc_id = 0;
	x->active = 1;
	x->created = 0;
	x->hairpin = 0;
	x->capped = 0;
	x->affinity = 0;
	x->nodeport = 1;
	return sluice_np_admit(ctx, f, x, ep);
}

/* Service packets arriving on a node device. f: the parsed packet (not a
 * later fragment). Returns an XDP verdict (XDP_PASS for everything that is
 * not north-south service traffic), or SLUICE_NP_FORWARD: a new
 * connection whose backend is on another node, translation in
 * sluice_lb_scratch, for sluice_np_fwd_new. */
__attribute__((noinline)) int sluice_xdp_nodeport(struct xdp_md *ctx,
						  struct sluice_flow *f)
{
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_ct_hit h = {};
	struct sluice_lb_xlate *x = sluice_lb_scratch_get();


	if (!ctx || !f || !x)
		return XDP_PASS;
	sluice_ct_find(f, &k, &h);
	if (!h.v)
		return sluice_np_new(ctx, f, x);
	/* Only the client direction of a north-south service connection is
	 * ours (a service entry XDP made); the rest (plain connections,
	 * replies, pods' service entries) belongs to the pod hooks. */
	if ((h.v->flags & (SLUICE_CT_SVC | SLUICE_CT_NODEPORT)) !=
		    (SLUICE_CT_SVC | SLUICE_CT_NODEPORT) ||
	    h.reply)
		return XDP_PASS;
	sluice_ct_touch(h.v, f, bpf_jiffies64(), 0);
	sluice_lb_xlate_of(x, f, h.v);
	x->nodeport = 1;
	if (sluice_xdp_dnat(ctx, f, x->back, x->back_port))
		return sluice_np_drop(ctx, f, SLUICE_DROP_LB_NAT_FAILED);
	/* Its connection entry is normally there; if it was lost (LRU,
	 * GC), it is made again here (policy included): without it the pod
	 * side would take the packet for a plain connection and send the
	 * replies without reverse NAT. */
	return sluice_np_admit(ctx, f, x, NULL);
}

/* Whether sluice_xdp_north_south may want the packet: IP-in-IP (DSR to
 * a local backend) or a destination that passes the gate (a frontend or a
 * SNAT address). Decided on the IP header alone. */
static __always_inline int sluice_xdp_ns_candidate(const struct sluice_l3 *l3)
{
	if (l3->l4_proto ==
	    (l3->family == AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6))
		return 1;
	return sluice_lb_gate_has_l3(l3);
}

/* Everything north-south, in order: DSR packets for local backends, SNAT
 * replies, established forwarded connections, then the conntrack path and
 * new connections. Each step is its own subprogram: their frames stack up
 * only one deep on the entry's. */
static __always_inline int sluice_xdp_north_south(struct xdp_md *ctx,
						  struct sluice_flow *f)
{
	int rc;

	if (f->proto == (f->family == AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6))
		return sluice_np_decap(ctx, f);
	if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP &&
	    f->proto != IPPROTO_SCTP)
		return XDP_PASS;
	/* Forwarding is for untagged frames only (xdp_nat.h's offsets). */
	rc = -1;
	if (f->l3_off == ETH_HLEN) {
		rc = sluice_np_rev_in(ctx, f);
		if (rc < 0)
			rc = sluice_np_fwd_established(ctx, f);
	}
	if (rc >= 0)
		return rc;
	rc = sluice_xdp_nodeport(ctx, f);
	if (rc == SLUICE_NP_FORWARD)
		return sluice_np_fwd_new(ctx, f);
	/* The reject's scratch is as large as the nodeport frame: called
	 * from here, they do not stack. */
	if (rc == SLUICE_NP_REJECT)
		return sluice_reject_build(ctx, f->l3_off, f->family, f->proto,
					   f->l4_off) == SLUICE_REJECT_BUILT ?
			       XDP_TX :
			       XDP_DROP;
	return rc;
}
#endif
