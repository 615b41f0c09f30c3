// The OCI spec's linux.seccomp as a libseccomp filter: built by `create` in the parent,
// before the clone, and loaded by the container's process just before it gives up its
// privileges (or, with no_new_privileges, just before its exec).
#pragma once

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
  ~SeccompFilter();
  SeccompFilter(const SeccompFilter&) = delete;
  SeccompFilter& operator=(const SeccompFilter&) = delete;

  // In the container's process: loads the filter. False with errno set when it could not.
  bool load() const noexcept;

 private:
  void* ctx_ = nullptr;  // scmp_filter_ctx
};

}  // namespace hutch::runtime::native
