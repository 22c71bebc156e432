// sluice_reject (bpf/lib/reject.h) through BPF_PROG_TEST_RUN: a packet a
// pod sent to a service without endpoints comes back as the TCP RST or
// ICMP port unreachable Linux would send for a closed port.
//
// Every answer is compared byte for byte with a frame the packet builder
// makes from scratch, and its checksums are checked once more by the
// RFC 1071 sum below, written out independently of packet.cpp so that a
// mistake shared by the builder and its checker cannot hide one in the BPF
// code. BPF_PROG_TEST_RUN does not follow the redirect: the verdict says
// TC_ACT_REDIRECT (bpf_redirect_peer) and the output is the rewritten frame.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "harness.h"
#include "sluice_reject_test.skel.h"

namespace sluice::test {
namespace {

// sluice_reject_build's results (bpf/lib/reject.h).
constexpr int32_t kBuilt = 0, kNoReply = 1;

const Mac kPodMac = mac_addr("02:00:00:00:00:01");
const Mac kGwMac = mac_addr("02:00:00:00:00:fe");
constexpr char kPod4[] = "10.200.0.1", kSvc4[] = "10.96.0.10";
constexpr char kPod6[] = "fd10:200::1", kSvc6[] = "fd10:96::a";
constexpr uint16_t kPodPort = 40000, kSvcPort = 80;

// What the pod sends (to its gateway's MAC), and what it must get back.
PacketBuilder from_pod() { return PacketBuilder().eth(kPodMac, kGwMac); }
PacketBuilder to_pod() { return PacketBuilder().eth(kGwMac, kPodMac); }

Bytes slice(const Bytes& b, size_t off, size_t len) {
  return Bytes(b.begin() + off, b.begin() + off + len);
}

Bytes filler(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = uint8_t(i * 7 + 1);
  return b;
}

// One line per 16 bytes, so a mismatch shows where it is.
std::string hex(const Bytes& b) {
  std::string s;
  char buf[24];
  for (size_t i = 0; i < b.size(); i++) {
    if (i % 16 == 0) {
      std::snprintf(buf, sizeof(buf), "\n%04zx:", i);
      s += buf;
    }
    std::snprintf(buf, sizeof(buf), " %02x", b[i]);
    s += buf;
  }
  return s;
}

// ---- independent checksum check ------------------------------------------

uint32_t sum_be16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i < n; i++) acc += (i % 2 == 0) ? uint32_t(p[i]) << 8 : p[i];
  return acc;
}

bool sums_to_ones(uint32_t acc) {
  while (acc > 0xffff) acc = (acc & 0xffff) + (acc >> 16);
  return acc == 0xffff;
}

// The IPv4 header checksum and the TCP/ICMP/ICMPv6 checksum of an answer
// (no extension headers: the answers never carry any), and that the frame
// ends where the IP length says.
void expect_checksums(const Bytes& f) {
  auto l3o = l3_offset(f);
  ASSERT_TRUE(l3o);
  size_t l3 = *l3o, l4, l4len;
  uint8_t proto;
  uint32_t pseudo;
  ASSERT_GE(f.size(), l3 + 40);
  if (f[l3] >> 4 == 4) {
    size_t ihl = (f[l3] & 0xf) * 4, tot = f[l3 + 2] << 8 | f[l3 + 3];
    EXPECT_TRUE(sums_to_ones(sum_be16(&f[l3], ihl))) << "IPv4 header checksum";
    ASSERT_EQ(f.size(), l3 + tot) << "frame ends at the IPv4 total length";
    proto = f[l3 + 9];
    l4 = l3 + ihl;
    l4len = tot - ihl;
    pseudo = proto == PROTO_ICMP ? 0
                                 : sum_be16(&f[l3 + 12], 8) + proto + uint32_t(l4len);
  } else {
    size_t plen = f[l3 + 4] << 8 | f[l3 + 5];
    ASSERT_EQ(f.size(), l3 + 40 + plen) << "frame ends at the IPv6 payload length";
    proto = f[l3 + 6];
    l4 = l3 + 40;
    l4len = plen;
    pseudo = sum_be16(&f[l3 + 8], 32) + proto + uint32_t(l4len);
  }
  ASSERT_TRUE(proto == PROTO_TCP || proto == PROTO_ICMP || proto == PROTO_ICMPV6);
  EXPECT_TRUE(sums_to_ones(sum_be16(&f[l4], l4len, pseudo))) << "L4 checksum";
}

// ---- fixture ---------------------------------------------------------------

class RejectTest : public SkeletonFixture<sluice_reject_test> {
 protected:
  RunResult run(const bpf_program* p, const Bytes& f, uint32_t cb0 = 0) {
    __sk_buff ctx{};
    ctx.ifindex = 1;  // lo: test runs need a real device
    ctx.cb[0] = cb0;
    RunResult r = BpfProgRun(p).ctx_struct(ctx).run(f);
    EXPECT_EQ(r.err, 0) << std::strerror(-r.err);
    return r;
  }
  RunResult reject(const Bytes& f) { return run(skel_->progs.test_reject, f); }
  RunResult build(const Bytes& f) { return run(skel_->progs.test_reject_build, f); }
  // With the parser's L4 offset even where there is no L4 header.
  RunResult build_raw_l4_off(const Bytes& f) {
    return run(skel_->progs.test_reject_build, f, 1);
  }

  // `in` is answered with exactly `want`, redirected back into the pod.
  void expect_answer(const Bytes& in, const Bytes& want) {
    ASSERT_EQ(int32_t(build(in).retval), kBuilt);
    RunResult r = reject(in);
    EXPECT_EQ(r.retval, uint32_t(TC_ACT_REDIRECT));
    EXPECT_EQ(hex(r.data), hex(want));
    expect_checksums(r.data);
  }
  // `in` is dropped without an answer, untouched.
  void expect_no_answer(const Bytes& in) {
    RunResult b = build(in);
    EXPECT_EQ(int32_t(b.retval), kNoReply);
    EXPECT_EQ(hex(b.data), hex(in));
    EXPECT_EQ(reject(in).retval, uint32_t(TC_ACT_SHOT));
  }
  // `in` cannot be answered: a drop, and build says why (negative).
  void expect_failure(const Bytes& in) {
    EXPECT_LT(int32_t(build(in).retval), 0);
    EXPECT_EQ(reject(in).retval, uint32_t(TC_ACT_SHOT));
  }
};

// ---- TCP: RST as tcp_v4_send_reset / tcp_v6_send_reset ---------------------

TEST_F(RejectTest, TcpSynV4GetsRstAckForSeqPlusOne) {
  Bytes in = from_pod().ipv4(kPod4, kSvc4).ip_id(0x1234).ttl(63).ip_frag(0, false, true)
                 .tcp(kPodPort, kSvcPort, TCP_SYN, 1000, 0, 64240).build();
  Bytes want = to_pod().ipv4(kSvc4, kPod4).ip_frag(0, false, true).ttl(64)
                   .tcp(kSvcPort, kPodPort, TCP_RST | TCP_ACK, 0, 1001, 0).build();
  expect_answer(in, want);
}

TEST_F(RejectTest, TcpSynV6GetsRstAckForSeqPlusOne) {
  Bytes in = from_pod().ipv6(kPod6, kSvc6).ttl(3)
                 .tcp(kPodPort, kSvcPort, TCP_SYN, 0xdeadbeef, 0, 64800).build();
  Bytes want = to_pod().ipv6(kSvc6, kPod6).ttl(64)
                   .tcp(kSvcPort, kPodPort, TCP_RST | TCP_ACK, 0, 0xdeadbef0, 0).build();
  expect_answer(in, want);
}

TEST_F(RejectTest, TcpAckSegmentV4GetsRstAtItsAck) {
  Bytes in = from_pod().ipv4(kPod4, kSvc4).ip_id(7)
                 .tcp(kPodPort, kSvcPort, TCP_ACK | TCP_PSH, 5000, 7777)
                 .payload("GET / HTTP/1.1\r\nHost: svc\r\n\r\n").build();
  Bytes want = to_pod().ipv4(kSvc4, kPod4).ip_frag(0, false, true)
                   .tcp(kSvcPort, kPodPort, TCP_RST, 7777, 0, 0).build();
  expect_answer(in, want);
}

TEST_F(RejectTest, TcpAckSegmentV6GetsRstAtItsAck) {
  Bytes in = from_pod().ipv6(kPod6, kSvc6)
                 .tcp(kPodPort, kSvcPort, TCP_ACK, 1, 0x80000001).payload(filler(1000)).build();
  Bytes want = to_pod().ipv6(kSvc6, kPod6)
                   .tcp(kSvcPort, kPodPort, TCP_RST, 0x80000001, 0, 0).build();
  expect_answer(in, want);
}

// Without ACK the whole segment is acknowledged: payload, SYN and FIN,
// modulo 2^32.
TEST_F(RejectTest, TcpAckNumberCountsPayloadSynFinAndWraps) {
  Bytes in = from_pod().ipv4(kPod4, kSvc4)
                 .tcp(kPodPort, kSvcPort, TCP_SYN | TCP_FIN, 0xfffffff0, 0).payload(filler(33))
                 .build();
  Bytes want = to_pod().ipv4(kSvc4, kPod4).ip_frag(0, false, true)
                   .tcp(kSvcPort, kPodPort, TCP_RST | TCP_ACK, 0, 0x13, 0).build();
  expect_answer(in, want);
}

// Neither IP options, extension headers nor the segment's TCP options are
// echoed; the TOS / traffic class is kept without its ECN bits. The RST
// carries as many zero bytes of TCP options (EOL, padding) as the IP
// options / extension headers it drops, up to 40: a pod's packet is
// usually CHECKSUM_PARTIAL, and neither bpf_skb_change_tail nor the pod's
// ip_rcv accept it shorter than its checksum field reaches (BPF_PROG_TEST_RUN
// packets are not CHECKSUM_PARTIAL: this layout is what makes the real
// path work, see bpf/lib/reject.h).
TEST_F(RejectTest, TcpV4OptionsAreNotEchoed) {
  Bytes in = from_pod().ipv4(kPod4, kSvc4).tos(0x2b).ip_options({0x94, 0x04, 0, 0, 1, 1, 1, 1})
                 .tcp(kPodPort, kSvcPort, TCP_SYN, 41, 0, 1000).tcp_options({2, 4, 0x05, 0xb4})
                 .build();
  Bytes want = to_pod().ipv4(kSvc4, kPod4).tos(0x28).ip_frag(0, false, true)
                   .tcp(kSvcPort, kPodPort, TCP_RST | TCP_ACK, 0, 42, 0).tcp_options(Bytes(8, 0))
                   .build();
  expect_answer(in, want);
}

TEST_F(RejectTest, TcpV6ExtensionHeadersAreNotEchoed) {
  Bytes in = from_pod().ipv6(kPod6, kSvc6).tos(0xb9).ext_hop_by_hop().ext_dest_opts({1, 4, 0, 0, 0, 0})
                 .tcp(kPodPort, kSvcPort, TCP_SYN, 99, 0).tcp_options({1, 1, 1, 1, 3, 3, 7, 0})
                 .payload("xyz").build();
  Bytes want = to_pod().ipv6(kSvc6, kPod6).tos(0xb8)
                   .tcp(kSvcPort, kPodPort, TCP_RST | TCP_ACK, 0, 99 + 3 + 1, 0)
                   .tcp_options(Bytes(16, 0)).build();
  expect_answer(in, want);

  // 48 bytes of extension headers: 40 bytes of TCP options at most.
  Bytes padn(30, 0);
  padn[0] = 1;  // PadN of 28 bytes: a 32-byte header
  padn[1] = 28;
  in = from_pod().ipv6(kPod6, kSvc6).ext_hop_by_hop(padn).ext_dest_opts()
           .ext_fragment(0, true, 5).tcp(kPodPort, kSvcPort, TCP_SYN, 99, 0).build();
  want = to_pod().ipv6(kSvc6, kPod6)
             .tcp(kSvcPort, kPodPort, TCP_RST | TCP_ACK, 0, 100, 0).tcp_options(Bytes(40, 0))
             .build();
  expect_answer(in, want);
}

// A minimum-size Ethernet frame is padded: the payload length comes from
// the IP header, not the frame.
TEST_F(RejectTest, TcpEthernetPaddingIsNotPayload) {
  Bytes in = from_pod().ipv4(kPod4, kSvc4).tcp(kPodPort, kSvcPort, TCP_SYN, 10, 0).build();
  ASSERT_EQ(in.size(), 54u);
  in.resize(60, 0);
  Bytes want = to_pod().ipv4(kSvc4, kPod4).ip_frag(0, false, true)
                   .tcp(kSvcPort, kPodPort, TCP_RST | TCP_ACK, 0, 11, 0).build();
  expect_answer(in, want);
}

TEST_F(RejectTest, TcpRstIsNotAnswered) {
  expect_no_answer(from_pod().ipv4(kPod4, kSvc4).tcp(kPodPort, kSvcPort, TCP_RST, 5).build());
  expect_no_answer(
      from_pod().ipv4(kPod4, kSvc4).tcp(kPodPort, kSvcPort, TCP_RST | TCP_ACK, 5, 6).build());
  expect_no_answer(from_pod().ipv6(kPod6, kSvc6).tcp(kPodPort, kSvcPort, TCP_RST, 5).build());
}

TEST_F(RejectTest, TcpBrokenHeaderIsDroppedUnanswered) {
  // 14 bytes of TCP header pass the parser (ports, flags) but not the RST
  // builder, which needs the whole header.
  auto b = from_pod().ipv4(kPod4, kSvc4).tcp(kPodPort, kSvcPort, TCP_SYN, 1);
  expect_failure(b.truncate(b.l4_offset() + 14).build());
  // Data offset below 5 words.
  Bytes in = from_pod().ipv6(kPod6, kSvc6).tcp(kPodPort, kSvcPort, TCP_SYN, 1).build();
  in[14 + 40 + 12] = 4 << 4;
  expect_failure(in);
}

// ---- everything else: ICMP / ICMPv6 port unreachable -------------------------

TEST_F(RejectTest, UdpV4GetsPortUnreachableQuotingHeaderAnd8Bytes) {
  Bytes in = from_pod().ipv4(kPod4, kSvc4).tos(0x12).ip_id(0x4242).ttl(17)
                 .udp(5353, 53).payload(filler(200)).build();
  Bytes want = to_pod().ipv4(kSvc4, kPod4).tos(0xc0 | 0x12).icmp(3, 3)
                   .payload(slice(in, 14, 20 + 8)).build();
  expect_answer(in, want);
}

TEST_F(RejectTest, UdpV4WithOptionsQuotesTheOptions) {
  auto b = from_pod().ipv4(kPod4, kSvc4)
               .ip_options({0x07, 0x0b, 0x04, 0, 0, 0, 0, 0, 0, 0, 0})  // record route
               .udp(5353, 53).payload("q");
  Bytes in = b.build();
  ASSERT_EQ(b.l4_offset(), 14u + 32);
  Bytes want = to_pod().ipv4(kSvc4, kPod4).tos(0xc0).icmp(3, 3)
                   .payload(slice(in, 14, 32 + 8)).build();
  expect_answer(in, want);
}

TEST_F(RejectTest, UdpV4MaximumOptions) {
  Bytes opts(40, 1);  // NOPs: IHL 15
  auto b = from_pod().ipv4(kPod4, kSvc4).ip_options(opts).udp(1, 2).payload(filler(64));
  Bytes in = b.build();
  Bytes want = to_pod().ipv4(kSvc4, kPod4).tos(0xc0).icmp(3, 3)
                   .payload(slice(in, 14, 60 + 8)).build();
  expect_answer(in, want);
}

TEST_F(RejectTest, UdpV6GetsIcmpv6PortUnreachable) {
  Bytes in = from_pod().ipv6(kPod6, kSvc6).tos(0x20).udp(5353, 53).payload(filler(300)).build();
  Bytes want = to_pod().ipv6(kSvc6, kPod6).icmp(1, 4).payload(slice(in, 14, 40 + 8)).build();
  expect_answer(in, want);
}

// IPv6 quotes reach through the extension headers to 8 bytes of the
// upper-layer header (else the sender cannot find its socket), for up to
// 32 bytes of extension headers.
TEST_F(RejectTest, UdpV6QuoteReachesThroughExtensionHeaders) {
  auto b = from_pod().ipv6(kPod6, kSvc6).ext_hop_by_hop().ext_dest_opts()
               .udp(5353, 53).payload("abc");
  Bytes in = b.build();
  ASSERT_EQ(b.l4_offset(), 14u + 40 + 16);
  Bytes want = to_pod().ipv6(kSvc6, kPod6).icmp(1, 4).payload(slice(in, 14, 40 + 16 + 8)).build();
  expect_answer(in, want);

  // The first fragment of a large datagram: what a pod's stack sends for
  // UDP beyond the MTU.
  in = from_pod().ipv6(kPod6, kSvc6).ext_fragment(0, true, 0x1234)
           .udp(5353, 53).payload(filler(1400)).build();
  want = to_pod().ipv6(kSvc6, kPod6).icmp(1, 4).payload(slice(in, 14, 40 + 8 + 8)).build();
  expect_answer(in, want);

  // 48 bytes of extension headers: the quote stops at 80 bytes.
  Bytes padn(30, 0);
  padn[0] = 1;  // PadN of 28 bytes: a 32-byte header
  padn[1] = 28;
  in = from_pod().ipv6(kPod6, kSvc6).ext_hop_by_hop(padn).ext_dest_opts()
           .ext_fragment(0, true, 1).udp(5353, 53).payload(filler(64)).build();
  ASSERT_EQ(in[14 + 40 + 1], 3) << "hop-by-hop header of 32 bytes";
  want = to_pod().ipv6(kSvc6, kPod6).icmp(1, 4).payload(slice(in, 14, 80)).build();
  expect_answer(in, want);
}

TEST_F(RejectTest, VlanTagsStayAndOffsetsFollowThem) {
  Bytes in = from_pod().vlan(100, 3).ipv4(kPod4, kSvc4)
                 .tcp(kPodPort, kSvcPort, TCP_SYN, 1000).build();
  Bytes want = to_pod().vlan(100, 3).ipv4(kSvc4, kPod4).ip_frag(0, false, true)
                   .tcp(kSvcPort, kPodPort, TCP_RST | TCP_ACK, 0, 1001, 0).build();
  expect_answer(in, want);

  in = from_pod().vlan_ad(10).vlan(20).ipv6(kPod6, kSvc6).udp(5353, 53).payload("q").build();
  want = to_pod().vlan_ad(10).vlan(20).ipv6(kSvc6, kPod6).icmp(1, 4)
             .payload(slice(in, 22, 40 + 8)).build();
  expect_answer(in, want);

  in = from_pod().vlan(7).ipv4(kPod4, kSvc4).ip_options({1, 1, 1, 1}).udp(5353, 53).build();
  want = to_pod().vlan(7).ipv4(kSvc4, kPod4).tos(0xc0).icmp(3, 3)
             .payload(slice(in, 18, 24 + 8)).build();
  expect_answer(in, want);
}

// Fewer than 8 bytes after the header: the quote is shorter (and odd-sized
// here, which the checksum must handle).
TEST_F(RejectTest, ShortDatagramsAreQuotedAsTheyAre) {
  Bytes in = from_pod().ipv4(kPod4, kSvc4).l4_proto(253).payload("abc").build();
  in.resize(60, 0);  // Ethernet padding is not quoted
  Bytes want = to_pod().ipv4(kSvc4, kPod4).tos(0xc0).icmp(3, 3)
                   .payload(slice(in, 14, 20 + 3)).build();
  expect_answer(in, want);

  in = from_pod().ipv6(kPod6, kSvc6).l4_proto(253).payload("ab").build();
  want = to_pod().ipv6(kSvc6, kPod6).icmp(1, 4).payload(slice(in, 14, 40 + 2)).build();
  expect_answer(in, want);
}

TEST_F(RejectTest, EchoRequestsAreAnswered) {
  Bytes in = from_pod().ipv4(kPod4, kSvc4).icmp_echo(77, 1).payload(filler(56)).build();
  Bytes want = to_pod().ipv4(kSvc4, kPod4).tos(0xc0).icmp(3, 3)
                   .payload(slice(in, 14, 20 + 8)).build();
  expect_answer(in, want);

  in = from_pod().ipv6(kPod6, kSvc6).icmp_echo(77, 1).payload(filler(56)).build();
  want = to_pod().ipv6(kSvc6, kPod6).icmp(1, 4).payload(slice(in, 14, 40 + 8)).build();
  expect_answer(in, want);
}

TEST_F(RejectTest, IcmpErrorsAndRepliesAreNotAnswered) {
  Bytes quoted = PacketBuilder().ipv4(kSvc4, kPod4).udp(53, 5353).build();
  quoted = slice(quoted, 14, 28);
  expect_no_answer(from_pod().ipv4(kPod4, kSvc4).icmp(3, 1).payload(quoted).build());
  expect_no_answer(from_pod().ipv4(kPod4, kSvc4).icmp(11, 0).payload(quoted).build());
  expect_no_answer(from_pod().ipv4(kPod4, kSvc4).icmp_echo(1, 1, true).build());

  Bytes quoted6 = PacketBuilder().ipv6(kSvc6, kPod6).udp(53, 5353).build();
  quoted6 = slice(quoted6, 14, 48);
  expect_no_answer(from_pod().ipv6(kPod6, kSvc6).icmp(1, 4).payload(quoted6).build());
  expect_no_answer(from_pod().ipv6(kPod6, kSvc6).icmp(2, 0, 1280).payload(quoted6).build());
  expect_no_answer(from_pod().ipv6(kPod6, kSvc6).icmp_echo(1, 1, true).build());
  // Neighbour solicitation: informational, but not a connection attempt.
  expect_no_answer(from_pod().ipv6(kPod6, kSvc6).icmp(135, 0).payload(Bytes(16, 0)).build());
}

// No L4 header, nothing to quote that identifies a socket (icmp_send
// answers only first fragments).
TEST_F(RejectTest, NonFirstFragmentsAreNotAnswered) {
  Bytes in = from_pod().ipv4(kPod4, kSvc4).ip_frag(1480, true).udp(5353, 53)
                 .payload(filler(64)).build();
  expect_no_answer(in);
  // IPv4 ones are recognised by their header even with an L4 offset.
  RunResult r = build_raw_l4_off(in);
  EXPECT_EQ(int32_t(r.retval), kNoReply);
  EXPECT_EQ(hex(r.data), hex(in));
  // TCP too: there is no TCP header to answer.
  expect_no_answer(from_pod().ipv4(kPod4, kSvc4).ip_frag(8, false).tcp(1, 2, TCP_SYN)
                       .payload(filler(20)).build());

  expect_no_answer(from_pod().ipv6(kPod6, kSvc6).ext_fragment(1448, false, 9)
                       .udp(5353, 53).payload(filler(64)).build());
}

// ---- builder features these tests added ---------------------------------------

TEST(PacketBuilderAdditions, TcpOptionsArePaddedAndCounted) {
  Bytes f = PacketBuilder().ipv4("192.0.2.1", "192.0.2.2").tcp(1, 2, TCP_SYN)
                .tcp_options({2, 4, 0x05, 0xb4, 1}).payload("p").build();
  ASSERT_EQ(f.size(), 14u + 20 + 20 + 8 + 1);
  EXPECT_EQ(f[34 + 12], 7 << 4);
  EXPECT_EQ(slice(f, 54, 9), (Bytes{2, 4, 0x05, 0xb4, 1, 0, 0, 0, 'p'}));
  EXPECT_TRUE(l4_checksum_ok(f, 14));
  EXPECT_THROW(PacketBuilder().tcp_options(Bytes(41, 1)), std::invalid_argument);
}

TEST(PacketBuilderAdditions, IcmpLayoutAndChecksums) {
  Bytes f = PacketBuilder().ipv4("192.0.2.1", "192.0.2.2").icmp(3, 4, 1500).payload("abcd").build();
  ASSERT_EQ(f.size(), 14u + 20 + 8 + 4);
  EXPECT_EQ(f[14 + 9], PROTO_ICMP);
  EXPECT_EQ(slice(f, 34, 2), (Bytes{3, 4}));
  EXPECT_EQ(slice(f, 38, 8), (Bytes{0, 0, 0x05, 0xdc, 'a', 'b', 'c', 'd'}));
  EXPECT_TRUE(l4_checksum_ok(f, 14));
  EXPECT_TRUE(sums_to_ones(sum_be16(&f[34], 12)));  // no pseudo header

  Bytes g = PacketBuilder().ipv6("2001:db8::1", "2001:db8::2").icmp(1, 4).payload("x").build();
  EXPECT_EQ(g[14 + 6], PROTO_ICMPV6);
  EXPECT_EQ(slice(g, 54, 8), (Bytes{1, 4, g[56], g[57], 0, 0, 0, 0}));
  EXPECT_TRUE(l4_checksum_ok(g, 14));
}

}  // namespace
}  // namespace sluice::test
