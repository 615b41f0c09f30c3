// Finds, checks and loads plugins; the only way core gets a backend.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "hutch/abi.hpp"
#include "hutch/error.hpp"

namespace hutch {

struct PluginFile {
  std::filesystem::path path;
  std::string family;
  std::string name;
};

struct LoadedPlugin {
  std::filesystem::path path;
  std::string family;
  std::string name;
  std::string version;
  std::string build_tag;
};

class HUTCH_API PluginLoader {
 public:
  explicit PluginLoader(std::vector<std::filesystem::path> search_path);

  const std::vector<std::filesystem::path>& search_path() const { return search_path_; }
  // Every libhutch-<family>-<name>.so on the search path (the first of a name wins).
  std::vector<PluginFile> discover(const std::string& family = "") const;

  template <typename Interface>
  std::unique_ptr<Interface> create(const std::string& name, const PluginContext& context,
                                    LoadedPlugin* loaded = nullptr) {
    void* factory = load_factory(Interface::kFamily, name, loaded);
    auto* fn = reinterpret_cast<PluginFactory<Interface>*>(factory);
    std::unique_ptr<Interface> instance;
    try {
      instance = fn(context);
    } catch (const std::exception& e) {
      throw factory_failure(Interface::kFamily, name, e.what());
    }
    if (!instance) throw factory_failure(Interface::kFamily, name, "the factory returned nothing");
    return instance;
  }

  // The default search path: $HUTCH_PLUGIN_PATH, config dirs, the build tree, the install prefix.
  static std::vector<std::filesystem::path> default_search_path(
      const std::vector<std::filesystem::path>& config_dirs);

 private:
  void* load_factory(const std::string& family, const std::string& name, LoadedPlugin* loaded);
  Error factory_failure(const std::string& family, const std::string& name,
                        const std::string& why) const;
  std::vector<std::filesystem::path> search_path_;
};

}  // namespace hutch
