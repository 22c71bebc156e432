// Restore wrapper (see restore.h and restore_xdp.bpf.c), its self-check,
// and the optional restore/* cases.
#include "restore.h"
#include "frame.h"

#include "sluice_bench_restore.skel.h"
#include "sluice_bench_restore_tc.skel.h"
#include "sluice_empty.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sluice::bench {

namespace {
constexpr size_t kPktMax = 2048; // SLUICE_BENCH_PKT_MAX in restore_xdp.bpf.c

struct PktValue { // struct sluice_bench_pkt in restore_xdp.bpf.c
	uint32_t len;
	uint16_t sport_off;
	uint16_t sport_base;
	uint8_t data[kPktMax];
};

// What bench_demo_vlan_push makes of an untagged frame: 802.1Q VID 42.
Bytes vlan_pushed(const Bytes &f)
{
	Bytes o(f.size() + 4);
	std::memcpy(o.data(), f.data(), 12);
	o[12] = 0x81, o[13] = 0x00, o[14] = 0x00, o[15] = 42;
	std::memcpy(o.data() + 16, f.data() + 12, f.size() - 12);
	return o;
}

std::shared_ptr<sluice_empty> load_empty()
{
	std::shared_ptr<sluice_empty> e(sluice_empty__open_and_load(), sluice_empty__destroy);
	if (!e)
		throw std::runtime_error(std::string("loading sluice_empty: ") + std::strerror(errno));
	return e;
}
} // namespace

std::shared_ptr<Restore> Restore::wrap(int target_fd, const Bytes &frame, int sport_off)
{
	if (frame.empty() || frame.size() > kPktMax)
		throw std::runtime_error("restore: frame size out of range");
	if (sport_off == 0 || (sport_off > 0 && size_t(sport_off) + 2 > frame.size()))
		throw std::runtime_error("restore: source port outside the frame");
	std::shared_ptr<Restore> r(new Restore);
	r->skel_ = sluice_bench_restore__open_and_load();
	if (!r->skel_)
		throw std::runtime_error(std::string("loading sluice_bench_restore: ") + std::strerror(errno));
	const __u32 zero = 0;
	PktValue v{};
	v.len = static_cast<uint32_t>(frame.size());
	std::memcpy(v.data, frame.data(), frame.size());
	if (sport_off > 0) {
		v.sport_off = static_cast<uint16_t>(sport_off);
		v.sport_base = static_cast<uint16_t>((frame[sport_off] << 8) | frame[sport_off + 1]);
	}
	if (bpf_map_update_elem(bpf_map__fd(r->skel_->maps.bench_pkt), &zero, &v, BPF_ANY))
		throw std::runtime_error(std::string("restore: bench_pkt: ") + std::strerror(errno));
	if (target_fd < 0)
		target_fd = r->demo_vlan_push_fd();
	const __u32 tfd = static_cast<__u32>(target_fd);
	if (bpf_map_update_elem(bpf_map__fd(r->skel_->maps.bench_target), &zero, &tfd, BPF_ANY))
		throw std::runtime_error(std::string("restore: bench_target: ") + std::strerror(errno));
	return r;
}

Restore::~Restore() { sluice_bench_restore__destroy(skel_); }

int Restore::fd() const { return bpf_program__fd(skel_->progs.bench_restore); }

void Restore::reset() const
{
	const __u32 zero = 0;
	if (bpf_map_update_elem(bpf_map__fd(skel_->maps.bench_ctr), &zero, &zero, BPF_ANY))
		throw std::runtime_error(std::string("restore: bench_ctr: ") + std::strerror(errno));
}

int Restore::demo_vlan_push_fd() const { return bpf_program__fd(skel_->progs.bench_demo_vlan_push); }

namespace {
struct TcPktValue { // struct bench_tc_pkt in restore_tc.bpf.c
	uint32_t len;
	uint32_t vary;
	uint32_t sport_off;
	uint16_t sport_base;
	uint16_t pad;
	uint8_t data[kPktMax];
};
} // namespace

std::shared_ptr<TcRestore> TcRestore::wrap(int target_fd, const Bytes &frame, int sport_off)
{
	if (frame.empty() || frame.size() > kPktMax)
		throw std::runtime_error("tc restore: frame size out of range");
	if (sport_off >= 0 && size_t(sport_off) + 2 > frame.size())
		throw std::runtime_error("tc restore: source port outside the frame");
	std::shared_ptr<TcRestore> r(new TcRestore);
	r->skel_ = sluice_bench_restore_tc__open_and_load();
	if (!r->skel_)
		throw std::runtime_error(std::string("loading sluice_bench_restore_tc: ") + std::strerror(errno));
	const __u32 zero = 0;
	auto v = std::make_unique<TcPktValue>();
	*v = {};
	v->len = static_cast<uint32_t>(frame.size());
	std::memcpy(v->data, frame.data(), frame.size());
	if (sport_off >= 0) {
		v->vary = 1;
		v->sport_off = static_cast<uint32_t>(sport_off);
		v->sport_base = static_cast<uint16_t>((frame[sport_off] << 8) | frame[sport_off + 1]);
	}
	if (bpf_map_update_elem(bpf_map__fd(r->skel_->maps.bench_tc_pkt), &zero, v.get(), BPF_ANY))
		throw std::runtime_error(std::string("tc restore: bench_tc_pkt: ") + std::strerror(errno));
	const __u32 tfd = static_cast<__u32>(target_fd);
	if (bpf_map_update_elem(bpf_map__fd(r->skel_->maps.bench_tc_target), &zero, &tfd, BPF_ANY))
		throw std::runtime_error(std::string("tc restore: bench_tc_target: ") + std::strerror(errno));
	r->reset();
	return r;
}

TcRestore::~TcRestore() { sluice_bench_restore_tc__destroy(skel_); }

int TcRestore::fd() const { return bpf_program__fd(skel_->progs.bench_tc_restore); }

void TcRestore::reset() const
{
	const __u32 zero = 0;
	if (bpf_map_update_elem(bpf_map__fd(skel_->maps.bench_tc_ctr), &zero, &zero, BPF_ANY))
		throw std::runtime_error(std::string("tc restore: bench_tc_ctr: ") + std::strerror(errno));
}

// Self-check of the facility, run before any case is timed: a rewriting
// path measured without the wrapper really does see its own output (the
// trap), and through the wrapper it sees the original frame every time.
void check_restore_facility()
{
	const Bytes f = tcp4_frame(ipv4(192, 0, 2, 10), ipv4(10, 0, 0, 1), 40000, 80);
	const Bytes pushed = vlan_pushed(f);
	const uint32_t n = 1000;
	auto demo = Restore::wrap(-1, f); // wrapper around its own demo program
	const int direct = demo->demo_vlan_push_fd();

	RunResult one = test_run(direct, f, 1);
	if (one.retval != XDP_TX || one.out != pushed)
		throw VerifyError("restore self-check: demo program, one run: " +
				  std::string(xdp_verdict_name(one.retval)) + " " + hex(one.out));
	RunResult trap = test_run(direct, f, n);
	if (trap.retval == XDP_TX && trap.out == pushed)
		std::fprintf(stderr, "sluice-bench: note: this kernel no longer reuses the rewritten "
				     "buffer across test-run iterations\n");
	RunResult wrapped = test_run(demo->fd(), f, n);
	if (wrapped.retval != XDP_TX || wrapped.out != pushed)
		throw VerifyError("restore self-check: through the wrapper, last of " +
				  std::to_string(n) + " iterations: " + xdp_verdict_name(wrapped.retval) +
				  " " + hex(wrapped.out) + ", expected XDP_TX " + hex(pushed));
}

void add_restore_cases(Bench &b)
{
	const Bytes f = tcp4_frame(ipv4(192, 0, 2, 10), ipv4(10, 0, 0, 1), 40000, 80);
	auto empty = load_empty();
	auto floor = Restore::wrap(bpf_program__fd(empty->progs.sluice_empty), f);
	auto demo = Restore::wrap(-1, f);
	b.keep(empty);
	b.keep(floor);
	b.keep(demo);

	Case c;
	c.name = "restore/empty";
	c.what = "restore wrapper tail-calling sluice_empty: the floor for rewriting paths";
	c.baseline = "xdp/empty";
	c.prog_fd = floor->fd();
	c.packet = f;
	c.expect_verdict = XDP_PASS;
	b.add(c);

	c.name = "restore/demo-vlan-push";
	c.what = "demo rewriting path (802.1Q push, XDP_TX) timed through the restore wrapper";
	c.baseline = "restore/empty";
	c.prog_fd = demo->fd();
	c.expect_verdict = XDP_TX;
	c.expect_out = vlan_pushed(f);
	b.add(c);
}

} // namespace sluice::bench
