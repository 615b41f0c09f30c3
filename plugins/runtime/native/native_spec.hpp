// The part of an OCI runtime spec (config.json) that the native runtime carries out.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hutch::runtime::native {

class SeccompFilter;

struct MountSpec {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct NamespaceSpec {
  std::string type;  // pid, network, mount, ipc, uts, user, cgroup
  std::string path;  // join this one instead of making one
};

struct IdMapping {
  unsigned long container_id, host_id, size;
};

struct Rlimit {
  int resource;
  unsigned long long soft, hard;
};

struct NativeSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::vector<int> cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  bool terminal = false;
  bool has_oom_score_adj = false;
  int oom_score_adj = 0;
  std::filesystem::path root;
  bool root_readonly = false;
  std::string hostname;
  std::vector<MountSpec> mounts;
  std::vector<NamespaceSpec> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::vector<std::string> masked_paths, readonly_paths;
  nlohmann::json seccomp;  // linux.seccomp (checked); null when absent
  // Built from `seccomp` by create, before the clone; the child loads it.
  std::shared_ptr<const SeccompFilter> seccomp_filter;

  bool has_namespace(const std::string& type) const;
};

// Parses bundle/config.json; throws hutch::Error naming the field on bad content.
NativeSpec parse_spec(const nlohmann::json& config, const std::filesystem::path& bundle);

// In the cloned child: set the container up and exec its process. Never returns.
// `sync_fd` gets "R" when set up (then the child blocks on the exec fifo), or "E<message>".
// With spec.terminal, `console_fd` is connected to the console socket: the child makes its
// terminal in the container's /dev/pts and sends the master there.
[[noreturn]] void container_main(const NativeSpec& spec, int sync_fd, int map_wait_fd, int fifo_fd, int console_fd);

// In exec's process, already in the container's namespaces, root and cgroup: take the
// identity of spec's process object as container_main does (but a missing working directory
// is an error, as in docker) and exec it. `sync_fd` (close-on-exec) closes with the exec, or
// gets "E<message>", "N<message>" (command not found) or "X<message>" (not executable).
[[noreturn]] void exec_main(const NativeSpec& spec, int sync_fd, int console_fd);

}  // namespace hutch::runtime::native
