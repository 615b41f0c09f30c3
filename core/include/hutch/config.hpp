// hutch.conf: system, user and $HUTCH_CONFIG levels, then command-line flags on top.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hutch/logger.hpp"

namespace hutch {

// A value and where it came from, for `hutch info`'s "why".
struct Setting {
  std::string value;
  std::string source = "default";
};

struct Config {
  Setting storage_driver{"auto"};  // overlay, fuse-overlayfs or vfs, probed
  Setting network{"slirp"};  // falls back to none, with a warning, where slirp cannot work and it was not asked for
  Setting runtime{"native"};
  std::optional<std::filesystem::path> root;     // unset: the XDG default
  std::optional<std::filesystem::path> runroot;  // unset: the XDG default
  LogLevel log_level = LogLevel::kWarn;
  std::vector<std::filesystem::path> plugin_dirs;
  // [engine] require_limits: resource limits that cannot be enforced are an error, not a warning.
  bool require_limits = false;
  std::string cgroup_parent;            // [engine] cgroup_parent: a delegated cgroup2 directory
  std::filesystem::path init_path;      // [engine] init_path: the --init binary (default: hutch-init)
  std::string log_driver = "k8s-file";  // [engine] log_driver: containers' default --log-driver
  int max_parallel_downloads = 6;       // [engine] max_parallel_downloads: blobs a pull or push moves at once
  nlohmann::json plugins = nlohmann::json::object();  // [plugins.<name>] tables, by name
  std::vector<std::filesystem::path> files_read;
};

// Reads one file over `config`. Unknown keys and bad values throw Errc::kConfig
// naming the file and line.
HUTCH_API void apply_config_file(Config& config, const std::filesystem::path& file);
HUTCH_API void apply_config_text(Config& config, const std::string& text, const std::string& source_name);

// /etc/hutch/hutch.conf, $XDG_CONFIG_HOME/hutch/hutch.conf, $HUTCH_CONFIG (which must exist).
HUTCH_API std::vector<std::filesystem::path> config_file_chain(uid_t uid);
HUTCH_API Config load_config(uid_t uid);

}  // namespace hutch
