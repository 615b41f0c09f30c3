// What the engine's source files share and nobody else sees.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hutch/engine.hpp"

namespace hutch::detail {

// Applies `--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE) to an
// image config's "config" section.
nlohmann::json apply_image_changes(nlohmann::json image_config, const std::vector<std::string>& changes);

// The OCI architecture name of this host ("amd64", "arm64", ...).
std::string host_architecture();

// `system df`'s volumes (engine_volumes.cpp): each with its size and the containers that mount
// it. The caller holds a store lock.
std::vector<DiskUsageReport::VolumeUsage> measure_volumes(const std::filesystem::path& store_root,
                                                          const std::vector<ContainerRecord>& containers,
                                                          const Logger& logger);

}  // namespace hutch::detail

#include <cstdint>
#include <filesystem>

#include "hutch/config.hpp"
#include "hutch/engine.hpp"
#include "hutch/oci_spec.hpp"

namespace hutch::detail {

// `run`'s option strings, parsed as docker parses them (run_options.cpp). Errors are
// Errc::kUsage naming the flag and what it takes.

// "64m", "1g", "512k", "100" (bytes), "1.5g"; b/k/m/g/t with an optional "b"/"ib".
std::int64_t parse_bytes(const std::string& value, const std::string& flag);

// A -v or --mount of a host path (a bind) or a named volume (name set; anonymous ones get a
// random name when the container is made).
struct VolumeMount {
  std::string volume;          // named volume; empty for a bind
  bool anonymous = false;      // -v /path: a new volume of its own, removed with --rm
  std::filesystem::path host;  // bind source
  std::string destination;
  std::vector<std::string> options;  // ro, rw, propagation...
};
std::vector<VolumeMount> parse_volume_mounts(const RunOptions& o);
// --tmpfs and --mount type=tmpfs
std::vector<MountRequest> parse_tmpfs_mounts(const RunOptions& o);
std::vector<DeviceRequest> parse_devices(const std::vector<std::string>& devices);
// `host_root`: hutch runs as the host's root, which may raise hard limits.
std::vector<Ulimit> parse_ulimits(const std::vector<std::string>& ulimits, bool host_root);
// no-new-privileges, seccomp=unconfined|FILE, label=..., apparmor=... (no SELinux/AppArmor here).
void apply_security_opts(const std::vector<std::string>& opts, SpecInputs& in);
ResourceLimits parse_limits(const RunOptions& o);
std::vector<IdMap> parse_id_maps(const std::vector<std::string>& maps, const std::string& flag);
// --add-host NAME:IP (or NAME=IP) as an /etc/hosts line.
std::string hosts_line(const std::string& add_host);
// A signal name (TERM, SIGTERM) or number; 0 when it is none of those.
int parse_signal(const std::string& name);
// The --init binary: [engine] init_path, the build tree's (for its own hutch), the installed one.
std::filesystem::path find_init_binary(const Config& config);

// A Go duration ("30s", "1m30s", "500ms", "2h"), in ns. Errors name the flag.
std::int64_t parse_duration(const std::string& value, const std::string& flag);
// --restart no|on-failure[:N]|always|unless-stopped into the record.
void parse_restart_policy(const std::string& value, ContainerRecord& record);
// -l/--label k=v (and --label-file lines), --annotation k=v.
std::map<std::string, std::string> parse_labels(const std::vector<std::string>& values,
                                                const std::vector<std::string>& files, const std::string& flag);
// The container's healthcheck: the image's HEALTHCHECK with the --health-* flags over it;
// none with --no-healthcheck or a test of NONE.
std::optional<HealthConfig> healthcheck_for(const RunOptions& o, const nlohmann::json& image_config);

}  // namespace hutch::detail
