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
	  "header, bad IHL or IP version)")

enum sluice_drop_reason {
	SLUICE_DROP_NONE = 0,
#define SLUICE_X_ENUM(n, code, name, help) SLUICE_DROP_##n = code,
	SLUICE_DROP_REASONS(SLUICE_X_ENUM)
#undef SLUICE_X_ENUM
};

/* Counter slots per direction; every code must stay below this. */
#define SLUICE_REASON_SLOTS 64

#endif
