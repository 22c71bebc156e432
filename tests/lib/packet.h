// Packet builder for tests: Ethernet frames with VLAN tags, IPv4 (options,
// fragments) or IPv6 (extension header chains), TCP/UDP/ICMP with correct
// checksums, plus helpers to check the checksums of any frame (e.g. the
// output of a program that rewrote a packet).
//
//   auto f = PacketBuilder().vlan(100).ipv4("10.0.0.1", "10.0.0.2")
//                .tcp(1234, 80, TCP_SYN).payload("hi").build();
//   auto g = PacketBuilder().ipv6("fd10::1", "fd10::2").ext_hop_by_hop()
//                .ext_fragment(0, true, 7).udp(53, 53).build();
//
// Errors in the *caller's* input (bad address, misaligned fragment offset,
// too many IPv4 option bytes) throw std::invalid_argument: a test that
// builds an impossible packet should fail loudly, not send something else.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace sluice::test {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;
using Ip4 = std::array<uint8_t, 4>;
using Ip6 = std::array<uint8_t, 16>;

inline constexpr uint16_t ETHERTYPE_IPV4 = 0x0800;
inline constexpr uint16_t ETHERTYPE_ARP = 0x0806;
inline constexpr uint16_t ETHERTYPE_IPV6 = 0x86DD;
inline constexpr uint16_t ETHERTYPE_8021Q = 0x8100;
inline constexpr uint16_t ETHERTYPE_8021AD = 0x88A8;

inline constexpr uint8_t PROTO_HOPOPTS = 0;
inline constexpr uint8_t PROTO_ICMP = 1;
inline constexpr uint8_t PROTO_TCP = 6;
inline constexpr uint8_t PROTO_UDP = 17;
inline constexpr uint8_t PROTO_ROUTING = 43;
inline constexpr uint8_t PROTO_FRAGMENT = 44;
inline constexpr uint8_t PROTO_ICMPV6 = 58;
inline constexpr uint8_t PROTO_NONE = 59;
inline constexpr uint8_t PROTO_DSTOPTS = 60;

inline constexpr uint8_t TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_RST = 0x04,
                         TCP_PSH = 0x08, TCP_ACK = 0x10, TCP_URG = 0x20;

// Address parsing (inet_pton underneath); throw std::invalid_argument.
Ip4 ipv4_addr(std::string_view text);
Ip6 ipv6_addr(std::string_view text);
Mac mac_addr(std::string_view text);  // "02:00:00:00:00:01"

// "10.0.0.0/24" / "fd10::/64" -> address + prefix length. A missing
// "/len" means a host prefix (32 / 128).
struct Cidr4 { Ip4 addr; uint32_t prefixlen; };
struct Cidr6 { Ip6 addr; uint32_t prefixlen; };
Cidr4 ipv4_cidr(std::string_view text);
Cidr6 ipv6_cidr(std::string_view text);

// RFC 1071 one's-complement sum over data, folded, *not* inverted, so
// pseudo-header and segment sums can be chained: pass the previous result
// as `initial`.
uint16_t csum_partial(const uint8_t* data, size_t len, uint32_t initial = 0);
// Final checksum field value: ~fold(sum).
uint16_t inet_checksum(const uint8_t* data, size_t len, uint32_t initial = 0);

class PacketBuilder {
 public:
  // Ethernet header. ethertype 0 means "derive from the L3 header" (IPv4 /
  // IPv6); set it explicitly for non-IP frames (ARP) or to lie about L3.
  PacketBuilder& eth(const Mac& src, const Mac& dst, uint16_t ethertype = 0);
  PacketBuilder& ethertype(uint16_t type);
  // VLAN tags, emitted outermost first in the order pushed.
  PacketBuilder& vlan(uint16_t vid, uint8_t pcp = 0);     // 802.1Q (0x8100)
  PacketBuilder& vlan_ad(uint16_t vid, uint8_t pcp = 0);  // 802.1ad (0x88A8)

  PacketBuilder& ipv4(std::string_view src, std::string_view dst);
  PacketBuilder& ipv4(const Ip4& src, const Ip4& dst);
  // Raw option bytes; zero-padded (EOL) to a multiple of 4, IHL follows.
  PacketBuilder& ip_options(Bytes options);
  PacketBuilder& ip_id(uint16_t id);
  // offset_bytes must be a multiple of 8. A non-zero offset makes this a
  // non-first fragment: no L4 header is emitted, only payload bytes. A
  // first fragment's L4 checksum covers just the bytes it carries.
  PacketBuilder& ip_frag(uint16_t offset_bytes, bool more, bool dont_frag = false);
  PacketBuilder& ttl(uint8_t ttl);  // IPv4 TTL or IPv6 hop limit
  PacketBuilder& tos(uint8_t tos);  // IPv4 TOS or IPv6 traffic class

  PacketBuilder& ipv6(std::string_view src, std::string_view dst);
  PacketBuilder& ipv6(const Ip6& src, const Ip6& dst);
  // Extension headers, emitted in the order pushed. Option bytes are TLVs
  // and are padded (Pad1/PadN) so the header is a multiple of 8 bytes.
  PacketBuilder& ext_hop_by_hop(Bytes options = {});
  PacketBuilder& ext_dest_opts(Bytes options = {});
  // Type 0/2 layout: 4 reserved bytes then the addresses. For those types
  // with segments_left > 0 the last address is the final destination, which
  // the L4 pseudo-header uses (RFC 8200 8.1); other types get the same
  // layout but the pseudo-header keeps the IPv6 destination.
  PacketBuilder& ext_routing(uint8_t type = 0, uint8_t segments_left = 0,
                             std::vector<Ip6> addrs = {});
  // Same offset rule as ip_frag: multiple of 8, non-zero = no L4 header.
  PacketBuilder& ext_fragment(uint16_t offset_bytes, bool more, uint32_t id);

  PacketBuilder& tcp(uint16_t sport, uint16_t dport, uint8_t flags,
                     uint32_t seq = 0, uint32_t ack = 0, uint16_t window = 65535);
  // Raw TCP option bytes; zero-padded (EOL) to a multiple of 4, the data
  // offset follows. More than 40 bytes throw.
  PacketBuilder& tcp_options(Bytes options);
  PacketBuilder& udp(uint16_t sport, uint16_t dport);
  // Echo request (or reply) as ICMP for IPv4, ICMPv6 for IPv6.
  PacketBuilder& icmp_echo(uint16_t id, uint16_t seq, bool reply = false);
  // Any ICMP (IPv4) or ICMPv6 (IPv6) message: type, code, the 4 bytes
  // after the checksum (`rest`, e.g. unused / MTU / pointer), then the
  // payload; e.g. icmp(3, 3).payload(quoted) for a port unreachable.
  PacketBuilder& icmp(uint8_t type, uint8_t code, uint32_t rest = 0);
  // Upper-layer protocol number without a header (raw payload after L3).
  PacketBuilder& l4_proto(uint8_t proto);

  PacketBuilder& payload(Bytes data);
  PacketBuilder& payload(std::string_view text);

  // Cut the finished frame to n bytes (after checksums), for truncation.
  PacketBuilder& truncate(size_t n);

  Bytes build() const;

  // Offsets in the built frame (before truncation), so tests can poke at
  // fields (e.g. corrupt the IHL) without re-deriving the layout.
  size_t l3_offset() const;
  size_t l4_offset() const;  // after IPv4 options / IPv6 extension headers

 private:
  enum class L3 { None, V4, V6 };
  enum class L4 { None, Tcp, Udp, Echo, Icmp };
  struct Ext { uint8_t type; Bytes body; };  // body excludes nexthdr byte

  bool non_first_fragment() const { return frag_off_ != 0; }
  uint8_t l4_number() const;
  Bytes l4_segment() const;  // L4 header + payload, checksum filled in

  Mac src_mac_{0x02, 0, 0, 0, 0, 0x01}, dst_mac_{0x02, 0, 0, 0, 0, 0x02};
  uint16_t ethertype_ = 0;
  std::vector<std::pair<uint16_t, uint16_t>> tags_;  // tpid, tci

  L3 l3_ = L3::None;
  Ip6 src_{}, dst_{};             // IPv4 uses the first 4 bytes
  std::optional<Ip6> final_dst_;  // from a routing header, for the pseudo-header
  Bytes ip_options_;
  uint16_t ip_id_ = 0;
  uint16_t frag_off_ = 0;  // bytes; IPv4 header or IPv6 fragment header
  bool more_frags_ = false, dont_frag_ = false;
  uint8_t ttl_ = 64, tos_ = 0;
  std::vector<Ext> exts_;

  L4 l4_ = L4::None;
  uint8_t raw_proto_ = PROTO_NONE;
  uint16_t sport_ = 0, dport_ = 0, window_ = 0, echo_id_ = 0, echo_seq_ = 0;
  uint8_t icmp_type_ = 0, icmp_code_ = 0;
  uint32_t icmp_rest_ = 0;
  uint32_t seq_ = 0, ack_ = 0;
  uint8_t tcp_flags_ = 0;
  Bytes tcp_options_;
  bool echo_reply_ = false;
  Bytes payload_;
  std::optional<size_t> truncate_;
};

// ---- checking frames -----------------------------------------------------

// Offset of the L3 header after Ethernet and any number of 802.1Q/802.1ad
// tags; nullopt if the frame is too short.
std::optional<size_t> l3_offset(const Bytes& frame);

// Header checksum of the IPv4 header at l3off (false if not IPv4 / short).
bool ipv4_checksum_ok(const Bytes& frame, size_t l3off);

// L4 checksum (TCP, UDP, ICMP, ICMPv6) of the IP packet at l3off, walking
// IPv6 extension headers. The L4 length comes from the IP length fields, so
// a frame with Ethernet padding still verifies. False for anything it
// cannot verify: truncated, unknown protocol, non-first fragment. A zero
// UDP-over-IPv4 checksum means "none" (RFC 768) and is accepted.
bool l4_checksum_ok(const Bytes& frame, size_t l3off);

}  // namespace sluice::test
