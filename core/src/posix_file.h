// POSIX file descriptors for the atomic outputs (atomic_file.cpp, atomic_dir.cpp): one owner of a
// descriptor and one write loop, so both kinds of output report I/O failures the same way.
#pragma once

#include <string>

namespace tilescale::posix_detail {

// strerror(err) as a string.
std::string errno_text(int err);

// Owns a descriptor; closes it on destruction unless close() already did.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports close()'s result (0 or errno).
  int close();

 private:
  int fd_;
};

// Writes all bytes to fd, retrying on EINTR and short writes. Throws InputError
// "<display>: write failed: ..." on an error.
void write_all(int fd, const char* data, std::size_t bytes, const std::string& display);

}  // namespace tilescale::posix_detail
