// The flow cache fixture (bpf/lib/flowcache.h through sluice_lxc): the
// test thread pinned to one CPU so that the slot a packet fills is the one
// the next packet finds, and this CPU's slots read, written and frozen.
// Shared by the flow cache and the per-packet trace tests.
#pragma once

#include <sched.h>

#include <cstring>

#include "lxc_fixture.h"

namespace sluice::test {

struct FcKey {
  uint64_t addr[4] = {};
  uint32_t ports = 0, meta = 0;
};

// The cache key of a frame, as the datapath loads it from the headers
// (Ethernet, IPv4 without options or IPv6 without extension headers).
inline FcKey fc_key(const Bytes& p) {
  FcKey k;
  if (p[12] == 0x08 && p[13] == 0x00) {
    std::memcpy(&k.addr[0], &p[26], 8);
    std::memcpy(&k.ports, &p[34], 4);
    k.meta = p[23] | AF_INET << 8;
  } else {
    std::memcpy(k.addr, &p[22], 32);
    std::memcpy(&k.ports, &p[54], 4);
    k.meta = p[20] | AF_INET6 << 8;
  }
  return k;
}

// The slot (sluice_fc_slot).
inline uint32_t fc_slot(const FcKey& k) {
  uint64_t h = k.addr[0] ^ k.addr[1] ^ k.addr[2] ^ k.addr[3] ^
               (uint64_t(k.ports) << 16) ^ k.meta;
  h *= 0x9E3779B97F4A7C15ULL;
  return uint32_t(h >> (64 - SLUICE_FC_BITS));
}

inline bool holds(const sluice_fc_entry& e, const FcKey& k) {
  return e.meta == k.meta && e.ports == k.ports &&
         std::memcmp(e.addr, k.addr, sizeof(k.addr)) == 0;
}

class FlowCacheTest : public LxcTest {
 protected:
  void SetUp() override {
    // One CPU: the slot a packet fills is the one the next one reads.
    ASSERT_EQ(sched_getaffinity(0, sizeof(saved_), &saved_), 0);
    cpu_ = sched_getcpu();
    ASSERT_GE(cpu_, 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu_, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    LxcTest::SetUp();
  }
  void TearDown() override {
    LxcTest::TearDown();
    sched_setaffinity(0, sizeof(saved_), &saved_);
  }

  const bpf_map* fc_out() { return skel_->maps.sluice_fc_out; }
  const bpf_map* fc_in() { return skel_->maps.sluice_fc_in; }

  // This CPU's copy of the slot the frame maps to.
  sluice_fc_entry slot(const bpf_map* m, const Bytes& pkt) {
    auto all = map_lookup_percpu<sluice_fc_entry>(m, fc_slot(fc_key(pkt)));
    EXPECT_GT(all.size(), size_t(cpu_));
    return all.size() > size_t(cpu_) ? all[cpu_] : sluice_fc_entry{};
  }
  bool cached(const bpf_map* m, const Bytes& pkt) {
    return holds(slot(m, pkt), fc_key(pkt));
  }
  // Writes the slot on every CPU.
  void write_slot(const bpf_map* m, const Bytes& pkt, const sluice_fc_entry& e) {
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<sluice_fc_entry> all(ncpu, e);
    const uint32_t s = fc_slot(fc_key(pkt));
    ASSERT_EQ(bpf_map__update_elem(m, &s, sizeof(s), all.data(),
                                   all.size() * sizeof(e), 0), 0);
  }
  // The slot stays valid past its jiffy: the next packet's hit does not
  // depend on timing.
  void freeze(const bpf_map* m, const Bytes& pkt) {
    sluice_fc_entry e = slot(m, pkt);
    ASSERT_TRUE(holds(e, fc_key(pkt))) << "nothing cached for this packet";
    e.until = ~0ull;
    write_slot(m, pkt, e);
  }
  // Every slot of every CPU empty?
  bool cache_empty(const bpf_map* m) {
    for (uint32_t s = 0; s < SLUICE_FC_SLOTS; s++)
      for (const auto& e : map_lookup_percpu<sluice_fc_entry>(m, s))
        if (e.meta) return false;
    return true;
  }
  sluice_counter forwarded(uint32_t dir) {
    return read_counter(skel_->maps.sluice_counters, dir, SLUICE_DROP_NONE);
  }
  int epoch_fd() { return bpf_map__fd(skel_->maps.sluice_ep_epoch); }
  uint32_t epoch() { return map_lookup<uint32_t>(skel_->maps.sluice_ep_epoch, 0u).value_or(~0u); }
  int ct_fd() { return bpf_map__fd(skel_->maps.sluice_ct); }
  // Sends pkt (to the pod: sluice_lxc_in, else sluice_lxc_out) until its
  // slot holds it: a slot is filled for a hot flow only (its previous
  // packet at most a jiffy ago), so a slow test step may need a second
  // packet. Returns how many were sent; the last result is in last_.
  int fill(bool to_pod, const Bytes& pkt) {
    for (int i = 1; i <= 20; i++) {
      last_ = to_pod ? in(pkt) : out(pkt);
      if (cached(to_pod ? fc_in() : fc_out(), pkt)) return i;
    }
    ADD_FAILURE() << "the packet's slot was never filled";
    return 20;
  }
  // A on the device the program runs on (as in production).
  void a_on_dev() {
    a_.ifindex = kDev;
    add_local(a_);
    act_as(a_);
  }

  RunResult last_{};
  cpu_set_t saved_{};
  int cpu_ = 0;
};

}  // namespace sluice::test
