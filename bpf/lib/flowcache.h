/* The established flow cache: a per-CPU, direct-mapped array in front of
 * conntrack for the common packet of an established connection (Ethernet,
 * IPv4 without options or IPv6 without extension headers, not a fragment,
 * TCP without SYN/FIN/RST or UDP).
 *
 * A slot (struct sluice_fc_entry) repeats, for one exact tuple arriving on
 * one veth, what the conntrack fast path decided for it: where to deliver.
 * The fast path fills it after a conntrack hit it trusted (current
 * endpoint epoch, the packet came from the veth of its source's endpoint)
 * for a plain connection (never a service entry or a reverse-NAT one, never
 * one that is closing) that is hot (its previous packet at most a jiffy
 * ago: a slot lives one jiffy, slower flows would only pay the write). A
 * hit is used only while
 *   - sluice_ep_epoch is the one the slot was filled at: the agent moves it
 *     when endpoints change (the conntrack fast path re-checks, as it
 *     always did) and after it deleted conntrack entries (ct flush, GC), so
 *     a deleted connection's next packet is looked up in conntrack,
 *   - the jiffy it was filled in has not ended: every flow still looks its
 *     conntrack entry up once a jiffy, which refreshes last_seen exactly as
 *     often as before (last_seen is in jiffies, written at most once a
 *     jiffy) and notices within a jiffy an entry the kernel's LRU evicted
 *     or one another CPU or the other direction saw close;
 * and for the packet's own veth (the ifindex compare is the anti-spoofing
 * check: the slot was filled only after the packet's source passed it on
 * that veth). Packets with SYN, FIN or RST never take the cache: they go to
 * conntrack, which marks closing entries, and a closing entry's slot is
 * cleared and never filled again.
 *
 * Per-packet trace (event level trace, lib/ep_events.h): the fast path
 * decides it when it fills a slot (e->trace) and a hit emits it, so the
 * default level pays one branch on the slot; a level change reaches a
 * cached flow when its slot expires (within a jiffy).
 *
 * Per CPU: no locks, no shared cache lines; TC programs on one CPU do not
 * interleave (softirq / BH-disabled), so a slot is never seen half
 * written. A hit costs the header loads, one multiply, one inlined array
 * lookup, compares, and the forwarded counter (kept exact, per packet).
 * A miss costs the probe (one slot read): 256 slots per CPU and direction
 * keep the array small enough to stay cached when many flows miss. */
#ifndef SLUICE_BPF_FLOWCACHE_H
#define SLUICE_BPF_FLOWCACHE_H

#include "common.h"
#include "l4.h"
#include "endpoint.h"
#include "counters.h"
#include "events.h"

#ifndef TC_ACT_OK
#define TC_ACT_OK 0
#endif

/* sluice_fc_out (packets from the pod, sluice_lxc_out) and sluice_fc_in
 * (to the pod, sluice_lxc_in): PERCPU_ARRAY, key __u32 slot, value struct
 * sluice_fc_entry, SLUICE_FC_SLOTS entries. Written and read by sluice_lxc
 * only. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sluice_fc_entry);
	__uint(max_entries, SLUICE_FC_SLOTS);
} sluice_fc_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sluice_fc_entry);
	__uint(max_entries, SLUICE_FC_SLOTS);
} sluice_fc_in SEC(".maps");

/* How many jiffies a slot is trusted after its conntrack check. */
#define SLUICE_FC_JIFFIES 1

/* The tuple as the cache compares it (see struct sluice_fc_entry). */
struct sluice_fc_key {
	__u64 addr[4];
	__u32 ports;
	__u32 meta;
};

static __always_inline __u32 sluice_fc_slot(const struct sluice_fc_key *k)
{
	__u64 h = k->addr[0] ^ k->addr[1] ^ k->addr[2] ^ k->addr[3] ^
		  ((__u64)k->ports << 16) ^ k->meta;

	h *= 0x9E3779B97F4A7C15ULL;
	return h >> (64 - SLUICE_FC_BITS);
}

static __always_inline int sluice_fc_match(const struct sluice_fc_entry *e,
					   const struct sluice_fc_key *k)
{
	return e->addr[0] == k->addr[0] && e->addr[1] == k->addr[1] &&
	       e->addr[2] == k->addr[2] && e->addr[3] == k->addr[3] &&
	       e->ports == k->ports && e->meta == k->meta;
}

/* The cache key of a parsed packet, if it is one the cache takes (the
 * same packets sluice_fc_deliver recognises, plus SYN/FIN/RST). 0 if not. */
static __always_inline int sluice_fc_key_of(const struct sluice_flow *f,
					    struct sluice_fc_key *k)
{
	const __u32 *s = (const __u32 *)f->saddr, *d = (const __u32 *)f->daddr;

	if (f->frag != SLUICE_FRAG_NONE || f->l3_off != sizeof(struct ethhdr))
		return 0;
	if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP)
		return 0;
	if (f->family == AF_INET) {
		if (f->l4_off != f->l3_off + sizeof(struct iphdr))
			return 0;
		k->addr[0] = s[0] | (__u64)d[0] << 32;
		k->addr[1] = 0;
		k->addr[2] = 0;
		k->addr[3] = 0;
	} else {
		if (f->l4_off != f->l3_off + sizeof(struct ipv6hdr))
			return 0;
		k->addr[0] = s[0] | (__u64)s[1] << 32;
		k->addr[1] = s[2] | (__u64)s[3] << 32;
		k->addr[2] = d[0] | (__u64)d[1] << 32;
		k->addr[3] = d[2] | (__u64)d[3] << 32;
	}
	k->ports = f->sport | (__u32)f->dport << 16;
	k->meta = f->proto | (__u32)f->family << 8;
	return 1;
}

/* After a conntrack hit the fast path trusted, for a plain connection
 * (never a service one: those packets are translated): fills this tuple's
 * slot if the flow is hot (its previous packet, prev = last_seen before this
 * one, was in this jiffy or the last: a slot lives one jiffy, and a slower
 * flow would only pay the write), or clears it once the entry is closing
 * (flags: the entry's, after this packet's touch). epoch: the entry's, which
 * the fast path found current AFTER its lookup: an entry the agent deleted
 * before it moved the epoch fills a slot that is invalid once it moves; if
 * it moved first, the entry's epoch was already stale and nothing is
 * filled). redirect/eth: the delivery (out). */
static __always_inline void
sluice_fc_update(void *map, const struct sluice_flow *f, __u32 ifindex,
		 __u32 flags, __u64 prev, __u32 epoch, __u64 now,
		 __u32 redirect, const __u8 *pod_mac, const __u8 *host_mac,
		 __u32 trace)
{
	struct sluice_fc_key k;
	struct sluice_fc_entry *e;
	__u32 slot;
	int cacheable = !(flags & SLUICE_CT_CLOSING);

	/* Nothing to fill for a cold flow, or from a SYN (never looked up; a
	 * new connection's SYN-ACK should not cost a slot write). */
	if (cacheable &&
	    (now - prev > SLUICE_FC_JIFFIES ||
	     (f->proto == IPPROTO_TCP && (f->tcp_flags & SLUICE_TCP_SYN))))
		return;
	if (!sluice_fc_key_of(f, &k))
		return;
	slot = sluice_fc_slot(&k);
	e = bpf_map_lookup_elem(map, &slot);
	if (!e)
		return;
	if (!cacheable) {
		if (sluice_fc_match(e, &k))
			e->meta = 0;
		return;
	}
	e->addr[0] = k.addr[0];
	e->addr[1] = k.addr[1];
	e->addr[2] = k.addr[2];
	e->addr[3] = k.addr[3];
	e->ports = k.ports;
	e->meta = k.meta;
	e->ifindex = ifindex;
	e->ep_epoch = epoch;
	e->until = now + SLUICE_FC_JIFFIES;
	e->redirect = redirect;
	e->trace = trace;
	if (redirect) {
		__builtin_memcpy(e->eth, pod_mac, ETH_ALEN);
		__builtin_memcpy((__u8 *)e->eth + ETH_ALEN, host_mac, ETH_ALEN);
	}
}

/* The hot path: recognises the common packet straight from its headers
 * (no struct sluice_flow, no BPF function call), finds its slot, and if the
 * slot holds this tuple, for this veth, and is valid now, delivers it as
 * the conntrack fast path would: counted as forwarded in direction dir,
 * and for sluice_lxc_out (out != 0) MACs rewritten + bpf_redirect_peer to
 * a local pod, or TC_ACT_OK to the host stack. Returns that verdict, or -1
 * (no hit: the caller takes the conntrack path, which parses the packet in
 * full). */
/* The trace event of a hit whose slot says trace (e->trace): the packet is
 * parsed again here, so the hot path carries only this call. After the
 * hit's MAC rewrite: the call may invalidate the caller's packet pointers. */
__attribute__((noinline)) int sluice_fc_trace(struct __sk_buff *skb, __u32 dir,
					      __u32 point)
{
	struct sluice_flow f = {};
	struct sluice_l3 l3 = {};
	void *data, *data_end;

	if (!skb)
		return 0;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (sluice_parse_l3(data, data_end, &l3) != SLUICE_PARSE_OK ||
	    sluice_parse_flow(data, data_end, &l3, &f))
		return 0; /* the hit parsed these headers: not reached */
	sluice_trace_submit(skb->ifindex, dir, point, skb->len, &f, NULL);
	return 0;
}

/* A hit's slot e (tuple already compared): valid for this veth now? Then
 * deliver. data: the packet, whose first 34 bytes are known to be there.
 * The trace test is one branch on the slot already loaded: the default
 * level pays nothing else for trace. */
static __always_inline int sluice_fc_use(struct sluice_fc_entry *e,
					 struct __sk_buff *skb, void *data,
					 int out, __u32 dir)
{
	if (e->ifindex != skb->ifindex || e->ep_epoch != sluice_ep_epoch_now() ||
	    bpf_jiffies64() >= e->until)
		return -1;
	sluice_count(dir, SLUICE_DROP_NONE, skb->len);
	if (!out || !e->redirect) {
		if (unlikely(e->trace))
			sluice_fc_trace(skb, dir,
					out ? SLUICE_TRACE_TO_STACK :
					      SLUICE_TRACE_TO_ENDPOINT);
		return TC_ACT_OK;
	}
	((__u32 *)data)[0] = e->eth[0];
	((__u32 *)data)[1] = e->eth[1];
	((__u32 *)data)[2] = e->eth[2];
	if (unlikely(e->trace))
		sluice_fc_trace(skb, dir, SLUICE_TRACE_TO_ENDPOINT);
	return bpf_redirect_peer(e->redirect, 0);
}

/* The ports of a TCP (without SYN/FIN/RST) or UDP header at data + l4, as
 * one word; 0 if this is not such a header (or for ports 0/0: such packets
 * simply take the conntrack path). */
static __always_inline __u32 sluice_fc_ports(void *data, void *data_end,
					     __u32 l4, __u8 proto)
{
	__u8 *p = data + l4;

	if (proto == IPPROTO_TCP) {
		if ((void *)p + 14 > data_end ||
		    (p[13] & (SLUICE_TCP_SYN | SLUICE_TCP_FIN | SLUICE_TCP_RST)))
			return 0;
		return *(__u32 *)p;
	}
	if (proto == IPPROTO_UDP) {
		if ((void *)p + 8 > data_end)
			return 0;
		return *(__u32 *)p;
	}
	return 0;
}

/* The hot path: recognises the common packet straight from its headers
 * (no struct sluice_flow, no BPF function call), finds its slot, and if the
 * slot holds this tuple, for this veth, and is valid now, delivers it as
 * the conntrack fast path would: counted as forwarded in direction dir,
 * and for sluice_lxc_out (out != 0) MACs rewritten + bpf_redirect_peer to
 * a local pod, or TC_ACT_OK to the host stack. Returns that verdict, or -1
 * (no hit: the caller takes the conntrack path, which parses the packet in
 * full). The tuple is compared against the packet after the lookup (not
 * kept in registers across it). */
static __always_inline int sluice_fc_deliver(void *map, struct __sk_buff *skb,
					     int out, __u32 dir)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct sluice_fc_entry *e;
	__u32 ports, slot, meta;
	__u64 h;
	__u16 eth_proto;

	if (data + sizeof(struct ethhdr) + sizeof(struct iphdr) > data_end)
		return -1;
	eth_proto = *(__u16 *)(data + 12);
	if (eth_proto == bpf_htons(ETH_P_IP)) {
		/* Version 4, no options; not a fragment (MF and offset 0). */
		if (*(__u8 *)(data + 14) != 0x45 ||
		    (*(__u16 *)(data + 20) & bpf_htons(0x3fff)))
			return -1;
		meta = *(__u8 *)(data + 23) | AF_INET << 8;
		ports = sluice_fc_ports(data, data_end, 34, (__u8)meta);
		if (!ports)
			return -1;
		h = *(__u64 *)(data + 26) ^ ((__u64)ports << 16) ^ meta;
		slot = (h * 0x9E3779B97F4A7C15ULL) >> (64 - SLUICE_FC_BITS);
		e = bpf_map_lookup_elem(map, &slot);
		if (!e || e->addr[0] != *(__u64 *)(data + 26) ||
		    e->ports != *(__u32 *)(data + 34) ||
		    e->meta != (*(__u8 *)(data + 23) | AF_INET << 8))
			return -1;
		return sluice_fc_use(e, skb, data, out, dir);
	}
	if (eth_proto == bpf_htons(ETH_P_IPV6)) {
		if (data + sizeof(struct ethhdr) + sizeof(struct ipv6hdr) > data_end)
			return -1;
		if ((*(__u8 *)(data + 14) & 0xf0) != 0x60)
			return -1;
		meta = *(__u8 *)(data + 20) | AF_INET6 << 8;
		ports = sluice_fc_ports(data, data_end, 54, (__u8)meta);
		if (!ports)
			return -1;
		h = *(__u64 *)(data + 22) ^ *(__u64 *)(data + 30) ^
		    *(__u64 *)(data + 38) ^ *(__u64 *)(data + 46) ^
		    ((__u64)ports << 16) ^ meta;
		slot = (h * 0x9E3779B97F4A7C15ULL) >> (64 - SLUICE_FC_BITS);
		e = bpf_map_lookup_elem(map, &slot);
		if (!e || e->addr[0] != *(__u64 *)(data + 22) ||
		    e->addr[1] != *(__u64 *)(data + 30) ||
		    e->addr[2] != *(__u64 *)(data + 38) ||
		    e->addr[3] != *(__u64 *)(data + 46) ||
		    e->ports != *(__u32 *)(data + 54) ||
		    e->meta != (*(__u8 *)(data + 20) | AF_INET6 << 8))
			return -1;
		return sluice_fc_use(e, skb, data, out, dir);
	}
	return -1;
}

#endif
