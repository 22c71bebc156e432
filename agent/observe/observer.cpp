#include "observe/observer.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

namespace sluice {

uint64_t FlowSubscription::next(std::vector<sluice_event>& out,
                                std::chrono::milliseconds timeout) {
  std::unique_lock l(mu_);
  if (q_.empty() && !lost_) cv_.wait_for(l, timeout);
  out.insert(out.end(), q_.begin(), q_.end());
  q_.clear();
  return std::exchange(lost_, 0);
}

size_t FlowSubscription::push(const sluice_event* evs, size_t n) {
  size_t lost = 0;
  {
    std::lock_guard g(mu_);
    const size_t room = cap_ > q_.size() ? cap_ - q_.size() : 0;
    const size_t take = std::min(room, n);
    q_.insert(q_.end(), evs, evs + take);
    lost = n - take;
    lost_ += lost;
  }
  cv_.notify_one();
  return lost;
}

Observer::Observer(int ringbuf_fd, int counters_fd, Options opt)
    : fd_(ringbuf_fd), counters_fd_(counters_fd), opt_(opt) {
  hist_.resize(opt_.history);
  batch_.reserve(4096);
}

Observer::~Observer() { stop(); }

int Observer::on_event(void* ctx, void* data, size_t size) {
  auto* self = static_cast<Observer*>(ctx);
  sluice_event ev{};
  // An older program's shorter record still decodes (zero tail).
  std::memcpy(&ev, data, std::min(size, sizeof(ev)));
  self->batch_.push_back(ev);
  // Hand over in bounded batches so a long drain does not hold events
  // back from subscribers (and bounds the batch's memory).
  if (self->batch_.size() >= 4096) {
    self->ingest(self->batch_.data(), self->batch_.size());
    self->batch_.clear();
  }
  return 0;
}

Status Observer::start() {
  rb_ = ring_buffer__new(fd_, &Observer::on_event, this, nullptr);
  if (!rb_) return err("map sluice_events: ring buffer: " + errno_str(errno));
  thread_ = std::thread([this] {
    // The kernel wakes a sleeping reader through irq_work, and only when
    // the reader had caught up: under a burst the ring can fill before
    // that wakeup is served. So while events flow, the reader does not
    // rely on it: it keeps draining until the ring has been empty for
    // kSpin, and sleeps with a short timeout (kBusyPoll) for a second
    // after the last event; idle, it sleeps until woken (or 100 ms).
    using Clock = std::chrono::steady_clock;
    constexpr auto kSpin = std::chrono::microseconds(200);
    constexpr auto kBusy = std::chrono::seconds(1);
    constexpr int kBusyPollMs = 1;
    auto last_event = Clock::now() - kBusy;
    auto flush = [this] {
      if (batch_.empty()) return;
      ingest(batch_.data(), batch_.size());
      batch_.clear();
    };
    while (!stop_.load()) {
      const bool busy = Clock::now() - last_event < kBusy;
      const int n = ring_buffer__poll(rb_, busy ? kBusyPollMs : 100);
      if (n < 0 && n != -EINTR) {
        spdlog::warn("events: ring buffer poll: {}", errno_str(-n));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      flush();
      if (n <= 0) continue;
      last_event = Clock::now();
      while (!stop_.load()) {
        const int m = ring_buffer__consume(rb_);
        flush();
        const auto now = Clock::now();
        if (m > 0)
          last_event = now;
        else if (now - last_event > kSpin)
          break;
        else
          __builtin_ia32_pause();  // not sched_yield: on a busy CPU a
                                   // yield can cost a whole time slice
      }
    }
  });
  return {};
}

void Observer::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (rb_) ring_buffer__free(rb_);
  rb_ = nullptr;
}

void Observer::ingest(const sluice_event* evs, size_t n) {
  if (!n) return;
  received_.fetch_add(n, std::memory_order_relaxed);
  for (size_t i = 0; i < n; i++) {
    const auto& e = evs[i];
    if (e.type < kTypes)
      by_type_[e.type].fetch_add(1, std::memory_order_relaxed);
    if (e.type == SLUICE_EVENT_POLICY_VERDICT && e.verdict < kVerdicts &&
        e.dir < SLUICE_DIR_MAX)
      verdicts_[e.verdict][e.dir].fetch_add(1, std::memory_order_relaxed);
  }
  std::lock_guard g(mu_);
  const size_t cap = hist_.size();
  if (cap) {
    // Only the newest `cap` of this batch can stay.
    const size_t skip = n > cap ? n - cap : 0;
    for (size_t i = skip; i < n; i++) {
      hist_[(hist_head_ + hist_len_) % cap] = evs[i];
      if (hist_len_ < cap)
        hist_len_++;
      else
        hist_head_ = (hist_head_ + 1) % cap;
    }
  }
  for (auto& s : subs_)
    if (const size_t lost = s->push(evs, n)) sub_lost_.fetch_add(lost);
}

uint64_t Observer::lost_in_datapath() const {
  if (counters_fd_ < 0) return 0;
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return 0;
  std::vector<sluice_counter> v(ncpu);
  uint32_t idx = SLUICE_COUNTER_EVENTS_LOST;
  if (bpf_map_lookup_elem(counters_fd_, &idx, v.data())) return 0;
  uint64_t sum = 0;
  for (const auto& c : v) sum += c.packets;
  return sum;
}

void Observer::copy_history(size_t n, std::vector<sluice_event>* out) const {
  n = std::min(n, hist_len_);
  const size_t cap = hist_.size();
  out->reserve(out->size() + n);
  for (size_t i = hist_len_ - n; i < hist_len_; i++)
    out->push_back(hist_[(hist_head_ + i) % cap]);
}

std::vector<sluice_event> Observer::recent(size_t n) const {
  std::vector<sluice_event> out;
  std::lock_guard g(mu_);
  copy_history(n, &out);
  return out;
}

std::shared_ptr<FlowSubscription> Observer::subscribe(
    std::vector<sluice_event>* history) {
  auto s = std::make_shared<FlowSubscription>(opt_.subscriber_queue);
  std::lock_guard g(mu_);
  if (history) copy_history(hist_len_, history);
  subs_.push_back(s);
  return s;
}

void Observer::unsubscribe(const std::shared_ptr<FlowSubscription>& s) {
  std::lock_guard g(mu_);
  subs_.erase(std::remove(subs_.begin(), subs_.end(), s), subs_.end());
}

size_t Observer::subscribers() const {
  std::lock_guard g(mu_);
  return subs_.size();
}

}  // namespace sluice
