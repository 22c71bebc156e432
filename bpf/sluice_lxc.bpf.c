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
 * Parsing and the two slow paths are global BPF functions: the verifier
 * checks each once, on its own, instead of once per path through the
 * program (inlined, the fast/slow split multiplied the verifier's work
 * five-fold, to within 20% of its 1M-instruction limit). */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/l4.h"
#include "lib/counters.h"
#include "lib/events.h"
#include "lib/endpoint.h"
#include "lib/ipcache.h"
#include "lib/policy.h"
#include "lib/ct.h"
#include "lib/frag.h"

#ifndef TC_ACT_OK
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#endif

/* Headers we may read: Ethernet + 2 VLAN + IPv6 + 8 ext headers is more,
 * but 256 bytes covers every real chain; longer ones are malformed. */
#define SLUICE_PULL_LEN 256

static __always_inline int drop(struct __sk_buff *skb, __u32 dir,
				__u32 reason)
{
	sluice_drop(skb->ifindex, dir, reason, skb->len, NULL);
	return TC_ACT_SHOT;
}

/* Neighbour discovery uses link-local and unspecified sources: it is not
 * pod traffic, so neither anti-spoofing nor policy applies to it. */
static __always_inline int is_ndisc(const struct sluice_flow *f)
{
	return f->family == AF_INET6 && f->proto == 58 &&
	       f->icmp_type >= 133 && f->icmp_type <= 137;
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

/* sluice_lxc_out without the fast path: packets of no established
 * connection, non-IP, malformed, and connections whose entry was resolved
 * at an older endpoint epoch or for another veth. rc: sluice_lxc_parse's.
 * ct_missed: the fast path looked the connection up and found none. */
__attribute__((noinline)) int sluice_lxc_out_slow(struct __sk_buff *skb,
						  struct sluice_flow *f,
						  int rc, int ct_missed)
{
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_ct_hit h = {};
	struct sluice_endpoint *ep, *dst;
	__u32 ifindex, epoch;
	__u64 now;
	int rev;

	if (!skb || !f)
		return TC_ACT_SHOT;
	ifindex = skb->ifindex;
	ep = bpf_map_lookup_elem(&sluice_ep_if, &ifindex);
	if (!ep)
		return drop(skb, SLUICE_DIR_EGRESS, SLUICE_DROP_UNKNOWN_ENDPOINT);
	if (rc < 0)
		return TC_ACT_OK; /* ARP and other non-IP */
	if (rc)
		return drop(skb, SLUICE_DIR_EGRESS, rc);
	if (is_ndisc(f))
		return TC_ACT_OK;
	if (!sluice_ep_owns(ep, f->family, f->saddr))
		return drop(skb, SLUICE_DIR_EGRESS, SLUICE_DROP_SPOOFED_SOURCE);

	epoch = sluice_ep_epoch_now();
	now = bpf_jiffies64();
	dst = sluice_ep_by_addr(f->family, f->daddr);
	rev = ct_missed ? sluice_ct_key_of(f, &k) : sluice_ct_find(f, &k, &h);
	if (h.v) {
		/* A known connection the fast path did not trust: if both
		 * its ends are still exactly these endpoints, it goes on (and
		 * is fast again); if not (an end was deleted or replaced), it
		 * is a new connection to whoever is there now. */
		if (sluice_ct_end_is(h.src, ep) && sluice_ct_end_is(h.dst, dst)) {
			if (h.v->ep_epoch != epoch)
				h.v->ep_epoch = epoch;
			sluice_ct_touch(h.v, f, now, h.reply);
			goto deliver;
		}
		bpf_map_delete_elem(&sluice_ct, &k);
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
			return drop(skb, SLUICE_DIR_EGRESS,
				    SLUICE_DROP_POLICY_DENY_EGRESS);
		/* A local destination is reached with bpf_redirect_peer, which
		 * skips its own hooks: its ingress policy is applied here. */
		if (dst && (dst->flags & SLUICE_EP_INGRESS_ENFORCED)) {
			__u32 src_id, src_cidr;

			sluice_ipcache_get(f->family, f->saddr, &src_id,
					   &src_cidr);
			if (!sluice_policy_allows(dst->ep_id, SLUICE_DIR_INGRESS,
						  f->proto, dport, ep->identity,
						  src_cidr, &rule_in))
				return drop(skb, SLUICE_DIR_INGRESS,
					    SLUICE_DROP_POLICY_DENY_INGRESS);
		}
		rc = sluice_ct_create(f, &k, rev, now, epoch,
				      rule ? rule : rule_in, ep->identity,
				      dst_id, ep, dst);
		if (rc)
			return drop(skb, SLUICE_DIR_EGRESS, rc);
	}
deliver:
	if (f->frag == SLUICE_FRAG_FIRST)
		sluice_frag_remember(f);
	sluice_count(SLUICE_DIR_EGRESS, SLUICE_DROP_NONE, skb->len);
	if (!dst)
		return TC_ACT_OK;
	return deliver_out(skb, dst->ifindex, dst->pod_mac, dst->host_mac);
}

SEC("tc")
int sluice_lxc_out(struct __sk_buff *skb)
{
	struct sluice_flow f = {};
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_ct_hit h = {};
	int rc;

	rc = sluice_lxc_parse(skb, &f);
	if (rc || is_ndisc(&f))
		return sluice_lxc_out_slow(skb, &f, rc, 0);
	sluice_ct_find(&f, &k, &h);
	/* Fast path. Established or reply, resolved at the current endpoint
	 * epoch, and sent from the veth of the endpoint that owns the source
	 * address: the entry recorded that veth only after anti-spoofing
	 * passed for it, and any change of what owns an address moves the
	 * epoch. */
	if (!h.v || h.v->ep_epoch != sluice_ep_epoch_now() ||
	    h.src->ifindex != skb->ifindex)
		return sluice_lxc_out_slow(skb, &f, 0, !h.v);
	sluice_ct_touch(h.v, &f, bpf_jiffies64(), h.reply);
	if (f.frag == SLUICE_FRAG_FIRST)
		sluice_frag_remember(&f);
	sluice_count(SLUICE_DIR_EGRESS, SLUICE_DROP_NONE, skb->len);
	return deliver_out(skb, h.dst->ifindex, h.dst->pod_mac,
			   h.dst->host_mac);
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
	int rev;

	if (!skb || !f)
		return TC_ACT_SHOT;
	ifindex = skb->ifindex;
	ep = bpf_map_lookup_elem(&sluice_ep_if, &ifindex);
	if (!ep)
		return drop(skb, SLUICE_DIR_INGRESS,
			    SLUICE_DROP_UNKNOWN_ENDPOINT);
	if (rc < 0)
		return TC_ACT_OK;
	if (rc)
		return drop(skb, SLUICE_DIR_INGRESS, rc);
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
	if (h.v) {
		if (sluice_ct_end_is(h.src, src) && sluice_ct_end_is(h.dst, me)) {
			if (h.v->ep_epoch != epoch)
				h.v->ep_epoch = epoch;
			sluice_ct_touch(h.v, f, now, h.reply);
			goto pass;
		}
		bpf_map_delete_elem(&sluice_ct, &k);
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
			return drop(skb, SLUICE_DIR_INGRESS,
				    SLUICE_DROP_POLICY_DENY_INGRESS);
		rc = sluice_ct_create(f, &k, rev, now, epoch, rule, src_id,
				      ep->identity, src, me);
		if (rc)
			return drop(skb, SLUICE_DIR_INGRESS, rc);
	}
pass:
	if (f->frag == SLUICE_FRAG_FIRST)
		sluice_frag_remember(f);
	sluice_count(SLUICE_DIR_INGRESS, SLUICE_DROP_NONE, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int sluice_lxc_in(struct __sk_buff *skb)
{
	struct sluice_flow f = {};
	struct sluice_ct_key k __attribute__((aligned(8)));
	struct sluice_ct_hit h = {};
	int rc;

	rc = sluice_lxc_parse(skb, &f);
	if (rc || is_ndisc(&f))
		return sluice_lxc_in_slow(skb, &f, rc, 0);
	sluice_ct_find(&f, &k, &h);
	/* Fast path. Established or reply, current epoch, and this veth is
	 * the endpoint the entry delivers to. */
	if (!h.v || h.v->ep_epoch != sluice_ep_epoch_now() ||
	    h.dst->ifindex != skb->ifindex)
		return sluice_lxc_in_slow(skb, &f, 0, !h.v);
	sluice_ct_touch(h.v, &f, bpf_jiffies64(), h.reply);
	if (f.frag == SLUICE_FRAG_FIRST)
		sluice_frag_remember(&f);
	sluice_count(SLUICE_DIR_INGRESS, SLUICE_DROP_NONE, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
