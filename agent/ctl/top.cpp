// sluicectl top: a refreshing view of the busiest flows and endpoints.
// It follows the Observe stream (every event type the agent emits at its
// events.level) and polls Status for the datapath's packet counters, and
// every interval prints rates over that interval: counters per direction
// and reason, then flows and endpoints ranked by events/s.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "ctl/format.h"
#include "sluice.grpc.pb.h"

namespace sluice::ctl {
namespace {

struct Tally {
  uint64_t events = 0, bytes = 0;
  std::string last;  // last verdict / reason
};

std::string flow_key(const v1::FlowEvent& f) {
  auto end = [](const std::string& pod, const std::string& ip, uint32_t port) {
    std::string s = pod.empty() ? (ip.empty() ? "-" : ip) : pod;
    if (port) s += ":" + std::to_string(port);
    return s;
  };
  if (f.src_ip().empty())
    return "(on " + (f.interface_pod().empty() ? std::to_string(f.ifindex())
                                               : f.interface_pod()) +
           ")";
  return end(f.src_pod(), f.src_ip(), 0) + " -> " +
         end(f.dst_pod(), f.dst_ip(), f.dst_port()) + " " + f.protocol();
}

void table(std::ostringstream& o, const char* title,
           const std::map<std::string, Tally>& m, double secs, uint32_t rows) {
  std::vector<std::pair<std::string, Tally>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second.events > b.second.events;
  });
  o << title << "\n"
    << std::left << std::setw(60) << "  NAME" << std::right << std::setw(12)
    << "EVENTS/S" << std::setw(12) << "BYTES/S" << "  LAST\n";
  if (v.empty()) o << "  (no events)\n";
  for (size_t i = 0; i < v.size() && i < rows; i++)
    o << "  " << std::left << std::setw(58) << v[i].first << std::right
      << std::setw(12) << std::fixed << std::setprecision(1)
      << v[i].second.events / secs << std::setw(12)
      << v[i].second.bytes / secs << "  " << v[i].second.last << "\n";
}

}  // namespace

int run_top(const std::string& socket, double interval, uint32_t iterations,
            uint32_t rows) {
  auto ch = grpc::CreateChannel("unix:" + socket,
                                grpc::InsecureChannelCredentials());
  auto stub = v1::Agent::NewStub(ch);
  std::mutex mu;
  std::map<std::string, Tally> flows, endpoints;
  uint64_t lost = 0;
  grpc::ClientContext sctx;
  v1::ObserveRequest q;
  q.set_follow(true);
  std::string stream_err;
  std::thread reader([&] {
    auto r = stub->Observe(&sctx, q);
    v1::FlowEvent f;
    while (r->Read(&f)) {
      std::lock_guard g(mu);
      if (f.type() == "lost") {
        lost += f.lost();
        continue;
      }
      const std::string what =
          f.drop_reason().empty() ? f.type() + " " + f.verdict() : f.drop_reason();
      auto& t = flows[flow_key(f)];
      t.events++;
      t.bytes += f.pkt_len();
      t.last = what;
      for (const auto& p : {f.src_pod(), f.dst_pod(), f.interface_pod()}) {
        if (p.empty()) continue;
        auto& e = endpoints[p];
        e.events++;
        e.bytes += f.pkt_len();
        e.last = what;
      }
    }
    auto s = r->Finish();
    if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) {
      std::lock_guard g(mu);
      stream_err = s.error_message();
    }
  });

  std::map<std::pair<std::string, std::string>, std::pair<uint64_t, uint64_t>>
      prev;
  bool first = true;
  const bool tty = isatty(STDOUT_FILENO);
  int rc = 0;
  for (uint32_t it = 0; !iterations || it < iterations; it++) {
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    const double secs = std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - t0)
                            .count();
    v1::StatusReply st;
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto s = stub->Status(&c, {}, &st);
    if (!s.ok()) {
      std::cerr << "error: cannot reach the agent at " << socket << ": "
                << s.error_message() << "\n";
      rc = 1;
      break;
    }
    std::ostringstream o;
    if (tty) o << "\033[H\033[2J";
    o << "sluice top: every " << interval << "s, rates over the last "
      << std::fixed << std::setprecision(1) << secs << "s"
      << (first ? " (counters: from the next refresh)" : "") << "\n\n";
    o << std::left << std::setw(10) << "DIRECTION" << std::setw(24)
      << "COUNTER" << std::right << std::setw(14) << "PACKETS/S"
      << std::setw(14) << "BYTES/S" << "\n";
    for (const auto& ctr : st.counters()) {
      const auto k = std::pair{ctr.direction(), ctr.reason()};
      const auto p = prev.count(k) ? prev[k] : std::pair<uint64_t, uint64_t>{
                                                   ctr.packets(), ctr.bytes()};
      o << std::left << std::setw(10) << ctr.direction() << std::setw(24)
        << ctr.reason() << std::right << std::setw(14) << std::setprecision(1)
        << (ctr.packets() - p.first) / secs << std::setw(14)
        << (ctr.bytes() - p.second) / secs << "\n";
      prev[k] = {ctr.packets(), ctr.bytes()};
    }
    {
      std::lock_guard g(mu);
      o << "\n";
      table(o, "BUSIEST FLOWS (events)", flows, secs, rows);
      o << "\n";
      table(o, "BUSIEST ENDPOINTS (events)", endpoints, secs, rows);
      if (lost) o << "\nEVENTS LOST in this interval: " << lost << "\n";
      flows.clear();
      endpoints.clear();
      lost = 0;
      if (!stream_err.empty()) o << "\nobserve stream ended: " << stream_err << "\n";
    }
    std::cout << o.str() << std::flush;
    first = false;
  }
  sctx.TryCancel();
  reader.join();
  return rc;
}

}  // namespace sluice::ctl
