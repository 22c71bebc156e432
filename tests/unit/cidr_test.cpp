#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "common/cidr.h"

using sluice::Cidr;
using sluice::IpAddr;

TEST(Cidr, ParsesIpv4AndIpv6) {
  auto a = Cidr::parse("198.51.100.0/24");
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->addr.family, AF_INET);
  EXPECT_EQ(a->prefixlen, 24);
  EXPECT_EQ(a->str(), "198.51.100.0/24");
  auto b = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(b) << b.error();
  EXPECT_EQ(b->addr.family, AF_INET6);
  EXPECT_EQ(b->str(), "2001:db8::/32");
}

TEST(Cidr, BareAddressIsHostPrefix) {
  EXPECT_EQ(Cidr::parse("10.1.2.3")->prefixlen, 32);
  EXPECT_EQ(Cidr::parse("fd10::1")->prefixlen, 128);
  EXPECT_EQ(Cidr::parse("0.0.0.0/0")->str(), "0.0.0.0/0");
}

TEST(Cidr, RejectsGarbageWithTheInputNamed) {
  for (const char* bad :
       {"", "/24", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/2x",
        "300.1.1.1/8", "fd10::/129", "hello", "10.0.0.0/24/1",
        "10.0.0.1/8", "2001:db8::1/32"}) {
    auto c = Cidr::parse(bad);
    EXPECT_FALSE(c) << bad;
    if (!c) {
      EXPECT_NE(c.error().find(std::string("\"") + bad + "\""),
                std::string::npos)
          << c.error();
    }
  }
  EXPECT_NE(Cidr::parse("10.0.0.1/8").error().find("10.0.0.0/8"),
            std::string::npos);
}

TEST(Cidr, Contains) {
  auto c = *Cidr::parse("10.200.0.0/16");
  EXPECT_TRUE(c.contains(*IpAddr::parse("10.200.3.4")));
  EXPECT_FALSE(c.contains(*IpAddr::parse("10.201.0.1")));
  EXPECT_FALSE(c.contains(*IpAddr::parse("fd10::1")));
  auto all6 = *Cidr::parse("::/0");
  EXPECT_TRUE(all6.contains(*IpAddr::parse("fd10::1")));
  EXPECT_FALSE(all6.contains(*IpAddr::parse("10.0.0.1")));
}
