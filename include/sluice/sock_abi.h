/* ABI of the socket-level load balancer (bpf/sluice_sock.bpf.c, cgroup
 * connect/sendmsg/recvmsg/getpeername hooks): which network namespaces it
 * translates and the per-socket translations it remembers. Written by the
 * agent (agent/datapath/sock_datapath.*) and the programs; the frontends
 * and backends are the load balancer's own maps (lb_abi.h). Walk and
 * limits: docs/design-services.md, "Socket LB". Included by abi.h. */
#ifndef SLUICE_SOCK_ABI_H
#define SLUICE_SOCK_ABI_H

#include <linux/types.h>

#define SLUICE_MAP_SOCK_NETNS "sluice_sock_netns"
#define SLUICE_MAP_SOCK_NAT "sluice_sock_nat"

/* The agent's own namespace plus one per endpoint. */
#define SLUICE_SOCK_NETNS_MAX (SLUICE_ENDPOINTS_MAX + 1)
/* Remembered translations: one per connected socket, two per (unconnected
 * UDP socket, frontend). LRU: a closed socket's entries age out. */
#define SLUICE_SOCK_NAT_MAX (256u * 1024)

/* sluice_sock_netns value (key: __u64 netns cookie, SO_NETNS_COOKIE). The
 * hooks run for every socket under the cgroup, which on a node is every
 * socket of the machine, including other agents' pods in tests: only
 * sockets of a namespace listed here are translated. */
struct sluice_sock_netns {
	__u32 ep_id;   /* the pod's endpoint id; 0 = the agent's namespace */
	__u32 ifindex; /* the pod's host-side veth (events); 0 for the host */
	/* The pod's addresses: the client of ClientIP affinity, the same key
	 * sluice_lxc uses for that pod. Zero for the host, which counts as
	 * one client. */
	__u8 ipv4[4];
	__u8 ipv6[16];
};

enum sluice_sock_nat_dir {
	/* addr:port = a backend the socket was sent to; value = the
	 * frontend that recvmsg/getpeername report instead. */
	SLUICE_SOCK_NAT_REV = 0,
	/* addr:port = a frontend an unconnected UDP socket sends to; value =
	 * the backend it was given, so its later datagrams follow the first
	 * (as a conntrack service entry keeps a flow on its backend). */
	SLUICE_SOCK_NAT_FWD = 1,
};

/* sluice_sock_nat key. family is that of the service (AF_INET for an
 * IPv4-mapped address on an AF_INET6 socket). */
struct sluice_sock_nat_key {
	__u64 cookie;  /* bpf_get_socket_cookie() */
	__u8 addr[16]; /* IPv4 in the first 4 bytes, rest zero */
	__be16 port;
	__u8 family;
	__u8 dir; /* enum sluice_sock_nat_dir */
	__u32 pad;
};

struct sluice_sock_nat {
	__u8 addr[16];
	__be16 port;
	__u8 family;
	__u8 pad;
	/* FWD: the backend id; the entry holds while sluice_lb_be[id] is
	 * still this address and port. 0 in REV entries. */
	__u32 backend_id;
};

#endif
