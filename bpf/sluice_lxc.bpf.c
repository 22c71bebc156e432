/* sluice_lxc: the pod datapath, attached with tcx links on each pod's
 * host-side veth.
 *   sluice_lxc_out  tcx ingress: packets the pod sends
 *   sluice_lxc_in   tcx egress:  packets the host stack routes to the pod
 * Anti-spoofing, conntrack, identity-based NetworkPolicy on new
 * connections, local delivery with bpf_redirect_peer. Packet walks:
 * docs/design-pod-networking.md. */
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
				__u32 reason, const struct sluice_l3 *l3)
{
	sluice_drop(skb->ifindex, dir, reason, skb->len, l3);
	return TC_ACT_SHOT;
}

/* Neighbour discovery uses link-local and unspecified sources: it is not
 * pod traffic, so neither anti-spoofing nor policy applies to it. */
static __always_inline int is_ndisc(const struct sluice_flow *f)
{
	return f->family == AF_INET6 && f->proto == 58 &&
	       f->icmp_type >= 133 && f->icmp_type <= 137;
}

static __always_inline int parse(struct __sk_buff *skb, struct sluice_l3 *l3,
				 struct sluice_flow *f)
{
	void *data, *data_end;
	int rc;

	if (skb->data_end - skb->data < SLUICE_PULL_LEN &&
	    skb->len > skb->data_end - skb->data)
		bpf_skb_pull_data(skb, skb->len < SLUICE_PULL_LEN ?
					       skb->len : SLUICE_PULL_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	rc = sluice_parse_l3(data, data_end, l3);
	if (rc != SLUICE_PARSE_OK)
		return rc == SLUICE_PARSE_NOT_IP ? -1 : SLUICE_DROP_MALFORMED;
	rc = sluice_parse_flow(data, data_end, l3, f);
	if (rc)
		return rc;
	if (f->frag == SLUICE_FRAG_LATER)
		return sluice_frag_ports(f);
	return 0;
}

SEC("tc")
int sluice_lxc_out(struct __sk_buff *skb)
{
	struct sluice_l3 l3 = {};
	struct sluice_flow f = {};
	struct sluice_endpoint *ep, *dst;
	__u32 ifindex = skb->ifindex;
	__u64 now;
	int rc;

	ep = bpf_map_lookup_elem(&sluice_ep_if, &ifindex);
	if (!ep)
		return drop(skb, SLUICE_DIR_EGRESS, SLUICE_DROP_UNKNOWN_ENDPOINT,
			    NULL);
	rc = parse(skb, &l3, &f);
	if (rc < 0)
		return TC_ACT_OK; /* ARP and other non-IP */
	if (rc)
		return drop(skb, SLUICE_DIR_EGRESS, rc, NULL);
	if (is_ndisc(&f))
		return TC_ACT_OK;
	if (!sluice_ep_owns(ep, f.family, f.saddr))
		return drop(skb, SLUICE_DIR_EGRESS, SLUICE_DROP_SPOOFED_SOURCE,
			    NULL);

	now = bpf_jiffies64();
	dst = sluice_ep_by_addr(f.family, f.daddr);
	if (sluice_ct_lookup(&f, now) == SLUICE_CT_NEW) {
		__u32 dst_id, dst_cidr, rule = 0, rule_in = 0;
		__u16 dport = bpf_ntohs(f.dport);

		sluice_ipcache_get(f.family, f.daddr, &dst_id, &dst_cidr);
		if (dst)
			dst_id = dst->identity;
		if ((ep->flags & SLUICE_EP_EGRESS_ENFORCED) &&
		    !sluice_policy_allows(ep->ep_id, SLUICE_DIR_EGRESS, f.proto,
					  dport, dst_id, dst_cidr, &rule))
			return drop(skb, SLUICE_DIR_EGRESS,
				    SLUICE_DROP_POLICY_DENY_EGRESS, NULL);
		/* A local destination is reached with bpf_redirect_peer, which
		 * skips its own hooks: its ingress policy is applied here. */
		if (dst && (dst->flags & SLUICE_EP_INGRESS_ENFORCED)) {
			__u32 src_id, src_cidr;

			sluice_ipcache_get(f.family, f.saddr, &src_id,
					   &src_cidr);
			if (!sluice_policy_allows(dst->ep_id, SLUICE_DIR_INGRESS,
						  f.proto, dport, ep->identity,
						  src_cidr, &rule_in))
				return drop(skb, SLUICE_DIR_INGRESS,
					    SLUICE_DROP_POLICY_DENY_INGRESS,
					    NULL);
		}
		rc = sluice_ct_create(&f, now, rule ? rule : rule_in,
				      ep->identity, dst_id);
		if (rc)
			return drop(skb, SLUICE_DIR_EGRESS, rc, NULL);
	}
	if (f.frag == SLUICE_FRAG_FIRST)
		sluice_frag_remember(&f);
	sluice_count(SLUICE_DIR_EGRESS, SLUICE_DROP_NONE, skb->len);
	if (dst) {
		void *data = (void *)(long)skb->data;
		struct ethhdr *eth = data;

		if ((void *)(eth + 1) > (void *)(long)skb->data_end)
			return drop(skb, SLUICE_DIR_EGRESS,
				    SLUICE_DROP_MALFORMED, NULL);
		__builtin_memcpy(eth->h_dest, dst->pod_mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, dst->host_mac, ETH_ALEN);
		return bpf_redirect_peer(dst->ifindex, 0);
	}
	return TC_ACT_OK;
}

SEC("tc")
int sluice_lxc_in(struct __sk_buff *skb)
{
	struct sluice_l3 l3 = {};
	struct sluice_flow f = {};
	struct sluice_endpoint *ep;
	__u32 ifindex = skb->ifindex;
	__u64 now;
	int rc;

	ep = bpf_map_lookup_elem(&sluice_ep_if, &ifindex);
	if (!ep)
		return drop(skb, SLUICE_DIR_INGRESS,
			    SLUICE_DROP_UNKNOWN_ENDPOINT, NULL);
	rc = parse(skb, &l3, &f);
	if (rc < 0)
		return TC_ACT_OK;
	if (rc)
		return drop(skb, SLUICE_DIR_INGRESS, rc, NULL);
	if (is_ndisc(&f))
		return TC_ACT_OK;

	now = bpf_jiffies64();
	if (sluice_ct_lookup(&f, now) == SLUICE_CT_NEW) {
		__u32 src_id, src_cidr, rule = 0;

		sluice_ipcache_get(f.family, f.saddr, &src_id, &src_cidr);
		/* The node itself may always reach its pods (kubelet probes),
		 * as Kubernetes expects of NetworkPolicy implementations. */
		if (src_id != SLUICE_ID_HOST &&
		    (ep->flags & SLUICE_EP_INGRESS_ENFORCED) &&
		    !sluice_policy_allows(ep->ep_id, SLUICE_DIR_INGRESS, f.proto,
					  bpf_ntohs(f.dport), src_id, src_cidr,
					  &rule))
			return drop(skb, SLUICE_DIR_INGRESS,
				    SLUICE_DROP_POLICY_DENY_INGRESS, NULL);
		rc = sluice_ct_create(&f, now, rule, src_id, ep->identity);
		if (rc)
			return drop(skb, SLUICE_DIR_INGRESS, rc, NULL);
	}
	if (f.frag == SLUICE_FRAG_FIRST)
		sluice_frag_remember(&f);
	sluice_count(SLUICE_DIR_INGRESS, SLUICE_DROP_NONE, skb->len);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
