// The XDP load balancer (sluice_xdp, bpf/lib/nodeport_fwd.h): north-south
// connections forwarded to a backend on another node with SNAT or DSR
// (IP-in-IP), next hop by bpf_fib_lookup, XDP_TX. Timed through the
// restore wrapper (every iteration sees the original frame; new-flow cases
// also get a new source port per iteration) and reported against
// xdp/empty, with the wrapper's own cost (xdp/wrap*/empty) subtracted in
// the net columns. The process moves into a private network namespace
// (tests/lib/fwd_netns.h) so the route lookups see a node device with a
// route and a resolved next hop to the other node; the other groups do
// not care which namespace they run in (ifindex 1 is lo everywhere).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <stdexcept>

#include "bench.h"
#include "fwd_netns.h"
#include "frame.h"
#include "restore.h"
#include "sluice/abi.h"
#include "sluice_empty.skel.h"
#include "sluice_xdp.skel.h"

namespace sluice::bench {
namespace {

const uint32_t kClient = ipv4(198, 18, 0, 1);
const uint32_t kNode = ipv4(198, 18, 0, 2);
const uint32_t kBackend0 = ipv4(10, 201, 0, 1); // on the other node
constexpr uint16_t kPort = 30080, kBackendPort = 8080, kSport = 1024;
constexpr int kBackends = 16; // the measured service's (SNAT ports: 28,976 each)
constexpr uint32_t kNewRepeat = 65536; // one new connection per iteration

using Mac = std::array<uint8_t, 6>;

struct XdpLb {
	sluice_xdp *skel = nullptr;
	ring_buffer *rb = nullptr;
	~XdpLb()
	{
		ring_buffer__free(rb);
		sluice_xdp__destroy(skel);
	}
	int fd(const bpf_map *m) const { return bpf_map__fd(m); }
};

int ignore_event(void *, void *, size_t) { return 0; }

void put(int fd, const void *k, const void *v)
{
	if (bpf_map_update_elem(fd, k, v, BPF_ANY))
		throw std::runtime_error(std::string("lb xdp fill: ") + std::strerror(errno));
}

// n external frontends: the measured one (node address, kPort) over
// kBackends backends on the other node, and n - 1 fillers (load-balancer
// IPs 198.19.x.y:80), each its own set of one backend.
void add_frontends(XdpLb &o, size_t n)
{
	uint32_t be_id = 1;
	for (size_t i = 0; i < n; i++) {
		sluice_lb_svc_key k{};
		const uint32_t addr = i ? ipv4(198, 19, 0, 0) + uint32_t(i % 60000) : kNode;
		const uint32_t a = htonl(addr);
		std::memcpy(k.addr, &a, 4);
		k.port = htons(i ? uint16_t(80 + i / 60000) : kPort);
		k.proto = IPPROTO_TCP;
		k.family = AF_INET;
		k.scope = SLUICE_LB_SCOPE_EXTERNAL;
		sluice_lb_svc v{};
		v.svc_id = uint32_t(i + 1);
		const int nb = i ? 1 : kBackends;
		v.count = uint16_t(nb);
		for (int s = 0; s < nb; s++, be_id++) {
			sluice_lb_backend b{};
			const uint32_t ba = htonl(kBackend0 + uint32_t(i ? 1000 + i : s));
			std::memcpy(b.addr, &ba, 4);
			b.family = AF_INET;
			b.port = htons(kBackendPort);
			put(o.fd(o.skel->maps.sluice_lb_be), &be_id, &b);
			sluice_lb_slot_key sk{v.svc_id, uint32_t(s)};
			put(o.fd(o.skel->maps.sluice_lb_slots), &sk, &be_id);
		}
		put(o.fd(o.skel->maps.sluice_lb_svc), &k, &v);
		// The north-south gate, as the agent's LbMaps sets it.
		uint32_t w4[4];
		std::memcpy(w4, k.addr, 16);
		const uint32_t bit = sluice_lb_gate_bit(w4), word = bit / 64;
		uint64_t w = 0;
		bpf_map_lookup_elem(o.fd(o.skel->maps.sluice_lb_gate), &word, &w);
		w |= 1ull << (bit % 64);
		put(o.fd(o.skel->maps.sluice_lb_gate), &word, &w);
	}
}

void set_mode(XdpLb &o, bool dsr)
{
	const __u32 zero = 0;
	sluice_config c{};
	c.event_level = SLUICE_EVENTS_FLOWS; // the agent's default
	c.flags = dsr ? SLUICE_CFG_LB_DSR : 0;
	put(o.fd(o.skel->maps.sluice_config), &zero, &c);
}

// Keys first, then deletes: get_next_key from the start after each delete
// rescans the emptied buckets (quadratic; minutes for 64k entries).
void clear(int fd, size_t key_size)
{
	std::vector<uint8_t> keys, next(key_size);
	for (const void *cur = nullptr; bpf_map_get_next_key(fd, cur, next.data()) == 0;) {
		keys.insert(keys.end(), next.begin(), next.end());
		cur = keys.data() + keys.size() - key_size;
	}
	for (size_t off = 0; off < keys.size(); off += key_size)
		if (bpf_map_delete_elem(fd, keys.data() + off) && errno != ENOENT)
			throw std::runtime_error(std::string("lb xdp clear: ") + std::strerror(errno));
}

void reset_state(XdpLb &o)
{
	clear(o.fd(o.skel->maps.sluice_np_fwd), sizeof(sluice_ct_key));
	clear(o.fd(o.skel->maps.sluice_np_rev), sizeof(sluice_ct_key));
	// The cache: every CPU's slots, emptied.
	const std::vector<sluice_np_fast> empty{size_t(libbpf_num_possible_cpus()), sluice_np_fast{}};
	for (uint32_t slot = 0; slot < SLUICE_NP_FAST_SLOTS; slot++)
		put(o.fd(o.skel->maps.sluice_np_fast), &slot, empty.data());
	ring_buffer__consume(o.rb);
}

size_t entries(int fd, size_t key_size)
{
	std::vector<uint8_t> k(key_size), next(key_size);
	size_t n = 0;
	for (const void *cur = nullptr; bpf_map_get_next_key(fd, cur, next.data()) == 0; n++) {
		k = next;
		cur = k.data();
	}
	return n;
}

// The frame after forwarding: MACs toward the other node, addresses and
// ports as given, checksums computed from scratch (an independent check of
// the program's incremental updates).
Bytes nat4(Bytes f, const Mac &smac, const Mac &dmac, uint32_t src, uint16_t sport, uint32_t dst,
	   uint16_t dport)
{
	std::memcpy(&f[0], dmac.data(), 6);
	std::memcpy(&f[6], smac.data(), 6);
	uint8_t *h = &f[14], *t = h + 20;
	const uint32_t s = htonl(src), d = htonl(dst);
	std::memcpy(h + 12, &s, 4);
	std::memcpy(h + 16, &d, 4);
	h[10] = h[11] = 0;
	const uint16_t ipc = csum_fold(csum_add(0, h, 20));
	h[10] = ipc >> 8, h[11] = ipc & 0xff;
	t[0] = sport >> 8, t[1] = sport & 0xff;
	t[2] = dport >> 8, t[3] = dport & 0xff;
	t[16] = t[17] = 0;
	const size_t seg = f.size() - 34;
	uint32_t sum = csum_add(0, h + 12, 8) + 6 + uint32_t(seg);
	const uint16_t tc = csum_fold(csum_add(sum, t, seg));
	t[16] = tc >> 8, t[17] = tc & 0xff;
	return f;
}

// inner (an Ethernet frame) wrapped as DSR sends it: outer IPv4 frontend
// -> backend, identification = the frontend port, DF, protocol IPIP.
Bytes ipip4(const Bytes &inner, const Mac &smac, const Mac &dmac, uint32_t src, uint32_t dst,
	    uint16_t id)
{
	Bytes o(inner.size() + 20);
	std::memcpy(&o[0], dmac.data(), 6);
	std::memcpy(&o[6], smac.data(), 6);
	o[12] = 0x08, o[13] = 0x00;
	uint8_t *h = &o[14];
	const uint16_t tot = uint16_t(inner.size() - 14 + 20);
	h[0] = 0x45, h[1] = inner[15];
	h[2] = tot >> 8, h[3] = tot & 0xff;
	h[4] = id >> 8, h[5] = id & 0xff;
	h[6] = 0x40, h[8] = 64, h[9] = 4;
	const uint32_t s = htonl(src), d = htonl(dst);
	std::memcpy(h + 12, &s, 4);
	std::memcpy(h + 16, &d, 4);
	const uint16_t c = csum_fold(csum_add(0, h, 20));
	h[10] = c >> 8, h[11] = c & 0xff;
	std::memcpy(&o[34], &inner[14], inner.size() - 14);
	return o;
}

Bytes xdp_ctx(uint32_t ifindex, size_t len)
{
	xdp_md m{};
	m.data_end = uint32_t(len);
	m.ingress_ifindex = ifindex;
	const auto *p = reinterpret_cast<const uint8_t *>(&m);
	return Bytes(p, p + sizeof(m));
}

uint32_t backend_of(const Bytes &out, size_t daddr_off)
{
	uint32_t a;
	std::memcpy(&a, &out[daddr_off], 4);
	return ntohl(a);
}

void check_backend(const std::string &name, uint32_t b)
{
	if (b < kBackend0 || b >= kBackend0 + kBackends)
		throw VerifyError(name + ": forwarded to an address that is not a backend");
}

} // namespace

void add_lb_xdp_cases(Bench &b)
{
	bool any = false;
	for (const char *m : {"snat", "dsr"})
		for (const char *k : {"new", "established"})
			for (const char *n : {"1", "1k", "100k"})
				any |= b.selected(std::string("lb/xdp/") + m + "/" + k + "/" + n);
	if (!any)
		return;
	test::FwdNetns ns;
	if (std::string e = test::enter_fwd_netns(&ns); !e.empty())
		throw std::runtime_error("lb xdp: network namespace: " + e);
	const Mac node = ns.mac, peer = test::FwdNetns::kPeerMac;
	const Bytes syn = tcp4_frame(kClient, kNode, kSport, kPort);
	const Bytes ack = tcp4_frame(kClient, kNode, kSport, kPort, 6, kTcpAck);
	const Bytes ctx = xdp_ctx(ns.ifindex, syn.size());

	std::shared_ptr<sluice_empty> e(sluice_empty__open_and_load(), sluice_empty__destroy);
	if (!e)
		throw std::runtime_error(std::string("loading sluice_empty: ") + std::strerror(errno));
	b.keep(e);
	for (bool vary : {false, true}) {
		auto w = Restore::wrap(bpf_program__fd(e->progs.sluice_empty), syn,
				       vary ? kTcp4SportOff : -1);
		b.keep(w);
		Case c;
		c.name = vary ? "xdp/wrapv/empty" : "xdp/wrap/empty";
		c.what = vary ? "restore wrapper with a new source port per iteration around the "
				"empty XDP program: subtracted from the new-flow cases"
			      : "restore wrapper around the empty XDP program: subtracted from the "
				"established cases";
		c.baseline = "xdp/empty";
		c.prog_fd = w->fd();
		c.packet = syn;
		c.ctx = ctx;
		c.expect_verdict = XDP_PASS;
		c.prepare = [w] { w->reset(); };
		b.add(c);
	}

	for (bool dsr : {false, true}) {
		const std::string mode = dsr ? "dsr" : "snat";
		for (size_t n : {size_t(1), size_t(1000), size_t(100000)}) {
			const std::string sz = n == 1 ? "1" : n == 1000 ? "1k" : "100k";
			if (!b.selected("lb/xdp/" + mode + "/new/" + sz) &&
			    !b.selected("lb/xdp/" + mode + "/established/" + sz))
				continue;
			auto o = std::make_shared<XdpLb>();
			o->skel = sluice_xdp__open_and_load();
			if (!o->skel)
				throw std::runtime_error(std::string("loading sluice_xdp: ") +
							 std::strerror(errno));
			o->rb = ring_buffer__new(o->fd(o->skel->maps.sluice_events), ignore_event,
						 nullptr, nullptr);
			if (!o->rb)
				throw std::runtime_error("ring_buffer__new failed");
			b.keep(o);
			set_mode(*o, dsr);
			add_frontends(*o, n);
			XdpLb *op = o.get();
			const int prog = bpf_program__fd(o->skel->progs.sluice_xdp);

			Case c;
			c.baseline = "xdp/empty";
			c.ctx = ctx;
			c.expect_verdict = XDP_TX;

			auto wn = Restore::wrap(prog, syn, kTcp4SportOff);
			b.keep(wn);
			Case nw = c;
			nw.name = "lb/xdp/" + mode + "/new/" + sz;
			nw.what = "client -> NodePort (" + std::to_string(n) + " frontends), a new "
				  "connection per iteration: frontend lookup, random pick, route lookup, " +
				  (dsr ? "DNAT + IP-in-IP" : "SNAT port, DNAT + SNAT") +
				  ", XDP_TX; events at flows; through xdp/wrapv/empty";
			nw.wrapper_floor = "xdp/wrapv/empty";
			nw.prog_fd = wn->fd();
			nw.packet = syn;
			nw.repeat = kNewRepeat;
			nw.prepare = [op, wn] {
				reset_state(*op);
				wn->reset();
			};
			nw.expect_out_fn = [name = nw.name, dsr, node, peer, syn](const RunResult &r) {
				if (r.out.size() < 38)
					throw VerifyError(name + ": short output");
				if (dsr) {
					const uint32_t be = backend_of(r.out, 30);
					check_backend(name, be);
					Bytes in = nat4(syn, node, peer, kClient, kSport, be, kBackendPort);
					return ipip4(in, node, peer, kNode, be, kPort);
				}
				const uint32_t be = backend_of(r.out, 30);
				const uint16_t sp = uint16_t(r.out[34] << 8 | r.out[35]);
				check_backend(name, be);
				if (sp < SLUICE_NP_SNAT_PORT_MIN || sp > SLUICE_NP_SNAT_PORT_MAX)
					throw VerifyError(name + ": SNAT port out of range");
				return nat4(syn, node, peer, kNode, sp, be, kBackendPort);
			};
			nw.check_timed = [op, name = nw.name](const RunResult &, uint32_t iters) {
				const size_t got = entries(op->fd(op->skel->maps.sluice_np_fwd),
							   sizeof(sluice_ct_key));
				// The per-CPU LRU may have evicted some; most must be there.
				if (got < std::min<size_t>(iters, SLUICE_NP_FWD_MAX / 4) * 9 / 10)
					throw VerifyError(name + ": iterations did not each make a "
								 "connection (" + std::to_string(got) + ")");
			};
			b.add(std::move(nw));

			auto we = Restore::wrap(prog, ack);
			b.keep(we);
			Case es = c;
			es.name = "lb/xdp/" + mode + "/established/" + sz;
			es.what = "the same connection established (ACK), " + std::to_string(n) +
				  " frontends: one lookup of the forwarding entry, " +
				  (dsr ? "DNAT + IP-in-IP" : "DNAT + SNAT") +
				  " with the cached next hop, XDP_TX; through xdp/wrap/empty";
			es.wrapper_floor = "xdp/wrap/empty";
			es.prog_fd = we->fd();
			es.packet = ack;
			auto out = std::make_shared<Bytes>();
			es.prepare = [op, prog, syn, ctx, out, dsr, node, peer, ack] {
				reset_state(*op);
				const RunResult r = test_run(prog, syn, 1, ctx);
				if (r.retval != XDP_TX || r.out.size() < 38)
					throw VerifyError("lb/xdp established: the opening SYN failed");
				const uint32_t be = backend_of(r.out, 30);
				*out = dsr ? ipip4(nat4(ack, node, peer, kClient, kSport, be, kBackendPort),
						   node, peer, kNode, be, kPort)
					   : nat4(ack, node, peer, kNode,
						  uint16_t(r.out[34] << 8 | r.out[35]), be, kBackendPort);
			};
			es.expect_out_fn = [out](const RunResult &) { return *out; };
			es.check_timed = [op, name = es.name](const RunResult &, uint32_t) {
				if (entries(op->fd(op->skel->maps.sluice_np_fwd), sizeof(sluice_ct_key)) != 1)
					throw VerifyError(name + ": the established path made entries");
			};
			b.add(std::move(es));
		}
	}
}

} // namespace sluice::bench
