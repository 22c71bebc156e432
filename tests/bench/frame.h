// A tiny Ethernet + IPv4 + TCP frame builder, enough for benchmarks. It is
// deliberately self-contained (tests/lib has the richer builder the tests
// use); benchmarks only need a valid, checksummed frame with a chosen
// source/destination.
#pragma once

#include <arpa/inet.h>
#include <cstdint>
#include <cstring>
#include <vector>

namespace sluice::bench {

inline uint32_t ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return (uint32_t(a) << 24) | (uint32_t(b) << 16) | (uint32_t(c) << 8) | d;
}

inline uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return static_cast<uint16_t>(~sum);
}

inline uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t(p[i]) << 8) | p[i + 1];
	if (n & 1)
		sum += uint32_t(p[n - 1]) << 8;
	return sum;
}

constexpr uint8_t kTcpSyn = 0x02, kTcpAck = 0x10;
// Offset of the TCP source port in tcp4_frame(): Ethernet 14 + IPv4 20.
constexpr int kTcp4SportOff = 34;

// src/dst are host-order IPv4 addresses. The frame is at least 60 bytes
// (minimum Ethernet frame without FCS); the TCP segment is a SYN unless
// tcp_flags says otherwise.
inline std::vector<uint8_t> tcp4_frame(uint32_t src, uint32_t dst, uint16_t sport,
				       uint16_t dport, size_t payload = 6,
				       uint8_t tcp_flags = kTcpSyn)
{
	const size_t eth = 14, ip = 20, tcp = 20;
	std::vector<uint8_t> f(eth + ip + tcp + payload, 0);
	const uint8_t dmac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
	const uint8_t smac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
	std::memcpy(&f[0], dmac, 6);
	std::memcpy(&f[6], smac, 6);
	f[12] = 0x08, f[13] = 0x00;

	uint8_t *h = &f[eth];
	const uint16_t tot = static_cast<uint16_t>(ip + tcp + payload);
	h[0] = 0x45;
	h[2] = tot >> 8, h[3] = tot & 0xff;
	h[4] = 0x12, h[5] = 0x34; // id
	h[6] = 0x40; // DF
	h[8] = 64; // ttl
	h[9] = 6; // TCP
	const uint32_t s = htonl(src), d = htonl(dst);
	std::memcpy(h + 12, &s, 4);
	std::memcpy(h + 16, &d, 4);
	const uint16_t ipc = csum_fold(csum_add(0, h, ip));
	h[10] = ipc >> 8, h[11] = ipc & 0xff;

	uint8_t *t = h + ip;
	t[0] = sport >> 8, t[1] = sport & 0xff;
	t[2] = dport >> 8, t[3] = dport & 0xff;
	t[7] = 1; // seq
	t[12] = 5 << 4; // data offset
	t[13] = tcp_flags;
	t[14] = 0xff, t[15] = 0xff; // window
	for (size_t i = 0; i < payload; i++)
		t[tcp + i] = static_cast<uint8_t>('a' + i % 26);
	// pseudo header + segment
	uint32_t sum = 0;
	sum = csum_add(sum, h + 12, 8);
	sum += 6 + tcp + payload;
	sum = csum_add(sum, t, tcp + payload);
	const uint16_t tc = csum_fold(sum);
	t[16] = tc >> 8, t[17] = tc & 0xff;
	return f;
}

} // namespace sluice::bench
