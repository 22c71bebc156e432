// Reading and flushing the sluice_ct table from the agent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "sluice/abi.h"

namespace sluice {

struct CtRow {
  sluice_ct_key key;
  sluice_ct_value value;
};

// Up to `limit` entries, and the total count.
Result<std::vector<CtRow>> ct_dump(int ct_fd, size_t limit, uint64_t* total);
Result<uint64_t> ct_flush(int ct_fd);

// Jiffies now, as the datapath's bpf_jiffies64() sees them, and the
// kernel's HZ: conntrack timestamps are in jiffies.
uint64_t ct_now_jiffies();
uint64_t ct_hz();

// Idle timeouts, in seconds (Linux conntrack's defaults, rounded).
struct CtTimeouts {
  uint64_t tcp_established = 6 * 3600;
  uint64_t tcp_closing = 10;   // FIN or RST seen
  uint64_t unreplied = 60;     // no reply seen yet (SYN, first datagram)
  uint64_t other = 60;         // UDP, SCTP, ICMP with replies
};

// Deletes entries idle longer than their timeout; returns how many.
Result<uint64_t> ct_gc(int ct_fd, uint64_t now_jiffies, uint64_t hz,
                       const CtTimeouts& t = {});

std::string ct_endpoint_str(const sluice_ct_key& k, bool src);
const char* ct_proto_name(uint8_t proto);

}  // namespace sluice
