#include <gtest/gtest.h>

#include <filesystem>

#include "identity/allocator.h"
#include "state/file_store.h"
#include "store_fixture.h"

namespace {

using sluice::IdentityAllocator;
using sluice::LabelSet;

class IdentityTest : public sluice::test::StoreTest {
 protected:
};

TEST_F(IdentityTest, EqualLabelSetsShareAnIdentity) {
  IdentityAllocator a(*store_);
  auto x = sluice::pod_label_set({{"pod", "a"}}, {{"ns", "x"}});
  EXPECT_EQ(x.at("ns:ns"), "x");
  auto i1 = a.acquire(x), i2 = a.acquire(x);
  auto i3 = a.acquire(sluice::pod_label_set({{"pod", "a"}}, {{"ns", "y"}}));
  ASSERT_TRUE(i1 && i2 && i3);
  EXPECT_EQ(*i1, *i2);
  EXPECT_NE(*i1, *i3);
  EXPECT_GE(*i1, sluice::kIdentityFirstLabel);
  EXPECT_EQ(*a.labels_of(*i1), x);
}

TEST_F(IdentityTest, ReleasedWhenLastReferenceGoes) {
  IdentityAllocator a(*store_);
  LabelSet l{{"app", "web"}};
  const uint32_t id = *a.acquire(l);
  ASSERT_TRUE(a.acquire(l));
  a.release(id);
  EXPECT_TRUE(a.labels_of(id).has_value());
  a.release(id);
  EXPECT_FALSE(a.labels_of(id).has_value());
}

TEST_F(IdentityTest, NumbersSurviveRestart) {
  uint32_t web, db;
  {
    IdentityAllocator a(*store_);
    web = *a.acquire({{"app", "web"}});
    db = *a.acquire({{"app", "db"}});
  }
  IdentityAllocator b(*store_);
  ASSERT_TRUE(b.restore());
  // Re-acquired in the other order: same numbers as before.
  EXPECT_EQ(*b.acquire({{"app", "db"}}), db);
  EXPECT_EQ(*b.acquire({{"app", "web"}}), web);
  const uint32_t fresh = *b.acquire({{"app", "cache"}});
  EXPECT_NE(fresh, web);
  EXPECT_NE(fresh, db);
}

TEST_F(IdentityTest, GcFreesRestoredButUnusedIdentities) {
  uint32_t gone;
  {
    IdentityAllocator a(*store_);
    ASSERT_TRUE(a.acquire({{"app", "web"}}));
    gone = *a.acquire({{"app", "old"}});
  }
  IdentityAllocator b(*store_);
  ASSERT_TRUE(b.restore());
  ASSERT_TRUE(b.acquire({{"app", "web"}}));
  ASSERT_TRUE(b.gc_unused());
  EXPECT_FALSE(b.labels_of(gone).has_value());
  EXPECT_EQ(b.list().size(), 1u);
}

}  // namespace
