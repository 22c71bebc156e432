// A temporary state directory with a FileStore in it, removed after the
// test: the common ground of every test of a component that persists state.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "state/file_store.h"

namespace sluice::test {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = FileStore::open(dir_ + "/state");
    ASSERT_TRUE(s) << s.error();
    store_ = std::move(*s);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::unique_ptr<FileStore> store_;
};

}  // namespace sluice::test
