#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "state/file_store.h"

namespace {

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-store-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FileStoreTest, PutGetListRemove) {
  auto s = sluice::FileStore::open(dir_ + "/state");
  ASSERT_TRUE(s) << s.error();
  auto& st = **s;
  EXPECT_FALSE(st.get("prefilter").value().has_value());
  ASSERT_TRUE(st.put("prefilter", "{\"a\":1}"));
  ASSERT_TRUE(st.put("pods/x/a", "{}"));
  EXPECT_EQ(*st.get("prefilter").value(), "{\"a\":1}");
  auto keys = st.list("pods/");
  ASSERT_TRUE(keys);
  EXPECT_EQ(*keys, std::vector<std::string>{"pods/x/a"});
  ASSERT_TRUE(st.remove("prefilter"));
  EXPECT_FALSE(st.get("prefilter").value().has_value());
  EXPECT_TRUE(st.remove("prefilter"));  // idempotent
  struct stat sb {};
  ASSERT_EQ(::stat((dir_ + "/state/pods/x/a.json").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600);
  ASSERT_EQ(::stat((dir_ + "/state").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0700);
}

TEST_F(FileStoreTest, SecondLockFails) {
  auto a = sluice::FileStore::open(dir_);
  auto b = sluice::FileStore::open(dir_);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*a)->lock());
  auto s = (*b)->lock();
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("another sluice-agent"), std::string::npos);
}

}  // namespace
