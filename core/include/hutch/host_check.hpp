// The host prerequisites `hutch info` reports, each with its fix.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "hutch/userns.hpp"

namespace hutch {

struct HostCheck {
  std::string name;
  bool ok = false;
  std::string detail;
  std::string fix;  // empty when ok
};

HUTCH_API std::vector<HostCheck> check_host(const UsernsPlan& plan, const std::filesystem::path& store_root,
                                            const std::filesystem::path& run_root,
                                            const std::string& cgroup_parent = "");

// The filesystem type of `path` ("ext4", "nfs", "overlay", "tmpfs", ...).
HUTCH_API std::string filesystem_type(const std::filesystem::path& path);

}  // namespace hutch
