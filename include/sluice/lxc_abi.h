/* ABI of the pod datapath (sluice_lxc on each pod's host-side veth):
 * endpoints, ipcache, per-endpoint policy, conntrack, fragments. See
 * docs/design-pod-networking.md for the packet walks. Included by abi.h. */
#ifndef SLUICE_LXC_ABI_H
#define SLUICE_LXC_ABI_H

#include <linux/types.h>

#define SLUICE_MAP_EP_IF "sluice_ep_if"
#define SLUICE_MAP_EP_IP "sluice_ep_ip"
#define SLUICE_MAP_IPCACHE "sluice_ipcache"
#define SLUICE_MAP_POLICY "sluice_policy"
#define SLUICE_MAP_CT "sluice_ct"
#define SLUICE_MAP_FRAG "sluice_frag"
#define SLUICE_MAP_EP_EPOCH "sluice_ep_epoch"
#define SLUICE_MAP_FC_OUT "sluice_fc_out"
#define SLUICE_MAP_FC_IN "sluice_fc_in"

#define SLUICE_ENDPOINTS_MAX 65535u
#define SLUICE_IPCACHE_MAX (512u * 1024)
#define SLUICE_POLICY_ENTRIES_MAX 16384u /* per endpoint (inner map) */
#define SLUICE_POLICY_RANGES 16
#define SLUICE_CT_MAX_DEFAULT (256u * 1024)
#define SLUICE_FRAG_MAX 8192u
#define SLUICE_FC_BITS 8 /* flow cache: 256 slots per CPU and direction */
#define SLUICE_FC_SLOTS (1u << SLUICE_FC_BITS)

/* Reserved identities (label identities start at 256, CIDR ones at 1<<24). */
#define SLUICE_ID_ANY 0 /* wildcard peer in policy keys */
#define SLUICE_ID_HOST 1
#define SLUICE_ID_WORLD 2

enum sluice_ep_flags {
	SLUICE_EP_INGRESS_ENFORCED = 1 << 0, /* some policy selects it (in) */
	SLUICE_EP_EGRESS_ENFORCED = 1 << 1,  /* some policy selects it (out) */
};

/* The endpoint's event level override (Pod annotation
 * sluice.io/events-level) in bits 8-10 of its flags: enum
 * sluice_event_level + 1, 0 = none (the global events.level applies). In
 * the flags word so the endpoint keeps its size and layout. */
#define SLUICE_EP_EVENTS_SHIFT 8
#define SLUICE_EP_EVENTS_MASK (0x7u << SLUICE_EP_EVENTS_SHIFT)
#define SLUICE_EP_EVENTS(level) \
	((((__u32)(level)) + 1) << SLUICE_EP_EVENTS_SHIFT)

/* A local endpoint (pod): value of sluice_ep_if (key: __u32 ifindex of the
 * host-side veth) and of sluice_ep_ip (key: struct sluice_addr_key). */
struct sluice_endpoint {
	__u32 ep_id;    /* index into sluice_policy */
	__u32 identity; /* label identity */
	__u32 flags;    /* enum sluice_ep_flags */
	__u32 ifindex;  /* host-side veth */
	__u8 ipv6[16];  /* :: when none */
	__u8 ipv4[4];   /* 0.0.0.0 when none */
	__u8 pod_mac[6];
	__u8 host_mac[6];
};

struct sluice_addr_key {
	__u8 family; /* AF_INET / AF_INET6 */
	__u8 pad[3];
	__u8 addr[16]; /* IPv4 in the first 4 bytes, rest zero */
};

/* sluice_ipcache: LPM over {family, addr}. prefixlen counts bits after the
 * prefixlen field: 32 (family + pad) + the CIDR length. */
struct sluice_ipcache_key {
	__u32 prefixlen;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

struct sluice_ipcache_value {
	__u32 identity;      /* label identity for pods, else CIDR/world */
	__u32 cidr_identity; /* most specific policy CIDR containing it */
	__u32 tunnel_peer;   /* cluster mode: node address; 0 = local/none */
	__u32 flags;
};

/* Per-endpoint policy (inner hash map of sluice_policy, ARRAY_OF_MAPS keyed
 * by endpoint id). A new flow looks up {peer identity}, then {ANY}, then
 * {cidr identity}, each for its direction and protocol, and scans at most
 * SLUICE_POLICY_RANGES port ranges: cost does not depend on the number of
 * entries. */
struct sluice_policy_key {
	__u32 identity; /* SLUICE_ID_ANY = any peer */
	__u8 dir;       /* enum sluice_dir: ingress = to the endpoint */
	__u8 proto;     /* IPPROTO_TCP/UDP/SCTP; 0 = any (ICMP etc. match 0) */
	__u16 pad;
};

struct sluice_port_range {
	__u16 lo; /* host order, inclusive */
	__u16 hi;
};

struct sluice_policy_value {
	__u8 any_port; /* every port allowed (rule without ports) */
	__u8 nranges;  /* valid entries in ranges[] */
	__u16 pad;
	__u32 any_rule; /* rule id that allowed any port */
	struct sluice_port_range ranges[SLUICE_POLICY_RANGES];
	__u32 rule_ids[SLUICE_POLICY_RANGES];
};

/* Conntrack: LRU hash with ONE entry per connection for both directions.
 * The key is canonical: of the two ends {addr, port}, the smaller (see
 * sluice_ct_swapped) is stored as saddr/sport, so a packet of either
 * direction finds the entry with one lookup. SLUICE_CT_KEY_SWAPPED in the
 * value says the initiator is the daddr/dport end. */
struct sluice_ct_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport; /* network order; ICMP echo: the id in both */
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u16 pad;
};

enum sluice_ct_flags {
	SLUICE_CT_SEEN_REPLY = 1 << 0,
	SLUICE_CT_CLOSING = 1 << 1,     /* FIN or RST seen: short timeout */
	SLUICE_CT_KEY_SWAPPED = 1 << 2, /* the initiator is the key's daddr end */
	/* A service entry: keyed by the tuple the client sent (client ->
	 * frontend); nat_addr/nat_port are the backend the connection was
	 * given. Packets of it are translated, then find their connection
	 * entry by the translated tuple. */
	SLUICE_CT_SVC = 1 << 3,
	/* A connection entry of a translated (service) connection: packets
	 * from the responder get source nat_addr/nat_port (the frontend). */
	SLUICE_CT_REVNAT = 1 << 4,
	/* Hairpin: the client is its own backend. The service entry also
	 * rewrites the source to the hairpin address; replies (from the
	 * backend to that address) go back to the backend's own address. */
	SLUICE_CT_HAIRPIN = 1 << 5,
	/* North-south: translated at XDP on a node device (NodePort,
	 * LoadBalancer, externalIPs). Reverse-translated replies carry a node
	 * address as source, which the stack would refuse as martian on a pod
	 * veth: they go straight to the device (bpf_fib_lookup). */
	SLUICE_CT_NODEPORT = 1 << 6,
};

/* A local endpoint at one end of a connection: what delivery to it needs
 * (redirect target and MACs) and what a packet from it must arrive on
 * (anti-spoofing). All zero when that end is not a local endpoint. */
struct sluice_ct_end {
	__u32 ifindex; /* host-side veth */
	__u32 ep_id;
	__u8 pod_mac[6];
	__u8 host_mac[6];
};

struct sluice_ct_value {
	__u64 created;   /* bpf_jiffies64() */
	__u64 last_seen; /* bpf_jiffies64(), refreshed at most once a jiffy */
	__u32 flags;     /* enum sluice_ct_flags */
	__u32 rule_id;   /* rule that allowed the opening packet */
	__u32 src_identity; /* of the initiator */
	__u32 dst_identity; /* of the responder */
	/* sluice_ep_epoch when ends[] were resolved. While it is current, a
	 * packet of the connection is delivered from ends[] without any
	 * endpoint lookup; otherwise both ends are resolved again once. */
	__u32 ep_epoch;
	__u32 backend_id; /* SLUICE_CT_SVC: the backend given (lb_abi.h) */
	struct sluice_ct_end ends[2]; /* [0] initiator, [1] responder */
	/* SLUICE_CT_SVC: the backend; SLUICE_CT_REVNAT: the frontend. */
	__u8 nat_addr[16];
	__be16 nat_port;
	__u16 svc_pad;
	__u32 svc_id; /* SLUICE_CT_SVC: the backend set it was chosen from */
};

/* Canonical order of a connection's two ends: 1 when the end {d, dp}
 * sorts before {s, sp}, i.e. when the packet travels from the key's daddr
 * end. Any total order works as long as every user agrees; this one
 * compares the 16 address bytes as four native-endian 32-bit words (s, d:
 * the addresses as __u32[4], 4-aligned), then the ports. Shared by the
 * datapath and the agent (ct_map_key). */
static inline int sluice_ct_swapped(const __u32 *s, const __u32 *d, __be16 sp,
				    __be16 dp)
{
	if (s[0] != d[0])
		return s[0] > d[0];
	if (s[1] != d[1])
		return s[1] > d[1];
	if (s[2] != d[2])
		return s[2] > d[2];
	if (s[3] != d[3])
		return s[3] > d[3];
	return sp > dp;
}

/* The established flow cache (bpf/lib/flowcache.h): per-CPU, direct-mapped
 * (slot = hash of the tuple), one map per direction (sluice_fc_out,
 * sluice_fc_in). A slot repeats what the conntrack fast path decided for
 * one exact tuple arriving on one veth, valid while ep_epoch is current
 * and for the jiffy it was checked in (until). Written only by the
 * datapath; the agent invalidates every slot at once by incrementing
 * sluice_ep_epoch (endpoints changed, or conntrack entries deleted). The
 * tuple fields hold packet bytes as loaded little-endian:
 * IPv4: addr[0] = saddr | daddr << 32, addr[1..3] = 0; IPv6: addr[0..1]
 * = saddr, addr[2..3] = daddr; ports = sport | dport << 16. */
struct sluice_fc_entry {
	__u64 addr[4];
	__u32 ports;
	__u32 meta;     /* proto | family << 8; 0 = empty (never matches) */
	__u32 ifindex;  /* the veth the tuple arrives on (anti-spoofing) */
	__u32 ep_epoch; /* sluice_ep_epoch when filled */
	__u64 until;    /* valid while bpf_jiffies64() < until */
	__u32 redirect; /* sluice_fc_out: bpf_redirect_peer target, 0 = stack */
	__u32 eth[3];   /* sluice_fc_out: destination + source MAC to write */
	/* 1: a hit also emits a trace event (the conntrack fast path found
	 * the packet's effective event level at trace when it filled the
	 * slot; a level change reaches cached flows when the slot expires). */
	__u32 trace;
};

struct sluice_frag_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 id; /* IPv4 id (16 bits) or IPv6 fragment id */
	__u8 proto;
	__u8 family;
	__u16 pad;
};

struct sluice_frag_value {
	__be16 sport;
	__be16 dport;
	__u32 verdict; /* 0 = allowed (only allowed first fragments are kept) */
};

#endif
