// EXPECT_HAS(text, sub): a substring assertion that prints both strings
// (gmock's HasSubstr without linking gmock into unit_tests).
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace sluice::testing_util {

inline ::testing::AssertionResult HasSub(const char* expr, const char*,
                                         const std::string& text,
                                         const std::string& sub) {
  if (text.find(sub) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << expr << " is\n  " << text << "\nwhich does not contain\n  " << sub;
}

}  // namespace sluice::testing_util

#define EXPECT_HAS(text, sub) \
  EXPECT_PRED_FORMAT2(::sluice::testing_util::HasSub, text, sub)
