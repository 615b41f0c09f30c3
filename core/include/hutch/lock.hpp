// flock(2) locks on files: what keeps concurrent hutch processes from corrupting the store.
#pragma once

#include <filesystem>

#include "hutch/error.hpp"

namespace hutch {

class HUTCH_API FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  FileLock() = default;
  FileLock(const std::filesystem::path& file, Mode mode);
  ~FileLock();
  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // Non-blocking: an empty optional-like lock (held() false) when someone else holds it.
  static FileLock try_lock(const std::filesystem::path& file, Mode mode);
  bool held() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void unlock();

 private:
  int fd_ = -1;
};

}  // namespace hutch
