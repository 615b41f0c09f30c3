// One OCI runtime spec: core turns an image config plus run options into config.json,
// which the native runtime, crun and runc all consume.
#pragma once

#include <sys/types.h>

#include <filesystem>
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

struct SpecInputs {
  std::filesystem::path rootfs;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  ProcessUser user;
  std::string hostname;
  NetworkPlan network;
  bool read_only = false;
  bool terminal = false;
  // Files bind-mounted over the image's: destination -> source.
  std::vector<std::pair<std::string, std::filesystem::path>> file_binds;
};

HUTCH_API nlohmann::json generate_spec(const SpecInputs& in);

// The environment of a container: image env, then defaults, then the user's -e/--env-file.
// `overrides` are "K=V" (or "K" to take the caller's value).
HUTCH_API std::vector<std::string> merge_env(const std::vector<std::string>& image_env,
                                             const std::vector<std::string>& overrides,
                                             const std::string& hostname, const std::string& home, bool tty);
// Reads an --env-file: K=V lines, "#" comments, blank lines; "K" alone takes the caller's value.
HUTCH_API std::vector<std::string> read_env_file(const std::filesystem::path& file);

inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

}  // namespace hutch
