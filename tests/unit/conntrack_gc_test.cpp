// Conntrack GC against a real kernel LRU hash with the datapath's layout.
#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include "common/fd.h"
#include "datapath/conntrack.h"

namespace {

sluice_ct_key key(uint8_t proto, uint16_t sport) {
  sluice_ct_key k{};
  k.family = 2;
  k.proto = proto;
  k.saddr[0] = 10;
  k.daddr[0] = 10;
  k.sport = sport;
  k.dport = 80;
  return k;
}

TEST(ConntrackGc, ExpiresByStateAndProtocol) {
  sluice::UniqueFd fd(bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "sluice_test_ct",
                                     sizeof(sluice_ct_key), sizeof(sluice_ct_value),
                                     64, nullptr));
  ASSERT_TRUE(fd.valid()) << "needs root (bpf)";
  const uint64_t hz = 1000, now = 100'000'000;
  struct Case {
    uint8_t proto;
    uint32_t flags;
    uint64_t idle_s;
    bool expired;
  } cases[] = {
      {6, 0, 120, true},                                           // SYN, no reply
      {6, SLUICE_CT_SEEN_REPLY, 120, false},                       // established
      {6, SLUICE_CT_SEEN_REPLY, 7 * 3600, true},                   // long idle
      {6, SLUICE_CT_SEEN_REPLY | SLUICE_CT_CLOSING, 20, true},     // closed
      {6, SLUICE_CT_SEEN_REPLY | SLUICE_CT_CLOSING, 5, false},     // closing
      {17, SLUICE_CT_SEEN_REPLY, 30, false},                       // UDP, fresh
      {17, SLUICE_CT_SEEN_REPLY, 90, true},                        // UDP, idle
  };
  uint16_t port = 1000;
  for (const auto& c : cases) {
    auto k = key(c.proto, port++);
    sluice_ct_value v{};
    v.created = v.last_seen = now - c.idle_s * hz;
    v.flags = c.flags;
    ASSERT_EQ(bpf_map_update_elem(fd.get(), &k, &v, BPF_NOEXIST), 0);
  }
  auto n = sluice::ct_gc(fd.get(), now, hz);
  ASSERT_TRUE(n) << n.error();
  EXPECT_EQ(*n, 4u);
  port = 1000;
  for (const auto& c : cases) {
    auto k = key(c.proto, port++);
    sluice_ct_value v{};
    EXPECT_EQ(bpf_map_lookup_elem(fd.get(), &k, &v) != 0, c.expired)
        << "proto " << int(c.proto) << " flags " << c.flags << " idle " << c.idle_s;
  }
  auto flushed = sluice::ct_flush(fd.get());
  ASSERT_TRUE(flushed);
  EXPECT_EQ(*flushed, 3u);
}

TEST(ConntrackGc, KernelHzIsPlausible) {
  const uint64_t hz = sluice::ct_hz();
  EXPECT_TRUE(hz == 100 || hz == 250 || hz == 300 || hz == 1000) << hz;
  EXPECT_GT(sluice::ct_now_jiffies(), 0u);
}

}  // namespace
