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
  // Redraws at most every 100 ms: the bar, done/total and, once something is done, the time left
  // at the average rate so far ("ETA 1m05s").
  void update(int64_t done);
  void clear();   // erases the line (so a log line can be printed); the next update redraws it
  void finish();  // clears the line for good

 private:
  std::string label_;
  int64_t total_;
  bool active_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace tilescale
