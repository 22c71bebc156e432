#include <gtest/gtest.h>

#include <filesystem>

#include "state/cluster_state.h"
#include "state/file_store.h"
#include "store_fixture.h"

namespace {

const char* kTopology = R"(
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {pod: a}}
spec:
  containers:
  - name: c
    ports: [{containerPort: 80, name: serve-80-tcp}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec: {podSelector: {}}
)";

class ClusterStateTest : public sluice::test::StoreTest {
 protected:
};

TEST_F(ClusterStateTest, ApplyCreatesConfiguresAndKeepsUnchanged) {
  sluice::ClusterState cs(*store_);
  auto r = cs.apply(kTopology, "t.yaml");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(*r, (std::vector<std::string>{"namespace/x created", "pod/x/a created",
                                          "networkpolicy/x/deny-all created"}));
  r = cs.apply(kTopology, "t.yaml");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[1], "pod/x/a unchanged");
  r = cs.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {pod: b}}\n",
               "u.yaml");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ((*r)[0], "pod/x/a configured");
  EXPECT_EQ(cs.pods()[0].meta.labels.at("pod"), "b");
  EXPECT_EQ(cs.namespace_labels("x").at("kubernetes.io/metadata.name"), "x");
}

TEST_F(ClusterStateTest, BadDocumentOrMissingNamespaceAppliesNothing) {
  sluice::ClusterState cs(*store_);
  auto r = cs.apply(std::string(kTopology) +
                        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: B_ad, namespace: x}\n",
                    "t.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("document 4"), std::string::npos) << r.error();
  EXPECT_TRUE(cs.pods().empty());
  r = cs.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: nope}\n", "p.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("namespaces \"nope\" not found"), std::string::npos) << r.error();
  EXPECT_TRUE(cs.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n", "d.yaml"))
      << "the default namespace always exists";
}

TEST_F(ClusterStateTest, DeleteCascadesFromNamespaceAndIsAllOrNothing) {
  sluice::ClusterState cs(*store_);
  ASSERT_TRUE(cs.apply(kTopology, "t.yaml"));
  auto r = cs.remove("apiVersion: v1\nkind: Pod\nmetadata: {name: zz, namespace: x}\n", "d.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("not found"), std::string::npos);
  EXPECT_EQ(cs.pods().size(), 1u);
  r = cs.remove("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", "d.yaml");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->size(), 3u);
  EXPECT_TRUE(cs.pods().empty());
  EXPECT_TRUE(cs.policies().empty());
}

TEST_F(ClusterStateTest, RestoreBringsBackEverything) {
  {
    sluice::ClusterState cs(*store_);
    ASSERT_TRUE(cs.apply(kTopology, "t.yaml"));
  }
  sluice::ClusterState again(*store_);
  ASSERT_TRUE(again.restore());
  ASSERT_EQ(again.pods().size(), 1u);
  EXPECT_EQ(again.pods()[0].ports.at(0).name, "serve-80-tcp");
  EXPECT_EQ(again.policies().size(), 1u);
  EXPECT_EQ(again.namespace_labels("x").at("ns"), "x");
}

}  // namespace
