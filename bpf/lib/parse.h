/* Header parsing shared by XDP and TC programs. Bounded (at most two VLAN
 * tags) and strict: anything truncated or inconsistent is reported as
 * malformed so callers drop it instead of guessing.
 */
#ifndef SLUICE_BPF_PARSE_H
#define SLUICE_BPF_PARSE_H

#include "common.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct sluice_l3 {
	__u16 proto;   /* host order EtherType after VLAN tags */
	__u16 l3_off;  /* offset of the IP header from data */
	__u8 family;   /* AF_INET / AF_INET6, 0 for non-IP */
	__u8 l4_proto; /* IPPROTO_* of the first header after the IP header */
	__u8 ihl_bytes;
	__u8 pad;
	union {
		struct iphdr *ip4;
		struct ipv6hdr *ip6;
	};
};

enum sluice_parse_rc {
	SLUICE_PARSE_OK = 0,
	SLUICE_PARSE_NOT_IP = 1,
	SLUICE_PARSE_MALFORMED = 2,
};

/* Parses Ethernet, up to two 802.1Q/802.1ad tags and the fixed IPv4/IPv6
 * header. On SLUICE_PARSE_OK the IP header is fully inside the packet. */
static __always_inline int sluice_parse_l3(void *data, void *data_end,
					   struct sluice_l3 *l3)
{
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return SLUICE_PARSE_MALFORMED;
	proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh;

		if (proto != bpf_htons(ETH_P_8021Q) &&
		    proto != bpf_htons(ETH_P_8021AD))
			break;
		vh = data + off;
		if ((void *)(vh + 1) > data_end)
			return SLUICE_PARSE_MALFORMED;
		proto = vh->encap_proto;
		off += sizeof(*vh);
	}
	/* A third tag is not parsed; passing it as "non-IP" would let a
	 * triple-tagged frame skip every check, so it is malformed. */
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return SLUICE_PARSE_MALFORMED;

	l3->proto = bpf_ntohs(proto);
	l3->l3_off = off;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + off;

		if ((void *)(ip + 1) > data_end)
			return SLUICE_PARSE_MALFORMED;
		if (ip->version != 4 || ip->ihl < 5)
			return SLUICE_PARSE_MALFORMED;
		if (data + off + ip->ihl * 4 > data_end)
			return SLUICE_PARSE_MALFORMED;
		l3->family = AF_INET;
		l3->ip4 = ip;
		l3->l4_proto = ip->protocol;
		l3->ihl_bytes = ip->ihl * 4;
		return SLUICE_PARSE_OK;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + off;

		if ((void *)(ip6 + 1) > data_end)
			return SLUICE_PARSE_MALFORMED;
		if (ip6->version != 6)
			return SLUICE_PARSE_MALFORMED;
		l3->family = AF_INET6;
		l3->ip6 = ip6;
		l3->l4_proto = ip6->nexthdr;
		l3->ihl_bytes = sizeof(*ip6);
		return SLUICE_PARSE_OK;
	}
	l3->family = 0;
	return SLUICE_PARSE_NOT_IP;
}

#endif
