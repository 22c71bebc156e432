// A private network namespace for the calling thread with one node device
// set up for XDP forwarding: np0 (198.18.0.2/24, 2001:db8::2/64) with its
// veth peer np1, forwarding on, routes to the other node's pods
// (10.201.0.0/16 via 198.18.0.3, fd10:201::/64 via 2001:db8::3) and
// permanent neighbours for that node and the client (198.18.0.1,
// 2001:db8::1). bpf_fib_lookup in a BPF_PROG_TEST_RUN with ingress np0 then
// sees exactly this. Used by the BPF tests and the benchmarks.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace sluice::test {

struct FwdNetns {
  uint32_t ifindex = 0;             // np0
  std::array<uint8_t, 6> mac{};     // np0's
  static constexpr std::array<uint8_t, 6> kPeerMac{0x02, 0, 0, 0, 0, 0x03};
  static constexpr std::array<uint8_t, 6> kClientMac{0x02, 0, 0, 0, 0, 0x01};
};

// Moves the calling thread into a new network namespace and builds the
// topology. Returns an error message, or "" and *out. The namespace goes
// away when the thread leaves it (leave_netns) and nothing else holds it.
std::string enter_fwd_netns(FwdNetns* out);

// Opens the calling thread's current netns (to come back to), -1 on error.
int current_netns_fd();
// Returns the thread to the namespace of fd and closes fd. 0 or -errno.
int leave_netns(int fd);

}  // namespace sluice::test
