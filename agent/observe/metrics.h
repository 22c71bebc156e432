// Prometheus metrics: a snapshot of what the agent exports, its text
// exposition (format 0.0.4), and a small HTTP/1.1 server for GET /metrics
// on its own thread (plain sockets; one request per connection).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/cidr.h"
#include "common/fd.h"
#include "common/result.h"

namespace sluice {

struct MetricsSnapshot {
  struct Slot {  // one sluice_counters slot, summed over CPUs
    uint32_t dir = 0, reason = 0;
    uint64_t packets = 0, bytes = 0;
  };
  std::vector<Slot> counters;  // every slot, zeros included
  std::vector<std::pair<std::string, uint64_t>> events_received;  // by type
  uint64_t events_lost_ringbuf = 0, events_lost_subscribers = 0;
  // (verdict name, direction name) -> policy verdict events
  std::vector<std::tuple<std::string, std::string, uint64_t>> verdicts;
  uint64_t translations = 0;
  uint64_t conntrack_entries = 0;
  struct MapFill {
    std::string name;
    uint64_t entries = 0, capacity = 0;
  };
  std::vector<MapFill> maps;
  double last_sync_unix = 0;  // 0: never
  uint64_t errors = 0;
  std::vector<std::pair<std::string, int>> restore;  // component -> 1 ok/0
};

// Text exposition format 0.0.4 with HELP and TYPE lines.
std::string prometheus_text(const MetricsSnapshot& s);

// Entries (by walking the keys) and max_entries of a hash/LRU/LPM map.
Result<std::pair<uint64_t, uint64_t>> map_fill(int fd);

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  // Binds and listens (SO_REUSEADDR), then serves on its own thread.
  static Result<std::unique_ptr<MetricsServer>> start(const IpAddr& ip,
                                                      uint16_t port,
                                                      Render render);
  ~MetricsServer();
  uint16_t port() const { return port_; }  // the bound port (0 -> chosen)

 private:
  MetricsServer() = default;
  void serve();
  void handle(int fd);
  UniqueFd listen_, stop_;
  uint16_t port_ = 0;
  Render render_;
  std::thread thread_;
};

}  // namespace sluice
