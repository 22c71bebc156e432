// Reading and flushing the sluice_ct table from the agent.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "sluice/abi.h"

namespace sluice {

struct CtRow {
  // The tuple as the initiator sent it (saddr/sport = initiator). The map
  // key itself is canonical (either orientation, see sluice_ct_key);
  // ct_dump turns it around when SLUICE_CT_KEY_SWAPPED says so.
  sluice_ct_key key;
  sluice_ct_value value;  // ends[0] = initiator, ends[1] = responder
};

// The map key of a connection, given the tuple as its initiator sent it;
// *swapped (optional) gets whether the key is the reverse tuple.
sluice_ct_key ct_map_key(const sluice_ct_key& initiator, bool* swapped = nullptr);

// Up to `limit` entries, and the total count.
Result<std::vector<CtRow>> ct_dump(int ct_fd, size_t limit, uint64_t* total);

// Deletes every entry. With epoch_fd (sluice_ep_epoch), then
// ct_entries_deleted when any was deleted.
Result<uint64_t> ct_flush(int ct_fd, int epoch_fd = -1);

// Tells the datapath that conntrack entries were deleted: increments
// sluice_ep_epoch (`epoch_fd`), which invalidates every slot of the flow
// cache (bpf/lib/flowcache.h) on every CPU at once, so a deleted
// connection's next packet is looked up in conntrack (a miss: decided by
// policy again) instead of being delivered from a slot. Without it a slot
// would still expire within a jiffy (each flow re-checks its entry once a
// jiffy); the bump makes the deletion take effect for the very next packet.
// The price: every remaining entry re-resolves its ends once on its next
// packet (as after an endpoint change; two endpoint lookups). ct_flush and
// ct_gc call it when given epoch_fd and they deleted something.
Status ct_entries_deleted(int epoch_fd);

// Tells the datapath that endpoints changed: increments sluice_ep_epoch
// (`epoch_fd`). Established connections deliver from the endpoints stored
// in their conntrack entry while the entry's epoch is current; after a
// bump each entry resolves its ends again on its next packet (one endpoint
// lookup per end), and a connection whose end is gone or now another pod is
// decided by policy again instead of being delivered to a stale target.
// Call it after deleting an endpoint from sluice_ep_if/sluice_ep_ip (CNI
// DEL, or restore dropping one) and after re-publishing an endpoint whose
// ifindex, addresses or MACs changed; not for label/identity/policy
// changes (those must not touch established connections).
Status ct_endpoints_changed(int epoch_fd);

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

// Deletes entries idle longer than their timeout, and entries with an end
// whose host veth no longer exists in this network namespace (a deleted
// endpoint: without an epoch bump, see ct_endpoints_changed, such an entry
// would keep delivering its connection's packets to a vanished device);
// returns how many. A service entry (SLUICE_CT_SVC) goes with its
// connection entry, or once idle past the unreplied timeout without one.
// The walk reads every key first and counts each once. With conns_fd (sluice_lb_conns), every backend's count
// of open (not closing) service connections is rewritten from the table.
// With epoch_fd (sluice_ep_epoch): ct_entries_deleted when any was deleted.
Result<uint64_t> ct_gc(int ct_fd, uint64_t now_jiffies, uint64_t hz,
                       const CtTimeouts& t = {}, int conns_fd = -1,
                       int epoch_fd = -1);

// The map key of the connection entry a service entry translates to.
sluice_ct_key ct_svc_connection_key(const sluice_ct_key& svc_key,
                                    const sluice_ct_value& svc_value);

std::string ct_endpoint_str(const sluice_ct_key& k, bool src);
const char* ct_proto_name(uint8_t proto);

}  // namespace sluice
