/* The 5-tuple of an IP packet for policy and conntrack: IPv4 options are
 * skipped by IHL, IPv6 extension headers are walked (bounded), fragments
 * are classified so non-first fragments never pass on ports they do not
 * carry. */
#ifndef SLUICE_BPF_L4_H
#define SLUICE_BPF_L4_H

#include "common.h"
#include "parse.h"

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif
#define SLUICE_NEXTHDR_HOP 0
#define SLUICE_NEXTHDR_ROUTING 43
#define SLUICE_NEXTHDR_FRAGMENT 44
#define SLUICE_NEXTHDR_AUTH 51
#define SLUICE_NEXTHDR_DEST 60
#define SLUICE_IPV6_EXT_MAX 8

enum sluice_frag_kind {
	SLUICE_FRAG_NONE = 0,
	SLUICE_FRAG_FIRST = 1, /* carries the L4 header, more follow */
	SLUICE_FRAG_LATER = 2, /* no L4 header: ports come from sluice_frag */
};

struct sluice_flow {
	__u8 family;
	__u8 proto;     /* upper-layer protocol */
	__u8 frag;      /* enum sluice_frag_kind */
	__u8 tcp_flags; /* byte 13 of the TCP header */
	__u32 frag_id;
	__be16 sport;
	__be16 dport;
	__u8 saddr[16]; /* offset 12, 4-aligned: read as __u32 words */
	__u8 daddr[16];
	__u8 icmp_type;
	__u8 pad;
	__u16 l3_off; /* of the IP header, from data (NAT rewrites) */
	__u16 l4_off; /* of the L4 header (not valid for later fragments) */
	__u16 pad2;
};

#define SLUICE_TCP_FIN 0x01
#define SLUICE_TCP_SYN 0x02
#define SLUICE_TCP_RST 0x04
#define SLUICE_TCP_ACK 0x10

struct sluice_ipv6_ext {
	__u8 nexthdr;
	__u8 hdrlen;
	__be16 frag_off; /* fragment header only */
	__be32 id;       /* fragment header only */
};

/* Returns 0 or a drop reason. `l3` comes from sluice_parse_l3. */
static __always_inline int sluice_parse_flow(void *data, void *data_end,
					     const struct sluice_l3 *l3,
					     struct sluice_flow *f)
{
	__u32 off = l3->l3_off + l3->ihl_bytes;
	__u8 proto = l3->l4_proto;

	f->family = l3->family;
	if (l3->family == AF_INET) {
		__u16 fo = bpf_ntohs(l3->ip4->frag_off);

		__builtin_memcpy(f->saddr, &l3->ip4->saddr, 4);
		__builtin_memcpy(f->daddr, &l3->ip4->daddr, 4);
		f->frag_id = bpf_ntohs(l3->ip4->id);
		if (fo & 0x1fff)
			f->frag = SLUICE_FRAG_LATER;
		else if (fo & 0x2000)
			f->frag = SLUICE_FRAG_FIRST;
	} else {
		__builtin_memcpy(f->saddr, &l3->ip6->saddr, 16);
		__builtin_memcpy(f->daddr, &l3->ip6->daddr, 16);
#pragma unroll
		for (int i = 0; i < SLUICE_IPV6_EXT_MAX; i++) {
			struct sluice_ipv6_ext *h = data + off;

			if (proto != SLUICE_NEXTHDR_HOP &&
			    proto != SLUICE_NEXTHDR_ROUTING &&
			    proto != SLUICE_NEXTHDR_FRAGMENT &&
			    proto != SLUICE_NEXTHDR_AUTH &&
			    proto != SLUICE_NEXTHDR_DEST)
				goto l4;
			if ((void *)h + 8 > data_end)
				return SLUICE_DROP_MALFORMED;
			if (proto == SLUICE_NEXTHDR_FRAGMENT) {
				__u16 fo = bpf_ntohs(h->frag_off);

				f->frag_id = bpf_ntohl(h->id);
				if (fo & 0xfff8)
					f->frag = SLUICE_FRAG_LATER;
				else if (fo & 1)
					f->frag = SLUICE_FRAG_FIRST;
				off += 8;
			} else if (proto == SLUICE_NEXTHDR_AUTH) {
				off += (h->hdrlen + 2) * 4;
			} else {
				off += (h->hdrlen + 1) * 8;
			}
			proto = h->nexthdr;
		}
		return SLUICE_DROP_IPV6_EXT_UNSUPPORTED;
	}
l4:
	f->proto = proto;
	f->l3_off = l3->l3_off;
	f->l4_off = off;
	if (f->frag == SLUICE_FRAG_LATER)
		return 0;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
	    proto == IPPROTO_SCTP) {
		__be16 *ports = data + off;

		if ((void *)ports + 4 > data_end)
			return SLUICE_DROP_MALFORMED;
		f->sport = ports[0];
		f->dport = ports[1];
		if (proto == IPPROTO_TCP) {
			__u8 *tcp = data + off;

			/* The flags byte sits at offset 13. */
			if ((void *)tcp + 14 > data_end)
				return SLUICE_DROP_MALFORMED;
			f->tcp_flags = tcp[13];
		}
	} else if (proto == IPPROTO_ICMP || proto == 58 /* ICMPv6 */) {
		__u8 *icmp = data + off;

		if ((void *)icmp + 8 > data_end)
			return SLUICE_DROP_MALFORMED;
		f->icmp_type = icmp[0];
		/* Echo request/reply: the identifier keys the "connection". */
		if (icmp[0] == 8 || icmp[0] == 0 || icmp[0] == 128 ||
		    icmp[0] == 129) {
			f->sport = *(__be16 *)(icmp + 4);
			f->dport = f->sport;
		}
	}
	return 0;
}

#endif
