#include "tilescale/core/atomic_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <filesystem>
#include <system_error>

#include "posix_file.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/error.h"

namespace tilescale {
namespace {

namespace fs = std::filesystem;
using posix_detail::errno_text;
using posix_detail::Fd;

// Writes name inside the directory open as dirfd, fsynced. display names the final path in errors.
void write_file_at(int dirfd, const std::string& name, const std::string& bytes,
                   const std::string& display) {
  Fd fd(::openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) fail_input(display, "cannot create: " + errno_text(errno));
  posix_detail::write_all(fd.get(), bytes.data(), bytes.size(), display);
  if (::fsync(fd.get()) != 0) fail_input(display, "fsync failed: " + errno_text(errno));
  if (const int err = fd.close()) fail_input(display, "close failed: " + errno_text(err));
}

// Makes a rename inside path durable. Best effort: it runs after the commit, when the new directory
// is already in place and an exception would wrongly report the write as failed.
void fsync_dir_best_effort(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) ::fsync(fd.get());
}

// Removes a directory tree; on exception paths errors are ignored (best effort).
void remove_tree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// Removes the temporary directory when the write ends: the partial new directory after an error,
// the old one after an exchange, nothing after a plain rename (the name is gone then).
class TempDirGuard {
 public:
  explicit TempDirGuard(std::string path) : path_(std::move(path)) {}
  ~TempDirGuard() { remove_tree(path_); }
  TempDirGuard(const TempDirGuard&) = delete;
  TempDirGuard& operator=(const TempDirGuard&) = delete;

 private:
  std::string path_;
};

// True if path is a directory that may be replaced: empty, or of this kind.
bool replaceable_dir(const std::string& path, const DirKind& kind) {
  std::error_code ec;
  if (fs::is_empty(path, ec) && !ec) return true;
  return kind.is_own(path);
}

// Whether target exists (as a directory that may be replaced); throws for anything else there.
bool check_existing(const std::string& target, const DirKind& kind) {
  struct stat st;
  if (::lstat(target.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) fail_input(target, "exists and is not a directory");
    if (!replaceable_dir(target, kind))
      fail_input(target, "exists and is neither empty nor " + kind.description + " (" + kind.rule +
                             "); refusing to replace it");
    return true;
  }
  if (errno != ENOENT) fail_input(target, "cannot access: " + errno_text(errno));
  return false;
}

// Fills the fresh directory tmp with the files and makes them durable.
void write_files(const std::string& tmp, const std::string& target,
                 const std::vector<DirFile>& files) {
  Fd dirfd(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dirfd.get() < 0) fail_input(tmp, "cannot open: " + errno_text(errno));
  for (const DirFile& f : files)
    write_file_at(dirfd.get(), f.name, *f.bytes, target + "/" + f.name);
  if (::fsync(dirfd.get()) != 0)
    fail_input(tmp, "cannot fsync the directory: " + errno_text(errno));
}

// No RENAME_EXCHANGE on this file system: moves the old directory aside, then renames. A crash
// between the two renames leaves the old directory at "<dir>.old.<pid>[.<n>]", possibly its only
// copy, so an existing name of that form is never reused or removed: the first free one is.
void replace_by_two_renames(const std::string& tmp, const std::string& target,
                            const DirKind& kind) {
  std::string old = target + ".old." + std::to_string(::getpid());
  struct stat old_st;
  for (int n = 1; ::lstat(old.c_str(), &old_st) == 0 || errno != ENOENT; ++n) {
    if (n > 1000)
      fail_input(target, "no free name to move the old " + kind.noun + " aside as " + old);
    old = target + ".old." + std::to_string(::getpid()) + "." + std::to_string(n);
  }
  if (::rename(target.c_str(), old.c_str()) != 0)
    fail_input(target, "cannot move the old " + kind.noun + " aside: " + errno_text(errno));
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    ::rename(old.c_str(), target.c_str());
    fail_input(target, "cannot rename " + tmp + " into place: " + errno_text(err));
  }
  remove_tree(old);
}

// Puts tmp in target's place. A new name: plain rename. An existing directory: both names swapped
// in one step, after which the old directory lives at tmp (the caller's guard removes it).
void commit(const std::string& tmp, const std::string& target, bool exists, const DirKind& kind) {
  if (!exists) {
    if (::rename(tmp.c_str(), target.c_str()) == 0) return;
    if (errno != EEXIST && errno != ENOTEMPTY)
      fail_input(target, "cannot rename " + tmp + " into place: " + errno_text(errno));
    if (!replaceable_dir(target, kind))  // created by someone else meanwhile
      fail_input(target,
                 "appeared while writing and is not " + kind.description + "; not replaced");
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) return;
  const int err = errno;
  if (err != EINVAL && err != ENOSYS && err != EOPNOTSUPP)
    fail_input(target, "cannot swap in the new " + kind.noun + ": " + errno_text(err));
  replace_by_two_renames(tmp, target, kind);
}

}  // namespace

std::string normalize_dir_name(const std::string& dir, const DirKind& kind) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const std::string base = fs::path(d).filename().string();
  if (d.empty() || base.empty() || base == "." || base == ".." || d == "/")
    fail_input(dir.empty() ? kind.noun : dir, "not a usable " + kind.noun + " directory name");
  return d;
}

void write_dir_atomic(const std::string& dir, const std::vector<DirFile>& files,
                      const DirKind& kind) {
  const std::string target = normalize_dir_name(dir, kind);
  const bool exists = check_existing(target, kind);
  remove_stale_temporaries(target);  // left by killed runs of this host
  const std::string tmp = atomic_temp_path(target);
  remove_tree(tmp);  // left over by a killed run that had the same pid
  if (::mkdir(tmp.c_str(), 0777) != 0)
    fail_input(target, "cannot create the temporary directory " + tmp + ": " + errno_text(errno));
  TempDirGuard guard(tmp);
  write_files(tmp, target, files);
  commit(tmp, target, exists, kind);
  std::string parent = fs::path(target).parent_path().string();
  if (parent.empty()) parent = ".";
  fsync_dir_best_effort(parent);
}

DirReader::DirReader(const std::string& dir, const DirKind& kind)
    : path_(normalize_dir_name(dir, kind)) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0)
    fail_input(path_, "cannot open the " + kind.noun + " directory: " + errno_text(errno));
}

DirReader::~DirReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::string DirReader::read(const std::string& name) const {
  const std::string display = path_of(name);
  Fd fd(::openat(fd_, name.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail_input(display, "cannot open: " + errno_text(errno));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail_input(display, "cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail_input(display, "not a regular file");
  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_input(display, "read error: " + errno_text(errno));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace tilescale
