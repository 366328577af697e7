#include "posix_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tilescale/core/error.h"

namespace tilescale::posix_detail {

std::string errno_text(int err) { return std::strerror(err); }

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

int Fd::close() {
  const int rc = ::close(fd_);
  fd_ = -1;
  return rc == 0 ? 0 : errno;
}

void write_all(int fd, const char* data, std::size_t bytes, const std::string& display) {
  while (bytes > 0) {
    const ssize_t n = ::write(fd, data, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_input(display, "write failed: " + errno_text(errno));
    }
    data += n;
    bytes -= static_cast<std::size_t>(n);
  }
}

}  // namespace tilescale::posix_detail
