// The packet builder is the ground truth for every BPF test, so it is
// checked against values computed independently of it: a published IPv4
// header example and checksums computed with a separate Python
// implementation (struct.pack + RFC 1071 sum) when these tests were written.
#include <gtest/gtest.h>

#include <stdexcept>

#include "packet.h"

namespace sluice::test {
namespace {

uint16_t be16(const Bytes& b, size_t off) { return b[off] << 8 | b[off + 1]; }

constexpr size_t kEth = 14;

TEST(PacketBuilder, ParsesAddresses) {
  EXPECT_EQ(ipv4_addr("10.0.0.1"), (Ip4{10, 0, 0, 1}));
  Ip6 v6 = ipv6_addr("fd10::1");
  EXPECT_EQ(v6[0], 0xfd);
  EXPECT_EQ(v6[1], 0x10);
  EXPECT_EQ(v6[15], 1);
  EXPECT_EQ(mac_addr("02:00:00:aa:bb:cc"), (Mac{2, 0, 0, 0xaa, 0xbb, 0xcc}));
  auto c4 = ipv4_cidr("10.1.2.0/24");
  EXPECT_EQ(c4.addr, (Ip4{10, 1, 2, 0}));
  EXPECT_EQ(c4.prefixlen, 24u);
  EXPECT_EQ(ipv4_cidr("10.1.2.3").prefixlen, 32u);
  EXPECT_EQ(ipv6_cidr("fd10::/64").prefixlen, 64u);
  EXPECT_EQ(ipv6_cidr("fd10::1").prefixlen, 128u);

  EXPECT_THROW(ipv4_addr("10.0.0.256"), std::invalid_argument);
  EXPECT_THROW(ipv4_addr("fd10::1"), std::invalid_argument);
  EXPECT_THROW(ipv6_addr("10.0.0.1"), std::invalid_argument);
  EXPECT_THROW(mac_addr("02:00:00:aa:bb"), std::invalid_argument);
  EXPECT_THROW(ipv4_cidr("10.0.0.0/33"), std::invalid_argument);
  EXPECT_THROW(ipv4_cidr("10.0.0.0/"), std::invalid_argument);
  EXPECT_THROW(ipv6_cidr("fd10::/129"), std::invalid_argument);
  EXPECT_THROW(ipv6_cidr("fd10::/6x"), std::invalid_argument);
}

// The worked example from Wikipedia's "Internet checksum" / IPv4 header
// article: 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7.
TEST(PacketBuilder, Ipv4HeaderMatchesPublishedExample) {
  Bytes f = PacketBuilder()
                .ipv4("192.168.0.1", "192.168.0.199")
                .ip_frag(0, false, /*dont_frag=*/true)
                .udp(1, 2)
                .payload(Bytes(0x73 - 20 - 8, 0))
                .build();
  const Bytes want = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                      0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  ASSERT_EQ(f.size(), kEth + 0x73);
  EXPECT_EQ(Bytes(f.begin() + kEth, f.begin() + kEth + 20), want);
  EXPECT_EQ(be16(f, 12), ETHERTYPE_IPV4);
  EXPECT_TRUE(ipv4_checksum_ok(f, kEth));
  EXPECT_TRUE(l4_checksum_ok(f, kEth));
}

TEST(PacketBuilder, Ipv4OptionsArePaddedAndCounted) {
  auto b = PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ip_id(0x1234)
               .ip_options({1, 1, 1})  // three NOPs, padded with one EOL
               .tcp(1, 2, TCP_ACK);
  Bytes f = b.build();
  EXPECT_EQ(f[kEth], 0x46);  // IHL 6
  EXPECT_EQ(be16(f, kEth + 2), 24 + 20);
  EXPECT_EQ(Bytes(f.begin() + kEth + 20, f.begin() + kEth + 24), (Bytes{1, 1, 1, 0}));
  EXPECT_EQ(be16(f, kEth + 10), 0x5195);  // Python
  EXPECT_EQ(b.l4_offset(), kEth + 24);
  EXPECT_TRUE(l4_checksum_ok(f, kEth));
  EXPECT_THROW(PacketBuilder().ip_options(Bytes(41, 1)), std::invalid_argument);
}

TEST(PacketBuilder, KnownL4Checksums) {
  Bytes tcp4 = PacketBuilder().ipv4("10.0.0.1", "10.0.0.2")
                   .tcp(1234, 80, TCP_SYN, /*seq=*/1).payload("hello").build();
  EXPECT_EQ(be16(tcp4, kEth + 20 + 16), 0x52e6);
  EXPECT_EQ(tcp4[kEth + 20 + 13], TCP_SYN);
  EXPECT_EQ(tcp4[kEth + 20 + 12], 5 << 4);

  Bytes udp4 = PacketBuilder().ipv4("192.168.1.1", "192.168.1.2")
                   .udp(1000, 2000).payload("data").build();
  EXPECT_EQ(be16(udp4, kEth + 20 + 4), 12);  // UDP length
  EXPECT_EQ(be16(udp4, kEth + 20 + 6), 0x9807);

  // Odd payload length: the trailing byte is summed as if zero-padded.
  Bytes udp6 = PacketBuilder().ipv6("fd10::1", "fd10::2").udp(5353, 53).payload("abc").build();
  EXPECT_EQ(be16(udp6, 12), ETHERTYPE_IPV6);
  EXPECT_EQ(udp6[kEth + 6], PROTO_UDP);
  EXPECT_EQ(be16(udp6, kEth + 4), 11);  // payload length
  EXPECT_EQ(be16(udp6, kEth + 40 + 6), 0x2c33);

  Bytes icmp4 = PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").icmp_echo(1, 1).payload("ping").build();
  EXPECT_EQ(icmp4[kEth + 9], PROTO_ICMP);
  EXPECT_EQ(icmp4[kEth + 20], 8);  // echo request
  EXPECT_EQ(be16(icmp4, kEth + 20 + 2), 0x192d);

  Bytes icmp6 = PacketBuilder().ipv6("fd10::1", "fd10::2").icmp_echo(1, 1).payload("ping").build();
  EXPECT_EQ(icmp6[kEth + 6], PROTO_ICMPV6);
  EXPECT_EQ(icmp6[kEth + 40], 128);
  EXPECT_EQ(be16(icmp6, kEth + 40 + 2), 0xa6c1);

  for (const Bytes* f : {&tcp4, &udp4, &udp6, &icmp4, &icmp6})
    EXPECT_TRUE(l4_checksum_ok(*f, kEth));
}

// Extension headers sit between the IPv6 header and L4 but are not part of
// the pseudo-header: the UDP checksum must equal the plain packet's.
TEST(PacketBuilder, Ipv6ExtensionChain) {
  auto b = PacketBuilder().ipv6("fd10::1", "fd10::2")
               .ext_hop_by_hop()
               .ext_routing()
               .ext_dest_opts({0x1e, 0x02, 0xaa, 0xbb})  // 4-byte TLV -> 2 bytes PadN
               .ext_fragment(0, /*more=*/true, 0xdeadbeef)
               .udp(5353, 53).payload("abc");
  Bytes f = b.build();
  size_t ip = kEth, hbh = ip + 40, rt = hbh + 8, dst = rt + 8, frag = dst + 8, l4 = frag + 8;
  ASSERT_EQ(b.l4_offset(), l4);
  ASSERT_EQ(f.size(), l4 + 8 + 3);
  EXPECT_EQ(f[ip + 6], PROTO_HOPOPTS);
  EXPECT_EQ(be16(f, ip + 4), 4 * 8 + 11);  // ext headers count in payload length
  EXPECT_EQ(f[hbh], PROTO_ROUTING);
  EXPECT_EQ(f[hbh + 1], 0);  // 8 bytes
  EXPECT_EQ(Bytes(f.begin() + hbh + 2, f.begin() + hbh + 8), (Bytes{1, 4, 0, 0, 0, 0}));
  EXPECT_EQ(f[rt], PROTO_DSTOPTS);
  EXPECT_EQ(f[dst], PROTO_FRAGMENT);
  EXPECT_EQ(Bytes(f.begin() + dst + 2, f.begin() + dst + 8),
            (Bytes{0x1e, 0x02, 0xaa, 0xbb, 1, 0}));
  EXPECT_EQ(f[frag], PROTO_UDP);
  EXPECT_EQ(be16(f, frag + 2), 0x0001);  // offset 0, M=1
  EXPECT_EQ(be16(f, frag + 4) << 16 | be16(f, frag + 6), 0xdeadbeefu);
  EXPECT_EQ(be16(f, l4 + 6), 0x2c33);
  EXPECT_TRUE(l4_checksum_ok(f, kEth));

  // A longer option spills into a second 8-byte unit.
  Bytes g = PacketBuilder().ipv6("fd10::1", "fd10::2").ext_hop_by_hop(Bytes(9, 0x01))
                .l4_proto(PROTO_NONE).build();
  EXPECT_EQ(g[kEth + 40 + 1], 1);
  EXPECT_EQ(g.size(), kEth + 40 + 16);
  EXPECT_EQ(g[kEth + 40], PROTO_NONE);
}

TEST(PacketBuilder, RoutingHeaderFinalDestinationInPseudoHeader) {
  Bytes f = PacketBuilder().ipv6("fd10::1", "fd10::2")
                .ext_routing(0, /*segments_left=*/1, {ipv6_addr("fd10::99")})
                .udp(5353, 53).payload("abc").build();
  EXPECT_EQ(f[kEth + 40 + 1], 2);  // one address = two 8-byte units
  EXPECT_EQ(be16(f, kEth + 40 + 24 + 6), 0x2b9c);  // Python, dst fd10::99
  EXPECT_TRUE(l4_checksum_ok(f, kEth));
}

TEST(PacketBuilder, Ipv4Fragments) {
  auto first = PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ip_id(77)
                   .ip_frag(0, /*more=*/true).udp(1, 2).payload(Bytes(16, 0xab));
  Bytes f = first.build();
  EXPECT_EQ(be16(f, kEth + 4), 77);
  EXPECT_EQ(be16(f, kEth + 6), 0x2000);  // MF, offset 0
  EXPECT_EQ(be16(f, kEth + 20), 1);      // UDP header present
  EXPECT_TRUE(l4_checksum_ok(f, kEth));

  Bytes later = PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").ip_id(77)
                    .ip_frag(1480, /*more=*/false).udp(1, 2).payload(Bytes(16, 0xab)).build();
  EXPECT_EQ(be16(later, kEth + 6), 1480 / 8);
  EXPECT_EQ(later[kEth + 9], PROTO_UDP);
  EXPECT_EQ(be16(later, kEth + 2), 20 + 16);  // payload only, no UDP header
  EXPECT_EQ(later.size(), kEth + 20 + 16);
  EXPECT_EQ(later[kEth + 20], 0xab);
  EXPECT_TRUE(ipv4_checksum_ok(later, kEth));
  EXPECT_FALSE(l4_checksum_ok(later, kEth));  // nothing to verify

  EXPECT_THROW(PacketBuilder().ip_frag(100, false), std::invalid_argument);
  EXPECT_THROW(PacketBuilder().ext_fragment(4, false, 1), std::invalid_argument);
}

TEST(PacketBuilder, Ipv6NonFirstFragmentCarriesRawPayload) {
  Bytes f = PacketBuilder().ipv6("fd10::1", "fd10::2").ext_hop_by_hop()
                .ext_fragment(1232, false, 9).tcp(1, 2, TCP_ACK).payload(Bytes(8, 0xcd)).build();
  size_t frag = kEth + 40 + 8;
  EXPECT_EQ(f[frag], PROTO_TCP);
  EXPECT_EQ(be16(f, frag + 2), 1232);  // 154 << 3, M=0
  EXPECT_EQ(f.size(), frag + 8 + 8);
  EXPECT_EQ(f[frag + 8], 0xcd);
  EXPECT_FALSE(l4_checksum_ok(f, kEth));
}

TEST(PacketBuilder, VlanTagsInPushOrder) {
  auto b = PacketBuilder().eth(mac_addr("02:00:00:00:00:0a"), mac_addr("02:00:00:00:00:0b"))
               .vlan_ad(10).vlan(20, 5).ipv4("10.0.0.1", "10.0.0.2").udp(1, 2);
  Bytes f = b.build();
  EXPECT_EQ(f[5], 0x0b);   // destination first
  EXPECT_EQ(f[11], 0x0a);
  EXPECT_EQ(be16(f, 12), ETHERTYPE_8021AD);
  EXPECT_EQ(be16(f, 14), 10);
  EXPECT_EQ(be16(f, 16), ETHERTYPE_8021Q);
  EXPECT_EQ(be16(f, 18), 5 << 13 | 20);
  EXPECT_EQ(be16(f, 20), ETHERTYPE_IPV4);
  EXPECT_EQ(b.l3_offset(), 22u);
  EXPECT_EQ(l3_offset(f), 22u);
  EXPECT_TRUE(l4_checksum_ok(f, 22));
}

TEST(PacketBuilder, NonIpAndTruncation) {
  Bytes arp = PacketBuilder().ethertype(ETHERTYPE_ARP).payload(Bytes(28, 1)).build();
  EXPECT_EQ(arp.size(), kEth + 28);
  EXPECT_EQ(be16(arp, 12), ETHERTYPE_ARP);

  auto b = PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").tcp(1, 2, TCP_SYN);
  Bytes full = b.build();
  Bytes cut = b.truncate(kEth + 19).build();
  ASSERT_EQ(cut.size(), kEth + 19);
  EXPECT_TRUE(std::equal(cut.begin(), cut.end(), full.begin()));  // checksums from the full frame
  EXPECT_EQ(b.truncate(1000).build(), full);
  EXPECT_FALSE(ipv4_checksum_ok(cut, kEth));
  EXPECT_FALSE(l3_offset(Bytes(13, 0)).has_value());
}

TEST(PacketBuilder, CheckersCatchCorruption) {
  Bytes f = PacketBuilder().vlan(7).ipv4("10.0.0.1", "10.0.0.2").tcp(1, 2, TCP_SYN).payload("x").build();
  size_t l3 = 18;
  ASSERT_TRUE(ipv4_checksum_ok(f, l3));
  ASSERT_TRUE(l4_checksum_ok(f, l3));

  Bytes padded = f;  // Ethernet padding must not confuse the L4 length
  padded.resize(f.size() + 10, 0);
  EXPECT_TRUE(l4_checksum_ok(padded, l3));

  Bytes bad_payload = f;
  bad_payload.back() ^= 0x01;
  EXPECT_TRUE(ipv4_checksum_ok(bad_payload, l3));
  EXPECT_FALSE(l4_checksum_ok(bad_payload, l3));

  Bytes bad_ttl = f;
  bad_ttl[l3 + 8]--;  // a router that forgets to fix the checksum
  EXPECT_FALSE(ipv4_checksum_ok(bad_ttl, l3));

  Bytes bad_addr6 = PacketBuilder().ipv6("fd10::1", "fd10::2").udp(1, 2).build();
  ASSERT_TRUE(l4_checksum_ok(bad_addr6, kEth));
  bad_addr6[kEth + 8 + 15] ^= 0x02;  // source changed without checksum fix-up
  EXPECT_FALSE(l4_checksum_ok(bad_addr6, kEth));

  Bytes udp6_zero = PacketBuilder().ipv6("fd10::1", "fd10::2").udp(1, 2).build();
  udp6_zero[kEth + 40 + 6] = udp6_zero[kEth + 40 + 7] = 0;
  EXPECT_FALSE(l4_checksum_ok(udp6_zero, kEth));  // mandatory over IPv6
  Bytes udp4_zero = PacketBuilder().ipv4("10.0.0.1", "10.0.0.2").udp(1, 2).build();
  udp4_zero[kEth + 20 + 6] = udp4_zero[kEth + 20 + 7] = 0;
  EXPECT_TRUE(l4_checksum_ok(udp4_zero, kEth));  // "no checksum" over IPv4
}

}  // namespace
}  // namespace sluice::test
