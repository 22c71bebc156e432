#include "api/server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "daemon/agent.h"
#include "datapath/counters.h"
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
    return grpc::Status::OK;
  }

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

 private:
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

  Agent& a_;
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
    server_->Shutdown();
    server_.reset();
  }
}

}  // namespace sluice
