// TC floor and pod-datapath policy cases (issue: policy benchmarks).
//
//   tc/empty                   sluice_empty_tc: the TC floor
//   tc/wrap/empty              the TC restore wrapper (restore frame + new
//                              source port per iteration) around
//                              sluice_empty_tc: the wrapper's own cost
//   policy/new/N               sluice_lxc_out, pod A -> local pod B:80, a NEW
//                              connection every iteration (CT miss, ipcache,
//                              egress policy of A with N entries, CT create,
//                              MAC rewrite + bpf_redirect_peer), through the
//                              wrapper
//   policy/established/N       the same connection once established (flow
//                              cache hit, deliver), timed directly (a fixed
//                              point)
//   policy/established-many/1  ACKs of 65,536 established connections, a
//                              different one per iteration (flow-cache miss,
//                              CT hit, deliver, refill), through the wrapper
//   policy/denied/N            A -> local pod C:80, no rule for C's identity
//                              (three policy misses, drop counter, drop event)
//   policy/denied/1k-noevent   the same with drop events off (breakdown)
//   policy/reply/1             B's reply to A's connection, at B's veth
//   tc/wrap0/empty             the restore-only TC wrapper (no port change)
//                              around sluice_empty_tc
//   lb/clusterip/new/N         pod A -> a ClusterIP:80 among N services, a
//                              NEW connection per iteration: CT miss, service
//                              lookup, random slot, backend, DNAT, CT entries
//                              (service + connection), redirect to local pod
//                              B:8080; through tc/wrap/empty
//   lb/clusterip/established/N the same connection established: service
//                              entry hit, DNAT, connection entry hit,
//                              deliver; through tc/wrap0/empty
//
// N = 1, 1k, 100k entries in A's inner policy map (the allow rule for B's
// identity is one of them). Each size is its own skeleton instance (own
// maps, nothing pinned); the cases of one size share it, and each case's
// prepare() puts conntrack in the state its path needs. Method and numbers:
// docs/benchmarks.md ("TC policy path").
#include "bench.h"
#include "frame.h"
#include "restore.h"

#include <sluice/abi.h>

#include "datapath/conntrack.h"
#include "datapath/policy_maps.h"
#include "sluice_empty_tc.skel.h"
#include "sluice_lxc.skel.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <linux/pkt_cls.h>

namespace sluice::bench {

namespace {

// The programs run "on" ifindex 1 (lo): a skb test run needs a real device;
// sluice_ep_if says which pod's host veth that device is.
constexpr uint32_t kDev = 1;
const uint32_t kA = ipv4(10, 200, 0, 1), kB = ipv4(10, 200, 0, 2), kC = ipv4(10, 200, 0, 3);
constexpr uint32_t kIdA = 1000, kIdB = 2000, kIdC = 3000;
// Identities of the filler entries: none is A's, B's or C's.
constexpr uint32_t kIdFiller = 100000;
constexpr uint16_t kSport = 40000, kDport = 80;
// A new connection per iteration needs a distinct source port per
// iteration: at most 65536 iterations per timed call.
constexpr uint32_t kNewRepeat = 65536;
// Every iteration of a case that emits an event per packet (denied, trace)
// must find room for it in the 8 MiB ring (~70k records of 112 bytes),
// which is drained before each call: a full ring would time the cheaper
// failed reserve instead.
constexpr uint32_t kEventRepeat = 10000;
constexpr uint32_t kBigPolicyMax = 131072; // policy.endpointMaxEntries for the 100k case

sluice_endpoint make_ep(uint32_t id, uint32_t identity, uint32_t v4, uint32_t ifindex, uint8_t tag)
{
	sluice_endpoint e{};
	e.ep_id = id;
	e.identity = identity;
	e.ifindex = ifindex;
	const uint32_t be = htonl(v4);
	std::memcpy(e.ipv4, &be, 4);
	for (int i = 0; i < 6; i++) {
		e.pod_mac[i] = i == 5 ? tag : 0x02;
		e.host_mac[i] = i == 5 ? uint8_t(tag + 0x80) : 0x0a;
	}
	return e;
}

Bytes sk_buff_ctx(uint32_t ifindex)
{
	__sk_buff ctx{};
	ctx.ifindex = ifindex;
	const auto *p = reinterpret_cast<const uint8_t *>(&ctx);
	return Bytes(p, p + sizeof ctx);
}

// What local delivery makes of a frame: destination MAC = the pod's,
// source MAC = its host veth's.
Bytes delivered(Bytes f, const sluice_endpoint &to)
{
	std::memcpy(f.data(), to.pod_mac, 6);
	std::memcpy(f.data() + 6, to.host_mac, 6);
	return f;
}

std::string size_name(size_t n)
{
	if (n >= 1000 && n % 1000 == 0)
		return std::to_string(n / 1000) + "k";
	return std::to_string(n);
}

struct LxcObj {
	sluice_lxc *skel = nullptr;
	ring_buffer *rb = nullptr;
	size_t events = 0;
	size_t traces = 0; // SLUICE_EVENT_TRACE among events
	uint32_t last_reason = 0;
	sluice_endpoint a{}, b{}, c{};
	~LxcObj()
	{
		ring_buffer__free(rb);
		sluice_lxc__destroy(skel);
	}
	int ct_fd() const { return bpf_map__fd(skel->maps.sluice_ct); }
	int out_fd() const { return bpf_program__fd(skel->progs.sluice_lxc_out); }
};

int on_event(void *ctx, void *data, size_t size)
{
	auto *o = static_cast<LxcObj *>(ctx);
	if (size < sizeof(sluice_event))
		return 0;
	o->events++;
	o->traces += static_cast<const sluice_event *>(data)->type == SLUICE_EVENT_TRACE;
	o->last_reason = static_cast<const sluice_event *>(data)->reason;
	return 0;
}

void must(int err, const std::string &what)
{
	if (err)
		throw std::runtime_error(what + ": " + std::strerror(errno));
}

void act_as(LxcObj &o, const sluice_endpoint &e)
{
	must(bpf_map_update_elem(bpf_map__fd(o.skel->maps.sluice_ep_if), &kDev, &e, BPF_ANY),
	     "sluice_ep_if");
}

// An endpoint as the agent publishes it: by address, and its address in the
// ipcache with {label identity, cidr identity world}.
void add_local(LxcObj &o, const sluice_endpoint &e)
{
	sluice_addr_key k{};
	k.family = AF_INET;
	std::memcpy(k.addr, e.ipv4, 4);
	must(bpf_map_update_elem(bpf_map__fd(o.skel->maps.sluice_ep_ip), &k, &e, BPF_ANY), "sluice_ep_ip");
	sluice_ipcache_key ck{};
	ck.prefixlen = 32 + 32;
	ck.family = AF_INET;
	std::memcpy(ck.addr, e.ipv4, 4);
	sluice_ipcache_value v{e.identity, SLUICE_ID_WORLD, 0, 0};
	must(bpf_map_update_elem(bpf_map__fd(o.skel->maps.sluice_ipcache), &ck, &v, BPF_ANY),
	     "sluice_ipcache");
}

void set_event_level(const LxcObj &o, uint32_t level)
{
	const __u32 zero = 0;
	sluice_config cfg{};
	cfg.event_level = level;
	must(bpf_map_update_elem(bpf_map__fd(o.skel->maps.sluice_config), &zero, &cfg, BPF_ANY),
	     "sluice_config");
}

uint64_t ct_count(const LxcObj &o)
{
	uint64_t total = 0;
	if (auto r = sluice::ct_dump(o.ct_fd(), 0, &total); !r)
		throw std::runtime_error("ct count: " + r.error());
	return total;
}

void ct_clear(const LxcObj &o)
{
	if (auto r = sluice::ct_flush(o.ct_fd(), bpf_map__fd(o.skel->maps.sluice_ep_epoch)); !r)
		throw std::runtime_error("ct flush: " + r.error());
}

// The cost of observability on established flows: established case c (at
// the default level, flows) again with its packets at event level `level`.
// The connection is opened as c opens it, then the level is set and the
// ring drained. At trace level every iteration must emit exactly one trace
// event, and a call's worth must fit the ring (kEventRepeat).
Case at_event_level(const Case &c, LxcObj *op, uint32_t level,
		    const std::string &suffix, const std::string &level_name)
{
	Case e = c;
	e.name = c.name + "-" + suffix;
	e.what = "as " + c.name + " with event_level = " + level_name + " (default: flows)";
	e.max_ratio.reset();
	e.prepare = [op, level, open = c.prepare] {
		open();
		set_event_level(*op, level);
		ring_buffer__consume(op->rb);
		op->traces = 0;
	};
	if (level == SLUICE_EVENTS_TRACE) {
		e.repeat = kEventRepeat;
		e.check_timed = [op, name = e.name, inner = c.check_timed](const RunResult &r,
									 uint32_t iters) {
			if (inner)
				inner(r, iters);
			ring_buffer__consume(op->rb);
			if (op->traces != iters)
				throw VerifyError(name + ": " + std::to_string(iters) +
						  " iterations emitted " + std::to_string(op->traces) +
						  " trace events");
		};
	}
	return e;
}

// One sluice_lxc instance: endpoints A (on kDev, egress-enforced with
// `entries` policy entries), B and C (local pods, not enforced).
std::shared_ptr<LxcObj> load_lxc(size_t entries)
{
	auto o = std::make_shared<LxcObj>();
	o->skel = sluice_lxc__open_and_load();
	if (!o->skel)
		throw std::runtime_error(std::string("loading sluice_lxc: ") + std::strerror(errno));
	o->rb = ring_buffer__new(bpf_map__fd(o->skel->maps.sluice_events), on_event, o.get(), nullptr);
	if (!o->rb)
		throw std::runtime_error("ring_buffer__new failed");
	set_event_level(*o, SLUICE_EVENTS_FLOWS); // the agent's default (events.level)

	// A's host veth is the device the program runs on, as in production
	// (sluice_ep_if[ifindex].ifindex == ifindex).
	o->a = make_ep(1, kIdA, kA, kDev, 0x01);
	o->b = make_ep(2, kIdB, kB, 12, 0x02);
	o->c = make_ep(3, kIdC, kC, 13, 0x03);
	o->a.flags = SLUICE_EP_EGRESS_ENFORCED;
	add_local(*o, o->b);
	add_local(*o, o->c);
	add_local(*o, o->a);
	act_as(*o, o->a);

	std::vector<PolicyEntry> rules;
	rules.reserve(entries);
	rules.push_back({kIdB, SLUICE_DIR_EGRESS, IPPROTO_TCP, false, kDport, kDport, 1});
	for (uint32_t i = 1; i < entries; i++)
		rules.push_back({kIdFiller + i, SLUICE_DIR_EGRESS, IPPROTO_TCP, false, kDport, kDport, i + 1});
	const auto t0 = std::chrono::steady_clock::now();
	// As the agent does: inner maps sized to their entries (hash inner maps
	// need not match the template's max_entries); the per-endpoint
	// capacity is config policy.endpointMaxEntries, 131072 for the 100k case.
	PolicyMaps pm(bpf_map__fd(o->skel->maps.sluice_policy), bpf_map__fd(o->skel->maps.sluice_pol_tmpl),
		      entries > SLUICE_POLICY_ENTRIES_MAX ? kBigPolicyMax : SLUICE_POLICY_ENTRIES_MAX);
	if (auto s = pm.install(o->a.ep_id, rules); !s)
		throw std::runtime_error("policy install: " + s.error());
	const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	if (entries >= 100000)
		std::fprintf(stderr, "sluice-bench: installed %zu policy entries in %.2f s\n", entries, s);
	return o;
}

std::shared_ptr<sluice_empty_tc> load_empty_tc()
{
	std::shared_ptr<sluice_empty_tc> e(sluice_empty_tc__open_and_load(), sluice_empty_tc__destroy);
	if (!e)
		throw std::runtime_error(std::string("loading sluice_empty_tc: ") + std::strerror(errno));
	return e;
}

Bytes syn_ab() { return tcp4_frame(kA, kB, kSport, kDport); }

} // namespace

void add_tc_floor_cases(Bench &b)
{
	auto e = load_empty_tc();
	const int fd = bpf_program__fd(e->progs.sluice_empty_tc);
	const Bytes f = syn_ab();
	b.keep(e);

	Case c;
	c.name = "tc/empty";
	c.what = "empty TC program returning TC_ACT_OK: the cost of the skb test run itself";
	c.hook = Hook::Tc;
	c.prog_fd = fd;
	c.packet = f;
	c.ctx = sk_buff_ctx(kDev);
	c.expect_verdict = TC_ACT_OK;
	b.add(c);

	auto w = TcRestore::wrap(fd, f, kTcp4SportOff);
	b.keep(w);
	c.name = "tc/wrap/empty";
	c.what = "TC restore wrapper (restore the frame, source port + n, tail call) around "
		 "the empty TC program: the wrapper's own cost";
	c.baseline = "tc/empty";
	c.prog_fd = w->fd();
	c.repeat = kNewRepeat;
	c.prepare = [w] { w->reset(); };
	b.add(c);
}

void add_policy_cases(Bench &b)
{
	const Bytes syn = syn_ab();
	const Bytes ack = tcp4_frame(kA, kB, kSport, kDport, 6, kTcpAck);
	const Bytes deny = tcp4_frame(kA, kC, kSport, kDport);
	const Bytes ctx = sk_buff_ctx(kDev);
	std::vector<Case> est, denied; // grouped by kind in the table

	for (size_t n : {size_t(1), size_t(1000), size_t(100000)}) {
		const std::string sz = size_name(n);
		if (!b.selected("policy/new/" + sz) && !b.selected("policy/established/" + sz) &&
		    !b.selected("policy/established-many/" + sz) &&
		    !b.selected("policy/denied/" + sz) && !b.selected("policy/denied/" + sz + "-noevent"))
			continue;
		auto o = load_lxc(n);
		LxcObj *op = o.get();
		b.keep(o);

		Case c;
		c.hook = Hook::Tc;
		c.baseline = "tc/empty";
		c.ctx = ctx;

		// NEW: through the wrapper, a fresh source port per iteration, on an
		// empty conntrack table (cleared before every call).
		auto w = TcRestore::wrap(o->out_fd(), syn, kTcp4SportOff);
		b.keep(w);
		Case nw = c;
		nw.name = "policy/new/" + sz;
		nw.what = "pod A -> local pod B:80, a new connection per iteration: CT miss, ipcache, "
			  "egress policy (" + std::to_string(n) + " entries), CT create, redirect; "
			  "through tc/wrap/empty";
		nw.wrapper_floor = "tc/wrap/empty";
		nw.prog_fd = w->fd();
		nw.packet = syn;
		nw.expect_verdict = TC_ACT_REDIRECT;
		nw.expect_out = delivered(syn, o->b);
		nw.repeat = kNewRepeat;
		nw.prepare = [op, w] {
			ct_clear(*op);
			w->reset();
		};
		nw.check = [op](const RunResult &) {
			if (ct_count(*op) != 1)
				throw VerifyError("policy/new: one run must create exactly one CT entry");
		};
		nw.check_timed = [op, name = nw.name](const RunResult &, uint32_t iters) {
			const uint64_t got = ct_count(*op);
			if (got != iters)
				throw VerifyError(name + ": " + std::to_string(iters) +
						  " iterations created " + std::to_string(got) +
						  " CT entries: not every iteration was a new connection");
		};
		b.add(std::move(nw));

		// ESTABLISHED: the entry exists (one SYN run in prepare), then ACKs
		// of the same connection, timed directly: the MAC rewrite is a fixed
		// point (verified), so every iteration takes the same path.
		Case es = c;
		es.name = "policy/established/" + sz;
		es.what = "the same connection established (ACK): CT hit, deliver (MAC rewrite + "
			  "bpf_redirect_peer); " + std::to_string(n) + " policy entries";
		es.prog_fd = o->out_fd();
		es.packet = ack;
		es.expect_verdict = TC_ACT_REDIRECT;
		es.expect_out = delivered(ack, o->b);
		es.fixed_point = true;
		es.max_ratio = 2.0;
		es.prepare = [op, syn, ctx] {
			set_event_level(*op, SLUICE_EVENTS_FLOWS);
			ct_clear(*op);
			const RunResult r = test_run(op->out_fd(), syn, 1, ctx);
			if (r.retval != TC_ACT_REDIRECT || ct_count(*op) != 1)
				throw VerifyError("policy/established: the opening SYN was not allowed");
		};
		es.check_timed = [op, name = es.name](const RunResult &, uint32_t) {
			if (ct_count(*op) != 1)
				throw VerifyError(name + ": the established path created CT entries");
		};
		est.push_back(std::move(es));
		// The cost of observability on established flows: the same with
		// events off and with per-packet trace.
		if (n == 1) {
			Case eo = at_event_level(est.back(), op, SLUICE_EVENTS_OFF, "events-off", "off");
			Case et = at_event_level(est.back(), op, SLUICE_EVENTS_TRACE, "trace", "trace");
			est.push_back(std::move(eo));
			est.push_back(std::move(et));
		}

		// ESTABLISHED, MANY FLOWS: 65,536 established connections, ACKs of a
		// different one every iteration (through the wrapper, as NEW): the
		// flow cache (256 slots per CPU) never holds the packet's tuple,
		// so this is the conntrack fast path plus a missed probe and a slot
		// refill: what traffic of more flows than the cache holds costs.
		if (n == 1 && b.selected("policy/established-many/" + sz)) {
			auto ws = TcRestore::wrap(o->out_fd(), syn, kTcp4SportOff);
			auto wa = TcRestore::wrap(o->out_fd(), ack, kTcp4SportOff);
			b.keep(ws);
			b.keep(wa);
			Case em = c;
			em.name = "policy/established-many/" + sz;
			em.what = "ACKs of 65,536 established connections, another one each iteration: "
				  "flow-cache miss, CT hit, deliver, slot refilled; through tc/wrap/empty";
			em.wrapper_floor = "tc/wrap/empty";
			em.prog_fd = wa->fd();
			em.packet = ack;
			em.expect_verdict = TC_ACT_REDIRECT;
			em.expect_out = delivered(ack, o->b);
			em.repeat = kNewRepeat;
			em.prepare = [op, ws, wa, syn, ctx] {
				set_event_level(*op, SLUICE_EVENTS_FLOWS);
				ct_clear(*op);
				ws->reset();
				const RunResult r = test_run(ws->fd(), syn, kNewRepeat, ctx);
				if (r.retval != TC_ACT_REDIRECT || ct_count(*op) != kNewRepeat)
					throw VerifyError("policy/established-many: opening " +
							  std::to_string(kNewRepeat) + " connections failed");
				wa->reset();
			};
			em.check_timed = [op, name = em.name](const RunResult &, uint32_t) {
				if (ct_count(*op) != kNewRepeat)
					throw VerifyError(name + ": the established path created CT entries");
			};
			est.push_back(std::move(em));
		}

		// DENIED: no rule for C's identity: {C}, {any}, {world} all miss;
		// drop counted, one event per iteration (the ring is drained before
		// each call and holds more than kEventRepeat events).
		Case dn = c;
		dn.name = "policy/denied/" + sz;
		dn.what = "pod A -> local pod C:80, no rule for C: 3 policy misses, drop counter and "
			  "drop event; " + std::to_string(n) + " policy entries";
		dn.prog_fd = o->out_fd();
		dn.packet = deny;
		dn.expect_verdict = TC_ACT_SHOT;
		dn.repeat = kEventRepeat;
		dn.prepare = [op] {
			ct_clear(*op);
			set_event_level(*op, SLUICE_EVENTS_DROPS);
			ring_buffer__consume(op->rb);
			op->events = 0;
			op->last_reason = 0;
		};
		dn.check = [op](const RunResult &) {
			ring_buffer__consume(op->rb);
			if (op->events != 1 || op->last_reason != SLUICE_DROP_POLICY_DENY_EGRESS)
				throw VerifyError("policy/denied: expected exactly one policy-deny-egress "
						  "event, got " + std::to_string(op->events));
			if (ct_count(*op) != 0)
				throw VerifyError("policy/denied: a denied packet created a CT entry");
		};
		dn.check_timed = [op, name = dn.name](const RunResult &, uint32_t iters) {
			ring_buffer__consume(op->rb);
			if (op->events != iters || op->last_reason != SLUICE_DROP_POLICY_DENY_EGRESS)
				throw VerifyError(name + ": " + std::to_string(iters) + " iterations emitted " +
						  std::to_string(op->events) + " drop events");
		};
		denied.push_back(std::move(dn));

		// The same without the event (event_level off), for the breakdown:
		// what the ring buffer costs on this path.
		if (n == 1000) {
			Case dq = denied.back();
			dq.name = "policy/denied/" + sz + "-noevent";
			dq.what = "as policy/denied/" + sz + " with event_level = off: the drop "
				  "counter, no event";
			dq.prepare = [op] {
				ct_clear(*op);
				set_event_level(*op, SLUICE_EVENTS_OFF);
			};
			dq.check = [op](const RunResult &) {
				if (ct_count(*op) != 0)
					throw VerifyError("policy/denied: a denied packet created a CT entry");
			};
			dq.check_timed = nullptr;
			denied.push_back(std::move(dq));
		}
	}
	for (Case &c : est)
		b.add(std::move(c));
	for (Case &c : denied)
		b.add(std::move(c));

	// REPLY: B answers A's connection at B's own veth. Its own instance:
	// the device plays A for the SYN, then B.
	if (b.selected("policy/reply/1")) {
		auto o = load_lxc(1);
		LxcObj *op = o.get();
		b.keep(o);
		// Both pods "on" kDev, as in production each on its own veth.
		o->b.ifindex = kDev;
		o->b.flags = SLUICE_EP_EGRESS_ENFORCED; // and no rule lets B open anything
		add_local(*o, o->b);
		const Bytes reply = tcp4_frame(kB, kA, kDport, kSport, 6, kTcpSyn | kTcpAck);
		Case rp;
		rp.name = "policy/reply/1";
		rp.what = "B's SYN-ACK to A's connection at B's veth: CT hit (reply), deliver to A";
		rp.hook = Hook::Tc;
		rp.baseline = "tc/empty";
		rp.ctx = ctx;
		rp.prog_fd = o->out_fd();
		rp.packet = reply;
		rp.expect_verdict = TC_ACT_REDIRECT;
		rp.expect_out = delivered(reply, o->a);
		rp.fixed_point = true;
		rp.prepare = [op, syn, ctx] {
			ct_clear(*op);
			act_as(*op, op->a);
			const RunResult r = test_run(op->out_fd(), syn, 1, ctx);
			act_as(*op, op->b);
			if (r.retval != TC_ACT_REDIRECT || ct_count(*op) != 1)
				throw VerifyError("policy/reply: the opening SYN was not allowed");
		};
		b.add(std::move(rp));
	}
}

namespace {

const uint32_t kVip = ipv4(10, 96, 0, 10);
constexpr uint16_t kBackendPort = 8080;

// N frontends: the measured one (kVip:80 -> B:8080) and N-1 fillers
// (other addresses, each its own backend set naming B), as the agent
// writes them.
void add_services(LxcObj &o, size_t n)
{
	const int svc_fd = bpf_map__fd(o.skel->maps.sluice_lb_svc);
	const int slot_fd = bpf_map__fd(o.skel->maps.sluice_lb_slots);
	const uint32_t be_id = 1;
	sluice_lb_backend be{};
	std::memcpy(be.addr, o.b.ipv4, 4);
	be.family = AF_INET;
	be.port = htons(kBackendPort);
	must(bpf_map_update_elem(bpf_map__fd(o.skel->maps.sluice_lb_be), &be_id, &be, BPF_ANY),
	     "sluice_lb_be");
	for (uint32_t i = 0; i < n; i++) {
		sluice_lb_svc_key k{};
		const uint32_t a = htonl(i == 0 ? kVip : ipv4(10, 100, 0, 0) + i);
		std::memcpy(k.addr, &a, 4);
		k.port = htons(kDport);
		k.proto = IPPROTO_TCP;
		k.family = AF_INET;
		sluice_lb_svc v{};
		v.svc_id = i + 1;
		v.count = 1;
		sluice_lb_slot_key sk{i + 1, 0};
		must(bpf_map_update_elem(slot_fd, &sk, &be_id, BPF_ANY), "sluice_lb_slots");
		must(bpf_map_update_elem(svc_fd, &k, &v, BPF_ANY), "sluice_lb_svc");
	}
}

} // namespace

void add_lb_tc_cases(Bench &b)
{
	const Bytes syn = tcp4_frame(kA, kVip, kSport, kDport);
	const Bytes ack = tcp4_frame(kA, kVip, kSport, kDport, 6, kTcpAck);
	const Bytes ctx = sk_buff_ctx(kDev);
	{
		auto e = load_empty_tc();
		b.keep(e);
		auto w = TcRestore::wrap(bpf_program__fd(e->progs.sluice_empty_tc), ack);
		b.keep(w);
		Case c;
		c.name = "tc/wrap0/empty";
		c.what = "TC restore wrapper without port change around the empty TC program: the "
			 "wrapper's own cost for fixed-tuple paths";
		c.hook = Hook::Tc;
		c.baseline = "tc/empty";
		c.ctx = ctx;
		c.prog_fd = w->fd();
		c.packet = ack;
		c.expect_verdict = TC_ACT_OK;
		c.prepare = [w] { w->reset(); };
		b.add(c);
	}
	std::vector<Case> est;
	for (size_t n : {size_t(1), size_t(1000), size_t(100000)}) {
		const std::string sz = size_name(n);
		if (!b.selected("lb/clusterip/new/" + sz) && !b.selected("lb/clusterip/established/" + sz))
			continue;
		auto o = load_lxc(1);
		LxcObj *op = o.get();
		b.keep(o);
		o->a.flags = 0; // no policy: the load balancer alone
		add_local(*o, o->a);
		act_as(*o, o->a);
		add_services(*o, n);
		const Bytes syn_out = delivered(tcp4_frame(kA, kB, kSport, kBackendPort), o->b);
		const Bytes ack_out =
			delivered(tcp4_frame(kA, kB, kSport, kBackendPort, 6, kTcpAck), o->b);

		Case c;
		c.hook = Hook::Tc;
		c.baseline = "tc/empty";
		c.ctx = ctx;

		auto w = TcRestore::wrap(o->out_fd(), syn, kTcp4SportOff);
		b.keep(w);
		Case nw = c;
		nw.name = "lb/clusterip/new/" + sz;
		nw.what = "pod A -> ClusterIP:80 (" + std::to_string(n) + " services), a new connection "
			  "per iteration: service lookup, random slot, DNAT, 2 CT entries, redirect "
			  "to B:8080; through tc/wrap/empty";
		nw.wrapper_floor = "tc/wrap/empty";
		nw.prog_fd = w->fd();
		nw.packet = syn;
		nw.expect_verdict = TC_ACT_REDIRECT;
		nw.expect_out = syn_out;
		nw.repeat = kNewRepeat / 2; // two CT entries per connection
		nw.prepare = [op, w] {
			ct_clear(*op);
			w->reset();
		};
		nw.check = [op](const RunResult &) {
			if (ct_count(*op) != 2)
				throw VerifyError("lb/clusterip/new: one run must create a service and a "
						  "connection entry");
		};
		b.add(std::move(nw));

		auto w0 = TcRestore::wrap(o->out_fd(), ack);
		b.keep(w0);
		Case es = c;
		es.name = "lb/clusterip/established/" + sz;
		es.what = "the same connection established (ACK): service entry hit, DNAT, connection "
			  "entry hit, deliver; " + std::to_string(n) + " services; through tc/wrap0/empty";
		es.wrapper_floor = "tc/wrap0/empty";
		es.prog_fd = w0->fd();
		es.packet = ack;
		es.expect_verdict = TC_ACT_REDIRECT;
		es.expect_out = ack_out;
		es.prepare = [op, syn, ctx, w0] {
			set_event_level(*op, SLUICE_EVENTS_FLOWS);
			ct_clear(*op);
			w0->reset();
			const RunResult r = test_run(op->out_fd(), syn, 1, ctx);
			if (r.retval != TC_ACT_REDIRECT || ct_count(*op) != 2)
				throw VerifyError("lb/clusterip/established: the opening SYN failed");
		};
		es.check_timed = [op, name = es.name](const RunResult &, uint32_t) {
			if (ct_count(*op) != 2)
				throw VerifyError(name + ": the established path created CT entries");
		};
		est.push_back(std::move(es));
		if (n == 1) {
			Case eo = at_event_level(est.back(), op, SLUICE_EVENTS_OFF, "events-off", "off");
			Case et = at_event_level(est.back(), op, SLUICE_EVENTS_TRACE, "trace", "trace");
			est.push_back(std::move(eo));
			est.push_back(std::move(et));
		}
	}
	for (Case &c : est)
		b.add(std::move(c));
}

} // namespace sluice::bench
