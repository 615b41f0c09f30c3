// What core hands to every plugin: its config section, paths, rootless facts, a logger.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "hutch/logger.hpp"

namespace hutch {

// How this process maps IDs: the user namespace mode.
enum class UsernsMode {
  kRealRoot,   // real root: no user namespace
  kFullRange,  // caller's uid and subordinate ranges mapped
  kSingleId,   // only the caller's own uid/gid mapped (no subordinate range)
};

HUTCH_API const char* userns_mode_name(UsernsMode mode);

struct IdRange {
  unsigned long start = 0;
  unsigned long count = 0;
  bool operator==(const IdRange&) const = default;
};

struct RootlessInfo {
  UsernsMode mode = UsernsMode::kRealRoot;
  uid_t host_uid = 0;  // the caller's uid on the host
  gid_t host_gid = 0;
  // Size of the ID space inside the namespace: 1 in single-ID mode, 1 + range size otherwise.
  unsigned long uid_count = 1;
  unsigned long gid_count = 1;
};

struct PluginContext {
  nlohmann::json config = nlohmann::json::object();  // the plugin's own config section
  std::filesystem::path store_root;    // the store (graph root)
  std::filesystem::path run_root;      // runtime state
  std::filesystem::path plugin_state;  // a directory the plugin owns under the store
  RootlessInfo rootless;
  const Logger* logger = nullptr;
};

}  // namespace hutch
