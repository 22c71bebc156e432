#include "harness.h"

#include <algorithm>

namespace sluice::test {

RunResult BpfProgRun::run(const Bytes& in) const {
  RunResult r;
  Bytes ctx_in = ctx_;
  if (xdp_ifindex_) {
    struct xdp_md md = {};
    md.data_end = in.size();  // kernel insists data_end == data_size_in
    md.ingress_ifindex = *xdp_ifindex_;
    auto p = reinterpret_cast<const uint8_t*>(&md);
    ctx_in.assign(p, p + sizeof(md));
  }
  // Programs may grow the packet (adjust_head/tail, encapsulation), so
  // leave room; on ENOSPC the kernel reports the size it needed.
  r.data.resize(in.size() + 4096);
  r.ctx.resize(ctx_in.size());
  for (int attempt = 0; attempt < 2; attempt++) {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = in.data();
    opts.data_size_in = in.size();
    opts.data_out = r.data.data();
    opts.data_size_out = r.data.size();
    if (!ctx_in.empty()) {
      opts.ctx_in = ctx_in.data();
      opts.ctx_size_in = ctx_in.size();
      opts.ctx_out = r.ctx.data();
      opts.ctx_size_out = r.ctx.size();
    }
    opts.repeat = repeat_;
    int err = bpf_prog_test_run_opts(fd_, &opts);
    if (err == -ENOSPC && opts.data_size_out > r.data.size() && attempt == 0) {
      r.data.resize(opts.data_size_out);
      continue;
    }
    r.err = err;
    r.retval = opts.retval;
    r.duration_ns = opts.duration;
    r.data.resize(err ? 0 : opts.data_size_out);
    r.ctx.resize(err ? 0 : std::min<size_t>(opts.ctx_size_out, r.ctx.size()));
    break;
  }
  return r;
}

struct sluice_counter read_counter(const struct bpf_map* counters, uint32_t idx) {
  struct sluice_counter total = {};
  auto per_cpu = map_lookup_percpu<struct sluice_counter>(counters, idx);
  EXPECT_EQ(per_cpu.size(), static_cast<size_t>(libbpf_num_possible_cpus()))
      << "lookup of counter " << idx << " failed";
  for (const auto& c : per_cpu) {
    total.packets += c.packets;
    total.bytes += c.bytes;
  }
  return total;
}

struct sluice_lpm_v4_key lpm_key4(std::string_view cidr) {
  auto c = ipv4_cidr(cidr);
  struct sluice_lpm_v4_key k = {};
  k.prefixlen = c.prefixlen;
  std::copy(c.addr.begin(), c.addr.end(), k.addr);
  return k;
}

struct sluice_lpm_v6_key lpm_key6(std::string_view cidr) {
  auto c = ipv6_cidr(cidr);
  struct sluice_lpm_v6_key k = {};
  k.prefixlen = c.prefixlen;
  std::copy(c.addr.begin(), c.addr.end(), k.addr);
  return k;
}

int set_event_level(const struct bpf_map* config, uint32_t level) {
  struct sluice_config cfg = {};
  cfg.event_level = level;
  return map_update(config, uint32_t{0}, cfg);
}

std::vector<Bytes> drain_ringbuf(const struct bpf_map* ringbuf) {
  std::vector<Bytes> out;
  auto cb = [](void* ctx, void* data, size_t size) -> int {
    auto p = static_cast<const uint8_t*>(data);
    static_cast<std::vector<Bytes>*>(ctx)->emplace_back(p, p + size);
    return 0;
  };
  struct ring_buffer* rb = ring_buffer__new(bpf_map__fd(ringbuf), cb, &out, nullptr);
  EXPECT_NE(rb, nullptr) << "ring_buffer__new: " << std::strerror(errno);
  if (!rb) return out;
  int n = ring_buffer__consume(rb);
  EXPECT_GE(n, 0) << "ring_buffer__consume: " << std::strerror(-n);
  ring_buffer__free(rb);
  return out;
}

namespace detail {

void disable_pinning(struct bpf_object* obj) {
  struct bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    EXPECT_EQ(bpf_map__set_pin_path(map, nullptr), 0) << bpf_map__name(map);
  }
}

void expect_no_pins(struct bpf_object* obj) {
  struct bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    EXPECT_FALSE(bpf_map__is_pinned(map)) << bpf_map__name(map) << " is pinned";
    if (bpf_map__is_pinned(map)) bpf_map__unpin(map, nullptr);  // leave nothing behind
    EXPECT_EQ(bpf_map__pin_path(map), nullptr) << bpf_map__name(map);
  }
}

}  // namespace detail
}  // namespace sluice::test
