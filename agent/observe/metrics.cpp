#include "observe/metrics.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

#include "datapath/counters.h"
#include "sluice/abi.h"

namespace sluice {
namespace {

void family(std::ostringstream& o, const char* name, const char* type,
            const char* help) {
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type
    << "\n";
}

// Label values are escaped as the format says: backslash, quote, newline.
std::string esc(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string prometheus_text(const MetricsSnapshot& s) {
  std::ostringstream o;
  family(o, "sluice_forwarded_packets_total", "counter",
         "Packets the pod datapath forwarded, by direction (pod's view).");
  for (const auto& c : s.counters)
    if (c.reason == SLUICE_DROP_NONE)
      o << "sluice_forwarded_packets_total{direction=\"" << dir_name(c.dir)
        << "\"} " << c.packets << "\n";
  family(o, "sluice_forwarded_bytes_total", "counter",
         "Bytes the pod datapath forwarded, by direction.");
  for (const auto& c : s.counters)
    if (c.reason == SLUICE_DROP_NONE)
      o << "sluice_forwarded_bytes_total{direction=\"" << dir_name(c.dir)
        << "\"} " << c.bytes << "\n";
  family(o, "sluice_drops_total", "counter",
         "Dropped packets by reason (sluicectl drop-reasons) and direction.");
  for (const auto& c : s.counters)
    if (c.reason != SLUICE_DROP_NONE)
      o << "sluice_drops_total{reason=\"" << esc(drop_reason_name(c.reason))
        << "\",direction=\"" << dir_name(c.dir) << "\"} " << c.packets << "\n";
  family(o, "sluice_drop_bytes_total", "counter",
         "Dropped bytes by reason and direction.");
  for (const auto& c : s.counters)
    if (c.reason != SLUICE_DROP_NONE)
      o << "sluice_drop_bytes_total{reason=\"" << esc(drop_reason_name(c.reason))
        << "\",direction=\"" << dir_name(c.dir) << "\"} " << c.bytes << "\n";
  family(o, "sluice_policy_verdicts_total", "counter",
         "Policy verdicts of new connections seen as events (events.level "
         "flows or trace), by verdict and direction.");
  for (const auto& [v, d, n] : s.verdicts)
    o << "sluice_policy_verdicts_total{verdict=\"" << v << "\",direction=\""
      << d << "\"} " << n << "\n";
  family(o, "sluice_service_translations_total", "counter",
         "New service connections translated to a backend, seen as events "
         "(events.level flows or trace).");
  o << "sluice_service_translations_total " << s.translations << "\n";
  family(o, "sluice_events_received_total", "counter",
         "Flow events the agent read from the ring buffer, by type.");
  for (const auto& [t, n] : s.events_received)
    o << "sluice_events_received_total{type=\"" << t << "\"} " << n << "\n";
  family(o, "sluice_events_lost_total", "counter",
         "Flow events lost: ringbuf = the datapath found the ring buffer "
         "full; subscriber = an observe client read too slowly.");
  o << "sluice_events_lost_total{source=\"ringbuf\"} " << s.events_lost_ringbuf
    << "\n";
  o << "sluice_events_lost_total{source=\"subscriber\"} "
    << s.events_lost_subscribers << "\n";
  family(o, "sluice_conntrack_entries", "gauge",
         "Entries in the conntrack table (sluice_ct).");
  o << "sluice_conntrack_entries " << s.conntrack_entries << "\n";
  family(o, "sluice_map_entries", "gauge", "Entries in a BPF map.");
  for (const auto& m : s.maps)
    o << "sluice_map_entries{map=\"" << esc(m.name) << "\"} " << m.entries
      << "\n";
  family(o, "sluice_map_capacity", "gauge", "Capacity (max entries) of a BPF map.");
  for (const auto& m : s.maps)
    o << "sluice_map_capacity{map=\"" << esc(m.name) << "\"} " << m.capacity
      << "\n";
  family(o, "sluice_agent_last_sync_timestamp_seconds", "gauge",
         "Unix time of the last successful sync of desired state to the maps.");
  {
    char buf[32];
    snprintf(buf, sizeof(buf), "%.3f", s.last_sync_unix);
    o << "sluice_agent_last_sync_timestamp_seconds " << buf << "\n";
  }
  family(o, "sluice_agent_errors_total", "counter",
         "Failed syncs and background errors (conntrack GC, load balancer).");
  o << "sluice_agent_errors_total " << s.errors << "\n";
  family(o, "sluice_agent_restore_result", "gauge",
         "1 if the component's state was restored into the maps at start, "
         "0 if not (left as pinned).");
  for (const auto& [c, ok] : s.restore)
    o << "sluice_agent_restore_result{component=\"" << esc(c) << "\"} " << ok
      << "\n";
  return o.str();
}

Result<std::pair<uint64_t, uint64_t>> map_fill(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len))
    return err("map info: " + errno_str(errno));
  std::vector<uint8_t> a(info.key_size), b(info.key_size);
  uint64_t n = 0;
  void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, b.data()) == 0) {
    n++;
    std::swap(a, b);
    prev = a.data();
    if (n > info.max_entries * 2ull) break;  // a map changing under us
  }
  return std::pair{n, uint64_t(info.max_entries)};
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const IpAddr& ip,
                                                            uint16_t port,
                                                            Render render) {
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  m->render_ = std::move(render);
  const std::string where =
      (ip.family == AF_INET6 ? "[" + ip.str() + "]" : ip.str()) + ":" +
      std::to_string(port);
  m->listen_.reset(::socket(ip.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!m->listen_.valid()) return err("metrics: socket: " + errno_str(errno));
  const int one = 1;
  setsockopt(m->listen_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  socklen_t sl = 0;
  if (ip.family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    std::memcpy(&a->sin_addr, ip.bytes.data(), 4);
    sl = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    std::memcpy(&a->sin6_addr, ip.bytes.data(), 16);
    sl = sizeof(*a);
  }
  if (::bind(m->listen_.get(), reinterpret_cast<sockaddr*>(&ss), sl))
    return err("metrics.address " + where + ": bind: " + errno_str(errno) +
               " (set metrics.enabled false or another metrics.address)");
  if (::listen(m->listen_.get(), 16))
    return err("metrics: listen: " + errno_str(errno));
  if (getsockname(m->listen_.get(), reinterpret_cast<sockaddr*>(&ss), &sl) == 0)
    m->port_ = ntohs(ip.family == AF_INET
                         ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                         : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  m->stop_.reset(::eventfd(0, EFD_CLOEXEC));
  if (!m->stop_.valid()) return err("metrics: eventfd: " + errno_str(errno));
  m->thread_ = std::thread([p = m.get()] { p->serve(); });
  spdlog::info("metrics on http://{}/metrics", where);
  return m;
}

MetricsServer::~MetricsServer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (::write(stop_.get(), &one, sizeof(one)) < 0) {
    }
    thread_.join();
  }
}

void MetricsServer::serve() {
  for (;;) {
    pollfd p[2] = {{listen_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::warn("metrics: poll: {}", errno_str(errno));
      return;
    }
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (c.valid()) handle(c.get());
  }
}

void MetricsServer::handle(int fd) {
  // One request per connection, read within 2 s and 8 KiB.
  std::string req;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(2);
  char buf[2048];
  while (req.find("\r\n\r\n") == std::string::npos && req.size() < 8192) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, int(left.count())) <= 0) return;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    req.append(buf, size_t(n));
  }
  const auto line_end = req.find("\r\n");
  std::istringstream line(req.substr(0, line_end));
  std::string method, target, version;
  line >> method >> target >> version;
  const std::string path = target.substr(0, target.find('?'));
  std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8",
              body;
  if (method != "GET" && method != "HEAD") {
    status = "405 Method Not Allowed";
    type = "text/plain; charset=utf-8";
    body = "only GET\n";
  } else if (path == "/metrics") {
    body = render_();
  } else if (path == "/") {
    type = "text/plain; charset=utf-8";
    body = "sluice-agent: metrics at /metrics\n";
  } else {
    status = "404 Not Found";
    type = "text/plain; charset=utf-8";
    body = "not found\n";
  }
  std::string resp = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                     "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n";
  if (method != "HEAD") resp += body;
  size_t off = 0;
  while (off < resp.size()) {
    const ssize_t n = ::send(fd, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += size_t(n);
  }
}

}  // namespace sluice
