/* sluice_sock: socket-level service load balancing (cgroup sock_addr
 * hooks). connect() and unconnected sendmsg() to a ClusterIP frontend get
 * the backend's address before the socket ever sends, so the connection's
 * packets carry pod -> backend addresses from the first SYN on: conntrack
 * sees a plain connection and no packet is translated. recvmsg() and
 * getpeername() report the frontend back to the application.
 *
 * The hooks are attached to a cgroup (the v2 root by default), so they see
 * every socket of the machine; only sockets of a network namespace in
 * sluice_sock_netns (this agent's own and its pods') are translated.
 * Everything else, and every service the socket path cannot serve with the
 * TC path's full semantics, is left alone for sluice_lxc:
 *   - no backend may take a new connection (count 0): sluice_lxc rejects
 *     with a RST / ICMP unreachable and counts lb-no-backend;
 *   - a connection cap (sluice.io/max-connections-per-backend): counted
 *     from conntrack at TC, which a socket-translated connection has no
 *     service entry in;
 *   - protocols other than TCP and UDP (SCTP multi-homing, MPTCP, ping).
 * Selection is sluice_lb_pick, the TC path's own: ClientIP affinity (same
 * map, same client key: the pod's address), Maglev or a random weighted
 * slot; Maglev hashes the socket cookie into the tuple because the source
 * port is not chosen yet at connect time.
 *
 * A hook must return 1: 0 would fail the system call with EPERM. */
#include "lib/common.h"
#include "lib/l4.h"
#include "lib/counters.h"
#include "lib/events.h"
#include "lib/lb.h"
#include "lib/sock_lb.h"

#define SLUICE_SOCK_PROCEED 1

/* A destination (connect, sendmsg) or peer (recvmsg, getpeername) as the
 * socket sees it, in the family of the service: an IPv4-mapped address
 * (::ffff:a.b.c.d) on an AF_INET6 socket is an IPv4 service. */
struct sock_addr {
	__u32 addr[4]; /* network order; IPv4 in addr[0] */
	__be16 port;
	__u8 family;
	__u8 mapped; /* IPv4-mapped on an AF_INET6 socket */
};

static __always_inline void sock_addr_v4(const struct bpf_sock_addr *ctx,
					 struct sock_addr *a)
{
	a->addr[0] = ctx->user_ip4;
	a->addr[1] = a->addr[2] = a->addr[3] = 0;
	a->port = (__be16)ctx->user_port;
	a->family = AF_INET;
	a->mapped = 0;
}

static __always_inline void sock_addr_v6(const struct bpf_sock_addr *ctx,
					 struct sock_addr *a)
{
	a->addr[0] = ctx->user_ip6[0];
	a->addr[1] = ctx->user_ip6[1];
	a->addr[2] = ctx->user_ip6[2];
	a->addr[3] = ctx->user_ip6[3];
	a->port = (__be16)ctx->user_port;
	a->family = AF_INET6;
	a->mapped = 0;
	if (!a->addr[0] && !a->addr[1] && a->addr[2] == bpf_htonl(0xffff)) {
		a->addr[0] = a->addr[3];
		a->addr[2] = a->addr[3] = 0;
		a->family = AF_INET;
		a->mapped = 1;
	}
}

static __always_inline void sock_set_v4(struct bpf_sock_addr *ctx,
					const struct sock_addr *a)
{
	ctx->user_ip4 = a->addr[0];
	ctx->user_port = a->port;
}

static __always_inline void sock_set_v6(struct bpf_sock_addr *ctx,
					const struct sock_addr *a)
{
	if (a->mapped) {
		/* The ::ffff: prefix is already there. */
		ctx->user_ip6[3] = a->addr[0];
	} else {
		ctx->user_ip6[0] = a->addr[0];
		ctx->user_ip6[1] = a->addr[1];
		ctx->user_ip6[2] = a->addr[2];
		ctx->user_ip6[3] = a->addr[3];
	}
	ctx->user_port = a->port;
}

static __always_inline void sock_nat_key(struct sluice_sock_nat_key *k,
					 __u64 cookie, const __u8 *addr,
					 __be16 port, __u8 family, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->cookie = cookie;
	__builtin_memcpy(k->addr, addr, 16);
	k->port = port;
	k->family = family;
	k->dir = dir;
}

/* Remembers that the socket's peer be:port stands for the frontend a, for
 * recvmsg and getpeername. */
static __always_inline int sock_remember_rev(__u64 cookie,
					     const struct sock_addr *a,
					     const __u8 *be, __be16 be_port)
{
	struct sluice_sock_nat_key k;
	struct sluice_sock_nat v = { .port = a->port, .family = a->family };

	sock_nat_key(&k, cookie, be, be_port, a->family, SLUICE_SOCK_NAT_REV);
	__builtin_memcpy(v.addr, a->addr, 16);
	return bpf_map_update_elem(&sluice_sock_nat, &k, &v, BPF_ANY);
}

/* An unconnected UDP socket that already sends to this frontend keeps its
 * backend while that backend exists (a conntrack service entry keeps a
 * flow on its backend the same way). 1 and a rewritten to it, or 0. */
static __always_inline int sock_fwd_known(__u64 cookie, struct sock_addr *a)
{
	struct sluice_sock_nat_key k;
	struct sluice_sock_nat *fw, *rev;
	struct sluice_lb_backend *be;
	__u32 id;

	sock_nat_key(&k, cookie, (const __u8 *)a->addr, a->port, a->family,
		     SLUICE_SOCK_NAT_FWD);
	fw = bpf_map_lookup_elem(&sluice_sock_nat, &k);
	if (!fw)
		return 0;
	id = fw->backend_id;
	be = bpf_map_lookup_elem(&sluice_lb_be, &id);
	if (!be || be->port != fw->port || !sluice_addr_eq(be->addr, fw->addr))
		return 0;
	/* The LRU may have taken the reverse entry alone: replies would then
	 * show the backend's address. */
	sock_nat_key(&k, cookie, be->addr, be->port, a->family,
		     SLUICE_SOCK_NAT_REV);
	rev = bpf_map_lookup_elem(&sluice_sock_nat, &k);
	if (!rev && sock_remember_rev(cookie, a, be->addr, be->port))
		return 0;
	__builtin_memcpy(a->addr, be->addr, 16);
	a->port = be->port;
	return 1;
}

/* The forward translation of connect (sendmsg = 0) and unconnected UDP
 * sendmsg: 1 and a rewritten to the backend, or 0 (left to sluice_lxc). */
static __always_inline int sock_fwd(struct bpf_sock_addr *ctx,
				    struct sock_addr *a, __u32 proto,
				    int sendmsg)
{
	struct sluice_lb_svc_key sk = { .port = a->port,
					.proto = proto,
					.family = a->family,
					.scope = SLUICE_LB_SCOPE_INTERNAL };
	struct sluice_event_ids ids = {};
	struct sluice_sock_nat_key k;
	struct sluice_sock_netns *ns;
	struct sluice_lb_backend *be;
	struct sluice_lb_svc *svc;
	struct sluice_flow f = {};
	struct bpf_sock *s;
	__u64 nsc, cookie;
	__u32 id = 0;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	nsc = bpf_get_netns_cookie(ctx);
	ns = bpf_map_lookup_elem(&sluice_sock_netns, &nsc);
	if (!ns)
		return 0;
	__builtin_memcpy(sk.addr, a->addr, 16);
	svc = bpf_map_lookup_elem(&sluice_lb_svc, &sk);
	if (!svc || !svc->count || svc->conn_cap)
		return 0;
	cookie = bpf_get_socket_cookie(ctx);
	if (sendmsg && sock_fwd_known(cookie, a))
		return 1;

	/* The flow sluice_lb_pick expects: the pod's own address as the
	 * client (ClientIP affinity shares its entries with sluice_lxc) and,
	 * in place of the source port that is not chosen yet, the socket
	 * cookie folded to 16 bits, so Maglev spreads one pod's sockets. */
	f.family = a->family;
	f.proto = proto;
	if (a->family == AF_INET)
		__builtin_memcpy(f.saddr, ns->ipv4, 4);
	else
		__builtin_memcpy(f.saddr, ns->ipv6, 16);
	__builtin_memcpy(f.daddr, a->addr, 16);
	f.dport = a->port;
	f.sport = (__be16)(cookie ^ (cookie >> 16) ^ (cookie >> 32) ^
			   (cookie >> 48));
	if (sluice_lb_pick(svc, &f, &id))
		return 0;
	be = bpf_map_lookup_elem(&sluice_lb_be, &id);
	if (!be || be->family != a->family)
		return 0;
	/* Without the reverse entry the application would see replies from
	 * an address it never talked to: better leave it to sluice_lxc. */
	if (sock_remember_rev(cookie, a, be->addr, be->port))
		return 0;
	if (sendmsg) {
		struct sluice_sock_nat fw = { .port = be->port,
					      .family = a->family,
					      .backend_id = id };

		__builtin_memcpy(fw.addr, be->addr, 16);
		sock_nat_key(&k, cookie, (const __u8 *)a->addr, a->port,
			     a->family, SLUICE_SOCK_NAT_FWD);
		bpf_map_update_elem(&sluice_sock_nat, &k, &fw, BPF_ANY);
	}
	if (svc->flags & SLUICE_LB_AFFINITY) {
		struct sluice_lb_xlate x;

		sluice_lb_xlate_new(&x, &f, svc, id, be, 0);
		sluice_lb_affine_set(&x, a->family);
	}
	/* One event per translated socket (per frontend for unconnected UDP),
	 * as sluice_lxc emits one per new service connection. The source
	 * port is known only if the socket was bound; pkt_len is 0. */
	s = ctx->sk;
	f.sport = s ? bpf_htons((__u16)s->src_port) : 0;
	ids.ep_id = ns->ep_id;
	sluice_emit_xlate(ns->ifindex, SLUICE_DIR_EGRESS, 0, &f, be->addr,
			  be->port, &ids);
	__builtin_memcpy(a->addr, be->addr, 16);
	a->port = be->port;
	return 1;
}

/* The reverse translation of recvmsg (a datagram's source) and
 * getpeername: the frontend the socket was translated from, if any. */
static __always_inline int sock_rev(struct bpf_sock_addr *ctx,
				    struct sock_addr *a)
{
	struct sluice_sock_nat_key k;
	struct sluice_sock_nat *v;

	sock_nat_key(&k, bpf_get_socket_cookie(ctx), (const __u8 *)a->addr,
		     a->port, a->family, SLUICE_SOCK_NAT_REV);
	v = bpf_map_lookup_elem(&sluice_sock_nat, &k);
	if (!v)
		return 0;
	__builtin_memcpy(a->addr, v->addr, 16);
	a->port = v->port;
	return 1;
}

SEC("cgroup/connect4")
int sluice_sock_connect4(struct bpf_sock_addr *ctx)
{
	struct sock_addr a;

	sock_addr_v4(ctx, &a);
	if (sock_fwd(ctx, &a, ctx->protocol, 0))
		sock_set_v4(ctx, &a);
	return SLUICE_SOCK_PROCEED;
}

SEC("cgroup/connect6")
int sluice_sock_connect6(struct bpf_sock_addr *ctx)
{
	struct sock_addr a;

	sock_addr_v6(ctx, &a);
	if (sock_fwd(ctx, &a, ctx->protocol, 0))
		sock_set_v6(ctx, &a);
	return SLUICE_SOCK_PROCEED;
}

/* sendmsg hooks run for UDP only, and only when the call names a
 * destination (an unconnected send). */
SEC("cgroup/sendmsg4")
int sluice_sock_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct sock_addr a;

	sock_addr_v4(ctx, &a);
	if (sock_fwd(ctx, &a, IPPROTO_UDP, 1))
		sock_set_v4(ctx, &a);
	return SLUICE_SOCK_PROCEED;
}

SEC("cgroup/sendmsg6")
int sluice_sock_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct sock_addr a;

	sock_addr_v6(ctx, &a);
	if (sock_fwd(ctx, &a, IPPROTO_UDP, 1))
		sock_set_v6(ctx, &a);
	return SLUICE_SOCK_PROCEED;
}

SEC("cgroup/recvmsg4")
int sluice_sock_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct sock_addr a;

	sock_addr_v4(ctx, &a);
	if (sock_rev(ctx, &a))
		sock_set_v4(ctx, &a);
	return SLUICE_SOCK_PROCEED;
}

SEC("cgroup/recvmsg6")
int sluice_sock_recvmsg6(struct bpf_sock_addr *ctx)
{
	struct sock_addr a;

	sock_addr_v6(ctx, &a);
	if (sock_rev(ctx, &a))
		sock_set_v6(ctx, &a);
	return SLUICE_SOCK_PROCEED;
}

SEC("cgroup/getpeername4")
int sluice_sock_getpeername4(struct bpf_sock_addr *ctx)
{
	struct sock_addr a;

	sock_addr_v4(ctx, &a);
	if (sock_rev(ctx, &a))
		sock_set_v4(ctx, &a);
	return SLUICE_SOCK_PROCEED;
}

SEC("cgroup/getpeername6")
int sluice_sock_getpeername6(struct bpf_sock_addr *ctx)
{
	struct sock_addr a;

	sock_addr_v6(ctx, &a);
	if (sock_rev(ctx, &a))
		sock_set_v6(ctx, &a);
	return SLUICE_SOCK_PROCEED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
