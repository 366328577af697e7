#include "tilescale/core/memory_budget.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

#include "tilescale/core/error.h"

namespace tilescale {
namespace {

constexpr const char* kLimitVar = "TILESCALE_MEMORY_LIMIT";

int64_t parse_limit(const std::string& text) {
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0 || i > 18)
    fail_input(kLimitVar, "'" + text + "' is not a byte count (e.g. 4096, 512M, 2G)");
  int64_t value = std::stoll(text.substr(0, i));
  const std::string suffix = text.substr(i);
  int shift = 0;  // K, M, G: powers of 1024
  if (!suffix.empty()) {
    const std::size_t unit = suffix.size() == 1
                                 ? std::string("KMG").find(static_cast<char>(
                                       std::toupper(static_cast<unsigned char>(suffix[0]))))
                                 : std::string::npos;
    if (unit == std::string::npos)
      fail_input(kLimitVar, "unknown suffix '" + suffix + "' (use K, M or G)");
    shift = 10 * static_cast<int>(unit + 1);
  }
  if (value < 1) fail_input(kLimitVar, "must be at least 1 byte");
  if (value > (std::numeric_limits<int64_t>::max() >> shift)) fail_input(kLimitVar, "too large");
  return value << shift;
}

// A limit file's number, or int64 max if it is absent, "max" or not a number.
int64_t read_limit_file(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text.empty() || text.size() > 18) return std::numeric_limits<int64_t>::max();
  for (char c : text)
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::numeric_limits<int64_t>::max();
  return std::stoll(text);
}

// The smallest memory limit of this process's cgroups and their ancestors, v2 (memory.max) and v1
// (memory.limit_in_bytes), from the paths in /proc/self/cgroup; int64 max if there is none. A
// folder the mount does not show (a cgroup namespace's root shows as "/") is skipped.
int64_t cgroup_limit() {
  int64_t limit = std::numeric_limits<int64_t>::max();
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    // "<id>:<controllers>:<path>"; v2 is "0::<path>".
    const std::size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    std::string base, file;
    if (line.compare(0, a, "0") == 0 && controllers.empty()) {
      base = "/sys/fs/cgroup";
      file = "memory.max";
    } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
      base = "/sys/fs/cgroup/memory";
      file = "memory.limit_in_bytes";
    } else {
      continue;
    }
    for (std::string dir = base + line.substr(b + 1);; dir = dir.substr(0, dir.rfind('/'))) {
      while (dir.size() > base.size() && dir.back() == '/') dir.pop_back();
      limit = std::min(limit, read_limit_file(dir + "/" + file));
      if (dir.size() <= base.size()) break;
    }
  }
  return limit;
}

// Half the machine's limit, read once per process: the importer asks for every constant it
// expands, and these files do not change during a run.
int64_t machine_budget() {
  static const int64_t budget = [] {
    int64_t limit = std::numeric_limits<int64_t>::max();
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    if (pages > 0 && page > 0) limit = std::min<int64_t>(limit, int64_t{pages} * page);
    limit = std::min(limit, cgroup_limit());
    struct rlimit rl;
    if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
      limit = std::min<int64_t>(limit, static_cast<int64_t>(std::min<rlim_t>(
                                           rl.rlim_cur, std::numeric_limits<int64_t>::max())));
    return limit / 2;
  }();
  return budget;
}

}  // namespace

int64_t memory_budget_bytes() {
  if (const char* env = std::getenv(kLimitVar); env && *env) return parse_limit(env);
  return machine_budget();
}

std::string format_bytes(double bytes) {
  char buf[64];
  if (bytes < 1024) {
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  } else if (bytes < 1024.0 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024);
  } else if (bytes < 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
  }
  return buf;
}

void check_memory_budget(const std::string& file, const std::string& what, double bytes) {
  const int64_t budget = memory_budget_bytes();
  if (!(bytes <= static_cast<double>(budget)))
    fail_input(file, what + " needs " + format_bytes(bytes) + ", more than the memory budget of " +
                         format_bytes(static_cast<double>(budget)) + " (" +
                         (std::getenv(kLimitVar) && *std::getenv(kLimitVar)
                              ? std::string("set by ") + kLimitVar
                              : std::string("half of this machine's memory; ") + kLimitVar +
                                    " sets another") +
                         ")");
}

int64_t samples_within_budget(const std::string& file, const std::string& what,
                              double bytes_per_sample, int workers, int64_t wanted) {
  const double per_round = bytes_per_sample * std::max(workers, 1);
  check_memory_budget(
      file, what + " for one sample on each of " + std::to_string(workers) + " threads", per_round);
  if (per_round <= 0) return wanted;
  const double fit = std::floor(static_cast<double>(memory_budget_bytes()) / per_round);
  return fit >= static_cast<double>(wanted) ? wanted
                                            : std::max<int64_t>(1, static_cast<int64_t>(fit));
}

}  // namespace tilescale
