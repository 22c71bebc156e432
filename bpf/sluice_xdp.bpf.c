/* sluice_xdp: the program on every node device (XDP, native mode first):
 * parse, the prefilter, then north-south load balancing (lib/nodeport.h),
 * after the prefilter so denied sources never reach it. */
#include "lib/common.h"
#include "lib/parse.h"
#include "lib/counters.h"
#include "lib/events.h"
#include "lib/prefilter.h"
#include "lib/nodeport.h"

SEC("xdp")
int sluice_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 len = data_end - data;
	struct sluice_l3 l3 = {};
	int rc;

	rc = sluice_parse_l3(data, data_end, &l3);
	if (unlikely(rc == SLUICE_PARSE_MALFORMED)) {
		sluice_drop(ctx->ingress_ifindex, SLUICE_DIR_INGRESS,
			    SLUICE_DROP_MALFORMED, len, NULL);
		return XDP_DROP;
	}
	if (rc == SLUICE_PARSE_OK && sluice_prefilter_denied(&l3)) {
		sluice_drop(ctx->ingress_ifindex, SLUICE_DIR_INGRESS,
			    SLUICE_DROP_PREFILTER_DENY, len, &l3);
		return XDP_DROP;
	}
	/* Everything else on the device is passed on the IP header alone:
	 * the load balancer's candidates are few and found by one array load. */
	if (rc == SLUICE_PARSE_OK && sluice_xdp_ns_candidate(&l3)) {
		int v = sluice_np_fast_xmit(ctx);

		if (v >= 0)
			return v;
	} else {
		return XDP_PASS;
	}
	/* The flow cache missed: the slow path, with the flow zeroed only
	 * now (a hit must not pay for it) and the headers parsed again (the
	 * call ended the old pointers for the verifier). */
	{
		struct sluice_flow f = {};

		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (sluice_parse_l3(data, data_end, &l3) != SLUICE_PARSE_OK)
			return XDP_PASS; /* as before the call: cannot happen */
		/* Later fragments and what the TC hooks reject go on to them. */
		if (!sluice_parse_flow(data, data_end, &l3, &f) &&
		    f.frag != SLUICE_FRAG_LATER)
			return sluice_xdp_north_south(ctx, &f);
	}
	/* Passes are not counted here: the device's rx counters minus the
	 * drops give them, and a per-CPU increment would cost the pass path
	 * about 20% over the floor (docs/benchmarks.md). */
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
