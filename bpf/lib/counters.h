/* Per-CPU packet/byte counters by direction and drop reason. */
#ifndef SLUICE_BPF_COUNTERS_H
#define SLUICE_BPF_COUNTERS_H

#include "common.h"

/* sluice_counters: PERCPU_ARRAY, key __u32 = SLUICE_COUNTER_IDX(dir,
 * reason), value struct sluice_counter, SLUICE_COUNTERS_MAX entries.
 * Written by every program (no atomics needed: per-CPU); read and summed by
 * the agent for `sluicectl status` and metrics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct sluice_counter);
	__uint(max_entries, SLUICE_COUNTERS_MAX);
} sluice_counters SEC(".maps");

static __always_inline void sluice_count(__u32 dir, __u32 reason, __u32 bytes)
{
	__u32 idx = SLUICE_COUNTER_IDX(dir, reason);
	struct sluice_counter *c = bpf_map_lookup_elem(&sluice_counters, &idx);

	if (likely(c)) {
		c->packets++;
		c->bytes += bytes;
	}
}

#endif
