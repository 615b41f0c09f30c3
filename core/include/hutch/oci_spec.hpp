// One OCI runtime spec: core turns an image config plus run options into config.json,
// which the native runtime, crun and runc all consume.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hutch/context.hpp"
#include "hutch/network.hpp"

namespace hutch {

// The "config" object of an OCI image config.
struct ImageConfig {
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::string stop_signal;
};

HUTCH_API ImageConfig parse_image_config(const nlohmann::json& oci_config);

struct ProcessUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::string home = "/";
};

// Resolves "name", "uid", "uid:gid", "name:group" against the image's /etc/passwd and
// /etc/group (read beneath `rootfs`, never outside). Throws Errc::kNotFound naming the user.
HUTCH_API ProcessUser resolve_user(const std::filesystem::path& rootfs, const std::string& user);
// A group name of the image's /etc/group, or a number (--group-add). Throws Errc::kNotFound.
HUTCH_API gid_t resolve_group(const std::filesystem::path& rootfs, const std::string& group);

// A filesystem mount of `run` (-v, --mount, --tmpfs), resolved: named volumes are binds of
// their _data directory by the time they get here.
struct MountRequest {
  std::string destination;  // absolute, inside the container
  std::string type;         // "bind" or "tmpfs"
  std::filesystem::path source;
  std::vector<std::string> options;  // "ro", "rw", "nosuid", "size=64m", "mode=1777", ...
};

// --device HOST[:CONTAINER[:PERMISSIONS]]
struct DeviceRequest {
  std::filesystem::path host;
  std::string container;
  std::string permissions = "rwm";
};

// --ulimit NAME=SOFT[:HARD]; NAME as docker spells it (nofile, nproc, core, ...).
struct Ulimit {
  std::string name;
  std::uint64_t soft = 0, hard = 0;
};

// Resource limits of `run`; unset means no limit.
struct ResourceLimits {
  std::optional<std::int64_t> memory;       // bytes
  std::optional<std::int64_t> memory_swap;  // bytes of memory+swap; -1 unlimited
  std::optional<double> cpus;               // --cpus 1.5
  std::optional<std::uint64_t> cpu_shares;  // --cpu-shares (cgroup v1 weight, 2..262144)
  std::string cpuset_cpus;                  // --cpuset-cpus 0-1
  std::optional<std::int64_t> pids_limit;   // --pids-limit; -1 unlimited
  bool any() const { return memory || memory_swap || cpus || cpu_shares || !cpuset_cpus.empty() || pids_limit; }
};

struct IdMap {
  unsigned long container_id = 0, host_id = 0, size = 0;
};

struct SpecInputs {
  std::filesystem::path rootfs;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  ProcessUser user;
  std::string hostname;
  NetworkPlan network;
  bool read_only = false;
  bool read_only_tmpfs = true;  // with read_only: tmpfs on /tmp, /var/tmp, /run (podman's default)
  bool terminal = false;
  bool tty_group_mapped = true;  // gid 5 exists in the container's namespace: devpts gets gid=5
  // Files bind-mounted over the image's: destination -> source.
  std::vector<std::pair<std::string, std::filesystem::path>> file_binds;

  // Privileges.
  std::vector<std::string> cap_add, cap_drop;  // "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL"
  bool privileged = false;
  bool no_new_privileges = false;
  // A docker-format seccomp profile (--security-opt seccomp=FILE); unset: the default one.
  std::optional<nlohmann::json> seccomp_profile;
  bool seccomp_unconfined = false;
  std::vector<Ulimit> ulimits;
  std::optional<int> oom_score_adj;
  std::vector<std::string> extra_masked_paths;  // --security-opt mask=/a:/b
  std::vector<std::string> unmasked_paths;      // --security-opt unmask=/a:/b, or ALL

  // Filesystem.
  std::vector<MountRequest> mounts;
  std::vector<DeviceRequest> devices;
  std::uint64_t shm_size = 64ull << 20;

  // Namespaces shared with the host (hutch's namespace, rootless) instead of new ones.
  bool host_pid = false, host_ipc = false, host_uts = false;
  // Non-empty: the container gets a user namespace of its own with these maps (onto the IDs
  // of the namespace the runtime runs in): --userns=keep-id, --uidmap, --gidmap.
  std::vector<IdMap> uid_mappings, gid_mappings;

  // --init: this static binary is bind-mounted at /run/hutch-init and runs as PID 1.
  std::filesystem::path init_binary;

  ResourceLimits resources;
  std::string cgroups_path;  // linux.cgroupsPath, set only when limits can be enforced
};

HUTCH_API nlohmann::json generate_spec(const SpecInputs& in);

// docker's default capability set, and every capability the kernel knows ("CAP_..."), the
// latter in the kernel's numbering (index N is capability N).
HUTCH_API const std::vector<std::string>& default_capabilities();
HUTCH_API const std::vector<std::string>& all_capabilities();
// The bounding set of a container: the default (or, privileged, all), with --cap-add and
// --cap-drop applied as docker does ("ALL", with or without "CAP_"). Unknown names throw.
HUTCH_API std::vector<std::string> container_capabilities(bool privileged, const std::vector<std::string>& add,
                                                          const std::vector<std::string>& drop);

// The environment of a container: image env, then defaults, then the user's -e/--env-file.
// `overrides` are "K=V" (or "K" to take the caller's value).
HUTCH_API std::vector<std::string> merge_env(const std::vector<std::string>& image_env,
                                             const std::vector<std::string>& overrides,
                                             const std::string& hostname, const std::string& home, bool tty);
// Reads an --env-file: K=V lines, "#" comments, blank lines; "K" alone takes the caller's value.
HUTCH_API std::vector<std::string> read_env_file(const std::filesystem::path& file);

inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

}  // namespace hutch
