// The prefilter manager against real kernel LPM tries (no pins).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/fd.h"
#include "prefilter/prefilter.h"
#include "sluice/abi.h"
#include "state/file_store.h"
#include "store_fixture.h"

namespace {

using sluice::Cidr;

sluice::UniqueFd make_trie(uint32_t key_size) {
  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
  return sluice::UniqueFd(bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "sluice_test",
                                         key_size,
                                         sizeof(sluice_prefilter_value), 1024,
                                         &o));
}

sluice::UniqueFd make_bitmap() {
  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_MMAPABLE);
  return sluice::UniqueFd(bpf_map_create(BPF_MAP_TYPE_ARRAY, "sluice_test", 4,
                                         8, SLUICE_PF_BITMAP_WORDS, &o));
}

class PrefilterManagerTest : public sluice::test::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    v4_ = make_trie(sizeof(sluice_lpm_v4_key));
    v6_ = make_trie(sizeof(sluice_lpm_v6_key));
    bm4_ = make_bitmap();
    bm6_ = make_bitmap();
    ASSERT_TRUE(v4_.valid() && v6_.valid() && bm4_.valid() && bm6_.valid())
        << "needs root (bpf)";
  }

  std::unique_ptr<sluice::Prefilter> make(std::vector<std::string> config,
                                          uint32_t cap = 100) {
    std::vector<Cidr> c;
    for (auto& s : config) c.push_back(*Cidr::parse(s));
    // Each Prefilter gets its own DenyMaps over the same kernel maps, as a
    // restarted agent does over its pinned maps.
    auto m = sluice::DenyMaps::open({v4_.get(), v6_.get(), bm4_.get(), bm6_.get()});
    EXPECT_TRUE(m) << m.error();
    deny_.push_back(std::move(*m));
    return std::make_unique<sluice::Prefilter>(*deny_.back(), *store_, c, cap);
  }

  bool in_map(const std::string& s) {
    auto c = *Cidr::parse(s);
    std::vector<uint8_t> k(4 + c.addr.size());
    uint32_t plen = c.prefixlen;
    std::memcpy(k.data(), &plen, 4);
    std::memcpy(k.data() + 4, c.addr.bytes.data(), c.addr.size());
    // Exact-key check: look up the prefix's own address at its own length
    // and compare by walking keys (LPM lookup alone would match parents).
    int fd = c.addr.family == AF_INET ? v4_.get() : v6_.get();
    std::vector<uint8_t> cur(k.size()), next(k.size());
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
      if (next == k) return true;
      cur = next;
      prev = cur.data();
    }
    return false;
  }

  std::vector<std::string> listed(sluice::Prefilter& p) {
    std::vector<std::string> out;
    for (auto& c : p.list()) out.push_back(c.str());
    std::sort(out.begin(), out.end());
    return out;
  }

  bool bit(const std::string& addr) {
    return deny_.back()->bucket_set(*sluice::IpAddr::parse(addr));
  }

  std::vector<std::unique_ptr<sluice::DenyMaps>> deny_;
  sluice::UniqueFd v4_, v6_, bm4_, bm6_;
};

TEST_F(PrefilterManagerTest, RestoreReconcilesWithoutFlush) {
  // A previous run left an entry that the config no longer has.
  auto old = make({"192.0.2.0/24", "203.0.113.0/24"});
  ASSERT_TRUE(old->restore());
  auto p = make({"203.0.113.0/24", "2001:db8::/32"});
  ASSERT_TRUE(p->restore());
  EXPECT_FALSE(in_map("192.0.2.0/24"));
  EXPECT_TRUE(in_map("203.0.113.0/24"));
  EXPECT_TRUE(in_map("2001:db8::/32"));
  EXPECT_EQ(p->size_v4(), 1u);
  EXPECT_EQ(p->size_v6(), 1u);
  // The bitmaps were rebuilt from the desired set, stale bits cleared.
  EXPECT_TRUE(bit("203.0.113.9"));
  EXPECT_TRUE(bit("2001:db8:ffff::1"));
  EXPECT_FALSE(bit("192.0.2.1"));
}

TEST_F(PrefilterManagerTest, BadCidrRejectsWholeRequest) {
  auto p = make({"203.0.113.0/24"});
  ASSERT_TRUE(p->restore());
  auto s = p->add({"198.51.100.0/24", "10.0.0.1/8"});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("10.0.0.1/8"), std::string::npos) << s.error();
  EXPECT_FALSE(in_map("198.51.100.0/24"));
  EXPECT_EQ(listed(*p), std::vector<std::string>{"203.0.113.0/24"});
  // Deleting something absent is an error too, and deletes nothing.
  s = p->remove({"203.0.113.0/24", "198.51.100.0/24"});
  ASSERT_FALSE(s);
  EXPECT_TRUE(in_map("203.0.113.0/24"));
  EXPECT_FALSE(p->add({}));
}

TEST_F(PrefilterManagerTest, CapacityIsCheckedBeforeWriting) {
  auto p = make({}, 2);
  ASSERT_TRUE(p->restore());
  ASSERT_TRUE(p->add({"10.0.0.0/8"}));
  auto s = p->add({"11.0.0.0/8", "12.0.0.0/8"});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("capacity"), std::string::npos);
  EXPECT_FALSE(in_map("11.0.0.0/8"));
  EXPECT_TRUE(p->add({"10.0.0.0/8", "11.0.0.0/8"}));  // re-add costs nothing
  EXPECT_TRUE(p->add({"fd00:1::/32"}));  // per family
}

TEST_F(PrefilterManagerTest, RuntimeChangesSurviveRestart) {
  auto p = make({"203.0.113.0/24", "192.0.2.0/24"});
  ASSERT_TRUE(p->restore());
  ASSERT_TRUE(p->add({"198.51.100.0/24"}));
  ASSERT_TRUE(p->remove({"192.0.2.0/24"}));  // a config entry
  p.reset();
  auto again = make({"203.0.113.0/24", "192.0.2.0/24"});
  ASSERT_TRUE(again->restore());
  EXPECT_EQ(listed(*again),
            (std::vector<std::string>{"198.51.100.0/24", "203.0.113.0/24"}));
  EXPECT_FALSE(in_map("192.0.2.0/24"));
  // Re-adding a config entry undoes its deletion.
  ASSERT_TRUE(again->add({"192.0.2.0/24"}));
  auto third = make({"203.0.113.0/24", "192.0.2.0/24"});
  ASSERT_TRUE(third->restore());
  EXPECT_TRUE(in_map("192.0.2.0/24"));
}

}  // namespace
