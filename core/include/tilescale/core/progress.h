// A progress bar on stderr, drawn only when stderr is a terminal (never in logs or pipes).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tilescale {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  ~ProgressBar();
  void update(int64_t done);  // redraws at most every 100 ms
  void finish();              // clears the line

 private:
  std::string label_;
  int64_t total_;
  bool active_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace tilescale
