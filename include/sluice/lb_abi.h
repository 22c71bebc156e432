/* ABI of the service load balancer: frontends, backend selection (random
 * slots, Maglev tables, ClientIP affinity), backends and per-backend
 * connection counts. Written by the agent's LbEngine (agent/lb/engine.*),
 * read by sluice_lxc (ClusterIP at the pod's TC hook) and, for NodePort
 * and LoadBalancer, by sluice_xdp. Packet walks: docs/design-services.md.
 * Included by abi.h. */
#ifndef SLUICE_LB_ABI_H
#define SLUICE_LB_ABI_H

#include <linux/types.h>

#define SLUICE_MAP_LB_SVC "sluice_lb_svc"
#define SLUICE_MAP_LB_SLOTS "sluice_lb_slots"
#define SLUICE_MAP_LB_MAGLEV "sluice_lb_maglev"
#define SLUICE_MAP_LB_BE "sluice_lb_be"
#define SLUICE_MAP_LB_AFFINITY "sluice_lb_aff"
#define SLUICE_MAP_LB_BE_CONNS "sluice_lb_conns"
#define SLUICE_MAP_LB_GATE "sluice_lb_gate"
/* Bits of sluice_lb_gate (a superset filter of north-south destinations). */
#define SLUICE_LB_GATE_SHIFT 18
#define SLUICE_LB_GATE_BITS (1u << SLUICE_LB_GATE_SHIFT)

#define SLUICE_LB_SVC_MAX 262144u      /* frontends (address, port, proto) */
#define SLUICE_LB_SVC_IDS_MAX 262144u  /* backend sets (svc ids 1..max-1) */
#define SLUICE_LB_SLOTS_MAX (1u << 20) /* random-selection slots, all sets */
#define SLUICE_LB_SLOTS_PER_SVC 1024u  /* slots of one backend set */
#define SLUICE_LB_BE_MAX (1u << 20)
#define SLUICE_LB_AFFINITY_MAX (256u * 1024)
#define SLUICE_LB_MAGLEV_BLOCK 16 /* backend ids per inner-map value */
#define SLUICE_LB_MAGLEV_M_MAX 131071u
/* Retries when the picked backend is at its connection cap. */
#define SLUICE_LB_CAP_TRIES 8

/* Source address of hairpinned packets (a pod reaching itself through a
 * service): without it the pod would answer itself inside its own netns and
 * never cross the hook that reverses the translation. 169.254.42.1 and, for
 * IPv6, 100::42 (RFC 6666 discard prefix). */
#define SLUICE_LB_HAIRPIN_V4 0xa9fe2a01u /* host order */
#define SLUICE_LB_HAIRPIN_V6_W0 0x01000000u /* "100::42" as __u32 words, */
#define SLUICE_LB_HAIRPIN_V6_W3 0x00000042u /* host order per word */

enum sluice_lb_scope {
	SLUICE_LB_SCOPE_INTERNAL = 0, /* from pods/the node: ClusterIP path */
	SLUICE_LB_SCOPE_EXTERNAL = 1, /* from outside: NodePort/LB at XDP */
};

/* sluice_lb_svc key: a frontend. ClusterIPs, externalIPs and load-balancer
 * ingress IPs with the service port, node addresses with the node port. */
struct sluice_lb_svc_key {
	__u8 addr[16]; /* IPv4 in the first 4 bytes, rest zero */
	__be16 port;
	__u8 proto;  /* IPPROTO_TCP/UDP/SCTP */
	__u8 family; /* AF_INET / AF_INET6 */
	__u8 scope;  /* enum sluice_lb_scope */
	__u8 pad[3];
};

enum sluice_lb_svc_flags {
	SLUICE_LB_MAGLEV = 1 << 0,   /* select by sluice_lb_maglev, else slots */
	SLUICE_LB_AFFINITY = 1 << 1, /* sessionAffinity: ClientIP */
	SLUICE_LB_EXT_LOCAL = 1 << 2, /* externalTrafficPolicy: Local (no SNAT) */
};

/* sluice_lb_svc value. svc_id names the backend set: slots {svc_id, i} for
 * i < count, or the Maglev table at sluice_lb_maglev[svc_id] with M
 * entries. count == 0 means no backend may take a new connection (none
 * ready, all terminating): new connections are rejected. */
struct sluice_lb_svc {
	__u32 svc_id;
	__u16 count;       /* random slots in use (also > 0 for Maglev) */
	__u16 flags;       /* enum sluice_lb_svc_flags */
	__u32 maglev_m;    /* Maglev table size (prime), 0 without Maglev */
	__u32 affinity_s;  /* ClientIP affinity timeout, seconds */
	__u32 conn_cap;    /* max connections per backend, 0 = unlimited */
	__u32 pad;
};

/* sluice_lb_slots key (HASH, SLUICE_LB_SLOTS_MAX): slot i of a backend
 * set; value __u32 backend id. A backend of weight w fills w slots (the
 * agent scales weights so a set fits SLUICE_LB_SLOTS_PER_SVC). */
struct sluice_lb_slot_key {
	__u32 svc_id;
	__u32 slot;
};

/* One value of a Maglev inner table: slot s of the table is
 * ids[s % 16] of entry s / 16. */
struct sluice_lb_maglev_block {
	__u32 ids[SLUICE_LB_MAGLEV_BLOCK];
};

/* sluice_lb_be (HASH key __u32 backend id, 1..): where a backend is. */
struct sluice_lb_backend {
	__u8 addr[16];
	__be16 port;
	__u8 family;
	__u8 flags; /* reserved */
	__u32 pad;
};

/* sluice_lb_aff (LRU_HASH): ClientIP affinity, written by the datapath. */
struct sluice_lb_affinity_key {
	__u8 addr[16]; /* client */
	__u32 svc_id;
	__u8 family;
	__u8 pad[3];
};

struct sluice_lb_affinity {
	__u64 last_seen; /* bpf_ktime_get_coarse_ns(): the timeout is in seconds */
	__u32 backend_id;
	__u32 pad;
};

/* ---- north-south forwarding to backends on other nodes (XDP) ---------
 * bpf/lib/nodeport_fwd.h; docs/design-services.md, "North-south to other
 * nodes". Keys are struct sluice_ct_key (lxc_abi.h) holding a tuple
 * exactly as it arrives (not canonical). */
#define SLUICE_MAP_NP_FWD "sluice_np_fwd"
#define SLUICE_MAP_NP_REV "sluice_np_rev"
#define SLUICE_MAP_NP_NEIGH "sluice_np_neigh"
#define SLUICE_NP_FWD_MAX (256u * 1024)
#define SLUICE_NP_NEIGH_MAX 1024u
/* SNAT source ports: below the NodePort range (30000-32767) and Linux's
 * default ip_local_port_range (32768-60999), so neither the node's own
 * connections nor node ports collide with a SNAT reply's tuple (a reply is
 * keyed by backend address and port too). 28,976 ports per backend. */
#define SLUICE_NP_SNAT_PORT_MIN 1024u
#define SLUICE_NP_SNAT_PORT_MAX 29999u
#define SLUICE_NP_SNAT_TRIES 8
/* Idle times after which a forwarding entry is dead (ns; coarse clock). */
#define SLUICE_NP_IDLE_CLOSING_NS (10ull * 1000000000ull)
#define SLUICE_NP_IDLE_DGRAM_NS (60ull * 1000000000ull)
#define SLUICE_NP_IDLE_TCP_NS (6ull * 3600 * 1000000000ull)
/* A cached next hop is looked up again after this long. */
#define SLUICE_NP_HOP_TTL_NS 1000000000ull

enum sluice_np_mode {
	SLUICE_NP_SNAT = 0,
	SLUICE_NP_DSR = 1,
};

/* A resolved next hop: what an XDP_TX / redirect needs. */
struct sluice_np_hop {
	__u8 smac[6];
	__u8 dmac[6];
	__u32 ifindex; /* egress device */
	__u64 at;      /* bpf_ktime_get_coarse_ns() of the route lookup */
};

/* sluice_np_fwd value: a north-south connection forwarded to another
 * node, keyed by the client's tuple (client -> frontend). */
struct sluice_np_fwd {
	__u8 back[16];  /* backend address */
	__u8 snat[16];  /* SNAT: this node's source address; DSR: zero */
	__be16 back_port;
	__be16 snat_port; /* SNAT */
	__u32 backend_id;
	__u32 svc_id;
	__u8 mode;    /* enum sluice_np_mode */
	__u8 closing; /* FIN or RST seen */
	__u16 pad;
	__u64 last_seen; /* coarse ns, refreshed at most once a second */
	struct sluice_np_hop hop; /* toward the backend */
};

/* sluice_np_rev value: a SNAT connection's replies, keyed by the reply's
 * tuple (backend -> this node's SNAT address and port). */
struct sluice_np_rev {
	__u8 client[16];
	__u8 front[16]; /* the frontend the client sent to */
	__be16 client_port;
	__be16 front_port;
	__u8 closing;
	__u8 replied; /* a reply came back: the long idle time applies */
	__u8 pad[2];
	__u64 last_seen;
	struct sluice_np_hop hop; /* toward the client; ifindex 0: not yet */
};

/* sluice_np_fast: the flow cache in front of sluice_np_fwd/_rev for IPv4
 * TCP and UDP (bpf/lib/np_fast.h): per CPU, direct-mapped, a slot per
 * tuple hash. A slot holds a tuple exactly as it arrives (a client's
 * packet to a frontend, or a backend's reply to a SNAT port) and the whole
 * rewrite, checksum changes included, so an established packet costs one
 * inlined array lookup, compares and no helper. Filled by the slow path
 * (nodeport_fwd.h) from a live entry, valid until `until`: the slow path,
 * with its revalidation, still runs once a second per connection. */
#define SLUICE_MAP_NP_FAST "sluice_np_fast"
#define SLUICE_MAP_NP_PORT_GEN "sluice_np_port_gen"
#define SLUICE_NP_FAST_SHIFT 14
#define SLUICE_NP_FAST_SLOTS (1u << SLUICE_NP_FAST_SHIFT) /* per CPU */

struct sluice_np_fast_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

enum sluice_np_fast_kind {
	SLUICE_NP_FAST_NAT = 0,   /* SNAT, the client's packets */
	SLUICE_NP_FAST_DSR = 1,   /* DNAT, then IP-in-IP to the backend */
	SLUICE_NP_FAST_REPLY = 2, /* SNAT, the backend's replies */
};

struct sluice_np_fast {
	struct sluice_np_fast_key key; /* proto 0: an empty slot */
	__be32 saddr; /* after the rewrite (DSR: the client, unchanged) */
	__be32 daddr; /* after the rewrite (DSR: also the outer destination) */
	__u32 ports;  /* SLUICE_PORTS(sport, dport) after the rewrite */
	__u32 ip_sum; /* folded ones' complement change of the IPv4 header */
	__u32 l4_sum; /* ... and of the L4 checksum (pseudo-header, ports) */
	__u32 ifindex; /* egress device */
	__u8 dmac[6];
	__u8 smac[6];
	__u8 kind; /* enum sluice_np_fast_kind */
	__u8 pad;
	__u16 mtu;   /* DSR: the egress device's MTU (per-packet check) */
	__u32 osum;   /* DSR: folded sum of the outer header's fixed words */
	__u32 oword1; /* DSR: the outer id (frontend port) and DF, as sent */
	__u64 until;    /* in jiffies: the slow path's from this one on */
	__u32 port_gen; /* REPLY: sluice_np_port_gen of the SNAT port */
	__u32 pad2;
};

/* sluice_np_neigh key: a next hop whose MAC address the kernel has not
 * resolved; value __u64 bpf_ktime_get_coarse_ns() of the request. */
struct sluice_np_neigh_key {
	__u32 ifindex;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

/* Hash of a flow for Maglev: the same on every node, so a flow reaching
 * the service through any node picks the same backend. Addresses as four
 * native-endian words (like sluice_ct_swapped), ports in network order. */
static inline __u32 sluice_lb_mix(__u32 h, __u32 v)
{
	v *= 0xcc9e2d51u;
	v = (v << 15) | (v >> 17);
	v *= 0x1b873593u;
	h ^= v;
	h = (h << 13) | (h >> 19);
	return h * 5 + 0xe6546b64u;
}

/* The sluice_lb_gate bit of a destination address (16 bytes as four
 * native-endian words, IPv4 in the first, the rest zero). One multiply:
 * every packet on a node device pays it (docs/benchmarks.md,
 * "prefilter"), and a collision only costs the lookups behind the gate. */
static inline __u32 sluice_lb_gate_bit4(__u32 a0, __u32 a1, __u32 a2,
					__u32 a3)
{
	__u32 h = a0 ^ a1 ^ ((a2 << 7) | (a2 >> 25)) ^
		  ((a3 << 13) | (a3 >> 19));

	return (h * 0x9e3779b1u) >> (32 - SLUICE_LB_GATE_SHIFT);
}
static inline __u32 sluice_lb_gate_bit(const __u32 *a)
{
	return sluice_lb_gate_bit4(a[0], a[1], a[2], a[3]);
}
static inline __u32 sluice_lb_flow_hash(const __u32 *s, const __u32 *d,
					__be16 sp, __be16 dp, __u8 proto)
{
	__u32 h = 0x5c1eu;

	h = sluice_lb_mix(h, s[0]);
	h = sluice_lb_mix(h, s[1]);
	h = sluice_lb_mix(h, s[2]);
	h = sluice_lb_mix(h, s[3]);
	h = sluice_lb_mix(h, d[0]);
	h = sluice_lb_mix(h, d[1]);
	h = sluice_lb_mix(h, d[2]);
	h = sluice_lb_mix(h, d[3]);
	h = sluice_lb_mix(h, ((__u32)sp << 16) | dp);
	h = sluice_lb_mix(h, proto);
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

#endif
