// Case registry, verification, timing, and output (table + JSON).
#include "bench.h"

#include <algorithm>
#include <bpf/bpf.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sys/utsname.h>
#include <unistd.h>

namespace sluice::bench {

namespace {

double now_ns(clockid_t clk = CLOCK_MONOTONIC)
{
	timespec ts{};
	clock_gettime(clk, &ts);
	return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

template <class T> T median(std::vector<T> v)
{
	std::sort(v.begin(), v.end());
	const size_t n = v.size();
	if (n == 0)
		return T{};
	return n % 2 ? v[n / 2] : static_cast<T>((v[n / 2 - 1] + v[n / 2]) / 2);
}

std::string fmt(const char *f, double v)
{
	char buf[64];
	std::snprintf(buf, sizeof buf, f, v);
	return buf;
}

} // namespace

std::string hex(const Bytes &b)
{
	std::string s;
	char buf[4];
	for (uint8_t x : b) {
		std::snprintf(buf, sizeof buf, "%02x", x);
		s += buf;
	}
	return s;
}

const char *xdp_verdict_name(uint32_t v)
{
	switch (v) {
	case XDP_ABORTED: return "XDP_ABORTED";
	case XDP_DROP: return "XDP_DROP";
	case XDP_PASS: return "XDP_PASS";
	case XDP_TX: return "XDP_TX";
	case XDP_REDIRECT: return "XDP_REDIRECT";
	default: return "?";
	}
}

const char *tc_verdict_name(uint32_t v)
{
	switch (v) {
	case TC_ACT_OK: return "TC_ACT_OK";
	case TC_ACT_SHOT: return "TC_ACT_SHOT";
	case TC_ACT_REDIRECT: return "TC_ACT_REDIRECT";
	case TC_ACT_PIPE: return "TC_ACT_PIPE";
	case TC_ACT_STOLEN: return "TC_ACT_STOLEN";
	default: return "?";
	}
}

const char *verdict_name(Hook h, uint32_t v)
{
	return h == Hook::Tc ? tc_verdict_name(v) : xdp_verdict_name(v);
}

RunResult test_run(int prog_fd, const Bytes &pkt, uint32_t repeat, const Bytes &ctx)
{
	RunResult r;
	r.out.resize(pkt.size() + 512); // room for pushed headers
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(),
		    .data_out = r.out.data(),
		    .data_size_in = static_cast<__u32>(pkt.size()),
		    .data_size_out = static_cast<__u32>(r.out.size()),
		    .repeat = static_cast<int>(repeat));
	if (!ctx.empty()) {
		opts.ctx_in = ctx.data();
		opts.ctx_size_in = static_cast<__u32>(ctx.size());
	}
	const double c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	const double t0 = now_ns();
	const int err = bpf_prog_test_run_opts(prog_fd, &opts);
	const double t1 = now_ns();
	const double c1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	r.cpu_ns = (c1 - c0) / (repeat ? repeat : 1);
	if (err)
		throw std::runtime_error(std::string("BPF_PROG_TEST_RUN: ") + std::strerror(errno));
	r.retval = opts.retval;
	r.kernel_ns = opts.duration;
	r.wall_ns = (t1 - t0) / (repeat ? repeat : 1);
	r.out.resize(opts.data_size_out);
	return r;
}

void Bench::add(Case c)
{
	for (const Case &x : cases_)
		if (x.name == c.name)
			throw std::logic_error("duplicate bench case " + c.name);
	cases_.push_back(std::move(c));
}

bool Bench::selected(const std::string &name) const
{
	if (opts_.filter.empty())
		return true;
	for (const std::string &f : opts_.filter)
		if (name.find(f) != std::string::npos)
			return true;
	return false;
}

void Bench::verify(const Case &c)
{
	if (c.prepare)
		c.prepare();
	const RunResult r = test_run(c.prog_fd, c.packet, 1, c.ctx);
	if (r.retval != c.expect_verdict)
		throw VerifyError(c.name + ": verdict " + verdict_name(c.hook, r.retval) + " (" +
				  std::to_string(r.retval) + "), expected " +
				  verdict_name(c.hook, c.expect_verdict));
	const Bytes want = c.expect_out_fn ? c.expect_out_fn(r) : c.expect_out ? *c.expect_out : c.packet;
	if (r.out != want)
		throw VerifyError(c.name + ": output of one run differs from the expected frame\n  got  " +
				  hex(r.out) + "\n  want " + hex(want));
	if (c.check)
		c.check(r);
	if (c.fixed_point) {
		// One more run on the output: same verdict, same bytes. Then a
		// repeated run on one buffer is the same path every iteration.
		const RunResult again = test_run(c.prog_fd, r.out, 1, c.ctx);
		if (again.retval != c.expect_verdict || again.out != r.out)
			throw VerifyError(c.name + ": not a fixed point: on its own output the path returns " +
					  verdict_name(c.hook, again.retval) + " " + hex(again.out) +
					  " (time it through a restore wrapper instead)");
	}
}

std::vector<Result> Bench::run()
{
	std::vector<const Case *> sel;
	for (const Case &c : cases_)
		if (selected(c.name))
			sel.push_back(&c);
	// A selected case drags its baseline and wrapper floor in (and theirs).
	for (bool changed = true; changed;) {
		changed = false;
		const std::vector<const Case *> cur = sel;
		for (const Case *c : cur) {
			for (const std::string &name : {c->baseline, c->wrapper_floor}) {
				if (name.empty())
					continue;
				auto in = std::find_if(sel.begin(), sel.end(),
						       [&](const Case *x) { return x->name == name; });
				if (in != sel.end())
					continue;
				auto it = std::find_if(cases_.begin(), cases_.end(),
						       [&](const Case &x) { return x.name == name; });
				if (it == cases_.end())
					throw std::logic_error(c->name + ": unknown baseline " + name);
				sel.insert(sel.begin(), &*it);
				changed = true;
			}
		}
	}
	// Registration order (floors first), as in an unfiltered run.
	std::stable_sort(sel.begin(), sel.end(), [&](const Case *x, const Case *y) {
		return x - cases_.data() < y - cases_.data();
	});
	auto iterations = [&](const Case &c) {
		return c.repeat ? std::min(c.repeat, opts_.repeat) : opts_.repeat;
	};

	for (const Case *c : sel)
		verify(*c);

	// Warm up (caches, branch predictors, lazily allocated per-CPU state).
	// A case with its own (small) repeat consumes state per iteration: it
	// is warmed up with a whole call, so every timed call starts from the
	// same steady state (e.g. policy/new: a conntrack table that has been
	// filled and flushed once, not a pristine one).
	for (const Case *c : sel) {
		if (c->prepare)
			c->prepare();
		test_run(c->prog_fd, c->packet,
			 c->repeat ? iterations(*c) : std::max<uint32_t>(1, opts_.repeat / 10), c->ctx);
	}

	std::vector<Result> rs(sel.size());
	for (size_t i = 0; i < sel.size(); i++)
		rs[i].c = sel[i];
	// Interleaved: run r times every case, so slow drift (frequency, noisy
	// neighbours) hits the floor and the cases alike.
	for (int run = 0; run < opts_.runs; run++) {
		for (size_t i = 0; i < sel.size(); i++) {
			const Case &c = *sel[i];
			if (c.prepare)
				c.prepare();
			const uint32_t n = iterations(c);
			const RunResult r = test_run(c.prog_fd, c.packet, n, c.ctx);
			// The last iteration's verdict must still be the verified one;
			// if not, the program did not see the same packet every time
			// (the repeat trap) and the number is not the path we claim.
			if (r.retval != c.expect_verdict)
				throw VerifyError(c.name + ": verdict of the last of " +
						  std::to_string(n) + " iterations is " +
						  verdict_name(c.hook, r.retval) + ", expected " +
						  verdict_name(c.hook, c.expect_verdict) +
						  " (does the path rewrite the packet? time it through the restore wrapper)");
			if (c.check_timed)
				c.check_timed(r, n);
			rs[i].ns.push_back(r.kernel_ns);
			rs[i].cpu_ns.push_back(r.cpu_ns);
			rs[i].wall_ns.push_back(r.wall_ns);
		}
	}
	for (Result &r : rs) {
		r.median_ns = median(r.ns);
		r.median_cpu_ns = median(r.cpu_ns);
	}
	for (Result &r : rs) {
		if (r.c->baseline.empty()) {
			r.ratio = r.ratio_lo = r.ratio_hi = 1.0;
			continue;
		}
		const Result &base = *std::find_if(rs.begin(), rs.end(), [&](const Result &x) {
			return x.c->name == r.c->baseline;
		});
		auto hi = [](const Result &x) { return std::max(x.median_ns, std::min(x.median_ns + 1, x.median_cpu_ns)); };
		r.ratio = r.median_ns / base.median_ns;
		r.ratio_lo = r.median_ns / hi(base);
		r.ratio_hi = base.median_ns > 0 ? hi(r) / base.median_ns : INFINITY;
		if (r.c->wrapper_floor.empty())
			continue;
		// net = case - (wrapper floor - baseline): the path as if it ran
		// without the wrapper. Each true time t lies in [k, hi(k)]; the
		// ratio net/base = (t_case - t_wrap)/t_base + 1 is bounded by the
		// extreme corners.
		const Result &w = *std::find_if(rs.begin(), rs.end(), [&](const Result &x) {
			return x.c->name == r.c->wrapper_floor;
		});
		r.has_net = true;
		r.net_ns = r.median_ns - w.median_ns + base.median_ns;
		r.net_ratio = r.net_ns / base.median_ns;
		r.net_ratio_lo = (r.median_ns - hi(w)) / hi(base) + 1;
		r.net_ratio_hi = base.median_ns > 0 ? (hi(r) - w.median_ns) / base.median_ns + 1 : INFINITY;
	}
	return rs;
}

namespace {

std::string kernel_release()
{
	utsname u{};
	uname(&u);
	return u.release;
}

std::string today()
{
	char buf[32];
	time_t t = time(nullptr);
	tm tmv{};
	gmtime_r(&t, &tmv);
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tmv);
	return buf;
}

// Judged on the ratio bounds: whole-ns resolution must not decide a target.
const char *target_verdict(const Result &r)
{
	if (r.ratio_hi <= *r.c->max_ratio)
		return "MET";
	if (r.ratio_lo > *r.c->max_ratio)
		return "NOT MET";
	return "UNDECIDED (within resolution)";
}

std::string target_text(const Result &r)
{
	if (!r.c->max_ratio)
		return "";
	return fmt("<= %.2fx: ", *r.c->max_ratio) + target_verdict(r);
}

} // namespace

void print_table(const std::vector<Result> &rs, const Options &o)
{
	std::printf("sluice-bench: %s, kernel %s, nproc %ld, repeat %u, runs %d (median), cpu %s\n",
		    today().c_str(), kernel_release().c_str(), sysconf(_SC_NPROCESSORS_ONLN), o.repeat,
		    o.runs, o.cpu < 0 ? "not pinned" : std::to_string(o.cpu).c_str());
	size_t wn = 4, wb = 8;
	for (const Result &r : rs) {
		wn = std::max(wn, r.c->name.size());
		wb = std::max(wb, r.c->baseline.size());
	}
	std::printf("%-*s  %9s  %10s  %-*s  %7s  %13s  %s\n", int(wn), "case", "ns/packet",
		    "cpu ns/pkt", int(wb), "baseline", "ratio", "ratio bounds", "target");
	std::printf("%s\n", std::string(wn + wb + 50, '-').c_str());
	for (const Result &r : rs) {
		const std::string bounds =
			r.c->baseline.empty() ? "" : fmt("%.2f", r.ratio_lo) + "-" + fmt("%.2f", r.ratio_hi);
		std::printf("%-*s  %9.1f  %10.2f  %-*s  %6.2fx  %13s  %s\n", int(wn), r.c->name.c_str(),
			    r.median_ns, r.median_cpu_ns, int(wb),
			    r.c->baseline.empty() ? "(floor)" : r.c->baseline.c_str(), r.ratio, bounds.c_str(),
			    target_text(r).c_str());
	}
	bool any_net = false;
	for (const Result &r : rs)
		any_net |= r.has_net;
	if (any_net) {
		std::printf("\nwrapped cases, wrapper overhead subtracted (net = ns - (wrapper floor - baseline)):\n");
		size_t ww = 13;
		for (const Result &r : rs)
			ww = std::max(ww, r.c->wrapper_floor.size());
		std::printf("%-*s  %9s  %-*s  %7s  %13s\n", int(wn), "case", "net ns", int(ww), "wrapper floor",
			    "ratio", "ratio bounds");
		for (const Result &r : rs) {
			if (!r.has_net)
				continue;
			std::printf("%-*s  %9.1f  %-*s  %6.2fx  %13s\n", int(wn), r.c->name.c_str(), r.net_ns,
				    int(ww), r.c->wrapper_floor.c_str(), r.net_ratio,
				    (fmt("%.2f", r.net_ratio_lo) + "-" + fmt("%.2f", r.net_ratio_hi)).c_str());
		}
		std::printf("\n");
	}
	std::printf("ns/packet: median BPF_PROG_TEST_RUN duration (kernel-timed, truncated to whole ns).\n"
		    "cpu ns/pkt: thread CPU time / repeat, an upper bound (includes per-call setup).\n"
		    "ratio: ns/packet over the baseline's, same run; bounds: the true ratio given the\n"
		    "whole-ns truncation and the cpu upper bound. Targets are judged on the bounds.\n");
}

void write_json(const std::string &path, const std::vector<Result> &rs, const Options &o)
{
	nlohmann::json j;
	j["date"] = today();
	j["kernel"] = kernel_release();
	j["nproc"] = sysconf(_SC_NPROCESSORS_ONLN);
	j["repeat"] = o.repeat;
	j["runs"] = o.runs;
	j["seed"] = o.seed;
	j["cpu"] = o.cpu;
	j["cases"] = nlohmann::json::array();
	for (const Result &r : rs) {
		nlohmann::json c;
		c["name"] = r.c->name;
		c["what"] = r.c->what;
		c["baseline"] = r.c->baseline.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.c->baseline);
		c["verdict"] = verdict_name(r.c->hook, r.c->expect_verdict);
		c["hook"] = r.c->hook == Hook::Tc ? "tc" : "xdp";
		c["ns_per_packet"] = r.median_ns;
		c["cpu_ns_per_packet"] = r.median_cpu_ns;
		c["ratio"] = r.ratio;
		c["ratio_bounds"] = {r.ratio_lo, r.ratio_hi};
		c["samples_ns"] = r.ns;
		c["samples_cpu_ns"] = r.cpu_ns;
		c["samples_wall_ns"] = r.wall_ns;
		if (r.has_net) {
			c["wrapper_floor"] = r.c->wrapper_floor;
			c["net_ns_per_packet"] = r.net_ns;
			c["net_ratio"] = r.net_ratio;
			c["net_ratio_bounds"] = {r.net_ratio_lo, r.net_ratio_hi};
		}
		if (r.c->max_ratio) {
			c["target_max_ratio"] = *r.c->max_ratio;
			c["target"] = target_verdict(r);
		}
		j["cases"].push_back(c);
	}
	std::ofstream f(path);
	if (!f)
		throw std::runtime_error("cannot write " + path);
	f << j.dump(2) << "\n";
}

} // namespace sluice::bench
