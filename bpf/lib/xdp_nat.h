/* Packet rewrites at XDP: checksum folding, the full address/port rewrite
 * of north-south forwarding, and IP-in-IP encapsulation and decapsulation.
 * Direct packet access only (no load/store helpers): these run per
 * forwarded packet. Frames are untagged (the IP header at ETH_HLEN). */
#ifndef SLUICE_BPF_XDP_NAT_H
#define SLUICE_BPF_XDP_NAT_H

#include "common.h"
#include "l4.h"

/* The frame's length. A helper, not data_end - data: the compiler may
 * narrow that to a 32-bit spill of a packet pointer, which the verifier
 * refuses. */
static __always_inline __u32 sluice_xdp_len(struct xdp_md *ctx)
{
	return bpf_xdp_get_buff_len(ctx);
}

static __always_inline __u16 sluice_xdp_csum_fold(__s64 s)
{
	__u64 c = (__u64)s;

	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)c;
}

/* The L4 checksum field of f's packet, or NULL when there is none to fix
 * (SCTP: CRC32c over no pseudo-header; an IPv4 UDP datagram sent without
 * checksum). */
static __always_inline __u16 *sluice_xdp_l4_csum(void *data, void *end,
						 const struct sluice_flow *f)
{
	__u32 off = f->l4_off;
	__u16 *c;

	if (off > 256)
		return NULL;
	if (f->proto == IPPROTO_TCP) {
		c = data + off + 16;
	} else if (f->proto == IPPROTO_UDP) {
		c = data + off + 6;
		if ((void *)(c + 1) <= end && !*c && f->family == AF_INET)
			return NULL;
	} else {
		return NULL;
	}
	return (void *)(c + 1) <= end ? c : NULL;
}

/* Both ports as one word in packet (memory) order: sport first. */
#define SLUICE_PORTS(sp, dp) (((__u32)(dp) << 16) | (__u32)(sp))

/* f's packet goes from s to d, ports = SLUICE_PORTS(sport, dport) (all
 * network order; addresses 16 bytes, IPv4 in the first 4): addresses,
 * ports, the IPv4 header checksum and the L4 checksum (pseudo-header and
 * ports) follow, and so does f. SCTP ports cannot change (no helper redoes
 * its CRC32c). Out of line: its checksum scratch would otherwise sit in
 * every caller's frame. 0 or -1. */
static __noinline int sluice_xdp_nat(struct xdp_md *ctx, struct sluice_flow *f,
				     const __u8 *s, const __u8 *d, __u32 ports)
{
	void *data, *end;
	__be32 from[9], to[9];
	__u32 off;
	__be32 *l4;
	__u16 *c;
	__s64 diff;

	if (!ctx || !f || !s || !d)
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	off = f->l4_off;
	if (f->proto == IPPROTO_SCTP &&
	    ports != SLUICE_PORTS(f->sport, f->dport))
		return -1;
	if (off > 256)
		return -1;
	l4 = data + off;
	if ((void *)(l4 + 1) > end)
		return -1;
	c = sluice_xdp_l4_csum(data, end, f);
	if (f->family == AF_INET) {
		struct iphdr *ip = data + ETH_HLEN;

		if ((void *)(ip + 1) > end)
			return -1;
		from[0] = ip->saddr;
		from[1] = ip->daddr;
		from[2] = *l4;
		__builtin_memcpy(&to[0], s, 4);
		__builtin_memcpy(&to[1], d, 4);
		to[2] = ports;
		diff = bpf_csum_diff(from, 8, to, 8, (__u16)~ip->check);
		if (diff < 0)
			return -1;
		ip->check = ~sluice_xdp_csum_fold(diff);
		if (c) {
			diff = bpf_csum_diff(from, 12, to, 12, (__u16)~*c);
			if (diff < 0)
				return -1;
			*c = ~sluice_xdp_csum_fold(diff);
		}
		ip->saddr = to[0];
		ip->daddr = to[1];
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;

		if ((void *)(ip6 + 1) > end)
			return -1;
		__builtin_memcpy(from, &ip6->saddr, 32);
		from[8] = *l4;
		__builtin_memcpy(to, s, 16);
		__builtin_memcpy(&to[4], d, 16);
		to[8] = ports;
		if (c) {
			diff = bpf_csum_diff(from, 36, to, 36, (__u16)~*c);
			if (diff < 0)
				return -1;
			*c = ~sluice_xdp_csum_fold(diff);
		}
		__builtin_memcpy(&ip6->saddr, to, 32);
	}
	/* UDP sends a computed 0 as 0xffff: 0 means "no checksum". */
	if (c && f->proto == IPPROTO_UDP && !*c)
		*c = 0xffff;
	*l4 = ports;
	__builtin_memcpy(f->saddr, s, 16);
	__builtin_memcpy(f->daddr, d, 16);
	f->sport = (__be16)ports;
	f->dport = (__be16)(ports >> 16);
	return 0;
}

/* Ones' complement sum of an IPv4 header built on the stack. */
static __always_inline __u16 sluice_ip4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	return ~sluice_xdp_csum_fold(sum);
}

/* Wraps f's packet (untagged) in an outer IP header of its own family:
 * src -> dst, protocol IPIP (IPv4) or IPV6 (IPv6), DF, and `tag` in the
 * IPv4 identification or the low 16 bits of the IPv6 flow label. The
 * Ethernet header is rebuilt from smac/dmac. 0 or -1 (then the packet may
 * be half-built: drop it). */
static __always_inline int sluice_xdp_encap(struct xdp_md *ctx, __u8 family,
					    const __u8 *src, const __u8 *dst,
					    __be16 tag, const __u8 *smac,
					    const __u8 *dmac)
{
	int olen = family == AF_INET ? 20 : 40;
	void *data, *end;
	struct ethhdr *eth;
	__u16 inner_len;

	if (bpf_xdp_adjust_head(ctx, -olen))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if (family == AF_INET) {
		struct iphdr *o = data + ETH_HLEN, h = {};
		struct iphdr *in = (void *)(o + 1);

		if ((void *)(in + 1) > end)
			return -1;
		inner_len = bpf_ntohs(in->tot_len);
		h.version = 4;
		h.ihl = 5;
		h.tos = in->tos;
		h.tot_len = bpf_htons(inner_len + 20);
		h.id = tag;
		h.frag_off = bpf_htons(0x4000); /* DF: never fragmented */
		h.ttl = 64;
		h.protocol = IPPROTO_IPIP;
		__builtin_memcpy(&h.saddr, src, 4);
		__builtin_memcpy(&h.daddr, dst, 4);
		h.check = sluice_ip4_csum(&h);
		*o = h;
		eth->h_proto = bpf_htons(ETH_P_IP);
	} else {
		struct ipv6hdr *o = data + ETH_HLEN;
		struct ipv6hdr *in = o + 1;
		__u8 tc;

		if ((void *)(in + 1) > end)
			return -1;
		inner_len = bpf_ntohs(in->payload_len) + 40;
		tc = (in->priority << 4) | (in->flow_lbl[0] >> 4);
		o->version = 6;
		o->priority = tc >> 4;
		o->flow_lbl[0] = (tc << 4) & 0xf0;
		__builtin_memcpy(&o->flow_lbl[1], &tag, 2);
		o->payload_len = bpf_htons(inner_len);
		o->nexthdr = IPPROTO_IPV6;
		o->hop_limit = 64;
		__builtin_memcpy(&o->saddr, src, 16);
		__builtin_memcpy(&o->daddr, dst, 16);
		eth->h_proto = bpf_htons(ETH_P_IPV6);
	}
	__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, smac, ETH_ALEN);
	return 0;
}

/* Removes the outer IP header (olen bytes after an untagged Ethernet
 * header) of an IP-in-IP packet, keeping the Ethernet header. 0 or -1. */
static __always_inline int sluice_xdp_decap(struct xdp_md *ctx, int olen)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr eth;

	if (data + ETH_HLEN > end)
		return -1;
	__builtin_memcpy(&eth, data, ETH_HLEN);
	if (bpf_xdp_adjust_head(ctx, olen))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + ETH_HLEN > end)
		return -1;
	__builtin_memcpy(data, &eth, ETH_HLEN);
	return 0;
}

#endif
