// A file descriptor that closes itself.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <utility>

#include "hutch/error.hpp"

namespace hutch {

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd = std::exchange(o.fd, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd; }
  void reset(int to = -1) {
    if (fd >= 0) ::close(fd);
    fd = to;
  }

  int fd;  // public, for the raw-syscall code that fills it in place
};

// Opens a directory for reading (following symlinks in `dir` itself); throws naming it.
inline UniqueFd open_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open " + dir.string());
  return UniqueFd(fd);
}

}  // namespace hutch
