// Harness for running Sluice BPF programs under BPF_PROG_TEST_RUN from
// GoogleTest: a skeleton fixture that loads without pinning, a test-run
// wrapper, and typed map helpers (per-CPU counters, LPM keys, ring buffer).
//
//   #include "sluice_xdp.skel.h"
//   class MyTest : public SkeletonFixture<sluice_xdp> {};
//   TEST_F(MyTest, X) {
//     auto r = BpfProgRun(skel_->progs.sluice_xdp).run(frame);
//     ASSERT_EQ(r.err, 0);
//     EXPECT_EQ(r.retval, XDP_PASS);
//   }
//
// Map helpers return 0 / -errno instead of asserting so a test can check
// expected failures; wrap them in ASSERT_EQ(..., 0) otherwise.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <sluice/abi.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "packet.h"

namespace sluice::test {

// ---- BPF_PROG_TEST_RUN ---------------------------------------------------

struct RunResult {
  int err = 0;               // 0, or -errno from bpf_prog_test_run_opts
  uint32_t retval = 0;       // program return code (XDP_*, TC_ACT_*)
  Bytes data;                // packet after the program ran
  Bytes ctx;                 // ctx_out, when a ctx was passed in
  uint32_t duration_ns = 0;  // kernel-measured average per repetition
};

class BpfProgRun {
 public:
  explicit BpfProgRun(int prog_fd) : fd_(prog_fd) {}
  explicit BpfProgRun(const struct bpf_program* prog) : fd_(bpf_program__fd(prog)) {}

  // Run the program n times in the kernel (counters see all n runs);
  // duration_ns is then the average.
  BpfProgRun& repeat(int n) { repeat_ = n; return *this; }
  // Raw context in (struct __sk_buff for TC, ...); returned in RunResult::ctx.
  BpfProgRun& ctx(Bytes c) { ctx_ = std::move(c); return *this; }
  template <class T>
  BpfProgRun& ctx_struct(const T& c) {
    auto p = reinterpret_cast<const uint8_t*>(&c);
    return ctx(Bytes(p, p + sizeof(T)));
  }
  // XDP: pass a struct xdp_md so ctx->ingress_ifindex is set. The kernel
  // requires a real device (1 = lo) and data_end == input size, which
  // run() fills in.
  BpfProgRun& xdp_ingress_ifindex(uint32_t ifindex) { xdp_ifindex_ = ifindex; return *this; }

  RunResult run(const Bytes& in) const;

 private:
  int fd_;
  int repeat_ = 0;
  Bytes ctx_;
  std::optional<uint32_t> xdp_ifindex_;
};

// ---- maps ----------------------------------------------------------------

// Typed wrappers over bpf_map__*_elem, which also check key/value sizes
// against the map definition (-EINVAL on mismatch).
template <class K, class V>
int map_update(const struct bpf_map* map, const K& key, const V& val,
               uint64_t flags = BPF_ANY) {
  return bpf_map__update_elem(map, &key, sizeof(K), &val, sizeof(V), flags);
}

template <class K>
int map_delete(const struct bpf_map* map, const K& key) {
  return bpf_map__delete_elem(map, &key, sizeof(K), 0);
}

template <class V, class K>
std::optional<V> map_lookup(const struct bpf_map* map, const K& key) {
  V v{};
  if (bpf_map__lookup_elem(map, &key, sizeof(K), &v, sizeof(V), 0)) return std::nullopt;
  return v;
}

// One value per possible CPU (libbpf_num_possible_cpus()); empty on error.
// The kernel lays per-CPU values out at 8-byte strides.
template <class V, class K>
std::vector<V> map_lookup_percpu(const struct bpf_map* map, const K& key) {
  int ncpu = libbpf_num_possible_cpus();
  size_t stride = (sizeof(V) + 7) / 8 * 8;
  if (ncpu <= 0) return {};
  std::vector<uint8_t> raw(stride * ncpu);
  if (bpf_map__lookup_elem(map, &key, sizeof(K), raw.data(), raw.size(), 0)) return {};
  std::vector<V> out(ncpu);
  for (int i = 0; i < ncpu; i++) std::memcpy(&out[i], &raw[i * stride], sizeof(V));
  return out;
}

// sluice_counters slot summed over all possible CPUs. A failed lookup is
// reported as a test failure and counts as zero.
struct sluice_counter read_counter(const struct bpf_map* counters, uint32_t idx);
inline struct sluice_counter read_counter(const struct bpf_map* counters,
                                          uint32_t dir, uint32_t reason) {
  return read_counter(counters, SLUICE_COUNTER_IDX(dir, reason));
}

// LPM keys from "10.1.2.0/24" / "fd10::/64" (throw std::invalid_argument).
struct sluice_lpm_v4_key lpm_key4(std::string_view cidr);
struct sluice_lpm_v6_key lpm_key6(std::string_view cidr);

// sluice_config[0] = {event_level}; other fields zero.
int set_event_level(const struct bpf_map* config, uint32_t level);

// Everything currently in a ring buffer map, one Bytes per record, without
// blocking (ring_buffer__consume).
std::vector<Bytes> drain_ringbuf(const struct bpf_map* ringbuf);

// The same, typed; a record of the wrong size is a test failure.
template <class T>
std::vector<T> drain_ringbuf_as(const struct bpf_map* ringbuf) {
  std::vector<T> out;
  for (const auto& rec : drain_ringbuf(ringbuf)) {
    EXPECT_EQ(rec.size(), sizeof(T)) << "ring buffer record size";
    if (rec.size() != sizeof(T)) continue;
    T t;
    std::memcpy(&t, rec.data(), sizeof(T));
    out.push_back(t);
  }
  return out;
}

// ---- skeleton fixture ----------------------------------------------------

namespace detail {
// Clears every map's pin path so a load never creates or reuses pins, even
// if an object later declares LIBBPF_PIN_BY_NAME for the agent's sake.
void disable_pinning(struct bpf_object* obj);
// Fails the test if any map of the loaded object is pinned.
void expect_no_pins(struct bpf_object* obj);
}  // namespace detail

// Opens and loads a libbpf skeleton per test (fresh maps: counters start
// at zero, tries empty) and destroys it in TearDown. Skel is the skeleton
// struct from NAME.skel.h; bpftool's C++ members (Skel::open/load/destroy)
// make this work for any object. Override BeforeLoad() to set rodata or map
// sizes between open and load.
template <class Skel>
class SkeletonFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    skel_ = Skel::open();
    ASSERT_NE(skel_, nullptr) << "skeleton open: " << std::strerror(errno);
    detail::disable_pinning(skel_->obj);
    ASSERT_NO_FATAL_FAILURE(BeforeLoad());
    int err = Skel::load(skel_);
    ASSERT_EQ(err, 0) << "skeleton load: " << std::strerror(-err)
                      << " (root/CAP_BPF needed; verifier log above)";
    ASSERT_NO_FATAL_FAILURE(detail::expect_no_pins(skel_->obj));
  }
  void TearDown() override {
    Skel::destroy(skel_);  // NULL-safe
    skel_ = nullptr;
  }
  virtual void BeforeLoad() {}

  Skel* skel_ = nullptr;
};

}  // namespace sluice::test
