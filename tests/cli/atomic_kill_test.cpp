// Atomic outputs under kill: `tilescale quantize --out DIR` and `tilescale eval --dump-logits FILE`
// killed with SIGKILL or SIGINT at seeded random moments leave DIR (FILE) byte-identical either to
// the older output that was there before or to the complete new one (the bytes of an uninterrupted
// reference run), never a mix, a partial file or a missing output.
//
// Stale temporaries: a run killed while writing leaves its temporary "<DIR>.tmp.<tag>.<pid>" (or
// "<FILE>...") behind; the program installs no signal handler, so SIGINT leaves it too. They are
// never read as the output, and the next run removes them all, since their pids are dead, and
// writes the complete new output (checked below).
//
// The seed comes from $TILESCALE_TEST_SEED, else from the clock; it is printed, and a failure
// message repeats it with every delay.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/test_files.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/npy.h"
#include "tilescale/quant/bundle.h"

namespace tilescale {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kModel = std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx";

uint64_t test_seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("TILESCALE_TEST_SEED");
    const uint64_t s = env && *env ? std::strtoull(env, nullptr, 10)
                                   : static_cast<uint64_t>(Clock::now().time_since_epoch().count());
    std::printf("atomic kill test: seed %llu (rerun with TILESCALE_TEST_SEED=%llu)\n",
                static_cast<unsigned long long>(s), static_cast<unsigned long long>(s));
    return s;
  }();
  return seed;
}

// Starts the tilescale binary with args, output to log; returns its pid. SIGINT is reset to its
// default action in the child, since a test runner started in the background may ignore it.
pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv_s = {TILESCALE_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);  // else the child's freopen() writes the parent's buffered lines again
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGINT, SIG_DFL);
    if (std::freopen(log.c_str(), "w", stdout) && std::freopen(log.c_str(), "a", stderr))
      ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for pid; returns its exit code, or 128 + the signal that ended it.
int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Runs to completion; returns the exit code.
int run(const std::vector<std::string>& args, const std::string& log) {
  return wait_for(spawn(args, log));
}

// A file's bytes, or a directory's files (name -> bytes); what the test compares.
using Snapshot = std::map<std::string, std::string>;

Snapshot snapshot(const std::string& path) {
  Snapshot s;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::directory_iterator(path))
      s[e.path().filename().string()] =
          e.is_regular_file() ? test::read_bytes(e.path().string()) : "<not a regular file>";
  } else if (fs::exists(path)) {
    s[""] = test::read_bytes(path);
  }
  return s;
}

void put_snapshot(const Snapshot& s, const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (s.count("")) {
    test::write_bytes(path, s.at(""));
    return;
  }
  fs::create_directory(path);
  for (const auto& [name, bytes] : s) test::write_bytes(path + "/" + name, bytes);
}

// Names in dir starting with prefix, sorted.
std::vector<std::string> names_with_prefix(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// How a run is interrupted: after a fixed delay, or a random moment within the first few
// milliseconds after its temporary output appears (the write window, which a uniform delay rarely
// hits in a run that mostly computes).
struct Kill {
  int signal = SIGKILL;
  double delay_s = 0.0;          // from the start (uniform), or from the temporary's appearance
  bool in_write_window = false;  // delay counts from the temporary's appearance
};

std::string describe(const Kill& k) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s %s %.4f s", k.signal == SIGKILL ? "SIGKILL" : "SIGINT",
                k.in_write_window ? "after the temporary appeared +" : "at", k.delay_s);
  return buf;
}

class AtomicKill : public ::testing::Test {
 protected:
  // One output kind: the command writing `target`, the older output's bytes, the new output's.
  struct Output {
    std::string target;  // DIR or FILE
    std::vector<std::string> new_args, old_args;
    Snapshot old_bytes, new_bytes;
    double seconds = 0.0;  // wall time of an uninterrupted run
  };

  std::string log() const { return dir_.file("log"); }

  // Makes the old and reference outputs at other paths (the command writes to target).
  void make_references(Output& o,
                       const std::function<std::vector<std::string>(const std::vector<std::string>&,
                                                                    const std::string&)>& at) {
    const std::string old_path = dir_.file("reference_old"), new_path = dir_.file("reference_new");
    ASSERT_EQ(run(at(o.old_args, old_path), log()), 0) << test::read_bytes(log());
    const auto t0 = Clock::now();
    ASSERT_EQ(run(at(o.new_args, new_path), log()), 0) << test::read_bytes(log());
    o.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    o.old_bytes = snapshot(old_path);
    o.new_bytes = snapshot(new_path);
    ASSERT_FALSE(o.new_bytes.empty());
    ASSERT_NE(o.old_bytes, o.new_bytes) << "the old output must differ from the new one";
  }

  // The kills: 8 SIGKILLs at uniform delays over 1.2x the run's time, 4 SIGKILLs in the write
  // window, then SIGINT once at a uniform delay and once in the write window.
  std::vector<Kill> kills(double seconds, uint64_t salt) const {
    std::mt19937_64 rng(test_seed() ^ salt);
    std::uniform_real_distribution<double> uniform(0.0, 1.2 * seconds), window(0.0, 0.0005);
    std::vector<Kill> k;
    for (int i = 0; i < 8; ++i) k.push_back({SIGKILL, uniform(rng), false});
    for (int i = 0; i < 4; ++i) k.push_back({SIGKILL, window(rng), true});
    k.push_back({SIGINT, uniform(rng), false});
    k.push_back({SIGINT, window(rng), true});
    return k;
  }

  // Starts the command over the old output, interrupts it, and checks what is left.
  void kill_and_check(const Output& o, const Kill& k, int* saw_old, int* saw_new) {
    SCOPED_TRACE(describe(k) + ", seed " + std::to_string(test_seed()));
    put_snapshot(o.old_bytes, o.target);
    const pid_t pid = spawn(o.new_args, log());
    ASSERT_GT(pid, 0);
    const std::string tmp = atomic_temp_path(o.target, pid);
    const auto start = Clock::now();
    if (k.in_write_window) {
      // Poll for the temporary; give up (and let the run finish) after 3x the run's time.
      // Busy-polls: the window is well under a millisecond for the smaller outputs.
      struct stat st;
      while (::stat(tmp.c_str(), &st) != 0 &&
             Clock::now() - start < std::chrono::duration<double>(3 * o.seconds)) {
      }
      const auto seen = Clock::now();
      while (Clock::now() - seen < std::chrono::duration<double>(k.delay_s)) {
      }
    } else {
      std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(k.delay_s)));
    }
    ::kill(pid, k.signal);
    const int code = wait_for(pid);
    EXPECT_TRUE(code == 0 || code == 128 + k.signal) << "exit " << code << test::read_bytes(log());

    const Snapshot left = snapshot(o.target);
    const bool is_old = left == o.old_bytes, is_new = left == o.new_bytes;
    EXPECT_TRUE(is_old || is_new) << o.target << " is neither the old output nor the new one ("
                                  << left.size() << " files)";
    if (code == 0) {
      EXPECT_TRUE(is_new) << "a run that finished must leave the new output";
    }
    *saw_old += is_old;
    *saw_new += is_new;
    const std::string stale =
        fs::exists(tmp) ? ", stale " + tmp.substr(tmp.rfind('/') + 1) + " left" : "";
    std::printf("  %-52s exit %3d -> %s%s\n", describe(k).c_str(), code,
                is_old ? "old" : (is_new ? "new" : "MIXED"), stale.c_str());
  }

  // The whole scenario for one output kind.
  void check_output(Output& o, uint64_t salt) {
    const std::string parent = fs::path(o.target).parent_path().string();
    const std::string base = fs::path(o.target).filename().string();
    int saw_old = 0, saw_new = 0;
    for (const Kill& k : kills(o.seconds, salt)) kill_and_check(o, k, &saw_old, &saw_new);
    std::printf("  %d kills left the old output, %d the new one\n", saw_old, saw_new);

    // Only the output and its temporaries are there. A later run replaces the output with the
    // complete new one and removes every stale temporary (all their pids are dead by now).
    for (const std::string& name : names_with_prefix(parent, base))
      EXPECT_TRUE(name == base || name.compare(0, base.size() + 5, base + ".tmp.") == 0) << name;
    const std::vector<std::string> stale = names_with_prefix(parent, base + ".tmp.");
    put_snapshot(o.old_bytes, o.target);
    ASSERT_EQ(run(o.new_args, log()), 0) << test::read_bytes(log());
    EXPECT_EQ(snapshot(o.target), o.new_bytes);
    const std::vector<std::string> left = names_with_prefix(parent, base + ".tmp.");
    EXPECT_TRUE(left.empty()) << left.size() << " temporaries left, the first " << left.front();
    std::printf("  a later run wrote the complete output and removed %zu stale temporaries\n",
                stale.size());
  }

  test::TempDir dir_;
};

TEST_F(AtomicKill, KilledQuantizeLeavesTheOldBundleOrTheCompleteNewOne) {
  Output o;
  o.target = dir_.file("bundle");
  const std::vector<std::string> common = {"quantize", "--model",  kModel,   "--dataset",
                                           "mnist",    "--search", "minmax", "--calib",
                                           "8",        "--out",    o.target};
  o.new_args = common;
  o.old_args = common;
  o.old_args.insert(o.old_args.end(), {"--wbits", "3"});  // an older bundle with other bytes
  make_references(o, [](std::vector<std::string> args, const std::string& path) {
    args[10] = path;
    return args;
  });
  if (HasFatalFailure()) return;
  std::printf("quantize: an uninterrupted run takes %.3f s\n", o.seconds);
  check_output(o, 1);
  // The complete new bundle is a readable bundle.
  EXPECT_NO_THROW(quant::read_bundle(o.target));
}

TEST_F(AtomicKill, KilledEvalLeavesTheOldLogitsOrTheCompleteNewOnes) {
  Output o;
  o.target = dir_.file("logits.npy");
  const std::vector<std::string> common = {"eval",  "--model",       kModel,  "--dataset",
                                           "mnist", "--limit",       "1000",  "--threads",
                                           "1",     "--dump-logits", o.target};
  o.new_args = common;
  o.old_args = common;
  o.old_args[6] = "200";  // an older file of 200 images
  make_references(o, [](std::vector<std::string> args, const std::string& path) {
    args[10] = path;
    return args;
  });
  if (HasFatalFailure()) return;
  std::printf("eval: an uninterrupted run takes %.3f s\n", o.seconds);
  check_output(o, 2);
  EXPECT_EQ(read_npy(o.target).shape, (std::vector<int64_t>{1000, 10}));
}

}  // namespace
}  // namespace tilescale
