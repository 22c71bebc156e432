// The observer: drains the sluice_events ring buffer on its own thread into
// a bounded history and fans events out to subscribers (`sluicectl
// observe --follow`), each through its own bounded queue.
//
// The reader thread never waits for a subscriber: a full queue drops the
// event for that subscriber only and counts it, and the subscriber is told
// how many it lost (FlowSubscription::next). The datapath never waits for
// the agent either: a full ring buffer skips the record and counts it in
// sluice_counters[SLUICE_COUNTER_EVENTS_LOST] (bpf/lib/events.h), which
// lost_in_datapath() reads.
//
// Events are kept raw (struct sluice_event, 112 bytes): decoding and
// enrichment (pods, labels, services) happen on the subscriber's side
// (observe/flow.h), so the reader thread only copies.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/result.h"
#include "sluice/abi.h"

struct ring_buffer;

namespace sluice {

class FlowSubscription {
 public:
  explicit FlowSubscription(size_t capacity) : cap_(capacity) {}
  // Waits up to `timeout` for events; moves the queued ones into `out`
  // (appending) and returns how many were lost since the previous call.
  uint64_t next(std::vector<sluice_event>& out,
                std::chrono::milliseconds timeout);
  size_t capacity() const { return cap_; }

 private:
  friend class Observer;
  // Returns how many of the n did not fit.
  size_t push(const sluice_event* evs, size_t n);
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<sluice_event> q_;
  size_t cap_;
  uint64_t lost_ = 0;
};

class Observer {
 public:
  struct Options {
    size_t history = 4096;            // events.history
    size_t subscriber_queue = 65536;  // per subscriber
  };

  // counters_fd: sluice_counters, for the datapath-side loss counter; -1
  // in tests that have none.
  Observer(int ringbuf_fd, int counters_fd, Options opt);
  ~Observer();
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  Status start();  // the reader thread
  void stop();

  // Takes events as the reader thread does (tests, the benchmark).
  void ingest(const sluice_event* evs, size_t n);

  uint64_t received() const { return received_.load(); }
  uint64_t received(uint16_t type) const {
    return type < kTypes ? by_type_[type].load() : 0;
  }
  // Policy verdict events by verdict (enum sluice_verdict) and direction.
  uint64_t verdicts(uint8_t verdict, uint8_t dir) const {
    return verdict < kVerdicts && dir < SLUICE_DIR_MAX
               ? verdicts_[verdict][dir].load()
               : 0;
  }
  // Events the datapath could not emit (ring buffer full), summed over
  // CPUs; 0 without a counters map.
  uint64_t lost_in_datapath() const;
  // Events subscribers lost (queue full), over all subscribers ever.
  uint64_t lost_by_subscribers() const { return sub_lost_.load(); }
  size_t history_capacity() const { return hist_.size(); }

  // The newest n events, oldest first.
  std::vector<sluice_event> recent(size_t n) const;
  // Atomically: a copy of the whole history (oldest first) into *history,
  // and a subscription to every event after it (no gap, no duplicate).
  std::shared_ptr<FlowSubscription> subscribe(
      std::vector<sluice_event>* history);
  void unsubscribe(const std::shared_ptr<FlowSubscription>& s);
  size_t subscribers() const;

 private:
  static constexpr uint16_t kTypes = 8;
  static constexpr uint8_t kVerdicts = 8;
  static int on_event(void* ctx, void* data, size_t size);
  void copy_history(size_t n, std::vector<sluice_event>* out) const;

  int fd_, counters_fd_;
  Options opt_;
  ring_buffer* rb_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> by_type_[kTypes] = {};
  std::atomic<uint64_t> verdicts_[kVerdicts][SLUICE_DIR_MAX] = {};
  std::atomic<uint64_t> sub_lost_{0};
  std::vector<sluice_event> batch_;  // reader thread only

  mutable std::mutex mu_;  // history and subscribers
  std::vector<sluice_event> hist_;
  size_t hist_head_ = 0, hist_len_ = 0;
  std::vector<std::shared_ptr<FlowSubscription>> subs_;
};

}  // namespace sluice
