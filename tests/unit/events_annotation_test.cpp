// sluice.io/events-level on a Pod: parsed into the endpoint's event level
// override, and an invalid value rejected when the manifest is applied,
// naming the annotation as the field.
#include <gtest/gtest.h>

#include "expect_has.h"
#include "k8s/events_annotation.h"
#include "k8s/manifest.h"
#include "sluice/abi.h"

namespace sluice::k8s {
namespace {

Result<std::vector<Object>> pod_with(const std::string& annotations) {
  return parse_manifests(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, "
      "annotations: " + annotations + "}\nspec: {containers: []}\n",
      "p.yaml");
}

TEST(EventsAnnotation, EveryLevelParses) {
  const std::pair<const char*, uint32_t> levels[] = {
      {"off", SLUICE_EVENTS_OFF},
      {"drops", SLUICE_EVENTS_DROPS},
      {"flows", SLUICE_EVENTS_FLOWS},
      {"trace", SLUICE_EVENTS_TRACE}};
  for (const auto& [name, level] : levels) {
    auto r = pod_with(std::string("{sluice.io/events-level: '") + name + "'}");
    ASSERT_TRUE(r) << r.error();
    const Pod* p = (*r)[0].get<Pod>();
    ASSERT_NE(p, nullptr);
    auto l = pod_events_level(p->meta);
    ASSERT_TRUE(l) << l.error();
    ASSERT_TRUE(l->has_value()) << name;
    EXPECT_EQ(**l, level) << name;
  }
}

TEST(EventsAnnotation, AbsentMeansTheGlobalLevel) {
  ObjectMeta m;
  m.annotations["sluice.io/lb-weight"] = "10";
  auto l = pod_events_level(m);
  ASSERT_TRUE(l) << l.error();
  EXPECT_FALSE(l->has_value());
}

TEST(EventsAnnotation, InvalidValueIsRejectedAtApplyNamingTheField) {
  for (const char* bad : {"verbose", "TRACE", "''", "'3'"}) {
    auto r = pod_with(std::string("{sluice.io/events-level: ") + bad + "}");
    ASSERT_FALSE(r) << bad;
    EXPECT_HAS(r.error(),
               "metadata.annotations[sluice.io/events-level]: Invalid value ");
    EXPECT_HAS(r.error(),
               "supported values: \"drops\", \"flows\", \"off\", \"trace\"");
  }
  auto r = pod_with("{sluice.io/events-level: loud}");
  ASSERT_FALSE(r);
  EXPECT_HAS(r.error(), "Invalid value \"loud\"");
  // YAML reads a bare off as a boolean: annotations are strings.
  r = pod_with("{sluice.io/events-level: off}");
  ASSERT_FALSE(r);
  EXPECT_HAS(r.error(), "metadata.annotations[sluice.io/events-level]: expected a string");
}

}  // namespace
}  // namespace sluice::k8s
