// Drains the sluice_events ring buffer on its own thread. Today it counts
// events per type and keeps a bounded history of recent drops for
// `sluicectl status`; flow streaming (`sluicectl observe`) builds on it.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "common/result.h"
#include "sluice/abi.h"

struct ring_buffer;

namespace sluice {

class EventReader {
 public:
  static constexpr size_t kHistory = 1024;

  explicit EventReader(int ringbuf_fd) : fd_(ringbuf_fd) {}
  ~EventReader();
  Status start();
  void stop();

  uint64_t received() const { return received_.load(); }
  std::vector<sluice_event> recent(size_t n) const;

 private:
  static int on_event(void* ctx, void* data, size_t size);
  int fd_;
  ring_buffer* rb_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> received_{0};
  mutable std::mutex mu_;
  std::deque<sluice_event> history_;
};

}  // namespace sluice
