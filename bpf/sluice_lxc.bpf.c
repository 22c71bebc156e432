/* sluice_lxc: the pod datapath, attached with tcx links on each pod's
 * host-side veth.
 *   sluice_lxc_out  tcx ingress: packets the pod sends
 *   sluice_lxc_in   tcx egress:  packets the host stack routes to the pod
 * Anti-spoofing, conntrack, identity-based NetworkPolicy on new
 * connections, local delivery with bpf_redirect_peer. Packet walks:
 * docs/design-pod-networking.md.
 *
 * Each program has a fast path for packets of established connections:
 * parse, ONE conntrack lookup (both directions share the entry), two
 * compares (the entry is of the current endpoint epoch; the packet arrives
 * on the veth of the endpoint that owns its source, resp. destination),
 * deliver from the entry. Everything else takes the slow path, which does
 * what the fast path skipped (endpoint lookup, anti-spoofing, policy) and
 * re-checks an entry the fast path would not trust.
 *
 * In front of both, in the entry function itself, the flow cache
 * (lib/flowcache.h): the common established packet is recognised from its
 * headers and delivered from a per-CPU slot that repeats what the fast path
 * decided for its exact tuple and veth within the current jiffy, endpoint
 * epoch. A miss falls through to the above.
 *
 * Events follow the level of the pod whose veth the hook runs on
 * (lib/ep_events.h); at trace level every forwarded packet emits one
 * trace event where it is handed on (to-endpoint, to-stack, to-device).
 *
 * Parsing and the two slow paths are global BPF functions: the verifier
 * checks each once, on its own, instead of once per path through the
 * program (inlined, the fast/slow split multiplied the verifier's work
 * five-fold, to within 20% of its 1M-instruction limit). */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/l4.h"
#include "lib/counters.h"
#include "lib/events.h"
#include "lib/ep_events.h"
#include "lib/endpoint.h"
#include "lib/ipcache.h"
#include "lib/policy.h"
#include "lib/ct.h"
#include "lib/frag.h"
#include "lib/lb.h"
#include "lib/reject.h"
#include "lib/flowcache.h"

#ifndef TC_ACT_OK
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#endif

/* Headers we may read: Ethernet + 2 VLAN + IPv6 + 8 ext headers is more,
 * but 256 bytes covers every real chain; longer ones are malformed. */
#define SLUICE_PULL_LEN 256

/* Events of a hook follow its pod's level (lib/ep_events.h). */
static __always_inline int drop(struct __sk_buff *skb, __u32 dir,
				__u32 reason)
{
	sluice_drop_flow_at(sluice_ep_level(skb->ifindex), skb->ifindex, dir,
			    reason, skb->len, NULL, NULL);
	return TC_ACT_SHOT;
}

/* A drop of a parsed packet: its event carries the 5-tuple. A global
 * function: the paths that drop keep no room for it in their frames (a
 * call chain shares 512 bytes of stack). Returns TC_ACT_SHOT. */
__attribute__((noinline)) int sluice_lxc_drop(struct __sk_buff *skb,
					      struct sluice_flow *f, __u32 dir,
					      __u32 reason)
{
	if (!skb || !f)
		return TC_ACT_SHOT;
	sluice_drop_flow_at(sluice_ep_level(skb->ifindex), skb->ifindex, dir,
			    reason, skb->len, f, NULL);
	return TC_ACT_SHOT;
}

static __always_inline int drop_f(struct __sk_buff *skb,
				  struct sluice_flow *f, __u32 dir,
				  __u32 reason)
{
	return sluice_lxc_drop(skb, f, dir, reason);
}

/* The policy verdict of a new connection as an event (flows level): the
 * deciding direction, both identities, the endpoint whose policy decided
 * and the rule. A deny is also a drop with its reason. */
static __always_inline int verdict(struct __sk_buff *skb,
				   const struct sluice_flow *f, __u32 dir,
				   __u32 reason, __u32 src_id, __u32 dst_id,
				   __u32 ep_id, __u32 rule)
{
	struct sluice_event_ids ids = { .src_identity = src_id,
					.dst_identity = dst_id,
					.ep_id = ep_id,
					.rule_id = rule };
	__u32 level = sluice_ep_level(skb->ifindex);

	sluice_emit_verdict_at(level, skb->ifindex, dir,
			       reason ? SLUICE_VERDICT_DENIED :
					SLUICE_VERDICT_ALLOWED,
			       skb->len, f, &ids);
	if (!reason)
		return TC_ACT_OK;
	sluice_drop_flow_at(level, skb->ifindex, dir, reason, skb->len, f,
			    &ids);
	return TC_ACT_SHOT;
}

/* The trace event of a forwarded packet (trace level: the caller checked
 * sluice_ep_trace), a function of its own so that the paths that call it
 * carry only the call, and with scalars only so that their frames hold no
 * record for it: what = dir | point << 8 | ep_id << 16 (endpoint ids are
 * below SLUICE_ENDPOINTS_MAX, 16 bits). */
__attribute__((noinline)) int sluice_lxc_trace(struct __sk_buff *skb,
					       struct sluice_flow *f, __u32 what,
					       __u32 src_id, __u32 dst_id)
{
	struct sluice_event_ids ids = { .src_identity = src_id,
					.dst_identity = dst_id,
					.ep_id = what >> 16 };

	if (!skb || !f)
		return 0;
	sluice_trace_submit(skb->ifindex, what & 0xff, (what >> 8) & 0xff,
			    skb->len, f, &ids);
	return 0;
}

static __always_inline void trace_fwd(struct __sk_buff *skb,
				      struct sluice_flow *f, __u32 dir,
				      __u32 point, __u32 src_id, __u32 dst_id,
				      __u32 ep_id)
{
	sluice_lxc_trace(skb, f, dir | point << 8 | ep_id << 16, src_id,
			 dst_id);
}

/* sluice_lxc_trace from a conntrack hit h: the identities as the entry
 * recorded them (of the initiator and responder), in packet order. */
static __always_inline void trace_ct(struct __sk_buff *skb,
				     struct sluice_flow *f, __u32 dir,
				     __u32 point, const struct sluice_ct_hit *h,
				     __u32 ep_id)
{
	__u32 a = h->v->src_identity, b = h->v->dst_identity;

	trace_fwd(skb, f, dir, point, h->reply ? b : a, h->reply ? a : b,
		  ep_id);
}

/* Neighbour discovery and multicast listener discovery (MLD queries and
 * reports, 130-132 and 143: sent from the unspecified address during DAD)
 * use link-local and unspecified sources: not pod traffic, so neither
 * anti-spoofing nor policy applies to it. */
static __always_inline int is_ndisc(const struct sluice_flow *f)
{
	return f->family == AF_INET6 && f->proto == 58 &&
	       ((f->icmp_type >= 133 && f->icmp_type <= 137) ||
		(f->icmp_type >= 130 && f->icmp_type <= 132) ||
		f->icmp_type == 143);
}

/* Fills f (zeroed by the caller). Returns 0, -1 for non-IP, or a drop
 * reason. */
__attribute__((noinline)) int sluice_lxc_parse(struct __sk_buff *skb,
					       struct sluice_flow *f)
{
	struct sluice_l3 l3 = {};
	void *data, *data_end;
	int rc;

	if (!skb || !f)
		return SLUICE_DROP_MALFORMED;
	if (skb->data_end - skb->data < SLUICE_PULL_LEN &&
	    skb->len > skb->data_end - skb->data)
		bpf_skb_pull_data(skb, skb->len < SLUICE_PULL_LEN ?
					       skb->len : SLUICE_PULL_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	rc = sluice_parse_l3(data, data_end, &l3);
	if (rc != SLUICE_PARSE_OK)
		return rc == SLUICE_PARSE_NOT_IP ? -1 : SLUICE_DROP_MALFORMED;
	rc = sluice_parse_flow(data, data_end, &l3, f);
	if (rc)
		return rc;
	if (f->frag == SLUICE_FRAG_LATER)
		return sluice_frag_ports(f);
	return 0;
}

/* Delivery of a packet leaving a pod: into a local pod's netns (MACs as
 * that pod expects them, bpf_redirect_peer: skips its veth's hooks), or to
 * the host stack when ifindex is 0 (not a local endpoint). */
static __always_inline int deliver_out(struct __sk_buff *skb, __u32 ifindex,
				       const __u8 *pod_mac,
				       const __u8 *host_mac)
{
	void *data = (void *)(long)skb->data;
	struct ethhdr *eth = data;

	if (!ifindex)
		return TC_ACT_OK;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return drop(skb, SLUICE_DIR_EGRESS, SLUICE_DROP_MALFORMED);
	__builtin_memcpy(eth->h_dest, pod_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, host_mac, ETH_ALEN);
	return bpf_redirect_peer(ifindex, 0);
}

/* A new connection from a pod: to a service frontend? Then pick its
 * backend (x filled, x->active); the packet is not touched yet. Returns 0
 * (also when it is no service) or a drop reason. */
__attribute__((noinline)) int sluice_lxc_lb_new(struct sluice_flow *f,
						struct sluice_lb_xlate *x)
{
	struct sluice_lb_svc_key sk = {};
	struct sluice_lb_backend *be;
	struct sluice_lb_svc *svc;
	__u32 id = 0;
	int rc;

	if (!f || !x)
		return SLUICE_DROP_MALFORMED;
	x->active = 0;
	if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP &&
	    f->proto != IPPROTO_SCTP)
		return 0;
	__builtin_memcpy(sk.addr, f->daddr, 16);
	sk.port = f->dport;
	sk.proto = f->proto;
	sk.family = f->family;
	sk.scope = SLUICE_LB_SCOPE_INTERNAL;
	svc = bpf_map_lookup_elem(&sluice_lb_svc, &sk);
	if (!svc)
		return 0;
	rc = sluice_lb_pick(svc, f, &id);
	if (rc)
		return rc;
	be = bpf_map_lookup_elem(&sluice_lb_be, &id);
	if (!be || be->family != f->family)
		return SLUICE_DROP_LB_NO_BACKEND;
	sluice_lb_xlate_new(x, f, svc, id, be, 0);
	return 0;
}

/* A new service connection is in conntrack (opened: its connection entry
 * is new; else only its lost service entry was made again): count it for
 * the backend's cap, remember the client's backend (ClientIP affinity),
 * and let later fragments find the ports by the tuple the client sent.
 * Done only now, after anti-spoofing and policy passed, so a dropped
 * packet leaves no trace. */
__attribute__((noinline)) int sluice_lxc_lb_commit(struct __sk_buff *skb,
						   struct sluice_flow *f,
						   struct sluice_lb_xlate *x,
						   int opened)
{
	struct sluice_event *ev;

	if (!skb || !f || !x)
		return 0;
	/* The translation event (flows level): the client's tuple as sent,
	 * the frontend and the backend. */
	if (opened && sluice_ep_level(skb->ifindex) >= SLUICE_EVENTS_FLOWS) {
		ev = sluice_event_begin(SLUICE_EVENT_SERVICE_XLATE,
					skb->ifindex, SLUICE_DIR_EGRESS,
					skb->len);
		if (ev) {
			ev->verdict = SLUICE_VERDICT_TRANSLATED;
			sluice_fill_flow(ev, f);
			__builtin_memcpy(ev->saddr, x->orig_saddr, 16);
			__builtin_memcpy(ev->daddr, x->front, 16);
			ev->dport = x->front_port;
			__builtin_memcpy(ev->fe_addr, x->front, 16);
			ev->fe_port = x->front_port;
			__builtin_memcpy(ev->be_addr, x->back, 16);
			ev->be_port = x->back_port;
			bpf_ringbuf_submit(ev, 0);
		}
	}
	if (opened && x->capped)
		sluice_lb_conn_add(x->backend_id, 1);
	if (x->affinity)
		sluice_lb_affine_set(x, f->family);
	if (f->frag == SLUICE_FRAG_FIRST)
		sluice_frag_remember_as(f, x->orig_saddr, x->front,
					x->front_port);
	return 0;
}

/* Translates a packet the client sent to its backend (and, hairpinned,
 * from the hairpin address). 0 or -1. */
__attribute__((noinline)) int sluice_lxc_lb_apply(struct __sk_buff *skb,
						  struct sluice_flow *f,
						  struct sluice_lb_xlate *x)
{
	__u8 hp[16] __attribute__((aligned(4)));

	if (!skb || !f || !x)
		return -1;
	if (sluice_lb_rewrite(skb, f, 0, x->back, x->back_port))
		return -1;
	if (!x->hairpin)
		return 0;
	sluice_lb_hairpin_addr(f->family, hp);
	return sluice_lb_rewrite(skb, f, 1, hp, f->sport);
}

/* Reverse translation of a reply of a service connection: from the
 * backend back to the service address the client knows (and, hairpinned,
 * to the client's own address instead of the hairpin one). 0 or -1. */
__attribute__((noinline)) int
sluice_lxc_revnat(struct __sk_buff *skb, struct sluice_flow *f,
		  const struct sluice_ct_value *v)
{
	__u8 back[16] __attribute__((aligned(4)));

	if (!skb || !f || !v)
		return -1;
	__builtin_memcpy(back, f->saddr, 16);
	if (sluice_lb_rewrite(skb, f, 1, v->nat_addr, v->nat_port))
		return -1;
	if (!(v->flags & SLUICE_CT_HAIRPIN))
		return 0;
	return sluice_lb_rewrite(skb, f, 0, back, f->dport);
}

/* A reply of a north-south service connection, reverse-translated: its
 * source is now a node address, which the stack would drop as martian on
 * a pod veth, so it goes straight out of the device the route to the
 * client names (bpf_redirect_neigh resolves the next hop's MAC); counted
 * here. With no route it is dropped (lb-no-route). */
__attribute__((noinline)) int sluice_lxc_to_device(struct __sk_buff *skb,
						   struct sluice_flow *f)
{
	struct bpf_fib_lookup p = {};
	int rc;

	if (!skb || !f)
		return TC_ACT_SHOT;
	p.family = f->family;
	p.l4_protocol = f->proto;
	p.sport = f->sport;
	p.dport = f->dport;
	/* tot_len 0: the kernel checks the MTU itself, aware of GSO (a
	 * pod's TCP replies come as 64 KB super-packets). */
	p.ifindex = skb->ifindex;
	if (f->family == AF_INET) {
		__builtin_memcpy(&p.ipv4_src, f->saddr, 4);
		__builtin_memcpy(&p.ipv4_dst, f->daddr, 4);
	} else {
		__builtin_memcpy(p.ipv6_src, f->saddr, 16);
		__builtin_memcpy(p.ipv6_dst, f->daddr, 16);
	}
	/* An input lookup from the pod veth (as the stack would route it,
	 * minus the martian check): with BPF_FIB_LOOKUP_OUTPUT the ifindex
	 * would pin the route to the pod veth itself. */
	rc = bpf_fib_lookup(skb, &p, sizeof(p), 0);
	/* The stack would drop it anyway (martian source): say why. */
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return drop_f(skb, f, SLUICE_DIR_EGRESS,
			      SLUICE_DROP_LB_NO_ROUTE);
	sluice_count(SLUICE_DIR_EGRESS, SLUICE_DROP_NONE, skb->len);
	/* Inline, not sluice_lxc_trace: a fourth frame on the slow path's
	 * stack would pass the 512-byte limit of a call chain. */
	if (unlikely(sluice_ep_trace(skb->ifindex, 0)))
		sluice_trace_submit(skb->ifindex, SLUICE_DIR_EGRESS,
				    SLUICE_TRACE_TO_DEVICE, skb->len, f, NULL);
	return bpf_redirect_neigh(p.ifindex, NULL, 0, 0);
}

/* A new service connection that cannot be given a backend: counted and
 * reported as a drop with its reason, and the client is told at once (TCP
 * RST, ICMP port unreachable) instead of retrying into a black hole, as
 * Kubernetes expects of a Service without ready endpoints. */
static __always_inline int lb_fail(struct __sk_buff *skb,
				   struct sluice_flow *f, int reason)
{
	drop_f(skb, f, SLUICE_DIR_EGRESS, reason);
	return sluice_reject(skb, f->l3_off, f->family, f->proto,
			     f->frag == SLUICE_FRAG_LATER ? 0 : f->l4_off);
}

/* sluice_lxc_out without the fast path: packets of no established
 * connection, non-IP, malformed, and connections whose entry was resolved
 * at an older endpoint epoch or for another veth. rc: sluice_lxc_parse's.
 * ct_missed: the fast path looked the connection up and found none. x:
 * the service translation already applied to the packet and f (NULL or
 * inactive: none). */
__attribute__((noinline)) int sluice_lxc_out_slow(struct __sk_buff *skb,
						  struct sluice_flow *f,
						  int rc, int ct_missed,
						  struct sluice_lb_xlate *x)
{
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_ct_hit h = {};
	struct sluice_endpoint *ep, *dst;
	__u32 ifindex, epoch;
	__u64 now;
	int rev, svc, d, revnat = 0;

	if (!skb || !f)
		return TC_ACT_SHOT;
	svc = x && x->active;
	ifindex = skb->ifindex;
	ep = bpf_map_lookup_elem(&sluice_ep_if, &ifindex);
	if (!ep)
		return drop_f(skb, f, SLUICE_DIR_EGRESS, SLUICE_DROP_UNKNOWN_ENDPOINT);
	if (rc < 0)
		return TC_ACT_OK; /* ARP and other non-IP */
	if (rc)
		return drop_f(skb, f, SLUICE_DIR_EGRESS, rc);
	if (is_ndisc(f))
		return TC_ACT_OK;
	/* A hairpinned packet's source is already the hairpin address: the
	 * address the pod sent from is checked. */
	if (!sluice_ep_owns(ep, f->family, svc ? x->orig_saddr : f->saddr))
		return drop_f(skb, f, SLUICE_DIR_EGRESS, SLUICE_DROP_SPOOFED_SOURCE);

	epoch = sluice_ep_epoch_now();
	now = bpf_jiffies64();
	rev = ct_missed ? sluice_ct_key_of(f, &k) : sluice_ct_find(f, &k, &h);
	/* A service entry is the client's view of a service connection: found
	 * here only by a packet it does not describe (sent from the service
	 * address). Such a packet is a connection of its own. */
	if (h.v && (h.v->flags & SLUICE_CT_SVC))
		h.v = NULL;
	/* A reply of a service connection goes back to the service address
	 * first: the destination to deliver to is known after that. */
	if (h.v && h.reply && (h.v->flags & SLUICE_CT_REVNAT)) {
		revnat = (h.v->flags & SLUICE_CT_NODEPORT) ? 2 : 1;
		if (f->frag == SLUICE_FRAG_FIRST)
			sluice_frag_remember(f); /* as later fragments come */
		if (sluice_lxc_revnat(skb, f, h.v))
			return drop_f(skb, f, SLUICE_DIR_EGRESS,
				    SLUICE_DROP_LB_NAT_FAILED);
	}
	dst = sluice_ep_by_addr(f->family, f->daddr);
	if (h.v) {
		/* A known connection the fast path did not trust: if both
		 * its ends are still exactly these endpoints, it goes on (and
		 * is fast again); if not (an end was deleted or replaced), it
		 * is a new connection to whoever is there now. */
		if (sluice_ct_end_is(h.src, ep) && sluice_ct_end_is(h.dst, dst)) {
			if (h.v->ep_epoch != epoch)
				h.v->ep_epoch = epoch;
			d = sluice_ct_touch(h.v, f, now, h.reply);
			if (d)
				sluice_lb_conn_add(h.v->backend_id, d);
			/* A new pick whose translated tuple found its own
			 * connection: the service entry had been lost. */
			if (svc && x->created &&
			    !sluice_ct_svc_recreate(f, &k, now, h.v, x))
				sluice_lxc_lb_commit(skb, f, x, 0);
			goto deliver;
		}
		bpf_map_delete_elem(&sluice_ct, &k);
		/* The reply of a service connection whose client or backend
		 * is gone: it cannot become a connection of its own (it was
		 * reverse-translated already, and replies open nothing). */
		if (revnat)
			return drop_f(skb, f, SLUICE_DIR_EGRESS,
				    SLUICE_DROP_LB_STALE_CONN);
		rev = sluice_ct_key_of(f, &k);
	}
	{
		__u32 dst_id, dst_cidr, rule = 0, rule_in = 0;
		__u16 dport = bpf_ntohs(f->dport);

		sluice_ipcache_get(f->family, f->daddr, &dst_id, &dst_cidr);
		if (dst)
			dst_id = dst->identity;
		if ((ep->flags & SLUICE_EP_EGRESS_ENFORCED) &&
		    !sluice_policy_allows(ep->ep_id, SLUICE_DIR_EGRESS, f->proto,
					  dport, dst_id, dst_cidr, &rule))
			return verdict(skb, f, SLUICE_DIR_EGRESS,
				       SLUICE_DROP_POLICY_DENY_EGRESS,
				       ep->identity, dst_id, ep->ep_id, 0);
		/* A local destination is reached with bpf_redirect_peer, which
		 * skips its own hooks: its ingress policy is applied here. */
		if (dst && (dst->flags & SLUICE_EP_INGRESS_ENFORCED)) {
			__u32 src_id, src_cidr;

			sluice_ipcache_get(f->family, f->saddr, &src_id,
					   &src_cidr);
			if (!sluice_policy_allows(dst->ep_id, SLUICE_DIR_INGRESS,
						  f->proto, dport, ep->identity,
						  src_cidr, &rule_in))
				return verdict(skb, f, SLUICE_DIR_INGRESS,
					       SLUICE_DROP_POLICY_DENY_INGRESS,
					       ep->identity, dst_id,
					       dst->ep_id, 0);
		}
		rc = sluice_ct_create(f, &k, rev, now, epoch,
				      rule ? rule : rule_in, ep->identity,
				      dst_id, ep, dst, svc ? x : NULL);
		if (rc)
			return drop_f(skb, f, SLUICE_DIR_EGRESS, rc);
		verdict(skb, f, SLUICE_DIR_EGRESS, 0, ep->identity, dst_id,
			ep->ep_id, rule ? rule : rule_in);
		if (svc && x->created)
			sluice_lxc_lb_commit(skb, f, x, 1);
	}
deliver:
	/* Service packets were remembered by the client's tuple. */
	if (f->frag == SLUICE_FRAG_FIRST && !svc && !revnat)
		sluice_frag_remember(f);
	if (!dst && revnat == 2)
		return sluice_lxc_to_device(skb, f);
	sluice_count(SLUICE_DIR_EGRESS, SLUICE_DROP_NONE, skb->len);
	if (unlikely(sluice_ep_trace(ifindex, dst ? dst->ifindex : 0)))
		trace_fwd(skb, f, SLUICE_DIR_EGRESS,
			  dst ? SLUICE_TRACE_TO_ENDPOINT : SLUICE_TRACE_TO_STACK,
			  ep->identity, dst ? dst->identity : 0, ep->ep_id);
	if (!dst)
		return TC_ACT_OK;
	return deliver_out(skb, dst->ifindex, dst->pod_mac, dst->host_mac);
}

/* The client side of a service connection: its packets to the frontend
 * are translated to the backend (established: from its service entry
 * svc_entry; new: a backend is picked), the translation left in
 * sluice_lb_scratch. Returns 0 (not a service), 1 (translated: f and the
 * packet), or a TC verdict + 2 (dropped or rejected). */
__attribute__((noinline)) int sluice_lxc_lb_out(struct __sk_buff *skb,
						struct sluice_flow *f,
						struct sluice_ct_value *svc_entry)
{
	struct sluice_lb_xlate *x = sluice_lb_scratch_get();
	int rc;

	if (!skb || !f || !x)
		return TC_ACT_SHOT + 2;
	if (svc_entry) {
		/* Service entries are never SLUICE_CT_REVNAT: no count change. */
		sluice_ct_touch(svc_entry, f, bpf_jiffies64(), 0);
		sluice_lb_xlate_of(x, f, svc_entry);
		/* Later fragments find their ports by the tuple the client
		 * sent (a new connection's are remembered once it is allowed,
		 * by sluice_lxc_lb_commit). */
		if (f->frag == SLUICE_FRAG_FIRST)
			sluice_frag_remember(f);
	} else {
		rc = sluice_lxc_lb_new(f, x);
		if (rc)
			return lb_fail(skb, f, rc) + 2;
		if (!x->active)
			return 0;
	}
	if (sluice_lxc_lb_apply(skb, f, x))
		return drop_f(skb, f, SLUICE_DIR_EGRESS, SLUICE_DROP_LB_NAT_FAILED) + 2;
	return 1;
}

/* What a fast path returns when it declines a packet: the slow path
 * takes it, told whether conntrack missed and whether the packet was
 * translated for a service (the translation is in sluice_lb_scratch).
 * Above every TC verdict. */
#define SLOW 0x100
#define SLOW_CT_MISSED 0x1
#define SLOW_SVC 0x2

/* The fast path of sluice_lxc_out, a function of its own so that the
 * slow path's stack is not stacked on top of the fast path's (they share
 * 512 bytes along a call chain). */
__attribute__((noinline)) int sluice_lxc_out_fast(struct __sk_buff *skb,
						  struct sluice_flow *f)
{
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_ct_hit h = {};
	int rc, d, svc = 0, trace;
	__u64 now, prev;

	if (!skb || !f)
		return TC_ACT_SHOT;
	sluice_ct_find(f, &k, &h);
	/* No connection yet, or the client side of a service connection:
	 * translate, then find the connection of the translated tuple. */
	if (unlikely(!h.v || (h.v->flags & SLUICE_CT_SVC))) {
		struct sluice_lb_xlate *x;

		if (h.v && h.reply) /* from the service address: not a client */
			return SLOW | SLOW_CT_MISSED;
		rc = h.v ? sluice_lxc_lb_out(skb, f, h.v) :
			   sluice_lxc_lb_out(skb, f, NULL);
		if (rc > 1)
			return rc - 2;
		if (rc == 1) {
			svc = SLOW_SVC;
			x = sluice_lb_scratch_get();
			if (!x)
				return TC_ACT_SHOT;
			sluice_ct_find(f, &k, &h);
			if (h.v && !sluice_lb_is_conn_of(&h, x))
				return drop_f(skb, f, SLUICE_DIR_EGRESS,
					    SLUICE_DROP_LB_TUPLE_CLASH);
			/* A new pick: the slow path checks and records it. */
			if (x->created)
				return SLOW | svc | (h.v ? 0 : SLOW_CT_MISSED);
		}
	}
	/* Established or reply, resolved at the current endpoint epoch, and
	 * sent from the veth of the endpoint that owns the source address:
	 * the entry recorded that veth only after anti-spoofing passed for
	 * it, and any change of what owns an address moves the epoch. */
	if (!h.v)
		return SLOW | SLOW_CT_MISSED | svc;
	if (h.v->ep_epoch != sluice_ep_epoch_now() ||
	    h.src->ifindex != skb->ifindex)
		return SLOW | svc;
	now = bpf_jiffies64();
	prev = h.v->last_seen;
	d = sluice_ct_touch(h.v, f, now, h.reply);
	if (unlikely(d))
		sluice_lb_conn_add(h.v->backend_id, d);
	if (f->frag == SLUICE_FRAG_FIRST && !svc) /* svc: by lb_out */
		sluice_frag_remember(f);
	if (unlikely(h.reply && (h.v->flags & SLUICE_CT_REVNAT))) {
		if (sluice_lxc_revnat(skb, f, h.v))
			return drop_f(skb, f, SLUICE_DIR_EGRESS,
				    SLUICE_DROP_LB_NAT_FAILED);
		if (h.v->flags & SLUICE_CT_NODEPORT)
			return sluice_lxc_to_device(skb, f);
	}
	sluice_count(SLUICE_DIR_EGRESS, SLUICE_DROP_NONE, skb->len);
	trace = sluice_ep_trace(skb->ifindex, h.dst->ifindex);
	/* The flow cache repeats this decision for the rest of the jiffy
	 * (plain connections only: service packets are translated). */
	if (!svc && !(h.v->flags & (SLUICE_CT_SVC | SLUICE_CT_REVNAT)))
		sluice_fc_update(&sluice_fc_out, f, skb->ifindex, h.v->flags,
				 prev, h.v->ep_epoch, now, h.dst->ifindex,
				 h.dst->pod_mac, h.dst->host_mac, trace);
	if (unlikely(trace))
		trace_ct(skb, f, SLUICE_DIR_EGRESS,
			 h.dst->ifindex ? SLUICE_TRACE_TO_ENDPOINT :
					  SLUICE_TRACE_TO_STACK,
			 &h, h.src->ep_id);
	return deliver_out(skb, h.dst->ifindex, h.dst->pod_mac,
			   h.dst->host_mac);
}

/* sluice_lxc_out past the flow cache. */
static __always_inline int sluice_lxc_out_ct(struct __sk_buff *skb)
{
	struct sluice_flow f = {};
	int rc;

	rc = sluice_lxc_parse(skb, &f);
	if (rc || is_ndisc(&f))
		return sluice_lxc_out_slow(skb, &f, rc, 0, NULL);
	rc = sluice_lxc_out_fast(skb, &f);
	if (likely(!(rc & SLOW)))
		return rc;
	return sluice_lxc_out_slow(skb, &f, 0, rc & SLOW_CT_MISSED,
				   (rc & SLOW_SVC) ? sluice_lb_scratch_get() :
						     NULL);
}

SEC("tc")
int sluice_lxc_out(struct __sk_buff *skb)
{
	int rc = sluice_fc_deliver(&sluice_fc_out, skb, 1, SLUICE_DIR_EGRESS);

	if (likely(rc >= 0))
		return rc;
	return sluice_lxc_out_ct(skb);
}

/* sluice_lxc_in without the fast path (see sluice_lxc_out_slow). */
__attribute__((noinline)) int sluice_lxc_in_slow(struct __sk_buff *skb,
						 struct sluice_flow *f,
						 int rc, int ct_missed)
{
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_ct_hit h = {};
	struct sluice_endpoint *ep, *src, *me;
	__u32 ifindex, epoch;
	__u64 now;
	int rev, d;

	if (!skb || !f)
		return TC_ACT_SHOT;
	ifindex = skb->ifindex;
	ep = bpf_map_lookup_elem(&sluice_ep_if, &ifindex);
	if (!ep)
		return drop_f(skb, f, SLUICE_DIR_INGRESS,
			    SLUICE_DROP_UNKNOWN_ENDPOINT);
	if (rc < 0)
		return TC_ACT_OK;
	if (rc)
		return drop_f(skb, f, SLUICE_DIR_INGRESS, rc);
	if (is_ndisc(f))
		return TC_ACT_OK;

	epoch = sluice_ep_epoch_now();
	now = bpf_jiffies64();
	/* The ends as they are now: a local endpoint may be the source
	 * (routed through the host stack); this one is the destination if
	 * the address is its own. */
	src = sluice_ep_by_addr(f->family, f->saddr);
	me = sluice_ep_owns(ep, f->family, f->daddr) ? ep : NULL;
	rev = ct_missed ? sluice_ct_key_of(f, &k) : sluice_ct_find(f, &k, &h);
	/* Service entries describe a client's packets leaving its pod, never
	 * one arriving: such a packet is a connection of its own. */
	if (h.v && (h.v->flags & SLUICE_CT_SVC))
		h.v = NULL;
	if (h.v) {
		if (sluice_ct_end_is(h.src, src) && sluice_ct_end_is(h.dst, me)) {
			if (h.v->ep_epoch != epoch)
				h.v->ep_epoch = epoch;
			d = sluice_ct_touch(h.v, f, now, h.reply);
			if (d)
				sluice_lb_conn_add(h.v->backend_id, d);
			if (f->frag == SLUICE_FRAG_FIRST)
				sluice_frag_remember(f);
			/* A reply from a backend elsewhere to a local client. */
			if (h.reply && (h.v->flags & SLUICE_CT_REVNAT) &&
			    sluice_lxc_revnat(skb, f, h.v))
				return drop_f(skb, f, SLUICE_DIR_INGRESS,
					    SLUICE_DROP_LB_NAT_FAILED);
			goto count;
		}
		d = h.reply && (h.v->flags & SLUICE_CT_REVNAT);
		bpf_map_delete_elem(&sluice_ct, &k);
		/* See sluice_lxc_out_slow: a stale service reply opens nothing. */
		if (d)
			return drop_f(skb, f, SLUICE_DIR_INGRESS,
				    SLUICE_DROP_LB_STALE_CONN);
	}
	{
		__u32 src_id, src_cidr, rule = 0;

		sluice_ipcache_get(f->family, f->saddr, &src_id, &src_cidr);
		/* The node itself may always reach its pods (kubelet probes),
		 * as Kubernetes expects of NetworkPolicy implementations. */
		if (src_id != SLUICE_ID_HOST &&
		    (ep->flags & SLUICE_EP_INGRESS_ENFORCED) &&
		    !sluice_policy_allows(ep->ep_id, SLUICE_DIR_INGRESS, f->proto,
					  bpf_ntohs(f->dport), src_id, src_cidr,
					  &rule))
			return verdict(skb, f, SLUICE_DIR_INGRESS,
				       SLUICE_DROP_POLICY_DENY_INGRESS, src_id,
				       ep->identity, ep->ep_id, 0);
		rc = sluice_ct_create(f, &k, rev, now, epoch, rule, src_id,
				      ep->identity, src, me, NULL);
		if (rc)
			return drop_f(skb, f, SLUICE_DIR_INGRESS, rc);
		verdict(skb, f, SLUICE_DIR_INGRESS, 0, src_id, ep->identity,
			ep->ep_id, rule);
	}
	if (f->frag == SLUICE_FRAG_FIRST)
		sluice_frag_remember(f);
count:
	sluice_count(SLUICE_DIR_INGRESS, SLUICE_DROP_NONE, skb->len);
	if (unlikely(sluice_ep_trace(ifindex, 0)))
		trace_fwd(skb, f, SLUICE_DIR_INGRESS, SLUICE_TRACE_TO_ENDPOINT,
			  src ? src->identity : 0, ep->identity, ep->ep_id);
	return TC_ACT_OK;
}

/* The fast path of sluice_lxc_in (see sluice_lxc_out_fast). */
__attribute__((noinline)) int sluice_lxc_in_fast(struct __sk_buff *skb,
						 struct sluice_flow *f)
{
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_ct_hit h = {};
	int d, trace;
	__u64 now, prev;

	if (!skb || !f)
		return TC_ACT_SHOT;
	sluice_ct_find(f, &k, &h);
	/* Established or reply, current epoch, and this veth is the
	 * endpoint the entry delivers to. A service entry is the client's
	 * view of a connection leaving a pod: not one arriving. */
	if (!h.v || (h.v->flags & SLUICE_CT_SVC))
		return SLOW | SLOW_CT_MISSED;
	if (h.v->ep_epoch != sluice_ep_epoch_now() ||
	    h.dst->ifindex != skb->ifindex)
		return SLOW;
	now = bpf_jiffies64();
	prev = h.v->last_seen;
	d = sluice_ct_touch(h.v, f, now, h.reply);
	if (unlikely(d))
		sluice_lb_conn_add(h.v->backend_id, d);
	if (f->frag == SLUICE_FRAG_FIRST)
		sluice_frag_remember(f);
	/* A reply from a backend elsewhere to a local client. */
	if (unlikely(h.reply && (h.v->flags & SLUICE_CT_REVNAT)) &&
	    sluice_lxc_revnat(skb, f, h.v))
		return drop_f(skb, f, SLUICE_DIR_INGRESS, SLUICE_DROP_LB_NAT_FAILED);
	sluice_count(SLUICE_DIR_INGRESS, SLUICE_DROP_NONE, skb->len);
	trace = sluice_ep_trace(skb->ifindex, 0);
	if (!(h.v->flags & (SLUICE_CT_SVC | SLUICE_CT_REVNAT)))
		sluice_fc_update(&sluice_fc_in, f, skb->ifindex, h.v->flags,
				 prev, h.v->ep_epoch, now, 0, NULL, NULL, trace);
	if (unlikely(trace))
		trace_ct(skb, f, SLUICE_DIR_INGRESS, SLUICE_TRACE_TO_ENDPOINT,
			 &h, h.dst->ep_id);
	return TC_ACT_OK;
}

/* sluice_lxc_in past the flow cache. */
static __always_inline int sluice_lxc_in_ct(struct __sk_buff *skb)
{
	struct sluice_flow f = {};
	int rc;

	rc = sluice_lxc_parse(skb, &f);
	if (rc || is_ndisc(&f))
		return sluice_lxc_in_slow(skb, &f, rc, 0);
	rc = sluice_lxc_in_fast(skb, &f);
	if (likely(!(rc & SLOW)))
		return rc;
	return sluice_lxc_in_slow(skb, &f, 0, rc & SLOW_CT_MISSED);
}

SEC("tc")
int sluice_lxc_in(struct __sk_buff *skb)
{
	int rc = sluice_fc_deliver(&sluice_fc_in, skb, 0, SLUICE_DIR_INGRESS);

	if (likely(rc >= 0))
		return rc;
	return sluice_lxc_in_ct(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
