#include "ctl/format.h"

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "datapath/counters.h"
#include "sluice/abi.h"

namespace sluice::ctl {

std::string status_text(const v1::StatusReply& r) {
  std::ostringstream o;
  o << "Agent:    sluice-agent " << r.version() << " (pid " << r.pid()
    << ")\nBPF root: " << r.bpffs() << "\n\nPrograms:\n";
  for (const auto& p : r.programs())
    o << "  " << std::left << std::setw(16) << p.name() << std::setw(6)
      << p.type() << " id " << std::setw(6) << p.id() << " insns " << p.insns()
      << "\n";
  o << "\nAttachments:\n";
  if (r.attachments().empty()) o << "  (none)\n";
  for (const auto& a : r.attachments())
    o << "  " << std::left << std::setw(16) << a.device() << std::setw(5)
      << a.hook() << std::setw(8) << a.mode() << " link " << std::setw(6)
      << a.link_id() << " prog " << a.prog_id() << "\n";
  o << "\nMaps:\n";
  for (const auto& m : r.maps()) {
    const double pct =
        m.max_entries() ? 100.0 * double(m.entries()) / m.max_entries() : 0;
    o << "  " << std::left << std::setw(16) << m.name() << std::setw(13)
      << m.type() << std::right << std::setw(9) << m.entries() << " / "
      << std::left << std::setw(9) << m.max_entries() << " (" << std::fixed
      << std::setprecision(1) << pct << "%)\n";
  }
  o << "\nCounters:\n";
  if (r.counters().empty()) o << "  (no packets seen)\n";
  for (const auto& c : r.counters())
    o << "  " << std::left << std::setw(8) << c.direction() << std::setw(18)
      << c.reason() << std::right << std::setw(12) << c.packets()
      << " packets " << std::setw(14) << c.bytes() << " bytes\n";
  o << "\nEvents received: " << r.events_received() << "\n";
  return o.str();
}

nlohmann::json status_json(const v1::StatusReply& r) {
  nlohmann::json j;
  j["version"] = r.version();
  j["pid"] = r.pid();
  j["bpffs"] = r.bpffs();
  j["programs"] = nlohmann::json::array();
  for (const auto& p : r.programs())
    j["programs"].push_back(
        {{"name", p.name()}, {"type", p.type()}, {"id", p.id()},
         {"insns", p.insns()}});
  j["attachments"] = nlohmann::json::array();
  for (const auto& a : r.attachments())
    j["attachments"].push_back({{"device", a.device()},
                                {"ifindex", a.ifindex()},
                                {"hook", a.hook()},
                                {"mode", a.mode()},
                                {"link_id", a.link_id()},
                                {"prog_id", a.prog_id()},
                                {"pin", a.pin()}});
  j["maps"] = nlohmann::json::array();
  for (const auto& m : r.maps())
    j["maps"].push_back({{"name", m.name()},
                         {"type", m.type()},
                         {"entries", m.entries()},
                         {"max_entries", m.max_entries()},
                         {"pin", m.pin()}});
  j["counters"] = nlohmann::json::array();
  for (const auto& c : r.counters())
    j["counters"].push_back({{"direction", c.direction()},
                             {"code", c.code()},
                             {"reason", c.reason()},
                             {"packets", c.packets()},
                             {"bytes", c.bytes()}});
  j["events_received"] = r.events_received();
  return j;
}

std::string drop_reasons_text() {
  std::ostringstream o;
  o << std::left << std::setw(6) << "CODE" << std::setw(22) << "NAME"
    << "MEANING\n";
  // Generated from the X-macro (a name is never guessed from the code).
#define SLUICE_X_ROW(n, code, name, help)                                 \
  o << std::left << std::setw(6) << code << std::setw(22) << name << help \
    << "\n";
  SLUICE_DROP_REASONS(SLUICE_X_ROW)
#undef SLUICE_X_ROW
  return o.str();
}

namespace {

std::string flow_end(const std::string& pod, const std::string& ip,
                     uint32_t port, uint32_t family) {
  if (ip.empty()) return "-";
  std::string a = family == 6 ? "[" + ip + "]" : ip;
  if (port) a += ":" + std::to_string(port);
  return pod.empty() ? a : pod + " " + a;
}

std::string flow_summary(const v1::FlowEvent& f) {
  std::string s;
  if (f.type() == "drop") {
    s = f.drop_reason();
  } else if (f.type() == "policy-verdict") {
    s = f.verdict() == "allowed" ? "allowed" : "denied";
    if (!f.rule().empty()) s += " by " + f.rule();
    else if (f.rule_id()) s += " by rule " + std::to_string(f.rule_id());
  } else if (f.type() == "service-xlate") {
    s = (f.service().empty() ? "" : f.service() + " ") + f.frontend() +
        " -> " + f.backend();
  } else if (f.type() == "trace") {
    s = f.trace_point();
  }
  // A trace names its hook: the addresses do not say which pod's veth saw
  // a packet between two pods.
  if ((f.src_ip().empty() || f.type() == "trace") && !f.interface().empty())
    s += (s.empty() ? "" : " ") + std::string("on ") + f.interface() +
         (f.interface_pod().empty() ? "" : " (" + f.interface_pod() + ")");
  return s;
}

}  // namespace

std::string flow_text_header() {
  std::ostringstream o;
  o << std::left << std::setw(13) << "TIME" << std::setw(15) << "TYPE"
    << std::setw(11) << "VERDICT" << std::setw(8) << "DIR" << std::setw(36)
    << "SOURCE" << std::setw(36) << "DESTINATION" << std::setw(7) << "PROTO"
    << "SUMMARY\n";
  return o.str();
}

std::string flow_text(const v1::FlowEvent& f) {
  std::ostringstream o;
  const std::string t = f.time().size() >= 23 ? f.time().substr(11, 12) : f.time();
  if (f.type() == "lost") {
    o << std::left << std::setw(13) << t << "EVENTS LOST: " << f.lost()
      << (f.lost_source() == "ringbuf"
              ? " events were dropped by the datapath (ring buffer full)"
              : " events were skipped because this client read too slowly")
      << "\n";
    return o.str();
  }
  o << std::left << std::setw(13) << t << std::setw(15) << f.type()
    << std::setw(11) << f.verdict() << std::setw(8) << f.direction()
    << std::setw(36)
    << flow_end(f.src_pod(), f.src_ip(), f.src_port(), f.family())
    << std::setw(36)
    << flow_end(f.dst_pod(), f.dst_ip(), f.dst_port(), f.family())
    << std::setw(7) << (f.protocol().empty() ? "-" : f.protocol())
    << flow_summary(f) << "\n";
  return o.str();
}

nlohmann::json flow_json(const v1::FlowEvent& f) {
  nlohmann::json j;
  auto str = [&](const char* k, const std::string& v) {
    if (!v.empty()) j[k] = v;
  };
  auto num = [&](const char* k, uint64_t v) {
    if (v) j[k] = v;
  };
  str("time", f.time());
  str("type", f.type());
  if (f.type() == "lost") {
    num("lost", f.lost());
    str("lost_source", f.lost_source());
    return j;
  }
  str("verdict", f.verdict());
  str("drop_reason", f.drop_reason());
  num("drop_reason_code", f.drop_reason_code());
  str("direction", f.direction());
  str("protocol", f.protocol());
  num("family", f.family());
  str("src_ip", f.src_ip());
  num("src_port", f.src_port());
  str("src_pod", f.src_pod());
  num("src_identity", f.src_identity());
  if (f.src_labels_size())
    j["src_labels"] = std::vector<std::string>(f.src_labels().begin(),
                                               f.src_labels().end());
  str("dst_ip", f.dst_ip());
  num("dst_port", f.dst_port());
  str("dst_pod", f.dst_pod());
  num("dst_identity", f.dst_identity());
  if (f.dst_labels_size())
    j["dst_labels"] = std::vector<std::string>(f.dst_labels().begin(),
                                               f.dst_labels().end());
  num("ifindex", f.ifindex());
  str("interface", f.interface());
  str("interface_pod", f.interface_pod());
  num("endpoint_id", f.endpoint_id());
  num("rule_id", f.rule_id());
  str("rule", f.rule());
  str("frontend", f.frontend());
  str("backend", f.backend());
  str("trace_point", f.trace_point());
  str("service", f.service());
  num("pkt_len", f.pkt_len());
  return j;
}

nlohmann::json drop_reasons_json() {
  nlohmann::json out = nlohmann::json::array();
  // Generated from the X-macro: the same list the BPF programs compile.
#define SLUICE_X_JSON(n, c, name, help) \
  out.push_back({{"code", c}, {"name", name}, {"explanation", help}});
  SLUICE_DROP_REASONS(SLUICE_X_JSON)
#undef SLUICE_X_JSON
  return out;
}

namespace {

// Columns padded to the widest cell, like kubectl's printers.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); i++) {
      if (w.size() <= i) w.push_back(0);
      w[i] = std::max(w[i], r[i].size());
    }
  std::ostringstream o;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); i++) {
      if (i + 1 == r.size())
        o << r[i];
      else
        o << std::left << std::setw(int(w[i] + 3)) << r[i];
    }
    o << "\n";
  }
  return o.str();
}

std::string joined(const std::vector<std::string>& v, const char* sep = ",") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

}  // namespace

// kubectl get services: EXTERNAL-IP is the load balancer ingress and
// external IPs, "<pending>" for a LoadBalancer without ingress; PORT(S) is
// port[:nodePort]/protocol.
std::string services_text(const nlohmann::json& items) {
  std::vector<std::vector<std::string>> rows = {
      {"NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"}};
  for (const auto& i : items) {
    const auto& m = i.value("metadata", nlohmann::json::object());
    const auto& spec = i.value("spec", nlohmann::json::object());
    const std::string type = spec.value("type", "ClusterIP");
    std::vector<std::string> ext;
    if (i.contains("status"))
      for (const auto& in :
           i["status"].value("loadBalancer", nlohmann::json::object())
               .value("ingress", nlohmann::json::array()))
        ext.push_back(in.value("ip", in.value("hostname", "")));
    for (const auto& e : spec.value("externalIPs", nlohmann::json::array()))
      ext.push_back(e.get<std::string>());
    std::string ext_s = joined(ext);
    if (ext_s.empty()) ext_s = type == "LoadBalancer" ? "<pending>" : "<none>";
    std::vector<std::string> ports;
    for (const auto& p : spec.value("ports", nlohmann::json::array())) {
      std::string s = std::to_string(p.value("port", 0));
      if (p.value("nodePort", 0))
        s += ":" + std::to_string(p.value("nodePort", 0));
      ports.push_back(s + "/" + p.value("protocol", "TCP"));
    }
    std::string cip = spec.value("clusterIP", "");
    rows.push_back({m.value("namespace", ""), m.value("name", ""), type,
                    cip.empty() ? "<none>" : cip, ext_s,
                    ports.empty() ? "<none>" : joined(ports)});
  }
  return table(rows);
}

// kubectl get endpointslices: PORTS are the numbers, ENDPOINTS the first
// address of up to three endpoints, then "+ N more...".
std::string endpoint_slices_text(const nlohmann::json& items) {
  std::vector<std::vector<std::string>> rows = {
      {"NAMESPACE", "NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS"}};
  for (const auto& i : items) {
    const auto& m = i.value("metadata", nlohmann::json::object());
    std::vector<std::string> ports;
    for (const auto& p : i.value("ports", nlohmann::json::array()))
      if (p.contains("port"))
        ports.push_back(std::to_string(p.value("port", 0)));
    std::vector<std::string> eps;
    const auto all = i.value("endpoints", nlohmann::json::array());
    for (const auto& e : all) {
      if (eps.size() == 3) break;
      const auto a = e.value("addresses", nlohmann::json::array());
      if (!a.empty()) eps.push_back(a[0].get<std::string>());
    }
    std::string eps_s = joined(eps);
    if (all.size() > 3)
      eps_s += " + " + std::to_string(all.size() - 3) + " more...";
    rows.push_back({m.value("namespace", ""), m.value("name", ""),
                    i.value("addressType", ""),
                    ports.empty() ? "<unset>" : joined(ports),
                    eps_s.empty() ? "<unset>" : eps_s});
  }
  return table(rows);
}

// Like `cilium service list`: the frontend's row carries the first
// backend, the others follow on rows of their own. A backend shows its
// configured weight and its share of the slots (random) or table entries
// (Maglev) as the maps hold them.
std::string lb_text(const nlohmann::json& items) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "FRONTEND", "SCOPE", "SERVICE", "ALGORITHM", "FLAGS",
       "BACKENDS"}};
  for (const auto& i : items) {
    std::vector<std::string> flags;
    if (i.contains("affinitySeconds"))
      flags.push_back("affinity " +
                      std::to_string(i["affinitySeconds"].get<uint32_t>()) + "s");
    if (i.contains("maxConnectionsPerBackend"))
      flags.push_back(
          "cap " +
          std::to_string(i["maxConnectionsPerBackend"].get<uint32_t>()));
    if (i.value("externalTrafficLocal", false)) flags.push_back("ext-local");
    std::string svc = i.value("service", "");
    if (svc.empty()) svc = "?";
    else if (!i.value("port", "").empty()) svc += ":" + i.value("port", "");
    std::string algo = i.value("algorithm", "random");
    if (i.contains("maglevTableSize"))
      algo += " " + std::to_string(i["maglevTableSize"].get<uint32_t>());
    const auto backends = i.value("backends", nlohmann::json::array());
    uint64_t total = 0;
    for (const auto& b : backends) total += b.value("share", 0u);
    std::vector<std::string> lines;
    for (const auto& b : backends) {
      std::string l = b.value("address", "");
      if (l.empty()) l = "id " + std::to_string(b.value("id", 0u)) + " (missing)";
      const uint64_t pct = total ? (100 * b.value("share", 0u) + total / 2) / total : 0;
      l += " (";
      if (b.contains("weight"))
        l += "weight " + std::to_string(b["weight"].get<uint32_t>()) + ", ";
      lines.push_back(l + std::to_string(pct) + "%)");
    }
    if (lines.empty()) lines.push_back("(no backends: rejecting)");
    else lines[0] = std::to_string(lines.size()) + " active: " + lines[0];
    rows.push_back({std::to_string(i.value("id", 0u)), i.value("frontend", ""),
                    i.value("scope", ""), svc, algo,
                    flags.empty() ? "-" : joined(flags, ", "), lines[0]});
    const std::string indent(std::to_string(lines.size()).size() + 9, ' ');
    for (size_t k = 1; k < lines.size(); k++)
      rows.push_back({"", "", "", "", "", "", indent + lines[k]});
  }
  return table(rows);
}

std::string rows_text(const nlohmann::ordered_json& rows) {
  if (rows.empty()) return "(no entries)\n";
  std::vector<std::vector<std::string>> t;
  std::vector<std::string> head;
  for (auto it = rows[0].begin(); it != rows[0].end(); ++it) {
    std::string h = it.key();
    for (auto& ch : h) ch = char(std::toupper(static_cast<unsigned char>(ch)));
    head.push_back(h);
  }
  t.push_back(head);
  for (const auto& r : rows) {
    std::vector<std::string> line;
    for (auto it = rows[0].begin(); it != rows[0].end(); ++it) {
      const auto v = r.value(it.key(), nlohmann::ordered_json());
      line.push_back(v.is_string() ? (v.get<std::string>().empty() ? "-" : v.get<std::string>())
                     : v.is_null() ? "-"
                                   : v.dump());
    }
    t.push_back(line);
  }
  return table(t);
}

std::string get_text(const std::string& kind, const nlohmann::json& items) {
  std::ostringstream o;
  auto labels = [](const nlohmann::json& l) {
    std::string s;
    for (auto it = l.begin(); it != l.end(); ++it)
      s += (s.empty() ? "" : ",") + it.key() + "=" + it.value().get<std::string>();
    return s.empty() ? std::string("<none>") : s;
  };
  if (kind.rfind("ident", 0) == 0) {
    o << std::left << std::setw(10) << "ID" << "LABELS\n";
    for (const auto& i : items)
      o << std::left << std::setw(10) << i["id"].get<uint32_t>()
        << labels(i["labels"]) << "\n";
    return o.str();
  }
  if (kind == "services" || kind == "service" || kind == "svc")
    return services_text(items);
  if (kind == "endpointslices" || kind == "endpointslice")
    return endpoint_slices_text(items);
  if (kind == "lb" || kind == "loadbalancer") return lb_text(items);
  o << std::left << std::setw(16) << "NAMESPACE" << std::setw(28) << "NAME"
    << "LABELS\n";
  for (const auto& i : items) {
    const auto& m = i.value("metadata", nlohmann::json::object());
    o << std::left << std::setw(16) << m.value("namespace", "") << std::setw(28)
      << m.value("name", "")
      << labels(m.value("labels", nlohmann::json::object())) << "\n";
  }
  return o.str();
}

std::string ct_text(const v1::CtListReply& r) {
  std::ostringstream o;
  o << std::left << std::setw(7) << "PROTO" << std::setw(26) << "SOURCE"
    << std::setw(26) << "DESTINATION" << std::setw(16) << "IDENTITIES"
    << std::setw(7) << "REPLY" << std::setw(8) << "IDLE" << std::setw(28)
    << "RULE" << "SERVICE\n";
  for (const auto& e : r.entries())
    o << std::left << std::setw(7) << e.protocol() << std::setw(26) << e.src()
      << std::setw(26) << e.dst() << std::setw(16)
      << (std::to_string(e.src_identity()) + "->" +
          std::to_string(e.dst_identity()))
      << std::setw(7) << (e.seen_reply() ? "yes" : "no") << std::setw(8)
      << (std::to_string(e.idle_seconds()) + "s")
      << std::setw(28) << (e.rule().empty() ? "-" : e.rule())
      << (e.nat().empty() ? "-" : e.nat()) << "\n";
  o << r.total() << " entries\n";
  return o.str();
}

nlohmann::json ct_json(const v1::CtListReply& r) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& e : r.entries())
    j.push_back({{"protocol", e.protocol()},
                 {"src", e.src()},
                 {"dst", e.dst()},
                 {"srcIdentity", e.src_identity()},
                 {"dstIdentity", e.dst_identity()},
                 {"seenReply", e.seen_reply()},
                 {"closing", e.closing()},
                 {"ageSeconds", e.age_seconds()},
                 {"idleSeconds", e.idle_seconds()},
                 {"nat", e.nat()},
                 {"ruleId", e.rule_id()},
                 {"rule", e.rule()}});
  return j;
}

Result<std::string> read_input(const std::string& path) {
  std::ostringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path);
  if (!in) return err("cannot read " + path);
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace sluice::ctl
