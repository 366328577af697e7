// The memory budget: TILESCALE_MEMORY_LIMIT parsing, the machine default, and the two checks the
// executors make before allocating activations.
#include "tilescale/core/memory_budget.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include "support/expect_input_error.h"
#include "support/scoped_env.h"

namespace tilescale {
namespace {

constexpr const char* kVar = "TILESCALE_MEMORY_LIMIT";

// TILESCALE_MEMORY_LIMIT set to value (unset for nullopt) within a scope.
struct ScopedLimit : test::ScopedEnv {
  explicit ScopedLimit(std::optional<std::string> value) : ScopedEnv(kVar, std::move(value)) {}
};

TEST(MemoryBudget, VariableTakesBytesOrKMGSuffixes) {
  {
    ScopedLimit l("4096");
    EXPECT_EQ(memory_budget_bytes(), 4096);
  }
  {
    ScopedLimit l("3K");
    EXPECT_EQ(memory_budget_bytes(), 3 * 1024);
  }
  {
    ScopedLimit l("512M");
    EXPECT_EQ(memory_budget_bytes(), int64_t{512} << 20);
  }
  {
    ScopedLimit l("2g");
    EXPECT_EQ(memory_budget_bytes(), int64_t{2} << 30);
  }
}

TEST(MemoryBudget, MalformedVariableIsAnErrorNamingIt) {
  for (const char* bad : {"abc", "12X", "-5", "0", "1.5G", "99999999999G", "1234567890123456789"}) {
    SCOPED_TRACE(bad);
    ScopedLimit l{std::string(bad)};
    EXPECT_INPUT_ERROR(memory_budget_bytes(), kVar, "");
  }
}

TEST(MemoryBudget, DefaultIsAtMostHalfThePhysicalMemory) {
  ScopedLimit l(std::nullopt);
  const double physical = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
  const int64_t budget = memory_budget_bytes();
  EXPECT_GT(budget, 0);
  EXPECT_LE(double(budget), physical / 2 + 1);
}

TEST(MemoryBudget, CheckRefusesMoreThanTheBudgetNamingFileWhatAndSizes) {
  ScopedLimit l("1M");
  EXPECT_NO_THROW(check_memory_budget("m.onnx", "x", 1024.0 * 1024));
  EXPECT_INPUT_ERROR(check_memory_budget("m.onnx", "keeping 9 samples", 1024.0 * 1024 + 1),
                     "m.onnx",
                     "keeping 9 samples needs 1.0 MiB, more than the memory budget of 1.0 MiB "
                     "(set by TILESCALE_MEMORY_LIMIT)");
  // Sizes a hostile file can claim, beyond int64 and infinite, are refused, not wrapped around.
  EXPECT_INPUT_ERROR(check_memory_budget("m.onnx", "y", 1e30), "m.onnx",
                     "more than the memory budget");
  EXPECT_INPUT_ERROR(check_memory_budget("m.onnx", "y", std::numeric_limits<double>::infinity()),
                     "m.onnx", "memory budget");
}

TEST(MemoryBudget, SamplesWithinBudgetCapsLowersOrRefuses) {
  ScopedLimit l("1000");
  EXPECT_EQ(samples_within_budget("m", "run", 100, 2, 3), 3);  // 3 x 2 x 100 fits
  EXPECT_EQ(samples_within_budget("m", "run", 100, 2, 8), 5);  // 8 would need 1600
  EXPECT_EQ(samples_within_budget("m", "run", 500, 2, 8), 1);
  EXPECT_INPUT_ERROR(samples_within_budget("m", "run", 501, 2, 8), "m",
                     "run for one sample on each of 2 threads needs 1002 B");
}

TEST(MemoryBudget, FormatsSizesInBinaryUnits) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(3.0 * 1024 * 1024), "3.0 MiB");
  EXPECT_EQ(format_bytes(4.0 * 1024 * 1024 * 1024), "4.0 GiB");
}

}  // namespace
}  // namespace tilescale
