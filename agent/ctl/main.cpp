// sluicectl: the command line over the agent API.
//   sluicectl [--socket P] status [-o json]
//   sluicectl [--socket P] prefilter add|delete CIDR... | list [-o json]
//   sluicectl [--socket P] apply|delete -f FILE|-
//   sluicectl [--socket P] get KIND [-n NS] [-o json]
//   sluicectl [--socket P] lb list [-n NS] [-o json]
//   sluicectl [--socket P] observe [filters] [--last N] [-f] [-o json]
//   sluicectl [--socket P] top [--interval S] [--iterations N] [--rows N]
//   sluicectl drop-reasons [-o json]
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ctl/format.h"
#include "sluice.grpc.pb.h"

namespace {

struct Ctx {
  std::string socket = "/run/sluice/sluice.sock";
  std::string output = "text";
};

std::unique_ptr<sluice::v1::Agent::Stub> connect(const Ctx& c) {
  auto ch = grpc::CreateChannel("unix:" + c.socket,
                                grpc::InsecureChannelCredentials());
  return sluice::v1::Agent::NewStub(ch);
}

std::unique_ptr<grpc::ClientContext> rpc_ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(30));
  return ctx;
}

int fail(const Ctx& c, const grpc::Status& s) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE)
    std::cerr << "error: cannot reach the agent at " << c.socket << ": "
              << s.error_message() << "\n";
  else
    std::cerr << "error: " << s.error_message() << "\n";
  return s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sluicectl: inspect and drive a Sluice agent"};
  app.require_subcommand(1);
  Ctx c;
  app.add_option("--socket", c.socket, "agent API socket")
      ->capture_default_str();
  int rc = 0;

  auto* st = app.add_subcommand("status", "programs, attach points, maps, "
                                          "counters");
  st->add_option("-o,--output", c.output, "text|json")
      ->check(CLI::IsMember({"text", "json"}));
  st->callback([&] {
    sluice::v1::StatusReply r;
    auto s = connect(c)->Status(rpc_ctx().get(), {}, &r);
    if (!s.ok()) {
      rc = fail(c, s);
      return;
    }
    std::cout << (c.output == "json" ? sluice::ctl::status_json(r).dump(2) + "\n"
                                     : sluice::ctl::status_text(r));
  });

  auto* pf = app.add_subcommand("prefilter", "XDP prefilter deny list");
  pf->require_subcommand(1);
  std::vector<std::string> cidrs;
  for (const char* verb : {"add", "delete"}) {
    auto* sub = pf->add_subcommand(verb, std::string(verb) + " deny CIDRs");
    sub->add_option("cidrs", cidrs, "CIDRs")->required();
    const std::string v = verb;
    sub->callback([&, v] {
      sluice::v1::PrefilterRequest q;
      for (const auto& x : cidrs) q.add_cidrs(x);
      sluice::v1::PrefilterReply r;
      auto stub = connect(c);
      auto s = v == "add" ? stub->PrefilterAdd(rpc_ctx().get(), q, &r)
                          : stub->PrefilterDelete(rpc_ctx().get(), q, &r);
      if (!s.ok()) {
        rc = fail(c, s);
        return;
      }
      std::cout << (v == "add" ? "added " : "deleted ") << cidrs.size()
                << " CIDR(s); deny list has " << r.cidrs_size()
                << " entries\n";
    });
  }
  auto* ls = pf->add_subcommand("list", "show the deny list");
  ls->add_option("-o,--output", c.output, "text|json")
      ->check(CLI::IsMember({"text", "json"}));
  ls->callback([&] {
    sluice::v1::PrefilterReply r;
    auto s = connect(c)->PrefilterList(rpc_ctx().get(), {}, &r);
    if (!s.ok()) {
      rc = fail(c, s);
      return;
    }
    if (c.output == "json") {
      std::cout << nlohmann::json(std::vector<std::string>(
                                      r.cidrs().begin(), r.cidrs().end()))
                       .dump(2)
                << "\n";
    } else {
      for (const auto& x : r.cidrs()) std::cout << x << "\n";
    }
  });

  std::string file;
  for (const char* verb : {"apply", "delete"}) {
    auto* sub = app.add_subcommand(
        verb, std::string(verb) + " Kubernetes manifests (multi-document YAML)");
    sub->add_option("-f,--filename", file, "manifest file, - for stdin")
        ->required();
    const std::string v = verb;
    sub->callback([&, v] {
      auto text = sluice::ctl::read_input(file);
      if (!text) {
        std::cerr << "error: " << text.error() << "\n";
        rc = 1;
        return;
      }
      sluice::v1::ManifestRequest q;
      q.set_yaml(*text);
      q.set_origin(file == "-" ? "stdin" : file);
      sluice::v1::ManifestReply r;
      auto stub = connect(c);
      auto s = v == "apply" ? stub->Apply(rpc_ctx().get(), q, &r)
                            : stub->Delete(rpc_ctx().get(), q, &r);
      if (!s.ok()) {
        rc = fail(c, s);
        return;
      }
      for (const auto& l : r.applied()) std::cout << l << "\n";
    });
  }

  std::string kind, ns;
  auto* get = app.add_subcommand("get", "list what the agent holds");
  get->add_option("kind", kind,
                  "namespaces|pods|networkpolicies|services (svc)|"
                  "endpointslices|endpoints|identities")
      ->required();
  get->add_option("-n,--namespace", ns, "only this namespace");
  get->add_option("-o,--output", c.output, "text|json")
      ->check(CLI::IsMember({"text", "json"}));
  get->callback([&] {
    sluice::v1::GetRequest q;
    q.set_kind(kind);
    q.set_namespace_(ns);
    sluice::v1::GetReply r;
    auto s = connect(c)->Get(rpc_ctx().get(), q, &r);
    if (!s.ok()) {
      rc = fail(c, s);
      return;
    }
    auto j = nlohmann::json::parse(r.json());
    std::cout << (c.output == "json" ? j.dump(2) + "\n"
                                     : sluice::ctl::get_text(kind, j));
  });

  auto* lb = app.add_subcommand("lb", "service load balancer");
  lb->require_subcommand(1);
  auto* lb_list = lb->add_subcommand(
      "list", "frontends and their backends, as the BPF maps hold them");
  lb_list->add_option("-n,--namespace", ns, "only this namespace's Services");
  lb_list->add_option("-o,--output", c.output, "text|json")
      ->check(CLI::IsMember({"text", "json"}));
  lb_list->callback([&] {
    sluice::v1::GetRequest q;
    q.set_kind("lb");
    q.set_namespace_(ns);
    sluice::v1::GetReply r;
    auto s = connect(c)->Get(rpc_ctx().get(), q, &r);
    if (!s.ok()) {
      rc = fail(c, s);
      return;
    }
    auto j = nlohmann::json::parse(r.json());
    std::cout << (c.output == "json" ? j.dump(2) + "\n"
                                     : sluice::ctl::lb_text(j));
  });

  // bpftool's view, named: `sluicectl bpf MAP list`.
  std::string bpf_map;
  auto* bpf = app.add_subcommand("bpf", "a BPF map's entries with pods and "
                                        "identity labels (bpftool shows them raw)");
  bpf->add_option("map", bpf_map,
                  "ep_ip|ep_if|ipcache|ct|counters|lb_svc (sluice_ prefix optional)")
      ->required();
  auto* bpf_list = bpf->add_subcommand("list", "every entry");
  bpf->require_subcommand(1);
  bpf_list->add_option("-o,--output", c.output, "text|json")
      ->check(CLI::IsMember({"text", "json"}));
  bpf_list->callback([&] {
    sluice::v1::GetRequest q;
    q.set_kind("bpf/" + bpf_map);
    sluice::v1::GetReply r;
    auto s = connect(c)->Get(rpc_ctx().get(), q, &r);
    if (!s.ok()) {
      rc = fail(c, s);
      return;
    }
    auto j = nlohmann::ordered_json::parse(r.json());
    std::cout << (c.output == "json" ? j.dump(2) + "\n" : sluice::ctl::rows_text(j));
  });

  auto* pol = app.add_subcommand("policy", "NetworkPolicy tools");
  pol->require_subcommand(1);
  auto* tr = pol->add_subcommand(
      "trace", "would a new connection be allowed, and by which rules?");
  std::string t_from, t_to, t_port;
  bool t_v6 = false;
  tr->add_option("--from", t_from, "NS/POD or IP")->required();
  tr->add_option("--to", t_to, "NS/POD or IP")->required();
  tr->add_option("--port", t_port, "PORT/PROTOCOL, e.g. 80/TCP")->required();
  tr->add_flag("-6,--ipv6", t_v6, "trace over IPv6 (pods)");
  tr->callback([&] {
    sluice::v1::TraceRequest q;
    q.set_from(t_from);
    q.set_to(t_to);
    const auto slash = t_port.find('/');
    try {
      q.set_port(uint32_t(std::stoul(t_port.substr(0, slash))));
    } catch (const std::exception&) {
      std::cerr << "error: --port: \"" << t_port << "\" is not PORT/PROTOCOL\n";
      rc = 2;
      return;
    }
    q.set_protocol(slash == std::string::npos ? "TCP" : t_port.substr(slash + 1));
    q.set_family(t_v6 ? 6 : 4);
    sluice::v1::TraceReply r;
    auto s = connect(c)->PolicyTrace(rpc_ctx().get(), q, &r);
    if (!s.ok()) {
      rc = fail(c, s);
      return;
    }
    std::cout << r.explanation() << (r.explanation().empty() ||
                                     r.explanation().back() == '\n' ? "" : "\n");
  });

  auto* ct = app.add_subcommand("ct", "connection tracking table");
  ct->require_subcommand(1);
  uint32_t ct_limit = 0;
  auto* ctl_list = ct->add_subcommand("list", "show conntrack entries");
  ctl_list->add_option("--limit", ct_limit, "at most this many (default 10000)");
  ctl_list->add_option("-o,--output", c.output, "text|json")
      ->check(CLI::IsMember({"text", "json"}));
  ctl_list->callback([&] {
    sluice::v1::CtListRequest q;
    q.set_limit(ct_limit);
    sluice::v1::CtListReply r;
    auto s = connect(c)->CtList(rpc_ctx().get(), q, &r);
    if (!s.ok()) {
      rc = fail(c, s);
      return;
    }
    std::cout << (c.output == "json" ? sluice::ctl::ct_json(r).dump(2) + "\n"
                                     : sluice::ctl::ct_text(r));
  });
  auto* ct_flush = ct->add_subcommand("flush", "delete every conntrack entry");
  ct_flush->callback([&] {
    sluice::v1::CtFlushReply r;
    auto s = connect(c)->CtFlush(rpc_ctx().get(), {}, &r);
    if (!s.ok()) {
      rc = fail(c, s);
      return;
    }
    std::cout << "flushed " << r.deleted() << " entries\n";
  });

  auto* ob = app.add_subcommand(
      "observe", "flow events: drops, policy verdicts, service translations");
  sluice::v1::ObserveRequest oq;
  uint32_t o_last = 0;
  bool o_follow = false;
  ob->add_option("-n,--namespace", *oq.mutable_namespace_(),
                 "either end in this namespace");
  ob->add_option("--pod", *oq.mutable_pod(), "NS/POD at either end");
  ob->add_option("--from-pod", *oq.mutable_from_pod(), "NS/POD as the source");
  ob->add_option("--to-pod", *oq.mutable_to_pod(), "NS/POD as the destination");
  ob->add_option("--ip", *oq.mutable_ip(), "source, destination, frontend or backend IP");
  uint32_t o_port = 0, o_identity = 0;
  ob->add_option("--port", o_port, "any port of the flow")
      ->check(CLI::Range(1, 65535));
  ob->add_option("--protocol", *oq.mutable_protocol(), "TCP|UDP|SCTP|ICMP|ICMPv6");
  ob->add_option("--verdict", *oq.mutable_verdict(),
                 "forwarded|dropped|allowed|denied|translated");
  ob->add_option("--drop-reason", *oq.mutable_drop_reason(),
                 "a name from `sluicectl drop-reasons`");
  ob->add_option("--service", *oq.mutable_service(), "NS/NAME");
  ob->add_option("--identity", o_identity, "source or destination identity");
  ob->add_option("--type", *oq.mutable_type(),
                 "drop|policy-verdict|service-xlate|trace");
  ob->add_option("--last", o_last,
                 "matching events from the agent's history first (default "
                 "20 without --follow)");
  ob->add_flag("-f,--follow", o_follow, "stream live events until interrupted");
  ob->add_option("-o,--output", c.output, "text|json (JSON lines)")
      ->check(CLI::IsMember({"text", "json"}));
  ob->callback([&] {
    oq.set_port(o_port);
    oq.set_identity(o_identity);
    oq.set_follow(o_follow);
    oq.set_last(o_last || o_follow ? o_last : 20);
    grpc::ClientContext ctx;
    if (!o_follow)
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
    auto stub = connect(c);
    auto reader = stub->Observe(&ctx, oq);
    sluice::v1::FlowEvent f;
    bool header = c.output == "text";
    while (reader->Read(&f)) {
      if (header) {
        std::cout << sluice::ctl::flow_text_header();
        header = false;
      }
      if (c.output == "json")
        std::cout << sluice::ctl::flow_json(f).dump() << "\n";
      else
        std::cout << sluice::ctl::flow_text(f);
      std::cout.flush();
    }
    auto s = reader->Finish();
    if (!s.ok()) rc = fail(c, s);
  });

  auto* top = app.add_subcommand(
      "top", "live view of the busiest flows and endpoints, with rates");
  double top_interval = 2;
  uint32_t top_iterations = 0, top_rows = 10;
  top->add_option("--interval", top_interval, "seconds between refreshes")
      ->check(CLI::Range(0.2, 3600.0));
  top->add_option("--iterations", top_iterations,
                  "stop after this many refreshes (0: until interrupted)");
  top->add_option("--rows", top_rows, "rows per table");
  top->callback([&] {
    rc = sluice::ctl::run_top(c.socket, top_interval, top_iterations, top_rows);
  });

  auto* dr = app.add_subcommand("drop-reasons",
                                "every drop reason: code, name, meaning");
  dr->add_option("-o,--output", c.output, "text|json")
      ->check(CLI::IsMember({"text", "json"}));
  dr->callback([&] {
    std::cout << (c.output == "json"
                      ? sluice::ctl::drop_reasons_json().dump(2) + "\n"
                      : sluice::ctl::drop_reasons_text());
  });

  CLI11_PARSE(app, argc, argv);
  return rc;
}
