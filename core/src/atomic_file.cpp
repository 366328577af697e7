#include "tilescale/core/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "posix_file.h"
#include "tilescale/core/error.h"

namespace tilescale {

namespace {

namespace fs = std::filesystem;

// 8 hex digits of FNV-1a over the host name and the inode of this process's pid namespace: pids
// are comparable only between processes whose tags match, which share a kernel and a namespace
// (containers on one machine may share a host name, never a pid namespace inode).
const std::string& temp_tag() {
  static const std::string tag = [] {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) name[0] = '\0';
    struct stat ns;
    const unsigned long long ns_inode =
        ::stat("/proc/self/ns/pid", &ns) == 0 ? static_cast<unsigned long long>(ns.st_ino) : 0;
    const std::string id = std::string(name) + "/" + std::to_string(ns_inode);
    uint32_t h = 2166136261u;
    for (char c : id) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", h);
    return std::string(hex);
  }();
  return tag;
}

// The pid in `suffix` if it is all decimal digits of a positive pid_t, else -1.
pid_t parse_pid(const std::string& suffix) {
  if (suffix.empty() || suffix.size() > 9 || suffix[0] == '0') return -1;
  pid_t pid = 0;
  for (char c : suffix) {
    if (c < '0' || c > '9') return -1;
    pid = pid * 10 + (c - '0');
  }
  return pid;
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

}  // namespace

std::string atomic_temp_path(const std::string& path, pid_t pid) {
  return path + ".tmp." + temp_tag() + "." + std::to_string(pid);
}

std::vector<std::string> remove_stale_temporaries(const std::string& path) {
  const fs::path target(path);
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = target.filename().string() + ".tmp." + temp_tag() + ".";
  std::vector<std::string> removed;
  std::error_code ec;
  // Iterated with error codes throughout: a folder that cannot be read is left as it is.
  for (fs::directory_iterator it(parent, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    const std::string name = entry.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const pid_t pid = parse_pid(name.substr(prefix.size()));
    if (pid <= 0 || pid == ::getpid() || process_exists(pid)) continue;
    std::error_code rm;
    fs::remove_all(entry.path(), rm);  // does not follow a symlink: removes the link itself
    if (!rm) removed.push_back(name);
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  remove_stale_temporaries(path_);
  tmp_path_ = atomic_temp_path(path_);
  fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_input(path_, std::string("cannot create output file: ") + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_path_.c_str());
  }
}

void AtomicFile::write(const void* data, std::size_t bytes) {
  posix_detail::write_all(fd_, static_cast<const char*>(data), bytes, path_);
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail_input(path_, std::string("fsync failed: ") + std::strerror(errno));
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(tmp_path_.c_str());
    fail_input(path_, std::string("close failed: ") + std::strerror(errno));
  }
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp_path_.c_str());
    fail_input(path_, std::string("rename failed: ") + std::strerror(err));
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

std::string read_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    fail_input(path, std::string("cannot open: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail_input(path, "not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(path, std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail_input(path, "read error");
  return ss.str();
}

}  // namespace tilescale
