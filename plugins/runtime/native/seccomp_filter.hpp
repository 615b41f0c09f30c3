// The OCI spec's linux.seccomp as a libseccomp filter: built by `create` in the parent,
// before the clone, and loaded by the container's process just before it gives up its
// privileges (or, with no_new_privileges, just before its exec).
#pragma once

#include <linux/filter.h>

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

namespace hutch::runtime::native {

// Checks an OCI linux.seccomp object (actions, syscall names, argument comparisons,
// architectures, flags); throws hutch::Error naming the field ("linux.seccomp.syscalls[2].action").
void check_seccomp(const nlohmann::json& seccomp);

class SeccompFilter {
 public:
  // Builds the filter for `seccomp` (checked as check_seccomp does). Syscall names that this
  // libseccomp does not know are skipped, as runc and crun do.
  explicit SeccompFilter(const nlohmann::json& seccomp);
  // The same, with the compiled BPF program kept in `cache_dir` under a digest of the object
  // and libseccomp's version, and read back from there next time: building the filter for
  // docker's profile costs milliseconds, reading it back microseconds (crun caches it too).
  SeccompFilter(const nlohmann::json& seccomp, const std::filesystem::path& cache_dir);
  ~SeccompFilter();
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;

  // In the container's process: loads the filter. False with errno set when it could not.
  bool load() const noexcept;

 private:
  void* ctx_ = nullptr;               // scmp_filter_ctx, when built here
  std::vector<sock_filter> program_;  // when read from the cache
  unsigned int flags_ = 0;            // SECCOMP_FILTER_FLAG_* for the cached program
};

}  // namespace hutch::runtime::native
