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

RunResult test_run(int prog_fd, const Bytes &pkt, uint32_t repeat)
{
	RunResult r;
	r.out.resize(pkt.size() + 512); // room for pushed headers
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt.data(),
		    .data_out = r.out.data(),
		    .data_size_in = static_cast<__u32>(pkt.size()),
		    .data_size_out = static_cast<__u32>(r.out.size()),
		    .repeat = static_cast<int>(repeat));
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
	const RunResult r = test_run(c.prog_fd, c.packet, 1);
	if (r.retval != c.expect_verdict)
		throw VerifyError(c.name + ": verdict " + xdp_verdict_name(r.retval) + " (" +
				  std::to_string(r.retval) + "), expected " +
				  xdp_verdict_name(c.expect_verdict));
	const Bytes &want = c.expect_out ? *c.expect_out : c.packet;
	if (r.out != want)
		throw VerifyError(c.name + ": output of one run differs from the expected frame\n  got  " +
				  hex(r.out) + "\n  want " + hex(want));
	if (c.check)
		c.check(r);
}

std::vector<Result> Bench::run()
{
	std::vector<const Case *> sel;
	for (const Case &c : cases_)
		if (selected(c.name))
			sel.push_back(&c);
	// A selected case drags its baseline in.
	for (size_t i = 0; i < sel.size(); i++) {
		if (sel[i]->baseline.empty())
			continue;
		auto in = std::find_if(sel.begin(), sel.end(),
				       [&](const Case *x) { return x->name == sel[i]->baseline; });
		if (in != sel.end())
			continue;
		auto it = std::find_if(cases_.begin(), cases_.end(),
				       [&](const Case &x) { return x.name == sel[i]->baseline; });
		if (it == cases_.end())
			throw std::logic_error(sel[i]->name + ": unknown baseline " + sel[i]->baseline);
		sel.insert(sel.begin(), &*it);
	}

	for (const Case *c : sel)
		verify(*c);

	// Warm up (caches, branch predictors, lazily allocated per-CPU state).
	for (const Case *c : sel) {
		if (c->prepare)
			c->prepare();
		test_run(c->prog_fd, c->packet, std::max<uint32_t>(1, opts_.repeat / 10));
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
			const RunResult r = test_run(c.prog_fd, c.packet, opts_.repeat);
			// The last iteration's verdict must still be the verified one;
			// if not, the program did not see the same packet every time
			// (the repeat trap) and the number is not the path we claim.
			if (r.retval != c.expect_verdict)
				throw VerifyError(c.name + ": verdict of the last of " +
						  std::to_string(opts_.repeat) + " iterations is " +
						  xdp_verdict_name(r.retval) + ", expected " +
						  xdp_verdict_name(c.expect_verdict) +
						  " (does the path rewrite the packet? time it through the restore wrapper)");
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
		c["verdict"] = xdp_verdict_name(r.c->expect_verdict);
		c["ns_per_packet"] = r.median_ns;
		c["cpu_ns_per_packet"] = r.median_cpu_ns;
		c["ratio"] = r.ratio;
		c["ratio_bounds"] = {r.ratio_lo, r.ratio_hi};
		c["samples_ns"] = r.ns;
		c["samples_cpu_ns"] = r.cpu_ns;
		c["samples_wall_ns"] = r.wall_ns;
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
