#include "hutch/plugin_loader.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>

#include <boost/dll/shared_library.hpp>

#include "build_config.hpp"

namespace hutch {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "libhutch-";
constexpr std::string_view kSuffix = ".so";

// Libraries are never unloaded during the process: the loader keeps them here.
std::mutex g_libraries_mutex;
std::map<std::string, boost::dll::shared_library>& libraries() {
  static auto* libs = new std::map<std::string, boost::dll::shared_library>();
  return *libs;
}

bool parse_file_name(const std::string& file, std::string& family, std::string& name) {
  if (file.size() <= kPrefix.size() + kSuffix.size()) return false;
  if (file.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  if (file.compare(file.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) return false;
  std::string middle = file.substr(kPrefix.size(), file.size() - kPrefix.size() - kSuffix.size());
  auto dash = middle.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == middle.size()) return false;
  family = middle.substr(0, dash);
  name = middle.substr(dash + 1);
  return true;
}

}  // namespace

PluginLoader::PluginLoader(std::vector<fs::path> search_path) : search_path_(std::move(search_path)) {}

std::vector<fs::path> PluginLoader::default_search_path(const std::vector<fs::path>& config_dirs) {
  std::vector<fs::path> path;
  if (const char* env = std::getenv("HUTCH_PLUGIN_PATH"); env && *env) {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':'))
      if (!item.empty()) path.emplace_back(item);
  }
  for (const auto& dir : config_dirs) path.push_back(dir);
  // The build tree, when this core is the build tree's own.
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && self.string().rfind(kBuildDir, 0) == 0) path.emplace_back(kBuildPluginDir);
  path.emplace_back(kInstallPluginDir);
  return path;
}

std::vector<PluginFile> PluginLoader::discover(const std::string& family) const {
  std::vector<PluginFile> found;
  for (const auto& dir : search_path_) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::string fam, name;
      if (!parse_file_name(it->path().filename().string(), fam, name)) continue;
      if (!family.empty() && fam != family) continue;
      bool shadowed = false;
      for (const auto& f : found) shadowed |= (f.family == fam && f.name == name);
      if (!shadowed) found.push_back({it->path(), fam, name});
    }
  }
  return found;
}

void* PluginLoader::load_factory(const std::string& family, const std::string& name,
                                 LoadedPlugin* loaded) {
  auto all = discover(family);
  const PluginFile* file = nullptr;
  for (const auto& f : all)
    if (f.name == name) file = &f;
  if (!file) {
    std::string msg = "no " + family + " plugin named \"" + name + "\"";
    if (all.empty()) {
      msg += "; no " + family + " plugins found";
    } else {
      msg += "; available: ";
      for (size_t i = 0; i < all.size(); ++i)
        msg += (i ? ", " : "") + all[i].name + " (" + all[i].path.string() + ")";
    }
    msg += "; searched: ";
    for (size_t i = 0; i < search_path_.size(); ++i) msg += (i ? ":" : "") + search_path_[i].string();
    throw Error(Errc::kNotFound, msg);
  }
  const std::string path = file->path.string();
  std::lock_guard<std::mutex> guard(g_libraries_mutex);
  auto& libs = libraries();
  auto it = libs.find(path);
  if (it == libs.end()) {
    // dlopen first, for dlerror()'s own words (boost reports only an errno); the handle
    // is kept, like every plugin library, for the life of the process.
    if (!::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      const char* why = ::dlerror();
      throw Error(Errc::kPlugin, "cannot load " + family + " plugin \"" + name + "\" from " + path + ": " +
                                     (why ? why : "unknown error") + "; rebuild it against this hutch or remove the file");
    }
    boost::dll::shared_library lib;
    boost::dll::fs::error_code ec;
    lib.load(boost::dll::fs::path(path), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) {
      // dlerror() says why (missing symbol, not an ELF file, wrong architecture).
      std::string detail = ec.message();
      throw Error(Errc::kPlugin, "cannot load " + family + " plugin \"" + name + "\" from " + path + ": " + detail +
                                     "; rebuild it against this hutch or remove the file");
    }
    it = libs.emplace(path, std::move(lib)).first;
  }
  auto& lib = it->second;
  if (!lib.has(kDescriptorSymbol))
    throw Error(Errc::kPlugin, "plugin " + path + " is not a hutch plugin: it exports no " +
                                   std::string(kDescriptorSymbol) + "; build it with HUTCH_PLUGIN(...)");
  const auto& desc = lib.get_alias<const PluginDescriptor>(kDescriptorSymbol);
  if (desc.magic != kDescriptorMagic)
    throw Error(Errc::kPlugin, "plugin " + path + " has a corrupt descriptor; rebuild it with HUTCH_PLUGIN(...)");
  if (desc.abi_version != kAbiVersion)
    throw Error(Errc::kPlugin, "plugin " + path + " was built for hutch plugin ABI " +
                                   std::to_string(desc.abi_version) + ", this hutch speaks ABI " +
                                   std::to_string(kAbiVersion) + "; rebuild the plugin against this hutch");
  if (std::strcmp(desc.family, family.c_str()) != 0 || std::strcmp(desc.name, name.c_str()) != 0)
    throw Error(Errc::kPlugin, "plugin " + path + " says it is " + desc.family + "/" + desc.name +
                                   ", but its file name says " + family + "/" + name + "; rename the file");
  if (std::strcmp(desc.build_tag, kBuildTag) != 0)
    throw Error(Errc::kPlugin, "plugin " + path + " was built with " + desc.build_tag +
                                   ", this hutch with " + kBuildTag + "; rebuild the plugin with the same compiler");
  if (!lib.has(kFactorySymbol))
    throw Error(Errc::kPlugin, "plugin " + path + " exports no factory " + std::string(kFactorySymbol) +
                                   "; build it with HUTCH_PLUGIN(...)");
  if (loaded) *loaded = {file->path, desc.family, desc.name, desc.version, desc.build_tag};
  return reinterpret_cast<void*>(&lib.get_alias<void()>(kFactorySymbol));
}

Error PluginLoader::factory_failure(const std::string& family, const std::string& name,
                                    const std::string& why) const {
  return Error(Errc::kPlugin, family + " plugin \"" + name + "\" failed to start: " + why);
}

}  // namespace hutch
