#include "api/server.h"
#include "api/bpf_maps.h"

#include <cstring>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "daemon/agent.h"
#include "datapath/conntrack.h"
#include "datapath/counters.h"
#include "k8s/manifest.h"
#include "observe/flow.h"
#include "policy/evaluator.h"
#include "sluice.grpc.pb.h"
#include "sluice/abi.h"

namespace sluice {

class AgentService final : public v1::Agent::Service {
 public:
  explicit AgentService(Agent& a) : a_(a) {}

  grpc::Status Status(grpc::ServerContext*, const v1::StatusRequest*,
                      v1::StatusReply* r) override {
    r->set_version(SLUICE_VERSION);
    r->set_pid(::getpid());
    r->set_bpffs(a_.config().bpffs);
    auto p = a_.xdp().program();
    auto* pr = r->add_programs();
    pr->set_name(p.name);
    pr->set_type(p.type);
    pr->set_id(p.id);
    pr->set_insns(p.xlated_insns);
    for (const auto& at : a_.xdp().attachments()) {
      auto* o = r->add_attachments();
      o->set_device(at.device);
      o->set_ifindex(at.ifindex);
      o->set_hook("xdp");
      o->set_mode(at.mode);
      o->set_link_id(at.link_id);
      o->set_prog_id(at.prog_id);
      o->set_pin(at.pin);
    }
    auto& pf = a_.prefilter();
    add_map(r, SLUICE_MAP_PF_V4, "lpm_trie", pf.size_v4(), pf.capacity());
    add_map(r, SLUICE_MAP_PF_V6, "lpm_trie", pf.size_v6(), pf.capacity());
    // Arrays (counters, config, bitmaps) are always "full": no fill level.
    auto rows = read_counters(a_.xdp().map_fd(SLUICE_MAP_COUNTERS));
    if (!rows) return grpc::Status(grpc::StatusCode::INTERNAL, rows.error());
    for (const auto& row : *rows) {
      auto* c = r->add_counters();
      c->set_direction(dir_name(row.dir));
      c->set_code(row.reason);
      c->set_reason(drop_reason_name(row.reason));
      c->set_packets(row.packets);
      c->set_bytes(row.bytes);
    }
    r->set_events_received(a_.events().received());
    r->set_events_lost(a_.events().lost_in_datapath());
    return grpc::Status::OK;
  }

  grpc::Status Observe(grpc::ServerContext* ctx, const v1::ObserveRequest* q,
                       grpc::ServerWriter<v1::FlowEvent>* w) override {
    auto filter = FlowFilter::from(*q);
    if (!filter)
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, filter.error());
    auto& obs = a_.events();
    std::vector<sluice_event> hist;
    std::shared_ptr<FlowSubscription> sub;
    // Subscribing copies the history in the same step: nothing between
    // the last history event and the first live one is missed or repeated.
    if (q->follow())
      sub = obs.subscribe(&hist);
    else
      hist = obs.recent(obs.history_capacity());
    struct Unsub {
      Observer& o;
      std::shared_ptr<FlowSubscription> s;
      ~Unsub() {
        if (s) o.unsubscribe(s);
      }
    } unsub{obs, sub};
    const uint64_t dp_lost_start = obs.lost_in_datapath();
    FlowContext fc = flow_context();
    auto refreshed = std::chrono::steady_clock::now();

    if (q->last()) {
      std::vector<v1::FlowEvent> out;
      for (auto it = hist.rbegin(); it != hist.rend() && out.size() < q->last();
           ++it) {
        auto f = decode_flow(*it, fc);
        if (filter->match(f)) out.push_back(std::move(f));
      }
      for (auto it = out.rbegin(); it != out.rend(); ++it)
        if (!w->Write(*it)) return grpc::Status::OK;
    }
    if (!sub) return grpc::Status::OK;

    uint64_t dp_lost_seen = dp_lost_start;
    std::vector<sluice_event> batch;
    while (!ctx->IsCancelled() && !stopping_.load()) {
      batch.clear();
      if (const uint64_t lost = sub->next(batch, std::chrono::milliseconds(200)))
        if (!w->Write(lost_notice(lost, "client"))) break;
      const auto now = std::chrono::steady_clock::now();
      if (now - refreshed > std::chrono::seconds(1)) {
        fc = flow_context();
        refreshed = now;
        if (const uint64_t dp = obs.lost_in_datapath(); dp > dp_lost_seen) {
          if (!w->Write(lost_notice(dp - dp_lost_seen, "ringbuf"))) break;
          dp_lost_seen = dp;
        }
      }
      bool open = true;
      for (const auto& ev : batch) {
        auto f = decode_flow(ev, fc);
        if (filter->match(f) && !(open = w->Write(f))) break;
      }
      if (!open) break;
    }
    return grpc::Status::OK;
  }

  void stop() { stopping_ = true; }

  grpc::Status PrefilterAdd(grpc::ServerContext*,
                            const v1::PrefilterRequest* q,
                            v1::PrefilterReply* r) override {
    return reply(a_.prefilter().add({q->cidrs().begin(), q->cidrs().end()}),
                 r);
  }

  grpc::Status PrefilterDelete(grpc::ServerContext*,
                               const v1::PrefilterRequest* q,
                               v1::PrefilterReply* r) override {
    return reply(
        a_.prefilter().remove({q->cidrs().begin(), q->cidrs().end()}), r);
  }

  grpc::Status PrefilterList(grpc::ServerContext*,
                             const v1::PrefilterListRequest*,
                             v1::PrefilterReply* r) override {
    return reply({}, r);
  }

  grpc::Status Apply(grpc::ServerContext*, const v1::ManifestRequest* q,
                     v1::ManifestReply* r) override {
    return manifest_reply(a_.cluster().apply(q->yaml(), origin(*q)), r);
  }

  grpc::Status Delete(grpc::ServerContext*, const v1::ManifestRequest* q,
                      v1::ManifestReply* r) override {
    return manifest_reply(a_.cluster().remove(q->yaml(), origin(*q)), r);
  }

  grpc::Status EndpointAdd(grpc::ServerContext*, const v1::EndpointRequest* q,
                           v1::EndpointReply* r) override {
    auto e = a_.endpoints().add({q->container_id(), q->netns(), q->ifname(),
                                 q->pod_namespace(), q->pod_name()});
    if (!e) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.error());
    // The new pod is a peer of others' policies and may be selected itself.
    if (auto s = reconcile(); !s)
      return grpc::Status(grpc::StatusCode::INTERNAL, s.error());
    fill(*e, r);
    return grpc::Status::OK;
  }

  grpc::Status EndpointDel(grpc::ServerContext*, const v1::EndpointRequest* q,
                           v1::EndpointReply*) override {
    if (auto s = a_.endpoints().del(q->container_id(), q->ifname()); !s)
      return grpc::Status(grpc::StatusCode::INTERNAL, s.error());
    if (auto s = reconcile(); !s)
      return grpc::Status(grpc::StatusCode::INTERNAL, s.error());
    return grpc::Status::OK;
  }

  grpc::Status EndpointCheck(grpc::ServerContext*,
                             const v1::EndpointRequest* q,
                             v1::EndpointReply*) override {
    if (auto s = a_.endpoints().check(q->container_id(), q->ifname()); !s)
      return grpc::Status(grpc::StatusCode::NOT_FOUND, s.error());
    return grpc::Status::OK;
  }

  grpc::Status CtList(grpc::ServerContext*, const v1::CtListRequest* q,
                      v1::CtListReply* r) override {
    uint64_t total = 0;
    auto rows = ct_dump(a_.lxc().map_fd(SLUICE_MAP_CT),
                        q->limit() ? q->limit() : 10000, &total);
    if (!rows) return grpc::Status(grpc::StatusCode::INTERNAL, rows.error());
    const uint64_t now = ct_now_jiffies(), hz = ct_hz();
    for (const auto& row : *rows) {
      auto* e = r->add_entries();
      e->set_protocol(ct_proto_name(row.key.proto));
      e->set_src(ct_endpoint_str(row.key, true));
      e->set_dst(ct_endpoint_str(row.key, false));
      e->set_src_identity(row.value.src_identity);
      e->set_dst_identity(row.value.dst_identity);
      e->set_seen_reply(row.value.flags & SLUICE_CT_SEEN_REPLY);
      e->set_closing(row.value.flags & SLUICE_CT_CLOSING);
      if (now >= row.value.created)
        e->set_age_seconds((now - row.value.created) / hz);
      if (now >= row.value.last_seen)
        e->set_idle_seconds((now - row.value.last_seen) / hz);
      e->set_rule_id(row.value.rule_id);
      if (const auto* rule = a_.policy().rules().lookup(row.value.rule_id))
        e->set_rule(rule->str());
      if (row.value.flags & (SLUICE_CT_SVC | SLUICE_CT_REVNAT)) {
        sluice_ct_key nat = row.key;
        std::memcpy(nat.saddr, row.value.nat_addr, sizeof(nat.saddr));
        nat.sport = row.value.nat_port;
        e->set_nat(std::string(row.value.flags & SLUICE_CT_SVC ? "to " : "from ") +
                   ct_endpoint_str(nat, true));
      }
    }
    r->set_total(total);
    return grpc::Status::OK;
  }

  grpc::Status CtFlush(grpc::ServerContext*, const v1::CtFlushRequest*,
                       v1::CtFlushReply* r) override {
    auto n = ct_flush(a_.lxc().map_fd(SLUICE_MAP_CT),
                      a_.lxc().map_fd(SLUICE_MAP_EP_EPOCH));
    if (!n) return grpc::Status(grpc::StatusCode::INTERNAL, n.error());
    spdlog::info("conntrack: flushed {} entries", *n);
    r->set_deleted(*n);
    return grpc::Status::OK;
  }

  grpc::Status PolicyTrace(grpc::ServerContext*, const v1::TraceRequest* q,
                           v1::TraceReply* r) override {
    auto bad = [](const std::string& m) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, m);
    };
    int family = q->family() == 6 ? AF_INET6 : AF_INET;
    auto endpoint = [&](const std::string& s, const char* field)
        -> Result<policy::Endpoint> {
      if (auto ip = IpAddr::parse(s)) {
        family = ip->family;
        return policy::Endpoint::external(*ip);
      }
      auto slash = s.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == s.size())
        return err(std::string(field) + ": \"" + s +
                   "\" is neither NS/POD nor an IP address");
      return policy::Endpoint::of_pod(s.substr(0, slash), s.substr(slash + 1));
    };
    auto from = endpoint(q->from(), "from");
    if (!from) return bad(from.error());
    auto to = endpoint(q->to(), "to");
    if (!to) return bad(to.error());
    auto proto = k8s::parse_protocol(q->protocol().empty() ? "TCP" : q->protocol());
    if (!proto) return bad("protocol: unsupported value \"" + q->protocol() +
                           "\": supported values: TCP, UDP, SCTP");
    if (q->port() < 1 || q->port() > 65535) return bad("port: must be 1-65535");
    auto v = policy::evaluate(a_.policy().cluster_view(),
                              policy::PolicySet{a_.cluster().policies()}, *from,
                              *to, uint16_t(q->port()), *proto, family);
    if (!v) return bad(v.error());
    r->set_allowed(v->allowed);
    r->set_explanation(policy::explain(*v));
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext*, const v1::GetRequest* q,
                   v1::GetReply* r) override {
    nlohmann::json out = nlohmann::json::array();
    const std::string& kind = q->kind();
    auto want = [&](const k8s::ObjectMeta& m) {
      return q->namespace_().empty() || m.namespace_ == q->namespace_();
    };
    auto add = [&](const k8s::Object& o) {
      if (want(o.meta())) out.push_back(nlohmann::json::parse(k8s::to_json(o)));
    };
    if (kind == "namespaces" || kind == "namespace" || kind == "ns") {
      for (auto& n : a_.cluster().namespaces()) add({n});
    } else if (kind == "pods" || kind == "pod" || kind == "po") {
      for (auto& p : a_.cluster().pods()) add({p});
    } else if (kind == "networkpolicies" || kind == "networkpolicy" ||
               kind == "netpol") {
      for (auto& p : a_.cluster().policies()) add({p});
    } else if (kind == "services" || kind == "service" || kind == "svc") {
      for (auto& x : a_.cluster().services()) add({x});
    } else if (kind == "endpointslices" || kind == "endpointslice") {
      for (auto& x : a_.cluster().endpoint_slices()) add({x});
    } else if (kind == "identities" || kind == "identity") {
      for (auto& [id, labels] : a_.identities().list())
        out.push_back({{"id", id}, {"labels", labels}});
    } else if (kind == "endpoints" || kind == "endpoint" || kind == "ep") {
      for (const auto& e : a_.endpoints().list()) {
        if (!q->namespace_().empty() && e.pod_namespace != q->namespace_())
          continue;
        std::vector<std::string> ips;
        for (const auto& ip : e.ips) ips.push_back(ip.str());
        out.push_back({{"metadata",
                        {{"namespace", e.pod_namespace}, {"name", e.pod_name}}},
                       {"containerID", e.container_id},
                       {"hostDev", e.host_dev},
                       {"endpointID", e.ep_id},
                       {"identity", e.identity},
                       {"ips", ips}});
      }
    } else if (kind.rfind("bpf/", 0) == 0) {
      // `sluicectl bpf MAP list`: a map's entries, named, columns in
      // display order.
      auto rows = bpf_map_rows(a_, kind.substr(4));
      if (!rows)
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, rows.error());
      r->set_json(rows->dump());
      return grpc::Status::OK;
    } else if (kind == "lb" || kind == "loadbalancer") {
      // Read back from the maps (what the datapath sees), one row per
      // frontend: `sluicectl lb list`.
      auto rows = a_.lb().list();
      if (!rows) return grpc::Status(grpc::StatusCode::INTERNAL, rows.error());
      for (const auto& row : *rows)
        if (q->namespace_().empty() ||
            row.service.rfind(q->namespace_() + "/", 0) == 0)
          out.push_back(lb_json(row));
    } else {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "kind: unsupported value \"" + kind +
                              "\": supported values: namespaces, pods, "
                              "networkpolicies, services, endpointslices, "
                              "endpoints, identities, lb");
    }
    r->set_json(out.dump());
    return grpc::Status::OK;
  }

 private:
  static nlohmann::json lb_json(const LbEngine::FrontendRow& r) {
    const auto& v = r.value;
    nlohmann::json backends = nlohmann::json::array();
    for (const auto& b : r.backends) {
      nlohmann::json j{{"id", b.id}, {"share", b.share}};
      j["address"] = b.addr ? b.addr->str() : "";
      if (b.weight) j["weight"] = b.weight;
      backends.push_back(j);
    }
    nlohmann::json j{
        {"id", v.svc_id},
        {"frontend", r.key.str()},
        {"scope", r.key.scope == SLUICE_LB_SCOPE_EXTERNAL ? "external"
                                                          : "internal"},
        {"service", r.service},
        {"port", r.port},
        {"algorithm", v.flags & SLUICE_LB_MAGLEV ? "maglev" : "random"},
        {"count", v.count},
        {"backends", backends}};
    if (v.flags & SLUICE_LB_MAGLEV) j["maglevTableSize"] = v.maglev_m;
    if (v.flags & SLUICE_LB_AFFINITY) j["affinitySeconds"] = v.affinity_s;
    if (v.conn_cap) j["maxConnectionsPerBackend"] = v.conn_cap;
    if (v.flags & SLUICE_LB_EXT_LOCAL) j["externalTrafficLocal"] = true;
    return j;
  }

  static std::string origin(const v1::ManifestRequest& q) {
    return q.origin().empty() ? "manifest" : q.origin();
  }

  grpc::Status manifest_reply(const Result<std::vector<std::string>>& res,
                              v1::ManifestReply* r) {
    if (!res) {
      spdlog::warn("api: rejected: {}", res.error());
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, res.error());
    }
    for (const auto& l : res.value()) r->add_applied(l);
    if (auto s = reconcile(); !s) {
      spdlog::error("reconcile after manifest change: {}", s.error());
      return grpc::Status(grpc::StatusCode::INTERNAL, s.error());
    }
    return grpc::Status::OK;
  }

  static void fill(const EndpointRecord& e, v1::EndpointReply* r) {
    r->set_host_ifname(e.host_dev);
    r->set_mac(mac_str(e.pod_mac));
    r->set_endpoint_id(e.ep_id);
    r->set_identity(e.identity);
    for (const auto& ip : e.ips) {
      auto* c = r->add_ips();
      c->set_address(ip.str() + (ip.family == AF_INET ? "/32" : "/128"));
      c->set_gateway(ip.family == AF_INET ? kGatewayV4 : kGatewayV6);
    }
  }

  void add_map(v1::StatusReply* r, const char* name, const char* type,
               uint64_t entries, uint64_t max) {
    auto* m = r->add_maps();
    m->set_name(name);
    m->set_type(type);
    m->set_entries(entries);
    m->set_max_entries(max);
    m->set_pin(a_.layout().map_pin(name));
  }

  grpc::Status reply(const sluice::Status& s, v1::PrefilterReply* r) {
    if (!s) {
      spdlog::warn("api: rejected: {}", s.error());
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, s.error());
    }
    for (const auto& c : a_.prefilter().list()) r->add_cidrs(c.str());
    return grpc::Status::OK;
  }

  // Agent::reconcile, recorded for sluice_agent_last_sync_timestamp_seconds
  // and sluice_agent_errors_total.
  sluice::Status reconcile() {
    auto s = a_.reconcile();
    if (s)
      a_.health().synced();
    else
      a_.health().errors++;
    return s;
  }

  // What flow enrichment needs, copied so decoding takes no agent locks.
  FlowContext flow_context() {
    FlowContext c;
    c.mono_to_unix_ns = mono_to_unix_offset_ns();
    for (const auto& e : a_.endpoints().list()) {
      FlowEndpoint fe{e.pod_namespace + "/" + e.pod_name, e.host_dev, e.ep_id,
                      e.identity};
      if (e.host_ifindex) c.by_ifindex[e.host_ifindex] = fe;
      for (const auto& ip : e.ips) c.by_ip[ip] = fe;
    }
    for (const auto& [id, labels] : a_.identities().list()) {
      auto& l = c.labels[id];
      for (const auto& [k, v] : labels) l.push_back(k + "=" + v);
    }
    if (auto rows = a_.lb().list())
      for (const auto& r : *rows)
        if (!r.service.empty())
          c.services[{r.key.addr, r.key.port, r.key.proto}] =
              r.service + (r.port.empty() ? "" : ":" + r.port);
    c.rule_name = [this](uint32_t id) -> std::string {
      const auto* rule = a_.policy().rules().lookup(id);
      return rule ? rule->str() : "";
    };
    return c;
  }

  Agent& a_;
  std::atomic<bool> stopping_{false};
};

ApiServer::ApiServer(Agent& agent) : agent_(agent) {}
ApiServer::~ApiServer() { shutdown(); }

Status ApiServer::start(const std::string& socket_path) {
  const auto dir = std::filesystem::path(socket_path).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return err("socket directory " + dir.string() + ": " + ec.message());
  ::unlink(socket_path.c_str());  // a stale socket from a killed agent
  service_ = std::make_unique<AgentService>(agent_);
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  b.RegisterService(service_.get());
  // The socket is created with the process umask (0077, set in main), so it
  // is never visible with wider permissions; chmod makes 0600 explicit.
  server_ = b.BuildAndStart();
  if (!server_) return err("API: cannot listen on unix:" + socket_path);
  if (::chmod(socket_path.c_str(), 0600))
    return err("API: chmod " + socket_path + ": " + errno_str(errno));
  spdlog::info("API listening on unix:{}", socket_path);
  return {};
}

void ApiServer::shutdown() {
  if (server_) {
    service_->stop();  // ends Observe streams
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(2));
    server_.reset();
  }
}

}  // namespace sluice
