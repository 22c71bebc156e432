#include "observe/event_reader.h"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "datapath/counters.h"

namespace sluice {

EventReader::~EventReader() { stop(); }

int EventReader::on_event(void* ctx, void* data, size_t size) {
  auto* self = static_cast<EventReader*>(ctx);
  if (size < sizeof(sluice_event)) return 0;
  sluice_event ev;
  std::memcpy(&ev, data, sizeof(ev));
  self->received_++;
  spdlog::debug("event: drop reason={} ifindex={} len={}",
                drop_reason_name(ev.reason), ev.ifindex, ev.pkt_len);
  std::lock_guard g(self->mu_);
  self->history_.push_back(ev);
  if (self->history_.size() > kHistory) self->history_.pop_front();
  return 0;
}

Status EventReader::start() {
  rb_ = ring_buffer__new(fd_, &EventReader::on_event, this, nullptr);
  if (!rb_) return err("map sluice_events: ring buffer: " + errno_str(errno));
  thread_ = std::thread([this] {
    while (!stop_.load()) ring_buffer__poll(rb_, 200);
  });
  return {};
}

void EventReader::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (rb_) ring_buffer__free(rb_);
  rb_ = nullptr;
}

std::vector<sluice_event> EventReader::recent(size_t n) const {
  std::lock_guard g(mu_);
  n = std::min(n, history_.size());
  return {history_.end() - n, history_.end()};
}

}  // namespace sluice
