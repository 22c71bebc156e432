/* Runtime knobs written by the agent. */
#ifndef SLUICE_BPF_CONFIG_H
#define SLUICE_BPF_CONFIG_H

#include "common.h"

/* sluice_config: ARRAY, key __u32 (always 0), value struct sluice_config,
 * 1 entry. Written by the agent at start and on config change; read by
 * programs only on slow paths (drops), never per forwarded packet. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sluice_config);
	__uint(max_entries, 1);
} sluice_config SEC(".maps");

static __always_inline struct sluice_config *sluice_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&sluice_config, &zero);
}

#endif
