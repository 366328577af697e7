#include "tilescale/core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace tilescale {

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)),
      total_(total),
      active_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done) {
  if (!active_ || total_ <= 0) return;
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 40;
  const int filled = static_cast<int>(kWidth * done / total_);
  char eta[48] = "";
  if (done > 0 && done < total_) {
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const long long left = static_cast<long long>(elapsed * (total_ - done) / done + 0.5);
    std::snprintf(eta, sizeof eta, "  ETA %lldm%02llds", left / 60, left % 60);
  }
  std::fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld%s\033[K", label_.c_str(), filled,
               "########################################", kWidth - filled, "",
               static_cast<long long>(done), static_cast<long long>(total_), eta);
  std::fflush(stderr);
}

void ProgressBar::clear() {
  if (!active_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  last_draw_ = {};
}

void ProgressBar::finish() {
  if (!active_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  active_ = false;
}

}  // namespace tilescale
