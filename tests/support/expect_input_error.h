// EXPECT that a call throws tilescale::InputError whose message is "<source>: ..." and contains
// problem.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <exception>
#include <string>

#include "tilescale/core/error.h"

namespace tilescale::test {

// Runs f and returns the InputError message, or records a failure if f returns or throws anything
// else.
template <typename F>
std::string input_error_message(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-InputError exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

// The message must start with "<source>: " (it names the file or option) and contain problem.
#define EXPECT_INPUT_ERROR(call, source, problem)                                   \
  do {                                                                              \
    const std::string msg_ = ::tilescale::test::input_error_message([&] { call; }); \
    EXPECT_THAT(msg_, ::testing::StartsWith(std::string(source) + ": "));           \
    EXPECT_THAT(msg_, ::testing::HasSubstr(problem));                               \
  } while (0)

}  // namespace tilescale::test
