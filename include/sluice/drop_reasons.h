/* Drop reasons: one list, stable codes. The BPF side uses the enum; the
 * agent and sluicectl use the names and explanations generated from the same
 * X-macro, so a code can never mean two things.
 *
 * Codes are an ABI: never renumber, only append. Code 0 is "not a drop"
 * (the forwarded/passed counter slot).
 */
#ifndef SLUICE_DROP_REASONS_H
#define SLUICE_DROP_REASONS_H

/* X(ENUM_SUFFIX, code, "name", "one-line explanation") */
#define SLUICE_DROP_REASONS(X)                                                 \
	X(PREFILTER_DENY, 1, "prefilter-deny",                                 \
	  "source address matches a CIDR in the XDP prefilter deny list")      \
	X(MALFORMED, 2, "malformed",                                           \
	  "headers are truncated or inconsistent (short Ethernet/VLAN/IP "     \
	  "header, bad IHL or IP version)")                                    \
	X(SPOOFED_SOURCE, 3, "spoofed-source",                                 \
	  "a pod sent with a source address that is not its own")             \
	X(POLICY_DENY_EGRESS, 4, "policy-deny-egress",                         \
	  "no NetworkPolicy rule allows this new connection out of the pod")   \
	X(POLICY_DENY_INGRESS, 5, "policy-deny-ingress",                       \
	  "no NetworkPolicy rule allows this new connection into the pod")     \
	X(CT_FULL, 6, "ct-full",                                               \
	  "the conntrack table could not take a new entry")                   \
	X(FRAG_NO_STATE, 7, "frag-no-state",                                   \
	  "a non-first fragment whose first fragment was not seen or allowed") \
	X(IPV6_EXT_UNSUPPORTED, 8, "ipv6-ext-unsupported",                     \
	  "an IPv6 extension header chain that is too long or unknown")        \
	X(UNKNOWN_ENDPOINT, 9, "unknown-endpoint",                             \
	  "a packet on a pod device the agent has no endpoint for")            \
	X(LB_NO_BACKEND, 10, "lb-no-backend",                                  \
	  "a new connection to a service without a ready backend (rejected "   \
	  "with TCP RST or ICMP unreachable)")                                 \
	X(LB_BACKENDS_AT_CAP, 11, "lb-backends-at-cap",                        \
	  "every backend tried for a new service connection is at its "        \
	  "connection cap (circuit breaker)")                                  \
	X(LB_NAT_FAILED, 12, "lb-nat-failed",                                  \
	  "rewriting a service packet's addresses or checksums failed (or an " \
	  "SCTP port change, which BPF cannot re-checksum)")                   \
	X(LB_TUPLE_CLASH, 13, "lb-tuple-clash",                                \
	  "a service packet, once translated to its backend, has the tuple of " \
	  "another connection (e.g. a direct one from the same client port)") \
	X(LB_STALE_CONN, 14, "lb-stale-conn",                                  \
	  "a reply of a service connection whose client or backend endpoint "  \
	  "was deleted or replaced since it opened")                          \
	X(LB_NO_ROUTE, 15, "lb-no-route",                                      \
	  "a north-south service packet (to a backend on another node, or a "  \
	  "reply to the client) has no route, or too small an MTU for a reply")\
	X(LB_NO_NEIGH, 16, "lb-no-neigh",                                      \
	  "a north-south service packet's next hop has no resolved MAC "       \
	  "address yet: the agent resolves it (the client's retry passes)")    \
	X(LB_MTU_EXCEEDED, 17, "lb-mtu-exceeded",                              \
	  "a north-south service packet forwarded to another node is larger "  \
	  "than the route's MTU (DSR adds a 20/40-byte IP-in-IP header)")      \
	X(LB_SNAT_NO_PORT, 18, "lb-snat-no-port",                              \
	  "no free SNAT port (1024-29999) toward the chosen backend for a "   \
	  "new north-south connection")

enum sluice_drop_reason {
	SLUICE_DROP_NONE = 0,
#define SLUICE_X_ENUM(n, code, name, help) SLUICE_DROP_##n = code,
	SLUICE_DROP_REASONS(SLUICE_X_ENUM)
#undef SLUICE_X_ENUM
};

/* Counter slots per direction; every code must stay below this. */
#define SLUICE_REASON_SLOTS 64

#endif
