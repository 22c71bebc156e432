/* The north-south flow cache: established IPv4 TCP/UDP connections that
 * XDP forwards to another node (SNAT both ways, DSR toward the backend)
 * in one per-CPU slot load and a rewrite by precomputed checksum changes,
 * before the packet is parsed past its L4 ports. Everything else, and any
 * packet the cache cannot take as is (IP options, fragments, FIN/RST, an
 * entry past `until`, a DSR packet over the MTU), goes on to the slow
 * path (nodeport_fwd.h), which keeps the connection's state, revalidates
 * it and refills the cache. docs/design-services.md, "The flow cache". */
#ifndef SLUICE_BPF_NP_FAST_H
#define SLUICE_BPF_NP_FAST_H

#include "common.h"
#include "parse.h"
#include "l4.h"
#include "events.h"
#include "xdp_nat.h"

/* sluice_np_fast: PERCPU_ARRAY, key __u32 slot (sluice_np_fast_slot),
 * value struct sluice_np_fast, SLUICE_NP_FAST_SLOTS per CPU. Written and
 * read by sluice_xdp only, on the CPU the packets arrive on: XDP on one
 * CPU does not interleave, so a slot is never seen half written and no
 * cache line is shared. Two hot connections on one slot take turns (each
 * refill is a slot write); a miss costs one slot read. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sluice_np_fast);
	__uint(max_entries, SLUICE_NP_FAST_SLOTS);
} sluice_np_fast SEC(".maps");

/* sluice_np_port_gen: ARRAY, key __u32 port (host order), value __u32,
 * 65,536 entries. Bumped by sluice_xdp when it gives a SNAT port to a
 * connection; a reply slot holds the generation it was filled at. A SNAT
 * port is keyed by backend too, so one generation covers every backend:
 * a bump for another backend only costs a slot refill. Without it a reply
 * slot (on any CPU: replies need not arrive where the client's packets
 * do) could outlive its reverse entry's LRU eviction and send the next
 * owner's replies to the previous client. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 65536);
} sluice_np_port_gen SEC(".maps");

static __always_inline __u32 *sluice_np_port_gen_of(__be16 port)
{
	__u32 k = bpf_ntohs(port);

	return bpf_map_lookup_elem(&sluice_np_port_gen, &k);
}

/* The slot of a tuple: one multiply-shift over the mixed words. */
static __always_inline __u32 sluice_np_fast_slot(__be32 saddr, __be32 daddr,
						 __u32 ports, __u8 proto)
{
	__u32 h = (saddr * 0x9e3779b1u) ^ daddr ^ ((ports << 7) | (ports >> 25)) ^
		  proto;

	return (h * 0x85ebca6bu) >> (32 - SLUICE_NP_FAST_SHIFT);
}

/* The slot holding exactly this tuple, or NULL. */
static __always_inline struct sluice_np_fast *
sluice_np_fast_find(__be32 saddr, __be32 daddr, __u32 ports, __u8 proto)
{
	__u32 slot = sluice_np_fast_slot(saddr, daddr, ports, proto);
	struct sluice_np_fast *v = bpf_map_lookup_elem(&sluice_np_fast, &slot);

	if (!v || v->key.saddr != saddr || v->key.daddr != daddr ||
	    *(__u32 *)&v->key.sport != ports || v->key.proto != proto)
		return NULL;
	return v;
}

/* The longest jiffy (CONFIG_HZ >= 100), for slot lifetimes in jiffies. */
#define SLUICE_NP_FAST_JIFFY_NS_MAX 10000000ull

/* A checksum field after the covered data changed by `sum` (RFC 1624,
 * eqn. 3: HC' = ~(~HC + sum of ~m + m')). */
static __always_inline __u16 sluice_csum_apply(__u16 check, __u32 sum)
{
	return ~sluice_xdp_csum_fold((__u16)~check + sum);
}

/* Adds the change of one 32-bit word from `from` to `to` (both as read
 * from the packet) to the running sum s. */
static __always_inline __u32 sluice_csum_change(__u32 s, __u32 from, __u32 to)
{
	return s + (~from & 0xffff) + (~from >> 16) + (to & 0xffff) + (to >> 16);
}

/* The L4 checksum field, for TCP or UDP at l4, or NULL if the header is
 * cut short. */
static __always_inline __u16 *sluice_np_fast_csum(void *l4, void *end,
						   __u8 proto)
{
	if (proto == IPPROTO_TCP)
		return l4 + sizeof(struct tcphdr) > end ? NULL : l4 + 16;
	return l4 + sizeof(struct udphdr) > end ? NULL : l4 + 6;
}

/* The rewrite itself: addresses, ports, both checksums (an IPv4 UDP
 * datagram sent without checksum keeps none). */
static __always_inline void sluice_np_fast_nat(struct iphdr *ip, __u32 *ports,
					       __u16 *c, __u8 proto,
					       const struct sluice_np_fast *v)
{
	ip->check = sluice_csum_apply(ip->check, v->ip_sum);
	if (proto == IPPROTO_TCP) {
		*c = sluice_csum_apply(*c, v->l4_sum);
	} else if (*c) {
		__u16 n = sluice_csum_apply(*c, v->l4_sum);

		*c = n ? n : 0xffff; /* 0 would mean "no checksum" */
	}
	ip->saddr = v->saddr;
	ip->daddr = v->daddr;
	*ports = v->ports;
}

/* DSR: the outer header in front of the rewritten packet (already made
 * room for), frontend -> backend as nodeport_fwd.h's slow path builds it
 * (sluice_xdp_encap): the inner TOS, DF, the frontend port as the
 * identification. Whole words: the fixed ones come from the slot. 0 or
 * -1. */
static __always_inline int sluice_np_fast_outer(void *data, void *end,
						const struct sluice_np_fast *v,
						__u8 tos, __u16 inner_len)
{
	__u32 *o = data + ETH_HLEN;
	__u32 w0, sum;

	if ((void *)(o + 5) > end)
		return -1;
	/* version 4, IHL 5, TOS | total length, both in memory order */
	w0 = 0x45 | ((__u32)tos << 8) |
	     ((__u32)bpf_htons(inner_len + sizeof(struct iphdr)) << 16);
	sum = v->osum + (w0 & 0xffff) + (w0 >> 16);
	o[0] = w0;
	o[1] = v->oword1;
	o[2] = (__u32)bpf_htons((64 << 8) | IPPROTO_IPIP) |
	       ((__u32)(__u16)~sluice_xdp_csum_fold(sum) << 16);
	o[3] = v->key.daddr; /* the frontend */
	o[4] = v->daddr;     /* the backend */
	return 0;
}

/* Both MAC addresses as three words (dmac, smac are adjacent and
 * 4-aligned in the slot, as in the Ethernet header); byte copies would
 * be twelve loads and stores. The caller checked eth + 1 <= data_end. */
static __always_inline void sluice_np_fast_macs(struct ethhdr *eth,
						const struct sluice_np_fast *v)
{
	const __u32 *m = (const __u32 *)v->dmac;
	__u32 *p = (__u32 *)eth;

	p[0] = m[0];
	p[1] = m[1];
	p[2] = m[2];
}

/* The cache's verdict for the packet, or -1: not cached (or not an
 * untagged IPv4 TCP/UDP packet without options), take the slow path; the
 * packet is untouched then. Out of line: its frame does not stack with
 * the slow path's, and the caller parses again after it (the call ends
 * the caller's packet pointers for the verifier). */
static __noinline int sluice_np_fast_xmit(struct xdp_md *ctx)
{
	void *data, *end;
	struct sluice_np_fast *v;
	struct iphdr *ip;
	struct ethhdr *eth;
	__u32 *l4;
	__u16 *c;
	__u8 proto, tos;
	__u16 tot;

	if (!ctx)
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	ip = data + ETH_HLEN;
	l4 = (void *)(ip + 1);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->version != 4 || ip->ihl != 5)
		return -1;
	if (ip->frag_off & bpf_htons(0x3fff)) /* MF or an offset */
		return -1;
	proto = ip->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -1;
	c = sluice_np_fast_csum(l4, end, proto);
	if (!c)
		return -1;
	/* FIN and RST change the connection's state: the slow path's. */
	if (proto == IPPROTO_TCP &&
	    (((__u8 *)l4)[13] & (SLUICE_TCP_FIN | SLUICE_TCP_RST)))
		return -1;
	v = sluice_np_fast_find(ip->saddr, ip->daddr, *l4, proto);
	if (!v || bpf_jiffies64() >= v->until)
		return -1;
	if (v->kind == SLUICE_NP_FAST_REPLY) {
		__u32 *g = sluice_np_port_gen_of(v->key.dport);

		if (!g || *g != v->port_gen)
			return -1;
	}
	if (v->kind != SLUICE_NP_FAST_DSR) {
		sluice_np_fast_nat(ip, l4, c, proto, v);
		sluice_np_fast_macs(eth, v);
	} else {
		tot = bpf_ntohs(ip->tot_len);
		tos = ip->tos;
		/* XDP cannot fragment: what would not fit once wrapped gets the
		 * slow path's drop. The frame's own length is what leaves (its
		 * IP length may claim less); pointers compare, they do not
		 * subtract. */
		if (v->mtu < 2 * sizeof(struct iphdr) ||
		    end > (void *)ip + (v->mtu - sizeof(struct iphdr)))
			return -1;
		sluice_np_fast_nat(ip, l4, c, proto, v);
		if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
			goto fail;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		eth = data;
		if ((void *)(eth + 1) > end ||
		    sluice_np_fast_outer(data, end, v, tos, tot))
			goto fail;
		sluice_np_fast_macs(eth, v);
		eth->h_proto = bpf_htons(ETH_P_IP);
	}
	if (v->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	/* With no flags it cannot fail; a constant verdict also tells the
	 * verifier no rewritten packet falls through to the slow path. */
	bpf_redirect(v->ifindex, 0);
	return XDP_REDIRECT;
fail:
	/* Rewritten already: not the slow path's to take any more. */
	sluice_drop(ctx->ingress_ifindex, SLUICE_DIR_INGRESS,
		    SLUICE_DROP_LB_NAT_FAILED, sluice_xdp_len(ctx), NULL);
	return XDP_DROP;
}

/* The slow path's side: caches the rewrite of tuple f (IPv4, as it
 * arrived) into s -> d, ports = SLUICE_PORTS(sport, dport), sent toward
 * hop, of `kind` (for DSR: the egress MTU), valid until `until`. Replaces
 * whatever the slot held. */
static __always_inline void sluice_np_fast_put(const struct sluice_flow *f,
					       const __u8 *s, const __u8 *d,
					       __u32 ports,
					       const struct sluice_np_hop *hop,
					       __u8 kind, __u32 mtu, __u64 until,
					       __u32 port_gen)
{
	struct sluice_np_fast *e;
	__u32 slot, sum, old_ports = SLUICE_PORTS(f->sport, f->dport), w;
	__be32 sa, da;

	if (f->family != AF_INET ||
	    (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP))
		return;
	__builtin_memcpy(&sa, f->saddr, 4);
	__builtin_memcpy(&da, f->daddr, 4);
	slot = sluice_np_fast_slot(sa, da, old_ports, f->proto);
	e = bpf_map_lookup_elem(&sluice_np_fast, &slot);
	if (!e)
		return;
	e->key.saddr = sa;
	e->key.daddr = da;
	e->key.sport = f->sport;
	e->key.dport = f->dport;
	e->key.proto = f->proto;
	__builtin_memcpy(&e->saddr, s, 4);
	__builtin_memcpy(&e->daddr, d, 4);
	e->ports = ports;
	sum = sluice_csum_change(0, sa, e->saddr);
	sum = sluice_csum_change(sum, da, e->daddr);
	e->ip_sum = sluice_xdp_csum_fold(sum);
	e->l4_sum = sluice_xdp_csum_fold(sluice_csum_change(sum, old_ports, ports));
	e->ifindex = hop->ifindex;
	__builtin_memcpy(e->dmac, hop->dmac, ETH_ALEN);
	__builtin_memcpy(e->smac, hop->smac, ETH_ALEN);
	e->kind = kind;
	e->mtu = mtu > 0xffff ? 0xffff : mtu;
	/* DSR's outer header, all but its first two words (version, TOS,
	 * length: per packet) and the checksum: the frontend port as id, DF,
	 * TTL and protocol, frontend -> backend. Memory order, like the
	 * packet's words. */
	w = (__u32)f->dport | ((__u32)bpf_htons(0x4000) << 16);
	e->oword1 = w;
	sum = (w & 0xffff) + (w >> 16) + bpf_htons((64 << 8) | IPPROTO_IPIP);
	sum += (da & 0xffff) + (da >> 16);
	sum += (e->daddr & 0xffff) + (e->daddr >> 16);
	e->osum = sluice_xdp_csum_fold(sum);
	e->until = until;
	e->port_gen = port_gen;
	e->pad2 = 0;
}

/* Empties the slot of an IPv4 tuple if it holds that tuple (a FIN or RST
 * went by). */
static __always_inline void sluice_np_fast_forget(const __u8 *saddr,
						  const __u8 *daddr,
						  __be16 sport, __be16 dport,
						  __u8 proto)
{
	struct sluice_np_fast *v;
	__be32 sa, da;

	__builtin_memcpy(&sa, saddr, 4);
	__builtin_memcpy(&da, daddr, 4);
	v = sluice_np_fast_find(sa, da, SLUICE_PORTS(sport, dport), proto);
	if (v) {
		v->key.proto = 0;
		v->until = 0;
	}
}

#endif
