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

/* ---- config (array map, one entry at key 0) -------------------------- */
enum sluice_event_level {
	SLUICE_EVENTS_OFF = 0,
	SLUICE_EVENTS_DROPS = 1, /* default: every drop emits an event */
	SLUICE_EVENTS_TRACE = 2,
};

struct sluice_config {
	__u32 event_level;
	__u32 flags;
	__u64 reserved[3];
};

/* ---- events (ring buffer) -------------------------------------------- */
#define SLUICE_EVENTS_BYTES (1u << 20)

enum sluice_event_type {
	SLUICE_EVENT_DROP = 1,
	SLUICE_EVENT_TRACE = 2,
};

/* Addresses are in network byte order; IPv4 uses the first 4 bytes. Ports
 * are in network byte order, 0 when not parsed. */
struct sluice_event {
	__u64 ts_ns;
	__u32 ifindex;
	__u16 type;
	__u16 reason;
	__u8 family; /* AF_INET / AF_INET6, 0 when not IP */
	__u8 proto;
	__u8 dir;
	__u8 pad;
	__u16 sport;
	__u16 dport;
	__u32 src_identity;
	__u32 dst_identity;
	__u32 pkt_len;
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif
