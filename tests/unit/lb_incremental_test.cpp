// The load balancer's incremental path against a full recompute, over
// random sequences of changes made through a real ClusterState: Services
// added, changed (type, selector, ports, algorithm, weights, affinity,
// caps, traffic policies, externalIPs that clash, dual stack) and removed;
// EndpointSlices changed, moved between Services (their service-name
// label) and removed, with ready/serving/terminating conditions and pod
// targetRefs; Pods relabelled, re-weighted, given other named ports,
// removed; local endpoints' addresses; node addresses; the defaults.
//
// ProgramBuilder: fed ClusterState's change feed (changes_since) after
// every step, its program must equal compute_program over copies of the
// whole state. LbEngine (real maps, needs root): synced after every step,
// what its maps hold must equal what a new engine writes into empty maps
// from the same state (modulo ids, which depend on history), and hold
// nothing more.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "common/fd.h"
#include "lb/engine.h"
#include "lb/program.h"
#include "state/cluster_state.h"

namespace sluice {
namespace {

using lb::ProgramBuilder;
using lb::ProgramContext;
using lb::ProgramInput;

class MemStore : public StateStore {
 public:
  Result<std::optional<std::string>> get(const std::string& k) override {
    auto it = m_.find(k);
    if (it == m_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status put(const std::string& k, const std::string& v) override {
    m_[k] = v;
    return {};
  }
  Status remove(const std::string& k) override {
    m_.erase(k);
    return {};
  }
  Result<std::vector<std::string>> list(const std::string& prefix) override {
    std::vector<std::string> out;
    for (const auto& [k, v] : m_)
      if (k.rfind(prefix, 0) == 0) out.push_back(k);
    return out;
  }

 private:
  std::map<std::string, std::string> m_;
};

const std::vector<std::string> kNs = {"a", "b"};

// Random desired state, applied to a ClusterState; remembers each
// object's manifest so it can be deleted again.
class World {
 public:
  explicit World(uint32_t seed) : rng_(seed), cluster_(store_) {
    for (const auto& ns : kNs)
      apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n");
  }

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool chance(int percent) { return pick(100) < percent; }
  template <typename T>
  const T& one(const std::vector<T>& v) { return v[pick(int(v.size()))]; }

  ClusterState& cluster() { return cluster_; }
  ProgramContext& ctx() { return ctx_; }
  std::string last;  // what the last step did, for failure messages

  void apply(const std::string& y) {
    auto r = cluster_.apply(y, "t.yaml");
    ASSERT_TRUE(r) << r.error() << "\n" << y;
  }

  std::string ip4(int i) { return "10.200.0." + std::to_string(i); }
  std::string ip6(int i) { return "fd10:200::" + std::to_string(i); }

  std::string service(const std::string& ns, int i) {
    std::ostringstream y;
    std::vector<std::string> ann;
    if (chance(25)) {
      ann.push_back("sluice.io/lb-algorithm: maglev");
      if (chance(50)) ann.push_back("sluice.io/maglev-table-size: \"251\"");
    } else if (chance(10)) {
      ann.push_back("sluice.io/lb-algorithm: random");
    }
    if (chance(30))
      ann.push_back("sluice.io/backend-weights: \"" + ip4(1 + pick(6)) + "=" +
                    std::to_string(pick(4) * 50) +
                    (chance(50) ? "," + ip4(1 + pick(6)) + ":8080=" +
                                      std::to_string(1 + pick(300))
                                : std::string()) +
                    "\"");
    if (chance(20))
      ann.push_back("sluice.io/max-connections-per-backend: \"" +
                    std::to_string(1 + pick(3)) + "\"");
    const bool node_port = chance(35);
    const bool ext_ips = chance(25);
    y << "apiVersion: v1\nkind: Service\nmetadata: {name: s" << i
      << ", namespace: " << ns << ", annotations: {";
    for (size_t k = 0; k < ann.size(); k++) y << (k ? ", " : "") << ann[k];
    y << "}}\nspec:\n  type: " << (node_port ? "NodePort" : "ClusterIP") << "\n";
    if (chance(60))
      y << "  selector: {app: " << one<std::string>({"ax", "ay"}) << "}\n";
    y << "  ports:\n  - {name: http, port: 80, targetPort: "
      << (chance(50) ? "8080" : "web") << "}\n";
    if (chance(40))
      y << "  - {name: dns, port: 53, protocol: UDP, targetPort: 53}\n";
    if (chance(20)) y << "  sessionAffinity: ClientIP\n";
    if (chance(20)) y << "  internalTrafficPolicy: Local\n";
    if (ext_ips)
      y << "  externalIPs: [198.51.100." << 1 + pick(2) << "]\n";
    if ((node_port || ext_ips) && chance(40))
      y << "  externalTrafficPolicy: Local\n";
    if (chance(20)) y << "  ipFamilyPolicy: PreferDualStack\n";
    return y.str();
  }

  std::string slice(const std::string& ns, int i) {
    std::ostringstream y;
    const bool v6 = i >= 4;  // addressType is immutable: by name
    y << "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: "
      << "{name: e" << i << ", namespace: " << ns
      << ", labels: {kubernetes.io/service-name: s" << pick(5) << "}}\n"
      << "addressType: " << (v6 ? "IPv6" : "IPv4") << "\nports:\n"
      << "- {name: http, port: " << (chance(80) ? 8080 : 9090) << "}\n";
    if (chance(50)) y << "- {name: dns, port: 53, protocol: UDP}\n";
    y << "endpoints:";
    const int n = pick(5);
    if (!n) y << " []";
    y << "\n";
    for (int k = 0; k < n; k++) {
      const int a = 1 + pick(8);
      y << "- addresses: [\"" << (v6 ? ip6(a) : ip4(a)) << "\"]\n";
      std::vector<std::string> cond;
      for (const char* c : {"ready", "serving", "terminating"})
        if (chance(30))
          cond.push_back(std::string(c) + ": " + (chance(50) ? "true" : "false"));
      y << "  conditions: {";
      for (size_t c = 0; c < cond.size(); c++) y << (c ? ", " : "") << cond[c];
      y << "}\n";
      if (chance(50))
        y << "  targetRef: {kind: Pod, name: p" << pick(5) << "}\n";
    }
    return y.str();
  }

  std::string pod(const std::string& ns, int i) {
    std::ostringstream y;
    y << "apiVersion: v1\nkind: Pod\nmetadata: {name: p" << i
      << ", namespace: " << ns << ", labels: {app: "
      << one<std::string>({"ax", "ay", "az"}) << "}";
    if (chance(35))
      y << ", annotations: {sluice.io/lb-weight: \"" << pick(4) * 100 << "\"}";
    y << "}\nspec: {containers: [{name: c, ports: [{name: web, containerPort: "
      << (chance(70) ? 8080 : 8081) << "}]}]}\n";
    return y.str();
  }

  void local_endpoint() {
    const std::pair<std::string, std::string> ref{one(kNs),
                                                  "p" + std::to_string(pick(5))};
    if (chance(30)) {
      ctx_.local_pods.erase(ref);
      last += " local-del " + ref.first + "/" + ref.second;
      return;
    }
    std::vector<IpAddr> ips{IpAddr::parse(ip4(1 + pick(8))).value()};
    if (chance(30)) ips.push_back(IpAddr::parse(ip6(1 + pick(8))).value());
    ctx_.local_pods[ref] = ips;
    last += " local " + ref.first + "/" + ref.second + "=" + ips[0].str();
  }

  // One random change.
  void step() {
    const std::string ns = one(kNs);
    const int r = pick(100);
    std::string y, what;
    if (r < 25) {
      const int i = pick(5);
      y = service(ns, i);
      what = "svc " + ns + "/s" + std::to_string(i);
    } else if (r < 50) {
      const int i = pick(6);
      y = slice(ns, i);
      what = "slice " + ns + "/e" + std::to_string(i);
    } else if (r < 68) {
      const int i = pick(5);
      y = pod(ns, i);
      what = "pod " + ns + "/p" + std::to_string(i);
    } else if (r < 80) {
      if (!manifests_.empty()) {
        auto it = manifests_.begin();
        std::advance(it, pick(int(manifests_.size())));
        auto res = cluster_.remove(it->second, "t.yaml");
        ASSERT_TRUE(res) << res.error();
        last += " delete " + it->first;
        manifests_.erase(it);
      }
      return;
    } else if (r < 92) {
      local_endpoint();
      return;
    } else if (r < 96) {
      if (ctx_.node_addresses.empty())
        ctx_.node_addresses = {IpAddr::parse("198.18.0.1").value()};
      else
        ctx_.node_addresses.clear();
      last += " nodes";
      return;
    } else if (r < 98) {
      ctx_.algorithm = ctx_.algorithm == k8s::LbAlgorithm::Random
                           ? k8s::LbAlgorithm::Maglev
                           : k8s::LbAlgorithm::Random;
      ctx_.maglev_table_size = 251;
      last += " algorithm";
      return;
    } else {
      // A namespace deleted with everything in it, and made again.
      const std::string nsy =
          "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns + "}\n";
      auto res = cluster_.remove(nsy, "t.yaml");
      ASSERT_TRUE(res) << res.error();
      for (auto it = manifests_.begin(); it != manifests_.end();)
        it = it->first.rfind(ns + "/", 0) == 0 ? manifests_.erase(it) : ++it;
      apply(nsy);
      last += " delete namespace " + ns;
      return;
    }
    apply(y);
    manifests_[what.substr(what.find(' ') + 1) + " " + what.substr(0, what.find(' '))] = y;
    last += " " + what;
  }

  ProgramInput full_input() const {
    ProgramInput in;
    in.services = cluster_.services();
    in.slices = cluster_.endpoint_slices();
    in.pods = cluster_.pods();
    in.local_pods = ctx_.local_pods;
    in.node_addresses = ctx_.node_addresses;
    in.algorithm = ctx_.algorithm;
    in.maglev_table_size = ctx_.maglev_table_size;
    return in;
  }

 private:
  std::mt19937 rng_;
  MemStore store_;
  ClusterState cluster_;
  ProgramContext ctx_;
  std::map<std::string, std::string> manifests_;  // "ns/name kind" -> yaml
};

std::string describe(const lb::Program& p) {
  std::ostringstream o;
  for (const auto& [k, fe] : p.frontends)
    o << "fe " << k.str() << " -> " << fe.set.str() << " flags " << fe.flags
      << "\n";
  for (const auto& [ref, s] : p.sets) {
    o << "set " << ref.str() << (s.maglev ? " maglev " : " random ")
      << s.maglev_m << " flags " << s.flags << " aff " << s.affinity_s
      << " cap " << s.conn_cap << " tf " << s.terminating_fallback << ":";
    for (size_t i = 0; i < s.members.size(); i++)
      o << " " << s.members[i].addr.str() << "w" << s.members[i].weight
        << (s.maglev ? "" : "x" + std::to_string(s.slots.at(i)));
    o << "\n";
  }
  return o.str();
}

TEST(LbIncremental, BuilderFedTheChangeFeedEqualsAFullRecompute) {
  size_t recomputed = 0, total = 0, steps = 0, nonempty = 0;
  for (uint32_t seed = 1; seed <= 12; seed++) {
    World w(seed);
    ProgramBuilder inc;
    uint64_t gen = 0;
    for (int s = 0; s < 150; s++) {
      w.last.clear();
      const int n = 1 + w.pick(3);  // several changes per sync, sometimes
      for (int k = 0; k < n; k++) {
        w.step();
        if (HasFatalFailure()) return;
      }
      auto feed = inc.primed() ? w.cluster().changes_since(gen)
                               : w.cluster().snapshot();
      gen = feed.generation;
      auto d = inc.update(feed, w.ctx());
      ASSERT_TRUE(d) << d.error();
      auto full = lb::compute_program(w.full_input());
      ASSERT_TRUE(full) << full.error();
      ASSERT_EQ(describe(inc.program()), describe(*full))
          << "seed " << seed << " step " << s << ":" << w.last;
      recomputed += d->recomputed;
      total += full->frontends.empty() ? 0 : 1;
      nonempty += !inc.program().sets.empty();
      steps++;
    }
  }
  // The point of it: most steps recompute a Service or two, not all.
  EXPECT_LT(double(recomputed) / double(steps), 4.0);
  EXPECT_GT(nonempty, steps / 2);
  (void)total;
}

// The builder's whole-input path (full feeds compared with what it holds)
// agrees too, and a repeated or stale feed changes nothing.
TEST(LbIncremental, FullFeedsAndRepeatedFeedsAgree) {
  World w(99);
  ProgramBuilder by_input, by_feed;
  for (int s = 0; s < 200; s++) {
    w.last.clear();
    w.step();
    if (HasFatalFailure()) return;
    auto d = by_input.update(w.full_input());
    ASSERT_TRUE(d) << d.error();
    // Feeds from the start every time: each a superset of what changed.
    auto d2 = by_feed.update(w.cluster().changes_since(0), w.ctx());
    ASSERT_TRUE(d2) << d2.error();
    auto full = lb::compute_program(w.full_input());
    ASSERT_TRUE(full);
    ASSERT_EQ(describe(by_input.program()), describe(*full)) << s << w.last;
    ASSERT_EQ(describe(by_feed.program()), describe(*full)) << s << w.last;
    auto again = by_input.update(w.full_input());
    ASSERT_TRUE(again);
    EXPECT_EQ(again->recomputed, 0u);
    EXPECT_TRUE(again->sets.empty() && again->frontends.empty());
  }
}

TEST(LbIncremental, ClusterStateFeedListsEachChangeOnceAndFallsBackToFull) {
  MemStore store;
  ClusterState c(store);
  auto pod = [](const std::string& name, const std::string& app) {
    return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
           ", namespace: default, labels: {app: \"" + app +
           "\"}}\nspec: {containers: []}\n";
  };
  ASSERT_TRUE(c.apply(pod("a", "1") + "---\n" + pod("b", "1"), "t"));
  const uint64_t g1 = c.generation();
  ASSERT_TRUE(c.apply(pod("a", "2"), "t"));
  ASSERT_TRUE(c.apply(pod("a", "3"), "t"));
  ASSERT_TRUE(c.apply(pod("b", "1"), "t"));  // unchanged: not a change
  auto f = c.changes_since(g1);
  EXPECT_FALSE(f.full);
  EXPECT_EQ(f.generation, c.generation());
  ASSERT_EQ(f.changes.size(), 1u);
  EXPECT_EQ(f.changes[0].key, "pods/default/a");
  ASSERT_TRUE(f.changes[0].object);
  EXPECT_EQ(f.changes[0].object->meta().labels.at("app"), "3");
  ASSERT_TRUE(c.remove(pod("a", "3"), "t"));
  f = c.changes_since(g1);
  ASSERT_EQ(f.changes.size(), 1u);
  EXPECT_FALSE(f.changes[0].object);  // deleted
  EXPECT_TRUE(c.changes_since(c.generation()).changes.empty());
  // An object handed out is never changed in place.
  auto held = c.changes_since(0).changes;
  ASSERT_TRUE(c.apply(pod("b", "9"), "t"));
  for (const auto& ch : held) {
    if (ch.key == "pods/default/b") {
      EXPECT_EQ(ch.object->meta().labels.at("app"), "1");
    }
  }
  // More changes than the journal keeps: a consumer that far behind gets
  // every object, marked full.
  const uint64_t g2 = c.generation();
  for (size_t i = 0; i <= ClusterState::kJournalMin; i++)
    ASSERT_TRUE(c.apply(pod("b", std::to_string(i)), "t"));
  f = c.changes_since(g2);
  EXPECT_TRUE(f.full);
  EXPECT_EQ(f.changes.size(), 1u);  // pod b (namespace default is implicit)
  EXPECT_FALSE(c.changes_since(c.generation() - 1).full);
  // After a restore, everyone starts over.
  ClusterState again(store);
  ASSERT_TRUE(again.restore());
  EXPECT_TRUE(again.changes_since(0).full);
  EXPECT_FALSE(again.changes_since(again.generation()).full);
}

// --- LbEngine against real maps -------------------------------------------

class FakeEndpoints : public LocalEndpoints {
 public:
  std::vector<EndpointRecord> list() const override { return eps; }
  Status set_flags(const std::string&, const std::string&, uint32_t) override {
    return {};
  }
  std::vector<EndpointRecord> eps;
};

UniqueFd make_map(bpf_map_type type, const char* name, uint32_t k, uint32_t v,
                  uint32_t max, uint32_t flags = 0, int inner = -1) {
  LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = flags);
  if (inner >= 0) o.inner_map_fd = uint32_t(inner);
  return UniqueFd(bpf_map_create(type, name, k, v, max, &o));
}

struct Maps {
  UniqueFd svc, slots, tmpl, maglev, be, aff, conns;
  Maps() {
    svc = make_map(BPF_MAP_TYPE_HASH, "t_lb_svc", sizeof(sluice_lb_svc_key),
                   sizeof(sluice_lb_svc), 1024, BPF_F_NO_PREALLOC);
    slots = make_map(BPF_MAP_TYPE_HASH, "t_lb_slots", sizeof(sluice_lb_slot_key),
                     4, 65536, BPF_F_NO_PREALLOC);
    tmpl = make_map(BPF_MAP_TYPE_ARRAY, "t_lb_mg_tmpl", 4,
                    sizeof(sluice_lb_maglev_block),
                    (SLUICE_LB_MAGLEV_M_MAX + 15) / 16, BPF_F_INNER_MAP);
    maglev = make_map(BPF_MAP_TYPE_ARRAY_OF_MAPS, "t_lb_maglev", 4, 4, SLUICE_LB_SVC_IDS_MAX, 0,
                      tmpl.get());
    be = make_map(BPF_MAP_TYPE_HASH, "t_lb_be", 4, sizeof(sluice_lb_backend),
                  65536, BPF_F_NO_PREALLOC);
    aff = make_map(BPF_MAP_TYPE_LRU_HASH, "t_lb_aff",
                   sizeof(sluice_lb_affinity_key), sizeof(sluice_lb_affinity),
                   1024);
    conns = make_map(BPF_MAP_TYPE_HASH, "t_lb_conns", 4, 4, 65536,
                     BPF_F_NO_PREALLOC);
  }
  bool valid() const {
    for (const auto* f : {&svc, &slots, &tmpl, &maglev, &be, &aff, &conns})
      if (!f->valid()) return false;
    return true;
  }
  lb::LbMapFds fds() const {
    return {svc.get(),  slots.get(), maglev.get(), tmpl.get(),
            be.get(),   aff.get(),   conns.get()};
  }
};

template <typename K, typename V>
std::map<std::string, V> dump(int fd) {  // key bytes -> value
  std::map<std::string, V> out;
  K k{}, next{};
  const K* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    V v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0)
      out[std::string(reinterpret_cast<const char*>(&next), sizeof(next))] = v;
    k = next;
    prev = &k;
  }
  return out;
}

template <typename K>
K key_of(const std::string& bytes) {
  K k;
  std::memcpy(&k, bytes.data(), sizeof(k));
  return k;
}

// What the maps mean, without ids: per frontend its value and the backend
// addresses its slots (sorted: layouts depend on history) or Maglev table
// (in order) name; then what no frontend reaches (must be nothing).
std::string canonical(const Maps& m) {
  std::ostringstream o;
  std::map<uint32_t, std::string> be;
  for (const auto& [k, b] : dump<uint32_t, sluice_lb_backend>(m.be.get())) {
    char buf[64];
    inet_ntop(b.family, b.addr, buf, sizeof(buf));
    be[key_of<uint32_t>(k)] = std::string(buf) + ":" + std::to_string(ntohs(b.port));
  }
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> slots;
  for (const auto& [k, v] : dump<sluice_lb_slot_key, uint32_t>(m.slots.get())) {
    auto sk = key_of<sluice_lb_slot_key>(k);
    slots[{sk.svc_id, sk.slot}] = v;
  }
  auto conns = dump<uint32_t, uint32_t>(m.conns.get());
  std::set<uint32_t> named, used_ids;
  std::set<std::pair<uint32_t, uint32_t>> used_slots;
  std::set<std::string> lines;
  for (const auto& [k, v] : dump<sluice_lb_svc_key, sluice_lb_svc>(m.svc.get())) {
    auto sk = key_of<sluice_lb_svc_key>(k);
    char buf[64];
    inet_ntop(sk.family, sk.addr, buf, sizeof(buf));
    std::ostringstream l;
    l << buf << ":" << ntohs(sk.port) << "/" << int(sk.proto) << " scope "
      << int(sk.scope) << " count " << v.count << " flags " << v.flags << " m "
      << v.maglev_m << " aff " << v.affinity_s << " cap " << v.conn_cap << ":";
    used_ids.insert(v.svc_id);
    std::vector<std::string> names;
    std::set<uint32_t> mine;
    if (v.flags & SLUICE_LB_MAGLEV) {
      uint32_t inner_id = 0;
      if (v.count && bpf_map_lookup_elem(m.maglev.get(), &v.svc_id, &inner_id) == 0) {
        UniqueFd inner(bpf_map_get_fd_by_id(inner_id));
        for (uint32_t b = 0; b * 16 < v.maglev_m; b++) {
          sluice_lb_maglev_block blk{};
          if (bpf_map_lookup_elem(inner.get(), &b, &blk)) {
            names.push_back("<no block>");
            break;
          }
          for (uint32_t i = 0; i < 16 && b * 16 + i < v.maglev_m; i++) {
            mine.insert(blk.ids[i]);
            names.push_back(be.count(blk.ids[i]) ? be[blk.ids[i]] : "<missing>");
          }
        }
      } else if (v.count) {
        names.push_back("<no table>");
      }
    } else {
      for (uint32_t i = 0; i < v.count; i++) {
        auto it = slots.find({v.svc_id, i});
        used_slots.insert({v.svc_id, i});
        if (it == slots.end()) {
          names.push_back("<no slot>");
          continue;
        }
        mine.insert(it->second);
        names.push_back(be.count(it->second) ? be[it->second] : "<missing>");
      }
      std::sort(names.begin(), names.end());
    }
    for (const auto& n : names) l << " " << n;
    named.insert(mine.begin(), mine.end());
    if (v.conn_cap)
      for (uint32_t id : mine)
        if (!conns.count(std::string(reinterpret_cast<const char*>(&id), 4)))
          l << " <no conns entry for " << id << ">";
    lines.insert(l.str());
  }
  for (const auto& l : lines) o << l << "\n";
  for (const auto& [k, v] : slots)
    if (!used_slots.count(k))
      o << "stray slot " << k.first << "/" << k.second << "\n";
  for (const auto& [id, a] : be)
    if (!named.count(id)) o << "stray backend " << a << "\n";
  for (uint32_t id = 1; id < 4096; id++) {
    uint32_t inner = 0;
    if (bpf_map_lookup_elem(m.maglev.get(), &id, &inner) == 0 && !used_ids.count(id))
      o << "stray table " << id << "\n";
  }
  return o.str();
}

TEST(LbIncremental, EngineMapsEqualAFreshEngineAfterEveryStep) {
  size_t writes = 0, steps = 0;
  for (uint32_t seed = 1; seed <= 4; seed++) {
    World w(1000 + seed);
    Maps maps;
    ASSERT_TRUE(maps.valid()) << "needs root (bpf)";
    FakeEndpoints eps;
    LbEngineConfig cfg;
    cfg.node_addresses = [&] { return w.ctx().node_addresses; };
    auto sync_eps = [&] {
      eps.eps.clear();
      for (const auto& [ref, ips] : w.ctx().local_pods) {
        EndpointRecord r;
        r.pod_namespace = ref.first;
        r.pod_name = ref.second;
        r.ips = ips;
        eps.eps.push_back(r);
      }
    };
    auto make = [&](const Maps& m, k8s::LbAlgorithm alg) {
      LbEngineConfig c = cfg;
      c.algorithm = alg;
      c.maglev_table_size = 251;
      auto e = LbEngine::create(w.cluster(), eps, m.fds(), c);
      EXPECT_TRUE(e) << e.error();
      return e ? std::move(*e) : nullptr;
    };
    auto alg = w.ctx().algorithm;
    auto inc = make(maps, alg);
    ASSERT_TRUE(inc);
    for (int s = 0; s < 60; s++) {
      w.last.clear();
      w.step();
      if (HasFatalFailure()) return;
      w.ctx().maglev_table_size = 251;
      sync_eps();
      if (w.ctx().algorithm != alg) {  // a default changed: a new engine
        alg = w.ctx().algorithm;       // over the same maps (adoption)
        inc = make(maps, alg);
        ASSERT_TRUE(inc);
      }
      auto st = inc->sync();
      ASSERT_TRUE(st) << st.error();
      writes += st->writes + st->deletes;
      Maps fresh_maps;
      ASSERT_TRUE(fresh_maps.valid());
      auto fresh = make(fresh_maps, alg);
      ASSERT_TRUE(fresh);
      auto fst = fresh->sync();
      ASSERT_TRUE(fst) << fst.error();
      ASSERT_EQ(canonical(maps), canonical(fresh_maps))
          << "seed " << seed << " step " << s << ":" << w.last;
      // Nothing changed: nothing written.
      auto idle = inc->sync();
      ASSERT_TRUE(idle);
      EXPECT_EQ(idle->writes + idle->deletes, 0u);
      steps++;
    }
  }
  EXPECT_GT(writes, steps);  // the sequences did change the maps
}

}  // namespace
}  // namespace sluice
