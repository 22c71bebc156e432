#include "endpoint/ipam.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "state/file_store.h"
#include "store_fixture.h"

namespace {

using sluice::Cidr;
using sluice::IpAddr;
using sluice::Ipam;

Cidr cidr(const char* s) { return *Cidr::parse(s); }
IpAddr ip(const char* s) { return *IpAddr::parse(s); }

std::vector<std::string> strs(const std::vector<IpAddr>& v) {
  std::vector<std::string> out;
  for (const auto& a : v) out.push_back(a.str());
  return out;
}

class IpamTest : public sluice::test::StoreTest {
 protected:

  std::unique_ptr<Ipam> make(std::optional<Cidr> v4, std::optional<Cidr> v6) {
    auto r = Ipam::create(*store_, v4, v6);
    EXPECT_TRUE(r) << r.error();
    return r ? std::move(*r) : nullptr;
  }

};

TEST_F(IpamTest, SequentialFromDotTwo) {
  auto ipam = make(cidr("10.200.0.0/16"), std::nullopt);
  EXPECT_EQ(strs(*ipam->allocate("c1", "eth0")),
            std::vector<std::string>{"10.200.0.2"});
  EXPECT_EQ(strs(*ipam->allocate("c2", "eth0")),
            std::vector<std::string>{"10.200.0.3"});
  // Same container, other interface: another key.
  EXPECT_EQ(strs(*ipam->allocate("c2", "net1")),
            std::vector<std::string>{"10.200.0.4"});
  EXPECT_EQ(ipam->size(), 3u);
}

TEST_F(IpamTest, Idempotent) {
  auto ipam = make(cidr("10.200.0.0/16"), cidr("fd10:200::/64"));
  auto a = ipam->allocate("c1", "eth0");
  auto b = ipam->allocate("c1", "eth0");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(ipam->size(), 1u);
  EXPECT_EQ(strs(*ipam->allocate("c2", "eth0")),
            (std::vector<std::string>{"10.200.0.3", "fd10:200::3"}));
}

TEST_F(IpamTest, BothFamiliesAndOwner) {
  auto ipam = make(cidr("10.200.0.0/16"), cidr("fd10:200::/64"));
  auto a = ipam->allocate("c1", "eth0");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(strs(*a), (std::vector<std::string>{"10.200.0.2", "fd10:200::2"}));
  auto o = ipam->owner_of(ip("fd10:200::2"));
  ASSERT_TRUE(o);
  EXPECT_EQ(o->container_id, "c1");
  EXPECT_EQ(o->ifname, "eth0");
  EXPECT_FALSE(ipam->owner_of(ip("10.200.0.3")));
  EXPECT_EQ(ipam->lookup("c1", "eth0"), *a);
  EXPECT_FALSE(ipam->lookup("c9", "eth0"));
}

TEST_F(IpamTest, Ipv6Only) {
  auto ipam = make(std::nullopt, cidr("fd10:200::/64"));
  EXPECT_EQ(strs(*ipam->allocate("c1", "eth0")),
            std::vector<std::string>{"fd10:200::2"});
}

TEST_F(IpamTest, ReleaseAndReuse) {
  auto ipam = make(cidr("10.0.0.0/29"), std::nullopt);  // .2 .. .6
  for (const char* c : {"a", "b", "c", "d", "e"}) ASSERT_TRUE(ipam->allocate(c, "eth0"));
  ASSERT_TRUE(ipam->release("b", "eth0"));
  EXPECT_TRUE(ipam->release("b", "eth0"));  // unknown key: fine
  EXPECT_FALSE(ipam->owner_of(ip("10.0.0.3")));
  EXPECT_FALSE(ipam->lookup("b", "eth0"));
  // The cursor wrapped past .6; the only free address is b's old one.
  EXPECT_EQ(strs(*ipam->allocate("f", "eth0")),
            std::vector<std::string>{"10.0.0.3"});
}

TEST_F(IpamTest, ReleasedAddressNotReusedAtOnce) {
  auto ipam = make(cidr("10.200.0.0/16"), std::nullopt);
  ASSERT_TRUE(ipam->allocate("a", "eth0"));
  ASSERT_TRUE(ipam->release("a", "eth0"));
  EXPECT_EQ(strs(*ipam->allocate("b", "eth0")),
            std::vector<std::string>{"10.200.0.3"});
}

TEST_F(IpamTest, ExhaustionNamesTheCidr) {
  auto ipam = make(cidr("10.0.0.0/30"), std::nullopt);  // only .2
  EXPECT_EQ(strs(*ipam->allocate("a", "eth0")),
            std::vector<std::string>{"10.0.0.2"});
  auto r = ipam->allocate("b", "eth0");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("10.0.0.0/30"), std::string::npos) << r.error();
  EXPECT_EQ(ipam->size(), 1u);
  ASSERT_TRUE(ipam->release("a", "eth0"));
  EXPECT_EQ(strs(*ipam->allocate("b", "eth0")),
            std::vector<std::string>{"10.0.0.2"});
}

TEST_F(IpamTest, ExhaustedFamilyRollsBackTheOther) {
  auto ipam = make(cidr("10.0.0.0/24"), cidr("fd00::/126"));  // v6: ::2 ::3
  ASSERT_TRUE(ipam->allocate("a", "eth0"));
  ASSERT_TRUE(ipam->allocate("b", "eth0"));
  auto r = ipam->allocate("c", "eth0");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("fd00::/126"), std::string::npos) << r.error();
  EXPECT_FALSE(ipam->owner_of(ip("10.0.0.4")));
  EXPECT_EQ(strs(*ipam->allocate("a", "eth0")),
            (std::vector<std::string>{"10.0.0.2", "fd00::2"}));
}

TEST_F(IpamTest, PersistsAcrossRestore) {
  {
    auto ipam = make(cidr("10.200.0.0/16"), cidr("fd10:200::/64"));
    ASSERT_TRUE(ipam->allocate("a", "eth0"));
    ASSERT_TRUE(ipam->allocate("b", "eth0"));
    ASSERT_TRUE(ipam->allocate("c", "eth0"));
    ASSERT_TRUE(ipam->release("b", "eth0"));
  }
  auto ipam = make(cidr("10.200.0.0/16"), cidr("fd10:200::/64"));
  ASSERT_TRUE(ipam->restore());
  EXPECT_EQ(ipam->size(), 2u);
  EXPECT_EQ(strs(*ipam->lookup("c", "eth0")),
            (std::vector<std::string>{"10.200.0.4", "fd10:200::4"}));
  EXPECT_EQ(ipam->owner_of(ip("10.200.0.2"))->container_id, "a");
  EXPECT_EQ(strs(*ipam->allocate("a", "eth0")),
            (std::vector<std::string>{"10.200.0.2", "fd10:200::2"}));
  // The cursor survived too: no immediate reuse of b's address.
  EXPECT_EQ(strs(*ipam->allocate("d", "eth0")),
            (std::vector<std::string>{"10.200.0.5", "fd10:200::5"}));
}

TEST_F(IpamTest, RestoreWithoutStateIsEmpty) {
  auto ipam = make(cidr("10.200.0.0/16"), std::nullopt);
  ASSERT_TRUE(ipam->restore());
  EXPECT_EQ(ipam->size(), 0u);
}

TEST_F(IpamTest, RestoreRejectsDuplicateAddress) {
  ASSERT_TRUE(store_->put(
      "ipam", R"({"allocations":[
        {"containerID":"a","ifname":"eth0","ips":["10.200.0.2"]},
        {"containerID":"b","ifname":"eth0","ips":["10.200.0.2"]}]})"));
  auto ipam = make(cidr("10.200.0.0/16"), std::nullopt);
  auto s = ipam->restore();
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("held by both"), std::string::npos) << s.error();
}

TEST_F(IpamTest, CreateValidates) {
  EXPECT_FALSE(Ipam::create(*store_, std::nullopt, std::nullopt));
  EXPECT_FALSE(Ipam::create(*store_, cidr("10.0.0.0/31"), std::nullopt));
  EXPECT_FALSE(Ipam::create(*store_, cidr("fd00::/64"), std::nullopt));
  EXPECT_FALSE(Ipam::create(*store_, std::nullopt, cidr("fd00::/127")));
  EXPECT_FALSE(Ipam::create(*store_, std::nullopt, cidr("10.0.0.0/8")));
}

}  // namespace
