#include "hutch/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

namespace hutch {

namespace {
int open_lock_file(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("cannot open lock file " + file.string());
  return fd;
}
}  // namespace

FileLock::FileLock(const std::filesystem::path& file, Mode mode) {
  fd_ = open_lock_file(file);
  while (::flock(fd_, mode == Mode::kShared ? LOCK_SH : LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int e = errno;
    ::close(fd_);
    fd_ = -1;
    throw system_error("cannot lock " + file.string(), e);
  }
}

FileLock FileLock::try_lock(const std::filesystem::path& file, Mode mode) {
  FileLock lock;
  int fd = open_lock_file(file);
  if (::flock(fd, (mode == Mode::kShared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) return lock;
    throw system_error("cannot lock " + file.string(), e);
  }
  lock.fd_ = fd;
  return lock;
}

FileLock::~FileLock() { unlock(); }

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    unlock();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void FileLock::unlock() {
  if (fd_ >= 0) {
    ::close(fd_);  // closing the only descriptor releases the flock
    fd_ = -1;
  }
}

}  // namespace hutch
