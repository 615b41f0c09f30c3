#include "hutch/config.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <set>

#include <toml++/toml.h>

#include "hutch/error.hpp"
#include "hutch/paths.hpp"

namespace hutch {
namespace fs = std::filesystem;

namespace {

std::string where(const std::string& source, const toml::source_region& region) {
  return source + ":" + std::to_string(region.begin.line);
}

[[noreturn]] void fail(const std::string& source, const toml::node& node, const std::string& msg) {
  throw Error(Errc::kConfig, where(source, node.source()) + ": " + msg);
}

std::string get_string(const std::string& source, const std::string& key, const toml::node& node) {
  auto v = node.value<std::string>();
  if (!node.is_string() || !v) fail(source, node, "\"" + key + "\" must be a string");
  return *v;
}

std::string get_name(const std::string& source, const std::string& key, const toml::node& node) {
  std::string v = get_string(source, key, node);
  bool ok = !v.empty();
  for (char c : v) ok &= (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  if (!ok) fail(source, node, "\"" + key + "\" = \"" + v + "\" is not a backend name (letters, digits, - _ .)");
  return v;
}

fs::path get_path(const std::string& source, const std::string& key, const toml::node& node) {
  std::string v = get_string(source, key, node);
  if (v.empty() || v[0] != '/') fail(source, node, "\"" + key + "\" must be an absolute path, not \"" + v + "\"");
  return v;
}

void check_keys(const std::string& source, const toml::table& table, const std::string& section,
                const std::set<std::string>& allowed) {
  for (const auto& [k, v] : table) {
    std::string key(k.str());
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw Error(Errc::kConfig, where(source, k.source()) + ": unknown key \"" + key + "\" in " +
                                     (section.empty() ? "the top level" : "[" + section + "]") +
                                     "; known keys: " + list);
    }
  }
}

const toml::table& as_table(const std::string& source, const std::string& key, const toml::node& node) {
  if (!node.is_table()) fail(source, node, "\"" + key + "\" must be a table ([" + key + "])");
  return *node.as_table();
}

nlohmann::json to_json(const toml::node& node) {
  if (auto t = node.as_table()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : *t) j[std::string(k.str())] = to_json(v);
    return j;
  }
  if (auto a = node.as_array()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& v : *a) j.push_back(to_json(v));
    return j;
  }
  if (auto s = node.value_exact<std::string>()) return *s;
  if (auto i = node.value_exact<int64_t>()) return *i;
  if (auto d = node.value_exact<double>()) return *d;
  if (auto b = node.value_exact<bool>()) return *b;
  return nlohmann::json();  // dates and times: not used by any plugin
}

void apply_table(Config& c, const toml::table& root, const std::string& src) {
  check_keys(src, root, "", {"engine", "storage", "network", "plugins"});
  if (auto n = root.get("engine")) {
    const auto& t = as_table(src, "engine", *n);
    check_keys(src, t, "engine", {"runtime", "log_level", "plugin_dirs", "require_limits", "cgroup_parent", "init_path",
                              "log_driver", "max_parallel_downloads"});
    if (auto v = t.get("runtime")) {
      // A runtime is a plugin name (native, crun, runc) or the absolute path of an OCI runtime.
      std::string r = get_string(src, "runtime", *v);
      c.runtime = {r.rfind('/', 0) == 0 ? r : get_name(src, "runtime", *v), where(src, v->source())};
    }
    if (auto v = t.get("require_limits")) {
      auto b = v->value_exact<bool>();
      if (!b) fail(src, *v, "\"require_limits\" must be true or false");
      c.require_limits = *b;
    }
    if (auto v = t.get("cgroup_parent")) c.cgroup_parent = get_path(src, "cgroup_parent", *v).string();
    if (auto v = t.get("init_path")) c.init_path = get_path(src, "init_path", *v);
    if (auto v = t.get("log_driver")) {
      std::string d = get_string(src, "log_driver", *v);
      if (d != "k8s-file" && d != "json-file" && d != "none")
        fail(src, *v, "log_driver \"" + d + "\" is not one of k8s-file, json-file, none");
      c.log_driver = d;
    }
    if (auto v = t.get("max_parallel_downloads")) {
      auto n = v->value_exact<int64_t>();
      if (!n || *n < 1 || *n > 64) fail(src, *v, "\"max_parallel_downloads\" must be a number from 1 to 64");
      c.max_parallel_downloads = static_cast<int>(*n);
    }
    if (auto v = t.get("log_level")) {
      std::string s = get_string(src, "log_level", *v);
      if (!parse_log_level(s, c.log_level))
        fail(src, *v, "log_level \"" + s + "\" is not one of debug, info, warn, error");
    }
    if (auto v = t.get("plugin_dirs")) {
      if (!v->is_array()) fail(src, *v, "\"plugin_dirs\" must be an array of absolute paths");
      for (const auto& e : *v->as_array()) c.plugin_dirs.push_back(get_path(src, "plugin_dirs", e));
    }
  }
  if (auto n = root.get("storage")) {
    const auto& t = as_table(src, "storage", *n);
    check_keys(src, t, "storage", {"driver", "root", "runroot"});
    if (auto v = t.get("driver")) c.storage_driver = {get_name(src, "driver", *v), where(src, v->source())};
    if (auto v = t.get("root")) c.root = get_path(src, "root", *v);
    if (auto v = t.get("runroot")) c.runroot = get_path(src, "runroot", *v);
  }
  if (auto n = root.get("network")) {
    const auto& t = as_table(src, "network", *n);
    check_keys(src, t, "network", {"default"});
    if (auto v = t.get("default")) c.network = {get_name(src, "default", *v), where(src, v->source())};
  }
  if (auto n = root.get("plugins")) {
    const auto& t = as_table(src, "plugins", *n);
    for (const auto& [k, v] : t) {
      std::string name(k.str());
      as_table(src, "plugins." + name, v);
      c.plugins[name] = to_json(v);
    }
  }
}

}  // namespace

void apply_config_text(Config& config, const std::string& text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw Error(Errc::kConfig, source_name + ":" + std::to_string(e.source().begin.line) + ": " +
                                   std::string(e.description()));
  }
  apply_table(config, root, source_name);
}

void apply_config_file(Config& config, const fs::path& file) {
  std::string text;
  try {
    text = read_file(file);
  } catch (Error& e) {
    throw Error(Errc::kConfig, std::string("cannot read config file ") + file.string() + ": " + e.what());
  }
  apply_config_text(config, text, file.string());
  config.files_read.push_back(file);
}

std::vector<fs::path> config_file_chain(uid_t uid) {
  std::vector<fs::path> files{"/etc/hutch/hutch.conf"};
  files.push_back(xdg_config_home(uid) / "hutch" / "hutch.conf");
  return files;
}

Config load_config(uid_t uid) {
  Config c;
  for (const auto& f : config_file_chain(uid)) {
    std::error_code ec;
    if (fs::exists(f, ec)) apply_config_file(c, f);
  }
  if (const char* env = std::getenv("HUTCH_CONFIG"); env && *env) {
    std::error_code ec;
    if (!fs::exists(env, ec))
      throw Error(Errc::kConfig, std::string("$HUTCH_CONFIG names ") + env +
                                     ", which does not exist; create it or unset HUTCH_CONFIG");
    apply_config_file(c, env);
  }
  return c;
}

}  // namespace hutch
