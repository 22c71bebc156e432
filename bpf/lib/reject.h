/* Rejecting a new connection instead of dropping it. Kubernetes requires a
 * connection to a Service without ready endpoints to fail at once: a
 * dropped SYN leaves the client retrying for minutes, a RST or ICMP port
 * unreachable fails connect()/send() immediately with ECONNREFUSED.
 *
 * The packet the pod sent is turned into the answer in place and handed
 * back to the pod: no clone, no second packet, and nothing of it leaves the
 * node. The answer is what the pod would get from a Linux host without a
 * listener (tcp_v4_send_reset / icmp_send), so applications see the errno
 * they would see anywhere else.
 *
 * The L2 header (Ethernet and up to two in-band VLAN tags) stays where it
 * is and only the MACs are swapped; everything after it is rewritten with
 * bpf_skb_store_bytes after bpf_skb_change_tail set the new length. That
 * keeps skb->protocol, the network header offset and mac_len as the stack
 * set them, so bpf_redirect_peer delivers the answer like any other
 * packet; a VLAN tag the stack took out of band (skb->vlan_tci) stays too,
 * so the answer arrives on the pod's VLAN device. bpf_skb_adjust_room would move the network header too, but
 * refuses frames whose skb->protocol is a VLAN tag, and bpf_skb_change_head
 * leaves the network header pointing at the quoted original, not at the
 * new IP header.
 *
 * Checksums are computed from scratch (bpf_csum_diff over a zeroed stack
 * buffer: bytes past the quote are zero and add nothing, so the sums run
 * over fixed, 4-byte-multiple lengths). What a pod sends through its veth
 * is usually CHECKSUM_PARTIAL and stays so: the pod's stack takes the
 * answer as verified, and its checksums are right anyway. But such a
 * packet can be neither trimmed (bpf_skb_change_tail) nor received
 * (pskb_trim_rcsum in ip_rcv) shorter than its checksum field reaches.
 * The ICMP answers are longer than the headers they quote; a RST answering
 * a segment with IPv4 options or IPv6 extension headers would be shorter,
 * so it carries as many bytes of TCP options (zeros: EOL and padding)
 * instead of them.
 */
#ifndef SLUICE_BPF_REJECT_H
#define SLUICE_BPF_REJECT_H

#include "common.h"

#ifndef TC_ACT_OK
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#endif

/* The same answers at XDP (a NodePort without backends, answered out of
 * the node device with XDP_TX): an object defines SLUICE_REJECT_XDP before
 * including this header, and the packet accessors below take a struct
 * xdp_md. Everything else is shared. */
#ifdef SLUICE_REJECT_XDP
typedef struct xdp_md sluice_rj_ctx;
#define sluice_rj_load(c, off, to, n) bpf_xdp_load_bytes(c, off, to, n)
#define sluice_rj_store(c, off, from, n) bpf_xdp_store_bytes(c, off, from, n)
#define sluice_rj_len(c) bpf_xdp_get_buff_len(c)
#else
typedef struct __sk_buff sluice_rj_ctx;
#define sluice_rj_load(c, off, to, n) bpf_skb_load_bytes(c, off, to, n)
#define sluice_rj_store(c, off, from, n) bpf_skb_store_bytes(c, off, from, n, 0)
#define sluice_rj_len(c) ((c)->len)
#endif

/* sluice_reject_build results; negative: the packet cannot be answered and
 * may already be partly rewritten (drop it). */
#define SLUICE_REJECT_BUILT 0
#define SLUICE_REJECT_NO_REPLY 1 /* must not be answered: a RST, an ICMP
				  * error or reply, a non-first fragment */
#define SLUICE_REJECT_EINVAL (-22)

/* Linux quotes as much of the original as fits in 576 (IPv6: 1280) bytes;
 * we quote what the sender needs to find the socket: the IP header and 8
 * bytes of the upper-layer header (RFC 792). For IPv6 that includes the
 * extension headers before it, up to 32 bytes of them (a fragment header,
 * say: without the UDP ports the sender's stack ignores the error). */
#define SLUICE_REJECT_QUOTE4_MAX (60 + 8)
#define SLUICE_REJECT_QUOTE6_MAX (40 + 32 + 8)

/* ICMP and ICMPv6 error headers share this layout. */
struct sluice_icmp_err {
	__u8 type;
	__u8 code;
	__sum16 check;
	__be32 unused;
};

/* Everything after the L2 header, built on the stack. The quote follows
 * the ICMP header directly so one checksum covers both. */
union sluice_reject_buf {
	struct {
		struct iphdr ip;
		struct sluice_icmp_err icmp;
		__u8 quote[SLUICE_REJECT_QUOTE4_MAX];
	} i4;
	struct {
		struct ipv6hdr ip6;
		struct sluice_icmp_err icmp;
		__u8 quote[SLUICE_REJECT_QUOTE6_MAX];
	} i6;
	struct {
		struct iphdr ip;
		struct tcphdr tcp;
		__u8 opts[40]; /* zeros, see sluice_reject_v4 */
	} t4;
	struct {
		struct ipv6hdr ip6;
		struct tcphdr tcp;
		__u8 opts[40];
	} t6;
};

static __always_inline __sum16 sluice_csum_fold(__s64 csum)
{
	__u32 sum = (__u32)csum;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__sum16)~sum;
}

/* The checksum field value for len bytes at p (a multiple of 4), plus
 * seed: a partial sum in the same (memory) byte order. */
static __always_inline __sum16 sluice_csum(void *p, __u32 len, __u32 seed)
{
	return sluice_csum_fold(bpf_csum_diff(NULL, 0, (__be32 *)p, len, seed));
}

static __always_inline void sluice_swap_ip6(struct ipv6hdr *ip6)
{
	__u32 *s = (__u32 *)&ip6->saddr, *d = (__u32 *)&ip6->daddr;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 t = s[i];

		s[i] = d[i];
		d[i] = t;
	}
}

/* The ports swap, the sequence numbers follow tcp_v4_send_reset: a segment
 * with ACK is answered at its ack_seq, one without is acknowledged in full
 * (payload, SYN and FIN count). payload: the segment's data length. pad:
 * bytes of zero options (EOL, padding) that keep the RST as long as the
 * IP options / extension headers it does not carry (see sluice_reject_v4). */
static __always_inline void sluice_reject_rst(struct tcphdr *th, __u32 payload,
					      __u32 pad)
{
	__u8 *raw = (__u8 *)th;
	__u8 flags = raw[13];
	__be16 port = th->source;

	th->source = th->dest;
	th->dest = port;
	if (flags & 0x10 /* ACK */) {
		th->seq = th->ack_seq;
		th->ack_seq = 0;
		raw[13] = 0x04; /* RST */
	} else {
		th->ack_seq = bpf_htonl(bpf_ntohl(th->seq) + payload +
					(flags & 0x02 ? 1 : 0) +
					(flags & 0x01 ? 1 : 0));
		th->seq = 0;
		raw[13] = 0x14; /* RST|ACK */
	}
	raw[12] = (5 + pad / 4) << 4; /* the segment's options are not echoed */
	th->window = 0;
	th->check = 0;
	th->urg_ptr = 0;
}

/* Replaces everything from l3_off on with the first len bytes of b. */
static __always_inline int sluice_reject_write(sluice_rj_ctx *skb,
					       __u32 l3_off, void *b, __u32 len)
{
	__u32 new_len = l3_off + len;

#ifdef SLUICE_REJECT_XDP
	/* An XDP frame is linear here and carries full checksums. */
	if (bpf_xdp_adjust_tail(skb, (int)new_len - (int)sluice_rj_len(skb)))
		return SLUICE_REJECT_EINVAL;
	return bpf_xdp_store_bytes(skb, l3_off, b, len);
#else
	/* Only a failed grow is fatal. A packet that cannot shrink (its
	 * CHECKSUM_PARTIAL field lies beyond new_len: more than 40 bytes of
	 * IPv6 extension headers) goes with trailing bytes; a pod's stack
	 * drops it too then (pskb_trim_rcsum), which is no worse than the
	 * drop it replaces. */
	if (bpf_skb_change_tail(skb, new_len, 0) && skb->len < new_len)
		return SLUICE_REJECT_EINVAL;
	return bpf_skb_store_bytes(skb, l3_off, b, len, BPF_F_RECOMPUTE_CSUM);
#endif
}

static __always_inline int sluice_reject_v4(sluice_rj_ctx *skb,
					    __u32 l3_off, __u32 l4_proto,
					    __u32 l4_off,
					    union sluice_reject_buf *b)
{
	struct iphdr *ip = &b->i4.ip; /* == &b->t4.ip */
	struct iphdr *orig = (struct iphdr *)b->i4.quote;
	__u32 ihl, tot, quote, avail;

	if (sluice_rj_load(skb, l3_off, ip, sizeof(*ip)))
		return SLUICE_REJECT_EINVAL;
	ihl = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (ip->version != 4 || ihl < sizeof(*ip) || tot < ihl ||
	    l4_off != l3_off + ihl)
		return SLUICE_REJECT_EINVAL;
	/* icmp_send answers only first fragments; TCP has no header in the
	 * others. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return SLUICE_REJECT_NO_REPLY;

	if (l4_proto == IPPROTO_TCP) {
		struct tcphdr *th = &b->t4.tcp;
		__u32 doff, pad = ihl - sizeof(*ip);
		__be32 addr;

		if (sluice_rj_load(skb, l4_off, th, sizeof(*th)))
			return SLUICE_REJECT_EINVAL;
		if (((__u8 *)th)[13] & 0x04 /* RST */)
			return SLUICE_REJECT_NO_REPLY;
		doff = th->doff * 4;
		if (doff < sizeof(*th) || tot < ihl + doff ||
		    pad > sizeof(b->t4.opts))
			return SLUICE_REJECT_EINVAL;
		/* The RST has no IP options but as many bytes of TCP options:
		 * a pod's packet is usually CHECKSUM_PARTIAL, and a packet
		 * shorter than its checksum field's offset can be neither
		 * trimmed here nor taken in by the pod's IP layer
		 * (pskb_trim_rcsum). */
		sluice_reject_rst(th, tot - ihl - doff, pad);

		addr = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = addr;
		*(__u8 *)ip = 0x45;
		ip->tos &= ~3; /* ECN is per connection; this is none */
		ip->tot_len = bpf_htons(sizeof(*ip) + sizeof(*th) + pad);
		ip->id = 0;
		ip->frag_off = bpf_htons(0x4000); /* DF */
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->check = 0;
		ip->check = sluice_csum(ip, sizeof(*ip), 0);
		/* Pseudo header: the addresses, contiguous with the TCP
		 * header; protocol and length come in as the seed. The
		 * options are zeros: summing all their room adds nothing. */
		th->check = sluice_csum(&ip->saddr,
					8 + sizeof(*th) + sizeof(b->t4.opts),
					bpf_htons(IPPROTO_TCP) +
						bpf_htons(sizeof(*th) + pad));
		return sluice_reject_write(skb, l3_off, b,
					   sizeof(*ip) + sizeof(*th) + pad);
	}

	if (l4_proto == IPPROTO_ICMP) {
		__u8 type;

		/* Only queries are answered: never an error (RFC 1122
		 * 3.2.2), nor a reply. */
		if (sluice_rj_load(skb, l4_off, &type, 1))
			return SLUICE_REJECT_EINVAL;
		if (type != 8 && type != 13 && type != 15 && type != 17)
			return SLUICE_REJECT_NO_REPLY;
	}

	/* The header with options and 8 bytes of what follows, or less if
	 * the datagram is shorter (never the link layer's padding). */
	avail = sluice_rj_len(skb) - l3_off;
	if (tot > avail)
		tot = avail;
	quote = ihl + 8;
	if (quote > tot)
		quote = tot;
	if (quote < sizeof(*ip) || quote > SLUICE_REJECT_QUOTE4_MAX)
		return SLUICE_REJECT_EINVAL;
	if (sluice_rj_load(skb, l3_off, b->i4.quote, quote))
		return SLUICE_REJECT_EINVAL;

	/* The new header over the loaded copy of the old one: every field
	 * is set, the old addresses come from the quote. */
	*(__u8 *)ip = 0x45;
	/* icmp_send: the precedence of network control, the TOS kept. */
	ip->tos = 0xc0 | (orig->tos & 0x1e);
	ip->tot_len = bpf_htons(sizeof(*ip) + sizeof(b->i4.icmp) + quote);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->check = 0;
	ip->saddr = orig->daddr;
	ip->daddr = orig->saddr;
	ip->check = sluice_csum(ip, sizeof(*ip), 0);
	b->i4.icmp.type = 3; /* destination unreachable */
	b->i4.icmp.code = 3; /* port unreachable */
	b->i4.icmp.check = sluice_csum(
		&b->i4.icmp, sizeof(b->i4.icmp) + SLUICE_REJECT_QUOTE4_MAX, 0);
	return sluice_reject_write(skb, l3_off, b,
				   sizeof(*ip) + sizeof(b->i4.icmp) + quote);
}

static __always_inline int sluice_reject_v6(sluice_rj_ctx *skb,
					    __u32 l3_off, __u32 l4_proto,
					    __u32 l4_off,
					    union sluice_reject_buf *b)
{
	struct ipv6hdr *ip6 = &b->i6.ip6; /* == &b->t6.ip6 */
	struct ipv6hdr *orig = (struct ipv6hdr *)b->i6.quote;
	__u32 tot, quote, avail;

	if (sluice_rj_load(skb, l3_off, ip6, sizeof(*ip6)))
		return SLUICE_REJECT_EINVAL;
	tot = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (ip6->version != 6 || l4_off < l3_off + sizeof(*ip6) ||
	    l4_off > l3_off + tot)
		return SLUICE_REJECT_EINVAL;

	if (l4_proto == IPPROTO_TCP) {
		struct tcphdr *th = &b->t6.tcp;
		__u32 doff, hdrs, tclass, pad;

		if (sluice_rj_load(skb, l4_off, th, sizeof(*th)))
			return SLUICE_REJECT_EINVAL;
		if (((__u8 *)th)[13] & 0x04 /* RST */)
			return SLUICE_REJECT_NO_REPLY;
		doff = th->doff * 4;
		hdrs = l4_off - l3_off + doff; /* IPv6, extensions, TCP */
		if (doff < sizeof(*th) || tot < hdrs)
			return SLUICE_REJECT_EINVAL;
		/* No extension headers, as many bytes of TCP options as fit
		 * (see sluice_reject_v4). */
		pad = (l4_off - l3_off - sizeof(*ip6)) & ~3;
		if (pad > sizeof(b->t6.opts))
			pad = sizeof(b->t6.opts);
		sluice_reject_rst(th, tot - hdrs, pad);

		/* tcp_v6_send_reset: the traffic class without ECN, no flow
		 * label. */
		tclass = (bpf_ntohl(*(__be32 *)ip6) >> 20) & 0xfc;
		*(__be32 *)ip6 = bpf_htonl(6 << 28 | tclass << 20);
		ip6->payload_len = bpf_htons(sizeof(*th) + pad);
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = 64;
		sluice_swap_ip6(ip6);
		th->check = sluice_csum(&ip6->saddr,
					32 + sizeof(*th) + sizeof(b->t6.opts),
					bpf_htons(IPPROTO_TCP) +
						bpf_htons(sizeof(*th) + pad));
		return sluice_reject_write(skb, l3_off, b,
					   sizeof(*ip6) + sizeof(*th) + pad);
	}

	if (l4_proto == 58 /* ICMPv6 */) {
		__u8 type;

		/* Types below 128 are errors (RFC 4443 2.4 e); of the
		 * informational ones only an echo request is a "connection"
		 * attempt (the rest is replies, ND, MLD). */
		if (sluice_rj_load(skb, l4_off, &type, 1))
			return SLUICE_REJECT_EINVAL;
		if (type != 128)
			return SLUICE_REJECT_NO_REPLY;
	}

	/* Through 8 bytes of the upper-layer header; with a longer
	 * extension chain the first SLUICE_REJECT_QUOTE6_MAX bytes. */
	avail = sluice_rj_len(skb) - l3_off;
	if (tot > avail)
		tot = avail;
	quote = l4_off - l3_off + 8;
	if (quote > SLUICE_REJECT_QUOTE6_MAX)
		quote = SLUICE_REJECT_QUOTE6_MAX;
	if (quote > tot)
		quote = tot;
	if (quote < sizeof(*ip6) || quote > SLUICE_REJECT_QUOTE6_MAX)
		return SLUICE_REJECT_EINVAL;
	if (sluice_rj_load(skb, l3_off, b->i6.quote, quote))
		return SLUICE_REJECT_EINVAL;

	/* Every field of the new header is set. */
	*(__be32 *)ip6 = bpf_htonl(6 << 28);
	ip6->payload_len = bpf_htons(sizeof(b->i6.icmp) + quote);
	ip6->nexthdr = 58;
	ip6->hop_limit = 64;
	__builtin_memcpy(&ip6->saddr, &orig->daddr, 16);
	__builtin_memcpy(&ip6->daddr, &orig->saddr, 16);
	b->i6.icmp.type = 1; /* destination unreachable */
	b->i6.icmp.code = 4; /* port unreachable */
	b->i6.icmp.check = sluice_csum(
		&ip6->saddr, 32 + sizeof(b->i6.icmp) + SLUICE_REJECT_QUOTE6_MAX,
		bpf_htons(sizeof(b->i6.icmp) + quote) + bpf_htons(58));
	return sluice_reject_write(skb, l3_off, b,
				   sizeof(*ip6) + sizeof(b->i6.icmp) + quote);
}

/* Rewrites the packet into the answer its sender should get for a closed
 * port. skb: at tcx ingress of a pod's host-side veth, so the answer goes
 * back with bpf_redirect_peer (see sluice_reject). l3_off: offset of the IP
 * header from skb->data (Ethernet + at most 2 VLAN tags). family: AF_INET
 * or AF_INET6. l4_proto: the upper-layer protocol, after IPv6 extension
 * headers (sluice_flow.proto). l4_off: offset of its header (IPv4: l3_off +
 * IHL; sluice_flow.l4_off), or 0 when the packet has none, i.e. a non-first
 * fragment (IPv6 ones cannot be told apart here; IPv4 ones are also
 * recognised by their header). Returns SLUICE_REJECT_BUILT,
 * SLUICE_REJECT_NO_REPLY (packet untouched) or negative (drop; the packet
 * may be partly rewritten). Global: verified once, on its own, not as part
 * of every path through the caller. */
__attribute__((noinline)) int sluice_reject_build(sluice_rj_ctx *skb,
						  __u32 l3_off, __u32 family,
						  __u32 l4_proto, __u32 l4_off)
{
	union sluice_reject_buf b;
	__u8 mac[12];
	int rc;

	if (!skb)
		return SLUICE_REJECT_EINVAL;
	if (!l4_off)
		return SLUICE_REJECT_NO_REPLY; /* RFC 1122 3.2.2, RFC 792 */
	if (l3_off < ETH_HLEN || l3_off > ETH_HLEN + 8 || l4_off > 0xffff)
		return SLUICE_REJECT_EINVAL;
	if (sluice_rj_load(skb, 0, mac, sizeof(mac)))
		return SLUICE_REJECT_EINVAL;
	__builtin_memset(&b, 0, sizeof(b));
	if (family == AF_INET)
		rc = sluice_reject_v4(skb, l3_off, l4_proto, l4_off, &b);
	else if (family == AF_INET6)
		rc = sluice_reject_v6(skb, l3_off, l4_proto, l4_off, &b);
	else
		rc = SLUICE_REJECT_EINVAL;
	if (rc)
		return rc;
	/* h_dest, h_source swapped: the answer comes from where the packet
	 * went. */
	if (sluice_rj_store(skb, 0, mac + ETH_ALEN, ETH_ALEN) ||
	    sluice_rj_store(skb, ETH_ALEN, mac, ETH_ALEN))
		return SLUICE_REJECT_EINVAL;
	return SLUICE_REJECT_BUILT;
}

/* sluice_reject_build, then the answer into the pod's netns (ingress of
 * the veth's peer; this veth's tcx egress is skipped). Returns the TC
 * verdict: TC_ACT_REDIRECT, or TC_ACT_SHOT when there is nothing to send
 * or building failed (the caller counts the drop either way). */
#ifndef SLUICE_REJECT_XDP
static __always_inline int sluice_reject(struct __sk_buff *skb, __u32 l3_off,
					 __u32 family, __u32 l4_proto,
					 __u32 l4_off)
{
	if (sluice_reject_build(skb, l3_off, family, l4_proto, l4_off))
		return TC_ACT_SHOT;
	return bpf_redirect_peer(skb->ifindex, 0);
}
#endif

#endif
