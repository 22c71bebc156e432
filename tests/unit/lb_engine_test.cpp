// LbEngine against real kernel maps of the ABI's layout (created here, as
// the other map-backed unit tests do; needs root): map contents, writes
// limited to differences, adoption of pinned state by a restarted engine,
// Maglev inner-map swaps, capacity errors that change nothing.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>

#include "common/fd.h"
#include "expect_has.h"
#include "lb/engine.h"
#include "lb/maglev.h"
#include "store_fixture.h"

namespace sluice {
namespace {

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

template <typename K, typename V>
std::vector<std::pair<K, V>> entries(int fd) {
  std::vector<std::pair<K, V>> out;
  K k{}, next{};
  const K* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    V v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) out.emplace_back(next, v);
    k = next;
    prev = &k;
  }
  return out;
}

// Integer-keyed maps as std::map.
template <typename K, typename V>
std::map<K, V> dump(int fd) {
  auto e = entries<K, V>(fd);
  return {e.begin(), e.end()};
}

struct Bytes {  // map keys/values compared as bytes
  template <typename T>
  static std::string of(const T& t) {
    return std::string(reinterpret_cast<const char*>(&t), sizeof(t));
  }
};

sluice_lb_svc_key svc_key(const std::string& addr, uint16_t port,
                          uint8_t scope = SLUICE_LB_SCOPE_INTERNAL) {
  return lb::LbMaps::svc_key(
      {IpAddr::parse(addr).value(), port, IPPROTO_TCP, scope});
}

std::string web(const std::string& endpoints,
                const std::string& annotations = "{}",
                const std::string& spec = "") {
  return "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n"
         "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x, "
         "annotations: " + annotations + "}\nspec: {clusterIP: 10.96.0.10, " +
         spec + "ports: [{name: http, port: 80, targetPort: 8080}]}\n---\n"
         "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
         "metadata: {name: web-1, namespace: x, labels: "
         "{kubernetes.io/service-name: web}}\naddressType: IPv4\n"
         "ports: [{name: http, port: 8080}]\nendpoints: [" + endpoints + "]\n";
}

std::string eps(std::initializer_list<int> last_octets) {
  std::string s;
  for (int o : last_octets)
    s += std::string(s.empty() ? "" : ", ") + "{addresses: [10.200.0." +
         std::to_string(o) + "]}";
  return s;
}

class LbEngineTest : public test::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    svc_ = make_map(BPF_MAP_TYPE_HASH, "t_lb_svc", sizeof(sluice_lb_svc_key),
                    sizeof(sluice_lb_svc), 1024, BPF_F_NO_PREALLOC);
    ASSERT_TRUE(svc_.valid()) << "needs root (bpf)";
    slots_ = make_map(BPF_MAP_TYPE_HASH, "t_lb_slots", sizeof(sluice_lb_slot_key),
                      4, 65536, BPF_F_NO_PREALLOC);
    tmpl_ = make_map(BPF_MAP_TYPE_ARRAY, "t_lb_mg_tmpl", 4,
                     sizeof(sluice_lb_maglev_block),
                     (SLUICE_LB_MAGLEV_M_MAX + 15) / 16, BPF_F_INNER_MAP);
    maglev_ = make_map(BPF_MAP_TYPE_ARRAY_OF_MAPS, "t_lb_maglev", 4, 4,
                       SLUICE_LB_SVC_IDS_MAX, 0, tmpl_.get());
    be_ = make_map(BPF_MAP_TYPE_HASH, "t_lb_be", 4, sizeof(sluice_lb_backend),
                   65536, BPF_F_NO_PREALLOC);
    aff_ = make_map(BPF_MAP_TYPE_LRU_HASH, "t_lb_aff",
                    sizeof(sluice_lb_affinity_key), sizeof(sluice_lb_affinity),
                    1024);
    conns_ = make_map(BPF_MAP_TYPE_HASH, "t_lb_conns", 4, 4, 65536,
                      BPF_F_NO_PREALLOC);
    for (const auto* f : {&slots_, &tmpl_, &maglev_, &be_, &aff_, &conns_})
      ASSERT_TRUE(f->valid());
    cluster_ = std::make_unique<ClusterState>(*store_);
  }

  std::unique_ptr<LbEngine> engine(LbEngineConfig c = {}) {
    auto e = LbEngine::create(*cluster_, eps_,
                              {svc_.get(), slots_.get(), maglev_.get(),
                               tmpl_.get(), be_.get(), aff_.get(), conns_.get()},
                              std::move(c));
    EXPECT_TRUE(e) << e.error();
    return e ? std::move(*e) : nullptr;
  }
  void apply(const std::string& y) {
    auto r = cluster_->apply(y, "t.yaml");
    ASSERT_TRUE(r) << r.error();
  }
  LbEngine::SyncStats sync(LbEngine& e) {
    auto st = e.sync();
    EXPECT_TRUE(st) << st.error();
    return st ? *st : LbEngine::SyncStats{};
  }
  // Every map's content, to compare before/after.
  std::string snapshot() {
    std::string s;
    std::set<std::string> fes;  // hash order is not stable: sorted
    for (const auto& [k, v] : entries<sluice_lb_svc_key, sluice_lb_svc>(svc_.get()))
      fes.insert("svc " + Bytes::of(k) + Bytes::of(v) + "\n");
    for (const auto& f : fes) s += f;
    for (const auto& [k, v] : slots())
      s += "slot " + std::to_string(k.first) + "/" + std::to_string(k.second) +
           "=" + std::to_string(v) + "\n";
    for (const auto& [k, v] : backends()) s += "be " + std::to_string(k) + "=" + v + "\n";
    for (uint32_t id = 1; id < 8; id++)
      s += "mg " + std::to_string(id) + "=" + std::to_string(inner_id(id)) + "\n";
    return s;
  }
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> slots() {
    std::map<std::pair<uint32_t, uint32_t>, uint32_t> out;
    for (const auto& [k, v] : dump<uint64_t, uint32_t>(slots_.get())) {
      sluice_lb_slot_key sk;
      std::memcpy(&sk, &k, sizeof(sk));
      out[{sk.svc_id, sk.slot}] = v;
    }
    return out;
  }
  std::map<uint32_t, std::string> backends() {
    std::map<uint32_t, std::string> out;
    for (const auto& [id, b] : dump<uint32_t, sluice_lb_backend>(be_.get())) {
      char buf[64];
      inet_ntop(b.family, b.addr, buf, sizeof(buf));
      out[id] = std::string(buf) + ":" + std::to_string(ntohs(b.port));
    }
    return out;
  }
  sluice_lb_svc svc(const sluice_lb_svc_key& k) {
    sluice_lb_svc v{};
    EXPECT_EQ(bpf_map_lookup_elem(svc_.get(), &k, &v), 0) << "no svc entry";
    return v;
  }
  uint32_t inner_id(uint32_t svc_id) {
    uint32_t id = 0;
    return bpf_map_lookup_elem(maglev_.get(), &svc_id, &id) ? 0 : id;
  }
  // The Maglev table of a svc id, read through the inner map.
  std::vector<uint32_t> table(uint32_t svc_id, uint32_t m, uint32_t* blocks) {
    UniqueFd inner(bpf_map_get_fd_by_id(inner_id(svc_id)));
    EXPECT_TRUE(inner.valid());
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    EXPECT_EQ(bpf_obj_get_info_by_fd(inner.get(), &info, &len), 0);
    *blocks = info.max_entries;
    std::vector<uint32_t> t;
    for (uint32_t b = 0; b < info.max_entries; b++) {
      sluice_lb_maglev_block blk{};
      EXPECT_EQ(bpf_map_lookup_elem(inner.get(), &b, &blk), 0);
      for (uint32_t id : blk.ids) t.push_back(id);
    }
    t.resize(m);
    return t;
  }

  UniqueFd svc_, slots_, tmpl_, maglev_, be_, aff_, conns_;
  FakeEndpoints eps_;
  std::unique_ptr<ClusterState> cluster_;
};

TEST_F(LbEngineTest, ProgramsAServiceAndWritesOnlyDifferences) {
  apply(web(eps({5, 6})));
  auto e = engine();
  auto st = sync(*e);
  EXPECT_TRUE(st.adopted);
  EXPECT_EQ(st.writes, 5u);  // 2 backends, 2 slots, 1 frontend
  EXPECT_EQ(st.deletes, 0u);
  const auto v = svc(svc_key("10.96.0.10", 80));
  EXPECT_EQ(v.svc_id, 1u);
  EXPECT_EQ(v.count, 2);
  EXPECT_EQ(v.flags, 0);
  EXPECT_EQ(backends(), (std::map<uint32_t, std::string>{
                            {1, "10.200.0.5:8080"}, {2, "10.200.0.6:8080"}}));
  EXPECT_EQ(slots(), (std::map<std::pair<uint32_t, uint32_t>, uint32_t>{
                         {{1, 0}, 1}, {{1, 1}, 2}}));

  st = sync(*e);  // nothing changed: nothing written
  EXPECT_EQ(st.writes + st.deletes, 0u);

  // .6 replaced by .7: a new backend (a new id: 2 is not reused at once),
  // its slot, the old backend deleted; the frontend is untouched.
  apply(web(eps({5, 7})));
  st = sync(*e);
  EXPECT_EQ(st.writes, 2u);
  EXPECT_EQ(st.deletes, 1u);
  EXPECT_EQ(backends(), (std::map<uint32_t, std::string>{
                            {1, "10.200.0.5:8080"}, {3, "10.200.0.7:8080"}}));
  EXPECT_EQ(slots(), (std::map<std::pair<uint32_t, uint32_t>, uint32_t>{
                         {{1, 0}, 1}, {{1, 1}, 3}}));

  apply(web(eps({5, 7, 8})));  // grows: backend, slot, then the count
  st = sync(*e);
  EXPECT_EQ(st.writes, 3u);
  EXPECT_EQ(svc(svc_key("10.96.0.10", 80)).count, 3);

  apply(web(eps({8})));  // shrinks: 8 moves to slot 0, slots 1-2 go
  st = sync(*e);
  EXPECT_EQ(st.writes, 2u);   // slot 0, frontend
  EXPECT_EQ(st.deletes, 4u);  // slots 1 and 2, backends 1 and 3
  EXPECT_EQ(svc(svc_key("10.96.0.10", 80)).count, 1);
  EXPECT_EQ(slots(), (std::map<std::pair<uint32_t, uint32_t>, uint32_t>{
                         {{1, 0}, 4}}));
  EXPECT_EQ(backends().size(), 1u);

  auto r = cluster_->remove(web(""), "t.yaml");  // namespace and all
  ASSERT_TRUE(r) << r.error();
  st = sync(*e);
  EXPECT_EQ(st.deletes, 3u);  // frontend, slot, backend
  EXPECT_TRUE((entries<sluice_lb_svc_key, sluice_lb_svc>(svc_.get()).empty()));
  EXPECT_TRUE(slots().empty());
  EXPECT_TRUE(backends().empty());
}

TEST_F(LbEngineTest, AffinityToABackendThatLeftTheSetIsForgotten) {
  apply(web(eps({5, 6}), "{}", "sessionAffinity: ClientIP, "));
  auto e = engine();
  sync(*e);
  const uint32_t svc_id = svc(svc_key("10.96.0.10", 80)).svc_id;
  auto pin = [&](uint8_t client, uint32_t backend) {
    sluice_lb_affinity_key k{};
    k.addr[0] = 10, k.addr[1] = 200, k.addr[3] = client;
    k.svc_id = svc_id;
    k.family = AF_INET;
    sluice_lb_affinity v{1, backend, 0};
    ASSERT_EQ(bpf_map_update_elem(aff_.get(), &k, &v, BPF_ANY), 0);
  };
  pin(1, 1);  // a client on .5
  pin(2, 2);  // a client on .6
  apply(web(eps({5}), "{}", "sessionAffinity: ClientIP, "));
  sync(*e);
  auto left = entries<sluice_lb_affinity_key, sluice_lb_affinity>(aff_.get());
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left.begin()->second.backend_id, 1u);
}

TEST_F(LbEngineTest, RestartAdoptsPinnedStateAndWritesNothing) {
  apply(web(eps({5, 6, 7}), "{}", "externalIPs: [203.0.113.7], "));
  auto e = engine();
  sync(*e);
  const std::string before = snapshot();
  e.reset();  // the agent exits; the maps stay

  auto again = engine();
  auto st = sync(*again);
  EXPECT_TRUE(st.adopted);
  EXPECT_EQ(st.writes, 0u);
  EXPECT_EQ(st.deletes, 0u);
  EXPECT_EQ(snapshot(), before);
  // Ids survive: a change after the restart keeps svc id 1 and backend ids.
  apply(web(eps({5, 6, 7, 9}), "{}", "externalIPs: [203.0.113.7], "));
  st = sync(*again);
  EXPECT_EQ(st.writes, 5u);  // backend 4, slot 3, three frontends' counts
  EXPECT_EQ(svc(svc_key("203.0.113.7", 80, SLUICE_LB_SCOPE_EXTERNAL)).svc_id, 1u);
  EXPECT_EQ(backends().at(4), "10.200.0.9:8080");
  EXPECT_EQ(backends().at(1), "10.200.0.5:8080");
}

// The north-south gate's hash may differ between versions (it did when
// it moved before L4 parsing): an agent adopting pinned frontends sets
// their bits in the gate it finds, even one that starts empty, and only
// for external frontends.
TEST_F(LbEngineTest, AdoptionSetsTheGateBitsOfExternalFrontends) {
  apply(web(eps({5, 6}), "{}", "externalIPs: [203.0.113.7], "));
  auto e = engine();
  sync(*e);
  e.reset();
  UniqueFd gate = make_map(BPF_MAP_TYPE_ARRAY, "t_lb_gate", 4, 8, SLUICE_LB_GATE_BITS / 64, 0);
  ASSERT_TRUE(gate.valid());
  auto again = LbEngine::create(*cluster_, eps_,
                                {svc_.get(), slots_.get(), maglev_.get(), tmpl_.get(), be_.get(),
                                 aff_.get(), conns_.get(), gate.get()},
                                {});
  ASSERT_TRUE(again) << again.error();
  EXPECT_TRUE(sync(**again).adopted);
  auto has = [&](const char* ip) {
    uint32_t a[4] = {};
    EXPECT_EQ(inet_pton(AF_INET, ip, a), 1);
    const uint32_t bit = sluice_lb_gate_bit(a), word = bit / 64;
    uint64_t w = 0;
    EXPECT_EQ(bpf_map_lookup_elem(gate.get(), &word, &w), 0);
    return (w >> (bit % 64)) & 1;
  };
  EXPECT_TRUE(has("203.0.113.7"));
  uint64_t set = 0;
  for (uint32_t word = 0; word < SLUICE_LB_GATE_BITS / 64; word++) {
    uint64_t w = 0;
    ASSERT_EQ(bpf_map_lookup_elem(gate.get(), &word, &w), 0);
    set += uint64_t(__builtin_popcountll(w));
  }
  // The external IP alone: the ClusterIP frontend is not north-south.
  EXPECT_EQ(set, 1u);
}

TEST_F(LbEngineTest, AdoptionRemovesWhatNoLongerBelongs) {
  apply(web(eps({5, 6})));
  auto e = engine();
  sync(*e);
  e.reset();
  // While the agent was away: an entry of no Service, and a stray set.
  const uint32_t id = 77;
  sluice_lb_backend b{};
  b.family = AF_INET;
  ASSERT_EQ(bpf_map_update_elem(be_.get(), &id, &b, BPF_ANY), 0);
  const sluice_lb_slot_key sk{9, 0};
  ASSERT_EQ(bpf_map_update_elem(slots_.get(), &sk, &id, BPF_ANY), 0);
  auto again = engine();
  auto st = sync(*again);
  EXPECT_EQ(st.writes, 0u);
  EXPECT_EQ(st.deletes, 2u);
  EXPECT_EQ(backends().size(), 2u);
  EXPECT_EQ(slots().size(), 2u);
}

TEST_F(LbEngineTest, MaglevTablesAreSwappedWhole) {
  apply(web(eps({5, 6}),
            "{sluice.io/lb-algorithm: maglev, sluice.io/maglev-table-size: '251'}"));
  auto e = engine();
  auto st = sync(*e);
  EXPECT_EQ(st.tables, 1u);
  auto v = svc(svc_key("10.96.0.10", 80));
  EXPECT_EQ(v.flags, SLUICE_LB_MAGLEV);
  EXPECT_EQ(v.maglev_m, 251u);
  EXPECT_EQ(v.count, 2);
  EXPECT_TRUE(slots().empty());
  uint32_t blocks = 0;
  auto t = table(v.svc_id, 251, &blocks);
  EXPECT_EQ(blocks, 16u);  // ceil(251 / 16)
  const auto ip = [](const char* s) { return IpAddr::parse(s).value(); };
  std::vector<lb::MaglevBackend> in = {
      {1, 100, lb::maglev_key(ip("10.200.0.5"), 8080)},
      {2, 100, lb::maglev_key(ip("10.200.0.6"), 8080)}};
  EXPECT_EQ(t, lb::maglev_table(in, 251).value());

  const uint32_t first = inner_id(v.svc_id);
  apply(web(eps({5, 6, 7}),
            "{sluice.io/lb-algorithm: maglev, sluice.io/maglev-table-size: '251'}"));
  st = sync(*e);
  EXPECT_EQ(st.tables, 1u);
  EXPECT_NE(inner_id(v.svc_id), first);  // a new map, one outer update
  t = table(v.svc_id, 251, &blocks);
  EXPECT_EQ(std::set<uint32_t>(t.begin(), t.end()), (std::set<uint32_t>{1, 2, 3}));
  EXPECT_EQ(sync(*e).tables, 0u);

  e.reset();  // a restart compares the pinned table and keeps it
  auto again = engine();
  st = sync(*again);
  EXPECT_EQ(st.writes + st.deletes, 0u);

  // Back to random: slots first, then the frontend, then the table goes.
  apply(web(eps({5, 6, 7}), "{sluice.io/lb-algorithm: random}"));
  st = sync(*again);
  EXPECT_EQ(slots().size(), 3u);
  EXPECT_EQ(inner_id(v.svc_id), 0u);
  EXPECT_EQ(svc(svc_key("10.96.0.10", 80)).flags, 0);
}

TEST_F(LbEngineTest, CapacityErrorsChangeNothing) {
  apply(web(eps({5, 6})));
  LbEngineConfig c;
  c.limits.frontends = 2;
  auto e = engine(c);
  sync(*e);
  const std::string before = snapshot();
  apply(web(eps({5, 6, 7}), "{}", "externalIPs: [203.0.113.7], "));  // 3 frontends
  auto st = e->sync();
  ASSERT_FALSE(st);
  EXPECT_HAS(st.error(), "3 frontends exceed SLUICE_LB_SVC_MAX (2)");
  EXPECT_EQ(snapshot(), before);
  // Old and new entries coexist during an update: the peak counts too.
  c = {};
  c.limits.backends = 3;
  e = engine(c);
  apply(web(eps({5, 6})));
  sync(*e);
  apply(web(eps({7, 8})));
  st = e->sync();
  ASSERT_FALSE(st);
  EXPECT_HAS(st.error(), "4 backends exceed SLUICE_LB_BE_MAX (3)");
  EXPECT_HAS(st.error(), "coexist");
}

TEST_F(LbEngineTest, ConnectionCountsAreCreatedButNeverReset) {
  apply(web(eps({5, 6}), "{sluice.io/max-connections-per-backend: '5'}",
            "sessionAffinity: ClientIP, "));
  auto e = engine();
  sync(*e);
  auto v = svc(svc_key("10.96.0.10", 80));
  EXPECT_EQ(v.conn_cap, 5u);
  EXPECT_EQ(v.flags, SLUICE_LB_AFFINITY);
  EXPECT_EQ(v.affinity_s, 10800u);
  EXPECT_EQ((dump<uint32_t, uint32_t>(conns_.get())),
            (std::map<uint32_t, uint32_t>{{1, 0}, {2, 0}}));
  const uint32_t id = 1, three = 3;
  ASSERT_EQ(bpf_map_update_elem(conns_.get(), &id, &three, BPF_ANY), 0);
  apply(web(eps({5, 6, 7}), "{sluice.io/max-connections-per-backend: '5'}",
            "sessionAffinity: ClientIP, "));
  sync(*e);
  EXPECT_EQ((dump<uint32_t, uint32_t>(conns_.get())),
            (std::map<uint32_t, uint32_t>{{1, 3}, {2, 0}, {3, 0}}));
  // A deleted Service takes its affinity entries along.
  sluice_lb_affinity_key ak{};
  ak.svc_id = v.svc_id;
  ak.family = AF_INET;
  sluice_lb_affinity av{};
  ASSERT_EQ(bpf_map_update_elem(aff_.get(), &ak, &av, BPF_ANY), 0);
  ASSERT_TRUE(cluster_->remove(web(""), "t.yaml"));
  sync(*e);
  EXPECT_TRUE((entries<sluice_lb_affinity_key, sluice_lb_affinity>(aff_.get()).empty()));
  EXPECT_TRUE((dump<uint32_t, uint32_t>(conns_.get()).empty()));
}

TEST_F(LbEngineTest, LocalEndpointsDecideLocalSets) {
  apply(web(eps({5, 6}), "{}", "internalTrafficPolicy: Local, "));
  auto e = engine();
  sync(*e);
  EXPECT_EQ(svc(svc_key("10.96.0.10", 80)).count, 0);  // none local: reject
  EndpointRecord r;
  r.pod_namespace = "x";
  r.pod_name = "b";
  r.ips = {IpAddr::parse("10.200.0.6").value()};
  eps_.eps.push_back(r);  // a CNI ADD
  sync(*e);
  EXPECT_EQ(svc(svc_key("10.96.0.10", 80)).count, 1);
  EXPECT_EQ(backends(), (std::map<uint32_t, std::string>{{1, "10.200.0.6:8080"}}));
}

TEST_F(LbEngineTest, ListReadsTheMapsBack) {
  apply(web(eps({5, 6}), "{sluice.io/backend-weights: '10.200.0.5=300'}"));
  apply("apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: x}\n"
        "spec: {clusterIP: 10.96.0.11, ports: [{port: 53, protocol: UDP}]}\n");
  auto e = engine();
  sync(*e);
  auto rows = e->list();
  ASSERT_TRUE(rows) << rows.error();
  ASSERT_EQ(rows->size(), 2u);
  const auto& web_row = (*rows)[0];
  EXPECT_EQ(web_row.key.str(), "10.96.0.10:80/TCP");
  EXPECT_EQ(web_row.service, "x/web");
  EXPECT_EQ(web_row.port, "http");
  ASSERT_EQ(web_row.backends.size(), 2u);
  EXPECT_EQ(web_row.backends[0].addr->str(), "10.200.0.5:8080");
  EXPECT_EQ(web_row.backends[0].weight, 300u);
  EXPECT_EQ(web_row.backends[0].share, 3u);  // 300:100 -> 3:1 slots
  EXPECT_EQ(web_row.backends[1].share, 1u);
  EXPECT_EQ((*rows)[1].service, "x/empty");
  EXPECT_EQ((*rows)[1].value.count, 0);
  EXPECT_TRUE((*rows)[1].backends.empty());
}

}  // namespace
}  // namespace sluice
