// Atomic output: results appear complete under their final name or not at all.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <vector>

namespace tilescale {

// The temporary an atomic write of `path` by process `pid` of this host uses, in the same
// directory:
// "<path>.tmp.<host>.<pid>", where <host> is 8 hex digits of a hash of the host name. The host part
// tells a dead run of this machine from a live run of another one writing into a shared (NFS)
// folder.
std::string atomic_temp_path(const std::string& path, pid_t pid = ::getpid());

// Removes the temporaries of `path` that runs killed by a signal left behind: siblings named
// exactly atomic_temp_path(path, pid) for a pid that no longer exists on this host (kill(pid, 0)
// fails with ESRCH). A file is unlinked; a directory (a bundle's temporary) is removed with its
// contents. Untouched: temporaries of live processes (also of an unrelated process that reuses the
// pid), of other hosts, "<dir>.old.<pid>" (which may hold the only copy of an old bundle) and every
// other name. Best effort: what cannot be removed stays, and the next run tries again. Returns the
// file names removed, sorted.
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
