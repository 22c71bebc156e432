/* Socket-level load balancing: the maps of sluice_sock (bpf/sluice_sock.bpf.c)
 * beyond the load balancer's own (lib/lb.h). Layouts: sluice/sock_abi.h. */
#ifndef SLUICE_BPF_SOCK_LB_H
#define SLUICE_BPF_SOCK_LB_H

#include "common.h"

/* sluice_sock_netns: HASH, key __u64 netns cookie, value struct
 * sluice_sock_netns, SLUICE_SOCK_NETNS_MAX. Written by the agent: its own
 * namespace at start, a pod's at CNI ADD (removed at DEL), all of them
 * re-derived from the endpoint records on restart. Read by the connect and
 * sendmsg hooks: a socket of any other namespace is never translated. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct sluice_sock_netns);
	__uint(max_entries, SLUICE_SOCK_NETNS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sluice_sock_netns SEC(".maps");

/* sluice_sock_nat: LRU_HASH, key struct sluice_sock_nat_key, value struct
 * sluice_sock_nat, SLUICE_SOCK_NAT_MAX. Written by the connect and sendmsg
 * hooks when they translate (a REV entry, and for unconnected UDP a FWD
 * entry); read by recvmsg and getpeername (REV) and sendmsg (FWD). Never
 * written by the agent: socket cookies are not reused, so entries of
 * closed sockets are harmless until the LRU takes them. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sluice_sock_nat_key);
	__type(value, struct sluice_sock_nat);
	__uint(max_entries, SLUICE_SOCK_NAT_MAX);
} sluice_sock_nat SEC(".maps");

#endif
