#include "packet.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace sluice::test {
namespace {

void put16(Bytes& b, uint16_t v) {
  b.push_back(v >> 8);
  b.push_back(v & 0xff);
}

void put32(Bytes& b, uint32_t v) {
  put16(b, v >> 16);
  put16(b, v & 0xffff);
}

void set16(Bytes& b, size_t off, uint16_t v) {
  b[off] = v >> 8;
  b[off + 1] = v & 0xff;
}

uint16_t get16(const Bytes& b, size_t off) { return b[off] << 8 | b[off + 1]; }

template <size_t N>
void append(Bytes& b, const std::array<uint8_t, N>& a, size_t n = N) {
  b.insert(b.end(), a.begin(), a.begin() + n);
}

// Sum of the IPv4/IPv6 pseudo-header for an upper-layer segment of `len`
// bytes (RFC 793 / RFC 8200 8.1).
uint32_t pseudo_sum(bool v6, const uint8_t* src, const uint8_t* dst,
                    uint8_t proto, uint32_t len) {
  Bytes p;
  size_t alen = v6 ? 16 : 4;
  p.insert(p.end(), src, src + alen);
  p.insert(p.end(), dst, dst + alen);
  if (v6) {
    put32(p, len);
    put32(p, proto);  // 3 zero bytes, then next header
  } else {
    p.push_back(0);
    p.push_back(proto);
    put16(p, len);
  }
  return csum_partial(p.data(), p.size());
}

// Option TLVs padded with Pad1/PadN so that nexthdr + hdrlen + options is
// a multiple of 8 (RFC 8200 4.2). Returns the body after the nexthdr byte.
Bytes tlv_ext_body(Bytes options) {
  size_t total = (2 + options.size() + 7) / 8 * 8;
  size_t pad = total - 2 - options.size();
  if (pad == 1) {
    options.push_back(0);  // Pad1
  } else if (pad >= 2) {
    options.push_back(1);  // PadN
    options.push_back(pad - 2);
    options.insert(options.end(), pad - 2, 0);
  }
  Bytes body{static_cast<uint8_t>(total / 8 - 1)};
  body.insert(body.end(), options.begin(), options.end());
  return body;
}

uint16_t check_frag_offset(uint16_t offset_bytes) {
  if (offset_bytes % 8)
    throw std::invalid_argument("fragment offset must be a multiple of 8");
  return offset_bytes;
}

}  // namespace

// ---- addresses -----------------------------------------------------------

Ip4 ipv4_addr(std::string_view text) {
  Ip4 a;
  if (inet_pton(AF_INET, std::string(text).c_str(), a.data()) != 1)
    throw std::invalid_argument("bad IPv4 address: " + std::string(text));
  return a;
}

Ip6 ipv6_addr(std::string_view text) {
  Ip6 a;
  if (inet_pton(AF_INET6, std::string(text).c_str(), a.data()) != 1)
    throw std::invalid_argument("bad IPv6 address: " + std::string(text));
  return a;
}

Mac mac_addr(std::string_view text) {
  Mac m;
  char tail;
  if (std::sscanf(std::string(text).c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx%c",
                  &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &tail) != 6)
    throw std::invalid_argument("bad MAC address: " + std::string(text));
  return m;
}

namespace {
template <class Addr, class Parse>
std::pair<Addr, uint32_t> parse_cidr(std::string_view text, uint32_t maxlen,
                                     Parse parse) {
  auto slash = text.find('/');
  Addr a = parse(text.substr(0, slash));
  if (slash == std::string_view::npos) return {a, maxlen};
  uint32_t len = 0;
  auto lenstr = text.substr(slash + 1);
  auto [end, ec] = std::from_chars(lenstr.data(), lenstr.data() + lenstr.size(), len);
  if (ec != std::errc() || end != lenstr.data() + lenstr.size() || len > maxlen ||
      lenstr.empty())
    throw std::invalid_argument("bad prefix length: " + std::string(text));
  return {a, len};
}
}  // namespace

Cidr4 ipv4_cidr(std::string_view text) {
  auto [a, len] = parse_cidr<Ip4>(text, 32, ipv4_addr);
  return {a, len};
}

Cidr6 ipv6_cidr(std::string_view text) {
  auto [a, len] = parse_cidr<Ip6>(text, 128, ipv6_addr);
  return {a, len};
}

// ---- checksums -----------------------------------------------------------

uint16_t csum_partial(const uint8_t* data, size_t len, uint32_t initial) {
  uint64_t sum = initial;
  for (size_t i = 0; i + 1 < len; i += 2) sum += data[i] << 8 | data[i + 1];
  if (len % 2) sum += data[len - 1] << 8;  // odd byte: pad with zero
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

uint16_t inet_checksum(const uint8_t* data, size_t len, uint32_t initial) {
  return ~csum_partial(data, len, initial) & 0xffff;
}

// ---- builder -------------------------------------------------------------

PacketBuilder& PacketBuilder::eth(const Mac& src, const Mac& dst, uint16_t type) {
  src_mac_ = src;
  dst_mac_ = dst;
  ethertype_ = type;
  return *this;
}

PacketBuilder& PacketBuilder::ethertype(uint16_t type) {
  ethertype_ = type;
  return *this;
}

PacketBuilder& PacketBuilder::vlan(uint16_t vid, uint8_t pcp) {
  tags_.push_back({ETHERTYPE_8021Q, static_cast<uint16_t>(pcp << 13 | (vid & 0xfff))});
  return *this;
}

PacketBuilder& PacketBuilder::vlan_ad(uint16_t vid, uint8_t pcp) {
  tags_.push_back({ETHERTYPE_8021AD, static_cast<uint16_t>(pcp << 13 | (vid & 0xfff))});
  return *this;
}

PacketBuilder& PacketBuilder::ipv4(std::string_view src, std::string_view dst) {
  return ipv4(ipv4_addr(src), ipv4_addr(dst));
}

PacketBuilder& PacketBuilder::ipv4(const Ip4& src, const Ip4& dst) {
  l3_ = L3::V4;
  src_ = dst_ = {};
  std::copy(src.begin(), src.end(), src_.begin());
  std::copy(dst.begin(), dst.end(), dst_.begin());
  return *this;
}

PacketBuilder& PacketBuilder::ip_options(Bytes options) {
  if (options.size() > 40) throw std::invalid_argument("IPv4 options > 40 bytes");
  options.resize((options.size() + 3) / 4 * 4, 0);  // EOL padding
  ip_options_ = std::move(options);
  return *this;
}

PacketBuilder& PacketBuilder::ip_id(uint16_t id) {
  ip_id_ = id;
  return *this;
}

PacketBuilder& PacketBuilder::ip_frag(uint16_t offset_bytes, bool more, bool dont_frag) {
  frag_off_ = check_frag_offset(offset_bytes);
  more_frags_ = more;
  dont_frag_ = dont_frag;
  return *this;
}

PacketBuilder& PacketBuilder::ttl(uint8_t ttl) {
  ttl_ = ttl;
  return *this;
}

PacketBuilder& PacketBuilder::tos(uint8_t tos) {
  tos_ = tos;
  return *this;
}

PacketBuilder& PacketBuilder::ipv6(std::string_view src, std::string_view dst) {
  return ipv6(ipv6_addr(src), ipv6_addr(dst));
}

PacketBuilder& PacketBuilder::ipv6(const Ip6& src, const Ip6& dst) {
  l3_ = L3::V6;
  src_ = src;
  dst_ = dst;
  return *this;
}

PacketBuilder& PacketBuilder::ext_hop_by_hop(Bytes options) {
  exts_.push_back({PROTO_HOPOPTS, tlv_ext_body(std::move(options))});
  return *this;
}

PacketBuilder& PacketBuilder::ext_dest_opts(Bytes options) {
  exts_.push_back({PROTO_DSTOPTS, tlv_ext_body(std::move(options))});
  return *this;
}

PacketBuilder& PacketBuilder::ext_routing(uint8_t type, uint8_t segments_left,
                                          std::vector<Ip6> addrs) {
  // hdrlen counts 8-byte units after the first 8: two per address.
  Bytes body{static_cast<uint8_t>(2 * addrs.size()), type, segments_left, 0, 0, 0, 0};
  for (const auto& a : addrs) append(body, a);
  exts_.push_back({PROTO_ROUTING, std::move(body)});
  if ((type == 0 || type == 2) && segments_left > 0 && !addrs.empty())
    final_dst_ = addrs.back();
  return *this;
}

PacketBuilder& PacketBuilder::ext_fragment(uint16_t offset_bytes, bool more, uint32_t id) {
  // The 13-bit offset in 8-byte units sits above 3 flag bits, so the field
  // is simply offset_bytes | M.
  frag_off_ = check_frag_offset(offset_bytes);
  Bytes body{0};  // reserved
  put16(body, frag_off_ | (more ? 1 : 0));
  put32(body, id);
  exts_.push_back({PROTO_FRAGMENT, std::move(body)});
  return *this;
}

PacketBuilder& PacketBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags,
                                  uint32_t seq, uint32_t ack, uint16_t window) {
  l4_ = L4::Tcp;
  sport_ = sport;
  dport_ = dport;
  tcp_flags_ = flags;
  seq_ = seq;
  ack_ = ack;
  window_ = window;
  return *this;
}

PacketBuilder& PacketBuilder::tcp_options(Bytes options) {
  if (options.size() > 40) throw std::invalid_argument("TCP options > 40 bytes");
  options.resize((options.size() + 3) / 4 * 4, 0);  // EOL padding
  tcp_options_ = std::move(options);
  return *this;
}

PacketBuilder& PacketBuilder::udp(uint16_t sport, uint16_t dport) {
  l4_ = L4::Udp;
  sport_ = sport;
  dport_ = dport;
  return *this;
}

PacketBuilder& PacketBuilder::icmp_echo(uint16_t id, uint16_t seq, bool reply) {
  l4_ = L4::Echo;
  echo_id_ = id;
  echo_seq_ = seq;
  echo_reply_ = reply;
  return *this;
}

PacketBuilder& PacketBuilder::icmp(uint8_t type, uint8_t code, uint32_t rest) {
  l4_ = L4::Icmp;
  icmp_type_ = type;
  icmp_code_ = code;
  icmp_rest_ = rest;
  return *this;
}

PacketBuilder& PacketBuilder::l4_proto(uint8_t proto) {
  l4_ = L4::None;
  raw_proto_ = proto;
  return *this;
}

PacketBuilder& PacketBuilder::payload(Bytes data) {
  payload_ = std::move(data);
  return *this;
}

PacketBuilder& PacketBuilder::payload(std::string_view text) {
  return payload(Bytes(text.begin(), text.end()));
}

PacketBuilder& PacketBuilder::truncate(size_t n) {
  truncate_ = n;
  return *this;
}

uint8_t PacketBuilder::l4_number() const {
  switch (l4_) {
    case L4::Tcp: return PROTO_TCP;
    case L4::Udp: return PROTO_UDP;
    case L4::Echo:
    case L4::Icmp: return l3_ == L3::V6 ? PROTO_ICMPV6 : PROTO_ICMP;
    case L4::None: break;
  }
  return raw_proto_;
}

size_t PacketBuilder::l3_offset() const { return 14 + 4 * tags_.size(); }

size_t PacketBuilder::l4_offset() const {
  size_t off = l3_offset();
  if (l3_ == L3::V4) off += 20 + ip_options_.size();
  if (l3_ == L3::V6) {
    off += 40;
    for (const auto& e : exts_) off += 1 + e.body.size();
  }
  return off;
}

Bytes PacketBuilder::l4_segment() const {
  Bytes s;
  size_t csum_at = 0;
  bool pseudo = true;
  // A non-first fragment has no L4 header: its bytes are the middle of the
  // upper-layer segment. The first fragment's checksum covers only the
  // bytes present, as if the datagram ended here.
  L4 kind = non_first_fragment() ? L4::None : l4_;
  switch (kind) {
    case L4::Tcp:
      put16(s, sport_);
      put16(s, dport_);
      put32(s, seq_);
      put32(s, ack_);
      s.push_back((5 + tcp_options_.size() / 4) << 4);  // data offset
      s.push_back(tcp_flags_);
      put16(s, window_);
      put16(s, 0);  // checksum
      put16(s, 0);  // urgent pointer
      s.insert(s.end(), tcp_options_.begin(), tcp_options_.end());
      csum_at = 16;
      break;
    case L4::Udp:
      put16(s, sport_);
      put16(s, dport_);
      put16(s, 8 + payload_.size());
      put16(s, 0);
      csum_at = 6;
      break;
    case L4::Echo:
      if (l3_ == L3::V6) {
        s.push_back(echo_reply_ ? 129 : 128);
      } else {
        s.push_back(echo_reply_ ? 0 : 8);
        pseudo = false;  // ICMPv4 sums only its own bytes
      }
      s.push_back(0);  // code
      put16(s, 0);
      put16(s, echo_id_);
      put16(s, echo_seq_);
      csum_at = 2;
      break;
    case L4::Icmp:
      s.push_back(icmp_type_);
      s.push_back(icmp_code_);
      put16(s, 0);
      put32(s, icmp_rest_);
      csum_at = 2;
      pseudo = l3_ == L3::V6;  // ICMPv4 sums only its own bytes
      break;
    case L4::None:
      return payload_;
  }
  s.insert(s.end(), payload_.begin(), payload_.end());

  uint32_t init = 0;
  if (pseudo) {
    bool v6 = l3_ == L3::V6;
    const Ip6& dst = v6 && final_dst_ ? *final_dst_ : dst_;
    init = pseudo_sum(v6, src_.data(), dst.data(), l4_number(), s.size());
  }
  uint16_t c = inet_checksum(s.data(), s.size(), init);
  if (c == 0 && kind == L4::Udp) c = 0xffff;  // 0 means "no checksum" in UDP
  set16(s, csum_at, c);
  return s;
}

Bytes PacketBuilder::build() const {
  if (l3_ == L3::None && l4_ != L4::None)
    throw std::logic_error("L4 header without an IP header");
  if (l3_ != L3::V6 && !exts_.empty())
    throw std::logic_error("IPv6 extension headers without ipv6()");

  Bytes f;
  append(f, dst_mac_);
  append(f, src_mac_);
  for (auto [tpid, tci] : tags_) {
    put16(f, tpid);
    put16(f, tci);
  }
  uint16_t type = ethertype_;
  if (!type) type = l3_ == L3::V6 ? ETHERTYPE_IPV6 : l3_ == L3::V4 ? ETHERTYPE_IPV4 : 0;
  put16(f, type);

  Bytes l4 = l3_ == L3::None ? payload_ : l4_segment();
  if (l3_ == L3::V4) {
    size_t l3 = f.size();
    size_t hlen = 20 + ip_options_.size();
    f.push_back(0x40 | hlen / 4);
    f.push_back(tos_);
    put16(f, hlen + l4.size());
    put16(f, ip_id_);
    put16(f, (dont_frag_ ? 0x4000 : 0) | (more_frags_ ? 0x2000 : 0) | frag_off_ / 8);
    f.push_back(ttl_);
    f.push_back(l4_number());
    put16(f, 0);
    append(f, src_, 4);
    append(f, dst_, 4);
    f.insert(f.end(), ip_options_.begin(), ip_options_.end());
    set16(f, l3 + 10, inet_checksum(&f[l3], hlen));
  } else if (l3_ == L3::V6) {
    size_t ext_len = 0;
    for (const auto& e : exts_) ext_len += 1 + e.body.size();
    put32(f, 6u << 28 | uint32_t(tos_) << 20);  // version, traffic class, flow 0
    put16(f, ext_len + l4.size());
    f.push_back(exts_.empty() ? l4_number() : exts_.front().type);
    f.push_back(ttl_);
    append(f, src_);
    append(f, dst_);
    for (size_t i = 0; i < exts_.size(); i++) {
      f.push_back(i + 1 < exts_.size() ? exts_[i + 1].type : l4_number());
      f.insert(f.end(), exts_[i].body.begin(), exts_[i].body.end());
    }
  }
  f.insert(f.end(), l4.begin(), l4.end());
  if (truncate_ && *truncate_ < f.size()) f.resize(*truncate_);
  return f;
}

// ---- checking frames -----------------------------------------------------

std::optional<size_t> l3_offset(const Bytes& frame) {
  size_t off = 12;
  for (;;) {
    if (frame.size() < off + 2) return std::nullopt;
    uint16_t type = get16(frame, off);
    if (type != ETHERTYPE_8021Q && type != ETHERTYPE_8021AD) return off + 2;
    off += 4;
  }
}

bool ipv4_checksum_ok(const Bytes& frame, size_t l3off) {
  if (frame.size() < l3off + 20 || frame[l3off] >> 4 != 4) return false;
  size_t hlen = (frame[l3off] & 0xf) * 4;
  if (hlen < 20 || frame.size() < l3off + hlen) return false;
  return inet_checksum(&frame[l3off], hlen) == 0;
}

bool l4_checksum_ok(const Bytes& frame, size_t l3off) {
  if (frame.size() < l3off + 1) return false;
  bool v6 = frame[l3off] >> 4 == 6;
  const uint8_t* src;
  const uint8_t* dst;
  uint8_t proto;
  size_t l4off, l4len;

  if (!v6) {
    if (!ipv4_checksum_ok(frame, l3off)) return false;
    size_t hlen = (frame[l3off] & 0xf) * 4;
    size_t tot = get16(frame, l3off + 2);
    if ((get16(frame, l3off + 6) & 0x1fff) != 0 || tot < hlen) return false;
    proto = frame[l3off + 9];
    src = &frame[l3off + 12];
    dst = &frame[l3off + 16];
    l4off = l3off + hlen;
    l4len = tot - hlen;
  } else {
    if (frame.size() < l3off + 40) return false;
    size_t end = l3off + 40 + get16(frame, l3off + 4);
    proto = frame[l3off + 6];
    src = &frame[l3off + 8];
    dst = &frame[l3off + 24];
    l4off = l3off + 40;
    // Walk the extension headers; the pseudo-header wants the final upper
    // layer's length and, with a routing header, the final destination.
    for (int n = 0; n < 16; n++) {
      if (proto != PROTO_HOPOPTS && proto != PROTO_ROUTING &&
          proto != PROTO_DSTOPTS && proto != PROTO_FRAGMENT)
        break;
      if (frame.size() < l4off + 8) return false;
      size_t len = proto == PROTO_FRAGMENT ? 8 : (frame[l4off + 1] + 1) * 8;
      if (frame.size() < l4off + len) return false;
      if (proto == PROTO_FRAGMENT && (get16(frame, l4off + 2) & 0xfff8)) return false;
      uint8_t rtype = frame[l4off + 2];
      if (proto == PROTO_ROUTING && (rtype == 0 || rtype == 2) &&
          frame[l4off + 3] > 0 && frame[l4off + 1] >= 2)
        dst = &frame[l4off + len - 16];  // last listed address
      proto = frame[l4off];
      l4off += len;
    }
    if (end < l4off) return false;
    l4len = end - l4off;
  }
  if (frame.size() < l4off + l4len) return false;

  size_t csum_at;
  switch (proto) {
    case PROTO_TCP: csum_at = 16; if (l4len < 20) return false; break;
    case PROTO_UDP: csum_at = 6; if (l4len < 8) return false; break;
    case PROTO_ICMP: if (v6) return false; csum_at = 2; if (l4len < 8) return false; break;
    case PROTO_ICMPV6: if (!v6) return false; csum_at = 2; if (l4len < 8) return false; break;
    default: return false;
  }
  uint16_t field = get16(frame, l4off + csum_at);
  if (proto == PROTO_UDP && field == 0) return !v6;  // optional only for IPv4
  uint32_t init = proto == PROTO_ICMP ? 0 : pseudo_sum(v6, src, dst, proto, l4len);
  return inet_checksum(&frame[l4off], l4len, init) == 0;
}

}  // namespace sluice::test
