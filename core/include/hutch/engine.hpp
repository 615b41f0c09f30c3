// The engine: what every command calls. It owns the store and the loaded backends.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hutch/config.hpp"
#include "hutch/network.hpp"
#include "hutch/paths.hpp"
#include "hutch/plugin_loader.hpp"
#include "hutch/runtime.hpp"
#include "hutch/storage.hpp"
#include "hutch/store.hpp"

namespace hutch {

struct BackendInfo {
  std::string family;
  std::string name;
  std::string why;  // "default", "config <file>:<line>", "--runtime flag", "recorded in the store"
  LoadedPlugin plugin;
  std::string description;
};

struct EnginePaths {
  std::filesystem::path store_root;
  std::filesystem::path run_root;
  std::string run_root_why;
};

// Resolves the store and runtime directories from config (defaults follow XDG).
HUTCH_API EnginePaths resolve_paths(const Config& config, uid_t host_uid);

struct ImportOptions {
  std::vector<std::string> changes;  // --change "CMD ...", "ENTRYPOINT ...", "ENV K=V", "WORKDIR d", "USER u"
  std::string message;
};

struct RunOptions {
  std::string image;
  std::vector<std::string> command;
  std::optional<std::string> entrypoint;
  std::vector<std::string> env;
  std::vector<std::string> env_files;
  std::string workdir;
  std::string user;
  std::string hostname;
  std::string network;  // empty: the configured default
  std::string name;
  bool remove = false;
  bool interactive = false;
  bool tty = false;
  bool read_only = false;
};

class HUTCH_API Engine {
 public:
  Engine(Config config, EnginePaths paths, RootlessInfo rootless, const Logger& logger);
  ~Engine();

  const Config& config() const { return config_; }
  const EnginePaths& paths() const { return paths_; }
  const RootlessInfo& rootless() const { return rootless_; }
  PluginLoader& loader() { return loader_; }
  Store& store();

  StorageDriver& storage();
  RuntimeBackend& runtime();
  NetworkBackend& network(const std::string& name);
  // Loads each family's chosen backend (for `hutch info`); failures are reported, not thrown.
  std::vector<BackendInfo> describe_backends();

  ImageRecord import_image(int fd, const std::string& display_name, const std::string& reference,
                           const ImportOptions& options);
  void tag_image(const std::string& source, const std::string& target);
  // Untags `reference` (a name) or removes the image (an ID, or its last name); returns the
  // "Untagged: ..." / "Deleted: ..." lines.
  std::vector<std::string> remove_image(const std::string& reference, bool force);
  nlohmann::json inspect_image(const std::string& reference);
  std::vector<ImageRecord> list_images();

  int run(const RunOptions& options);
  std::vector<ContainerRecord> list_containers();
  void remove_container(const std::string& name_or_id, bool force);

 private:
  struct LoadedBackends;
  void recover_once();
  void cleanup_container(const ContainerRecord& record);
  std::string unique_name(const std::vector<ContainerRecord>& existing) const;

  Config config_;
  EnginePaths paths_;
  RootlessInfo rootless_;
  const Logger& logger_;
  PluginLoader loader_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<LoadedBackends> backends_;
  bool recovered_ = false;
};

}  // namespace hutch
