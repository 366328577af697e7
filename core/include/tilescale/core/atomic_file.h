// Atomic output: results appear complete under their final name or not at all.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <vector>

namespace tilescale {

// The temporary an atomic write of `path` by process `pid` uses, in the same directory:
// "<path>.tmp.<tag>.<pid>", where <tag> is 8 hex digits of a hash of the host name and the pid
// namespace. Processes with equal tags share a kernel and pid namespace, so their pids can be
// compared; runs of other machines (a shared NFS folder) or other containers get other tags.
std::string atomic_temp_path(const std::string& path, pid_t pid = ::getpid());

// Removes the temporaries of `path` that runs killed by a signal left behind: siblings named
// exactly atomic_temp_path(path, pid), with this process's tag, for a pid that no longer exists
// (kill(pid, 0) fails with ESRCH). A file is unlinked; a directory (a bundle's temporary) is
// removed with its contents. Untouched: temporaries of live processes (also of an unrelated process
// that reuses the pid), of other tags (another machine or container: their liveness cannot be seen
// from here), "<dir>.old.<pid>" (which may hold the only copy of an old bundle) and every other
// name. The one race left: a pid found dead and reused, within microseconds, by a new run writing
// the same output; that run then fails with an error, and no data is lost. Best effort: what cannot
// be removed stays, and the next run tries again. Returns the file names removed, sorted.
std::vector<std::string> remove_stale_temporaries(const std::string& path);

// Writes to atomic_temp_path(path) in the same directory, fsyncs, then rename()s over path, so a
// reader or a killed run sees either the old file or the complete new one. If commit() is never
// called because an exception unwinds, the temporary file is removed and path is left untouched. A
// process killed by a signal (SIGKILL, or SIGINT: no handler is installed) leaves the temporary
// behind; no reader looks at it, and the next AtomicFile for the same path removes it
// (remove_stale_temporaries; tests/cli/atomic_kill_test.cpp).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t bytes);
  void write(const std::string& text) { write(text.data(), text.size()); }
  // Flushes, fsyncs and renames onto the final path. Throws InputError naming the path on failure.
  void commit();

 private:
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
};

// Convenience: the whole content at once.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Reads a whole file; throws InputError naming the path if it cannot be opened or read.
std::string read_file(const std::string& path);

}  // namespace tilescale
