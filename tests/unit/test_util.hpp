#pragma once
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "hutch/paths.hpp"

namespace hutch::test {
// A temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/hutch-unit-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { remove_tree(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};
}  // namespace hutch::test
