// Which tests this gtest process runs (its --gtest_filter; ctest runs one case per process).
// SystemC elaborates once per process, so a binary whose tests share one simulation builds the
// benches of the selected tests only, all before the first sc_start: a ctest case then simulates
// its own bench and nothing else.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace tilescale::test {

// True when a test of `suite` whose name starts with `prefix` is selected to run.
inline bool any_selected(const std::string& suite, const std::string& prefix) {
  const ::testing::UnitTest& u = *::testing::UnitTest::GetInstance();
  for (int i = 0; i < u.total_test_suite_count(); ++i) {
    const ::testing::TestSuite& s = *u.GetTestSuite(i);
    if (s.name() != suite) continue;
    for (int j = 0; j < s.total_test_count(); ++j) {
      const ::testing::TestInfo& t = *s.GetTestInfo(j);
      if (t.should_run() && std::string(t.name()).rfind(prefix, 0) == 0) return true;
    }
  }
  return false;
}

}  // namespace tilescale::test
