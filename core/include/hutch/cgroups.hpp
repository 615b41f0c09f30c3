// Cgroups: whether this caller can limit a container's resources here, and the cgroup of a
// container (made, limited, joined, read for OOM kills, removed). Used by core (to decide and
// to report) and by the native runtime (crun and runc manage their own from the spec).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "hutch/context.hpp"
#include "hutch/oci_spec.hpp"

namespace hutch {

struct CgroupSupport {
  std::string layout;  // "v2" (unified), "hybrid" (v1 controllers, a cgroup2 mount beside), "v1"
  bool usable = false; // limits can be enforced for this caller's containers
  // Where container cgroups go: v2, the delegated cgroup (absolute path under /sys/fs/cgroup);
  // v1, "/hutch" under each controller's hierarchy.
  std::string parent;
  std::vector<std::string> controllers;  // what can be limited: memory, pids, cpu, cpuset
  std::string reason;  // why limits cannot be enforced, when !usable
  std::string fix;
};

// `real_root`: hutch runs as the host's root (no user namespace). `configured_parent`:
// [engine] cgroup_parent, a delegated cgroup2 directory (empty: the caller's own cgroup).
HUTCH_API CgroupSupport detect_cgroups(bool real_root, const std::string& configured_parent = "");

// The controllers a set of limits needs ("memory", "pids", "cpu", "cpuset").
HUTCH_API std::vector<std::string> controllers_for(const ResourceLimits& limits);

// linux.cgroupsPath for a container: "<parent>/hutch-<id>" (v2) or "/hutch/<id>" (v1).
HUTCH_API std::string container_cgroup_path(const CgroupSupport& support, const std::string& id);

// The directories of a cgroup path: one per controller (v1), or one (v2).
HUTCH_API std::vector<std::filesystem::path> cgroup_directories(const CgroupSupport& support,
                                                                const std::string& cgroups_path,
                                                                const std::vector<std::string>& controllers);

// Makes the container's cgroup and writes its limits (the OCI linux.resources object).
// Throws naming the file and value the kernel refused.
HUTCH_API void create_container_cgroup(const CgroupSupport& support, const std::string& cgroups_path,
                                       const nlohmann::json& resources);
// Moves `pid` into it.
HUTCH_API void join_container_cgroup(const CgroupSupport& support, const std::string& cgroups_path, pid_t pid);
// True when the kernel's OOM killer killed a process in it (memory.events / memory.oom_control).
HUTCH_API bool cgroup_oom_killed(const CgroupSupport& support, const std::string& cgroups_path);
// Removes it (its processes must have ended); missing is fine.
HUTCH_API void remove_container_cgroup(const CgroupSupport& support, const std::string& cgroups_path);

}  // namespace hutch
