// XDP floor and prefilter cases (issue: prefilter benchmark).
//
//   xdp/empty                 sluice_empty: the floor
//   prefilter/pass/0          sluice_xdp, empty deny trie (parse + miss + pass counter)
//   prefilter/pass/10|10k|1M  sluice_xdp passes a TCP SYN whose source matches
//                             none of N deny prefixes
//   prefilter/drop/10k        sluice_xdp drops a source inside a deny /24,
//                             drop events off
//   prefilter/drop/10k+events same with event_level = drops (the agent's
//                             default); see docs/benchmarks.md on the ring
//
// Each trie size is its own skeleton instance (own maps, nothing pinned), so
// all cases can be timed interleaved in one run.
#include "bench.h"
#include "frame.h"

#include <sluice/abi.h>

#include "sluice_empty.skel.h"
#include "sluice_xdp.skel.h"
#include "prefilter/deny_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <unordered_set>

namespace sluice::bench {

namespace {

// Probes. Deny entries never cover kPassSrc; kDropSrc is covered by
// exactly one deny entry, kDropNet/24.
const uint32_t kPassSrc = ipv4(192, 0, 2, 10);
const uint32_t kDropSrc = ipv4(203, 0, 113, 9);
const uint32_t kDropNet = ipv4(203, 0, 113, 0);
const uint32_t kDst = ipv4(10, 0, 0, 1);

struct Prefix {
	uint32_t addr; // host order, host bits zero
	uint8_t len;
};

uint32_t mask(uint8_t len) { return len == 0 ? 0 : ~uint32_t(0) << (32 - len); }

bool covers(const Prefix &p, uint32_t a) { return (a & mask(p.len)) == p.addr; }

// n distinct prefixes: kDropNet/24 plus n-1 pseudo-random ones, about half
// /32, a quarter /24, the rest /16../31, none covering the probes.
std::vector<Prefix> deny_list(size_t n, uint64_t seed)
{
	std::vector<Prefix> v;
	std::unordered_set<uint64_t> seen;
	v.reserve(n);
	auto add = [&](Prefix p) {
		if (!seen.insert((uint64_t(p.len) << 32) | p.addr).second)
			return;
		v.push_back(p);
	};
	if (n == 0)
		return v;
	add({kDropNet, 24});
	std::mt19937_64 rng(seed);
	while (v.size() < n) {
		const uint64_t r = rng();
		const uint32_t a = uint32_t(r);
		const unsigned k = (r >> 32) & 15;
		uint8_t len = k < 8 ? 32 : k < 12 ? 24 : uint8_t(16 + ((r >> 40) % 16));
		Prefix p{a & mask(len), len};
		if (covers(p, kPassSrc) || covers(p, kDropSrc))
			continue;
		add(p);
	}
	return v;
}

// Programs the deny list through the agent's own code path (tries in
// batches, then the bucket bitmaps), so the fill time is the agent's too.
std::unique_ptr<sluice::DenyMaps> fill_v4(sluice_xdp *skel, const std::vector<Prefix> &ps)
{
	auto maps = sluice::DenyMaps::open({bpf_map__fd(skel->maps.sluice_pf_v4),
					    bpf_map__fd(skel->maps.sluice_pf_v6),
					    bpf_map__fd(skel->maps.sluice_pf_v4_bm),
					    bpf_map__fd(skel->maps.sluice_pf_v6_bm)});
	if (!maps)
		throw std::runtime_error("prefilter fill: " + maps.error());
	std::vector<sluice::Cidr> cidrs(ps.size());
	for (size_t i = 0; i < ps.size(); i++) {
		cidrs[i].addr.family = AF_INET;
		const uint32_t be = htonl(ps[i].addr);
		std::memcpy(cidrs[i].addr.bytes.data(), &be, 4);
		cidrs[i].prefixlen = ps[i].len;
	}
	if (auto s = (*maps)->insert(cidrs); !s)
		throw std::runtime_error("prefilter fill: " + s.error());
	return std::move(*maps);
}

struct XdpObj {
	sluice_xdp *skel = nullptr;
	ring_buffer *rb = nullptr;
	std::unique_ptr<sluice::DenyMaps> deny;
	size_t events = 0;
	uint32_t last_reason = 0;
	uint8_t last_saddr[4] = {};
	~XdpObj()
	{
		ring_buffer__free(rb);
		deny.reset();  // unmaps the bitmaps before the maps go
		sluice_xdp__destroy(skel);
	}
};

int on_event(void *ctx, void *data, size_t size)
{
	auto *o = static_cast<XdpObj *>(ctx);
	if (size < sizeof(sluice_event))
		return 0;
	const auto *ev = static_cast<const sluice_event *>(data);
	o->events++;
	o->last_reason = ev->reason;
	std::memcpy(o->last_saddr, ev->saddr, 4);
	return 0;
}

std::shared_ptr<XdpObj> load_xdp(size_t entries, uint64_t seed)
{
	auto o = std::make_shared<XdpObj>();
	o->skel = sluice_xdp__open_and_load();
	if (!o->skel)
		throw std::runtime_error(std::string("loading sluice_xdp: ") + std::strerror(errno));
	o->rb = ring_buffer__new(bpf_map__fd(o->skel->maps.sluice_events), on_event, o.get(), nullptr);
	if (!o->rb)
		throw std::runtime_error("ring_buffer__new failed");
	if (entries) {
		const auto t0 = std::chrono::steady_clock::now();
		const auto ps = deny_list(entries, seed);
		o->deny = fill_v4(o->skel, ps);
		const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
		if (entries >= 100000)
			std::fprintf(stderr, "sluice-bench: filled %zu deny entries in %.2f s\n", entries, s);
	}
	return o;
}

void set_event_level(XdpObj &o, uint32_t level)
{
	const __u32 zero = 0;
	sluice_config cfg{};
	cfg.event_level = level;
	if (bpf_map_update_elem(bpf_map__fd(o.skel->maps.sluice_config), &zero, &cfg, BPF_ANY))
		throw std::runtime_error(std::string("config update: ") + std::strerror(errno));
}

std::string size_name(size_t n)
{
	if (n >= 1000000 && n % 1000000 == 0)
		return std::to_string(n / 1000000) + "M";
	if (n >= 1000 && n % 1000 == 0)
		return std::to_string(n / 1000) + "k";
	return std::to_string(n);
}

} // namespace

void add_floor_cases(Bench &b)
{
	std::shared_ptr<sluice_empty> e(sluice_empty__open_and_load(), sluice_empty__destroy);
	if (!e)
		throw std::runtime_error(std::string("loading sluice_empty: ") + std::strerror(errno));
	Case c;
	c.name = "xdp/empty";
	c.what = "empty XDP program returning XDP_PASS: the cost of BPF_PROG_TEST_RUN itself";
	c.prog_fd = bpf_program__fd(e->progs.sluice_empty);
	c.packet = tcp4_frame(kPassSrc, kDst, 40000, 80);
	c.expect_verdict = XDP_PASS;
	b.add(std::move(c));
	b.keep(e);
}

void add_prefilter_cases(Bench &b)
{
	const Bytes pass_pkt = tcp4_frame(kPassSrc, kDst, 40000, 80);
	const Bytes drop_pkt = tcp4_frame(kDropSrc, kDst, 40000, 80);
	std::vector<Case> drops; // added after the pass cases, for the table's sake
	std::vector<size_t> sizes = {0, 10, 10000};
	if (!b.opts().quick)
		sizes.push_back(1000000);

	for (size_t n : sizes) {
		const std::string pass_name = "prefilter/pass/" + size_name(n);
		const bool want_drop = n == 10000;
		const std::string drop_name = "prefilter/drop/" + size_name(n);
		if (!b.selected(pass_name) &&
		    !(want_drop && (b.selected(drop_name) || b.selected(drop_name + "+events"))))
			continue; // do not pay for a 1M fill that is filtered out
		auto o = load_xdp(n, b.opts().seed);
		const int fd = bpf_program__fd(o->skel->progs.sluice_xdp);
		XdpObj *op = o.get();

		Case p;
		p.name = pass_name;
		p.what = "sluice_xdp passes a TCP SYN whose source matches none of " +
			 std::to_string(n) + " deny prefixes";
		p.baseline = "xdp/empty";
		p.prog_fd = fd;
		p.packet = pass_pkt;
		p.expect_verdict = XDP_PASS;
		if (n == 10000)
			p.max_ratio = 1.5;
		b.add(std::move(p));

		if (want_drop) {
			Case d;
			d.name = drop_name;
			d.what = "sluice_xdp drops a TCP SYN from a denied /24 (" + std::to_string(n) +
				 " deny prefixes), drop events off";
			d.baseline = "xdp/empty";
			d.prog_fd = fd;
			d.packet = drop_pkt;
			d.expect_verdict = XDP_DROP;
			d.prepare = [op] { set_event_level(*op, SLUICE_EVENTS_OFF); };
			drops.push_back(d);

			Case de = d;
			de.name += "+events";
			de.what = "as prefilter/drop/" + size_name(n) +
				  " with event_level=drops (agent default); the 8 MiB ring fills "
				  "after ~70k events, later iterations take the ring-full path";
			de.prepare = [op] {
				set_event_level(*op, SLUICE_EVENTS_DROPS);
				ring_buffer__consume(op->rb); // start each run with an empty ring
				op->events = 0;
			};
			de.check = [op](const RunResult &) {
				ring_buffer__consume(op->rb);
				const uint32_t want = htonl(kDropSrc);
				if (op->events != 1 || op->last_reason != SLUICE_DROP_PREFILTER_DENY ||
				    std::memcmp(op->last_saddr, &want, 4) != 0)
					throw VerifyError("prefilter/drop+events: expected exactly one "
							  "prefilter-deny event for the probe source, got " +
							  std::to_string(op->events) + " event(s)");
			};
			drops.push_back(std::move(de));
		}
		b.keep(o);
	}
	for (Case &d : drops)
		b.add(std::move(d));
}

} // namespace sluice::bench
