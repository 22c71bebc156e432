/* Shared ABI between the BPF programs and the agent: map keys and values,
 * constants and map names. Plain C with kernel UAPI types so it compiles
 * both with clang -target bpf and with g++; test/unit/abi_test.cpp
 * static_asserts sizes and offsets so a silent layout change breaks the
 * build, not a running node.
 */
#ifndef SLUICE_ABI_H
#define SLUICE_ABI_H

#include <linux/types.h>
#include "drop_reasons.h"
#include "lxc_abi.h"
#include "lb_abi.h"
#include "sock_abi.h"

/* Bumped whenever a pinned map's key/value layout changes; the agent keeps
 * pins of different layouts apart (see docs/architecture.md). */
#define SLUICE_ABI_VERSION 2

/* ---- map names (also the pin file names under <bpffs>/maps/) ---------- */
#define SLUICE_MAP_PF_V4 "sluice_pf_v4"
#define SLUICE_MAP_PF_V6 "sluice_pf_v6"
#define SLUICE_MAP_PF_V4_BM "sluice_pf_v4_bm"
#define SLUICE_MAP_PF_V6_BM "sluice_pf_v6_bm"
#define SLUICE_MAP_COUNTERS "sluice_counters"
#define SLUICE_MAP_EVENTS "sluice_events"
#define SLUICE_MAP_CONFIG "sluice_config"

/* ---- prefilter ------------------------------------------------------- */
/* Capacity of each prefilter trie. LPM tries are never preallocated, so a
 * large ceiling costs memory only for entries actually present. */
#define SLUICE_PREFILTER_MAX (1u << 20)

struct sluice_lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct sluice_lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Bucket bitmaps in front of the tries (sluice_pf_v4_bm / sluice_pf_v6_bm):
 * one bit per source bucket, set when some deny entry may match a source in
 * that bucket. A clear bit passes the packet with one inlined array load;
 * only a set bit pays for the trie walk. IPv4 buckets are the /24 of the
 * source; IPv6 buckets hash the top 32 bits (bits set by prefixes shorter
 * than /32 are enumerated, shorter than /16 set every bit). */
#define SLUICE_PF_BUCKET_BITS 24
#define SLUICE_PF_BITMAP_WORDS (1u << (SLUICE_PF_BUCKET_BITS - 6))

static inline __u32 sluice_pf_v4_bucket(__u32 saddr_host)
{
	return saddr_host >> (32 - SLUICE_PF_BUCKET_BITS);
}

static inline __u32 sluice_pf_v6_bucket(__u32 top32_host)
{
	/* Fibonacci hashing: spreads the structured top bits of IPv6
	 * prefixes over the 24-bit bucket space. */
	return (__u32)(top32_host * 2654435761u) >> (32 - SLUICE_PF_BUCKET_BITS);
}

/* Value of a prefilter entry. The presence of the key is the verdict;
 * flags is reserved for later (e.g. "log only") and is 0 today. */
struct sluice_prefilter_value {
	__u32 flags;
};

/* ---- counters -------------------------------------------------------- */
enum sluice_dir {
	SLUICE_DIR_INGRESS = 0,
	SLUICE_DIR_EGRESS = 1,
	SLUICE_DIR_MAX = 2,
};

/* Per-CPU array index: dir * SLUICE_REASON_SLOTS + reason. Slot 0 of each
 * direction counts forwarded (passed) packets. */
#define SLUICE_COUNTER_IDX(dir, reason) ((dir) * SLUICE_REASON_SLOTS + (reason))
#define SLUICE_COUNTERS_MAX (SLUICE_DIR_MAX * SLUICE_REASON_SLOTS)

struct sluice_counter {
	__u64 packets;
	__u64 bytes;
};

/* Counter slot that counts events lost because the ring buffer was full
 * (packets = events, bytes = their record bytes). It sits in the ingress
 * direction's last reason slot, which no drop reason may take (codes stay
 * below SLUICE_REASON_SLOTS - 1); the agent reports it as
 * sluice_events_lost_total, never as a drop. */
#define SLUICE_COUNTER_EVENTS_LOST \
	SLUICE_COUNTER_IDX(SLUICE_DIR_INGRESS, SLUICE_REASON_SLOTS - 1)

/* ---- config (array map, one entry at key 0) -------------------------- */
/* How much the programs report through sluice_events (config
 * `events.level`). Each level includes the ones below it. */
enum sluice_event_level {
	SLUICE_EVENTS_OFF = 0,
	SLUICE_EVENTS_DROPS = 1, /* every drop */
	/* default: drops, plus one policy verdict per new connection and one
	 * service translation per new service connection (aggregated per
	 * connection: established packets never emit) */
	SLUICE_EVENTS_FLOWS = 2,
	SLUICE_EVENTS_TRACE = 3, /* plus per-packet trace events */
};

/* sluice_config.flags. The EP bits are kept by the endpoint manager: what per-endpoint
 * level overrides exist, so that hooks pay for finding their endpoint's
 * level only when one could differ from event_level. */
enum sluice_config_flags {
	SLUICE_CFG_EP_EVENTS = 1 << 0, /* some endpoint overrides the level */
	SLUICE_CFG_EP_TRACE = 1 << 1,  /* some endpoint's override is trace */
	/* lb.mode dsr: north-south connections to other nodes go with
	 * IP-in-IP, keeping the client's address (else SNAT to the node). */
	SLUICE_CFG_LB_DSR = 1 << 2,
};

struct sluice_config {
	__u32 event_level; /* enum sluice_event_level: the global level */
	__u32 flags;       /* enum sluice_config_flags */
	__u64 reserved[3];
};

/* ---- events (ring buffer) -------------------------------------------- */
/* 8 MiB: 69,905 records of 112 + 8 bytes, ~70 ms of events at 1M/s. The
 * reader is a normal thread that a busy node may not schedule for several
 * milliseconds; 1 MiB (8.7 ms at 1M/s) lost events in sluice-events-bench
 * under load (docs/benchmarks.md). A pinned ring of another size is
 * replaced on start (it holds nothing to migrate). */
#define SLUICE_EVENTS_BYTES (1u << 23)

/* Codes are an ABI (saved events, filters): only append. */
enum sluice_event_type {
	SLUICE_EVENT_DROP = 1,           /* a packet was dropped: reason */
	SLUICE_EVENT_TRACE = 2,          /* a packet passed a hook (trace level) */
	SLUICE_EVENT_POLICY_VERDICT = 3, /* a new connection was allowed/denied */
	SLUICE_EVENT_SERVICE_XLATE = 4,  /* a new service connection: frontend
					  * translated to a backend */
};

enum sluice_verdict {
	SLUICE_VERDICT_NONE = 0,
	SLUICE_VERDICT_FORWARDED = 1, /* trace: the packet went on */
	SLUICE_VERDICT_DROPPED = 2,   /* drop events */
	SLUICE_VERDICT_ALLOWED = 3,   /* policy verdict: a rule allows it */
	SLUICE_VERDICT_DENIED = 4,    /* policy verdict: no rule allows it */
	SLUICE_VERDICT_TRANSLATED = 5, /* service translation */
};

/* Where a TRACE event saw its packet go (sluice_event.reason of TRACE
 * events). Codes are an ABI: only append. */
enum sluice_trace_point {
	SLUICE_TRACE_TO_ENDPOINT = 1, /* delivered into a pod on this node */
	SLUICE_TRACE_TO_STACK = 2,    /* from a pod, handed to the host stack */
	SLUICE_TRACE_TO_DEVICE = 3,   /* from a pod, redirected out of a node
				       * device (NodePort reply) */
};

/* One flow event, for every type. Addresses are in network byte order
 * (IPv4 in the first 4 bytes), ports in network byte order, 0 when not
 * known. saddr/daddr/sport/dport are the packet as the hook saw it: for a
 * service translation the client's packet, i.e. daddr:dport = the frontend
 * (also in fe_addr/fe_port) and be_addr/be_port the chosen backend.
 * ts_ns is bpf_ktime_get_coarse_ns() (CLOCK_MONOTONIC_COARSE). */
struct sluice_event {
	__u64 ts_ns;
	__u32 ifindex;   /* where the hook ran */
	__u16 type;      /* enum sluice_event_type */
	__u16 reason;    /* enum sluice_drop_reason (drops), enum
			  * sluice_trace_point (traces), else 0 */
	__u8 family;     /* AF_INET / AF_INET6, 0 when not IP or unknown */
	__u8 proto;      /* IPPROTO_* */
	__u8 dir;        /* enum sluice_dir, from the pod's point of view */
	__u8 verdict;    /* enum sluice_verdict */
	__u16 sport;
	__u16 dport;
	__u32 src_identity; /* 0 = unknown */
	__u32 dst_identity;
	__u32 pkt_len;
	__u32 rule_id;   /* policy rule that decided (verdicts), 0 = none */
	__u32 ep_id;     /* local endpoint the hook ran for, 0 = none */
	__u16 fe_port;   /* service events: frontend port */
	__u16 be_port;   /* service events: backend port */
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 fe_addr[16]; /* service events: frontend address */
	__u8 be_addr[16]; /* service events: backend address */
};

#endif
