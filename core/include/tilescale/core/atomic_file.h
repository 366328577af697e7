// Atomic output: results appear complete under their final name or not at all.
#pragma once

#include <cstddef>
#include <string>

namespace tilescale {

// Writes to "<path>.tmp.<pid>" in the same directory, fsyncs, then rename()s over path, so a reader
// or a killed run sees either the old file or the complete new one. If commit() is never called
// because an exception unwinds, the temporary file is removed and path is left untouched. A process
// killed by a signal (SIGKILL, or SIGINT: no handler is installed) leaves the temporary behind; no
// reader looks at it and later runs do not remove it (tests/cli/atomic_kill_test.cpp).
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
