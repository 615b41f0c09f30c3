#include "hutch/engine.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include "hutch/cgroups.hpp"
#include "hutch/digest.hpp"
#include "hutch/image_ref.hpp"
#include "hutch/layer_tar.hpp"
#include "hutch/oci_spec.hpp"
#include "engine_internal.hpp"
#include "attach.hpp"
#include "foreground.hpp"
#include "hutch/container_log.hpp"

namespace hutch {
namespace fs = std::filesystem;
using nlohmann::json;

namespace detail {

json apply_image_changes(json image_config, const std::vector<std::string>& changes) {
  for (const auto& change : changes) {
    auto sp = change.find_first_of(" =");
    std::string key = change.substr(0, sp);
    std::string val = sp == std::string::npos ? "" : change.substr(sp + 1);
    std::transform(key.begin(), key.end(), key.begin(), ::toupper);
    auto list = [&](const std::string& v) {
      try {
        auto j = json::parse(v);
        if (j.is_array()) return j;
      } catch (const json::exception&) {
      }
      return json::array({"/bin/sh", "-c", v});
    };
    if (key == "CMD") image_config["Cmd"] = list(val);
    else if (key == "ENTRYPOINT") image_config["Entrypoint"] = list(val);
    else if (key == "ENV") image_config["Env"].push_back(val.find('=') == std::string::npos ? val + "=" : val);
    else if (key == "WORKDIR") image_config["WorkingDir"] = val;
    else if (key == "USER") image_config["User"] = val;
    else if (key == "LABEL" && val.find('=') != std::string::npos)
      image_config["Labels"][val.substr(0, val.find('='))] = val.substr(val.find('=') + 1);
    else if (key == "EXPOSE" && !val.empty())
      image_config["ExposedPorts"][val.find('/') == std::string::npos ? val + "/tcp" : val] = json::object();
    else
      throw Error(Errc::kInvalidInput, "--change \"" + change +
                                           "\": only CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL k=v and EXPOSE can be set");
  }
  return image_config;
}

std::string host_architecture() {
  struct utsname u;
  uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (m.rfind("arm", 0) == 0) return "arm";
  if (m == "i686" || m == "i386") return "386";
  return m;
}

}  // namespace detail

struct Engine::LoadedBackends {
  std::unique_ptr<StorageDriver> storage;
  BackendInfo storage_info;
  std::map<std::string, std::unique_ptr<RuntimeBackend>> runtimes;
  BackendInfo runtime_info;  // of the configured one
  std::map<std::string, std::unique_ptr<NetworkBackend>> networks;
  std::map<std::string, BackendInfo> network_info;
  std::map<std::string, std::unique_ptr<ImageTransport>> transports;  // by plugin name
  std::map<const ImageTransport*, LoadedPlugin> transport_info;
};

EnginePaths resolve_paths(const Config& config, uid_t host_uid) {
  EnginePaths p;
  p.store_root = config.root ? *config.root : default_store_root(host_uid);
  if (config.runroot) {
    p.run_root = *config.runroot;
    p.run_root_why = "configured";
  } else {
    RunRoot r = default_run_root(host_uid);
    p.run_root = r.path;
    p.run_root_why = r.why;
  }
  return p;
}

Engine::Engine(Config config, EnginePaths paths, RootlessInfo rootless, const Logger& logger)
    : config_(std::move(config)),
      paths_(std::move(paths)),
      rootless_(rootless),
      logger_(logger),
      loader_(PluginLoader::default_search_path(config_.plugin_dirs)),
      backends_(std::make_unique<LoadedBackends>()) {}

Engine::~Engine() = default;

namespace {

PluginContext make_context(const Config& config, const EnginePaths& paths, const RootlessInfo& rootless,
                           const Logger& logger, const std::string& name, const fs::path& state) {
  PluginContext ctx;
  if (config.plugins.contains(name)) ctx.config = config.plugins[name];
  ctx.store_root = paths.store_root;
  ctx.run_root = paths.run_root;
  ctx.plugin_state = state;
  ctx.rootless = rootless;
  ctx.logger = &logger;
  return ctx;
}

std::string why_of(const Setting& s) { return s.source == "default" ? "the default" : "set by " + s.source; }

const char* kAdjectives[] = {"brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
                             "nimble", "proud", "quiet", "rapid", "sharp", "tender", "vivid", "witty", "zen", "bold"};
const char* kNouns[] = {"hare", "otter", "badger", "heron", "lynx", "marten", "newt", "owl", "puffin", "raven",
                        "stoat", "tern", "vole", "wren", "yak", "ibex", "koala", "lemur", "mole", "finch"};


constexpr const char* kAutoDriver = "auto";
constexpr const char* kNativeRuntime = "native";
constexpr const char* kOciRuntimePlugin = "oci";
// The automatic choice, best first.
const char* const kDriverPreference[] = {"overlay", "fuse-overlayfs", "vfs"};

struct RecordedDriver {
  std::string name;
  std::string why;
};

// <root>/storage-driver: the driver's name, then why it was chosen.
RecordedDriver read_recorded_driver(const fs::path& file) {
  RecordedDriver r;
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error&) {
    return r;
  }
  auto nl = text.find('\n');
  r.name = text.substr(0, nl);
  while (!r.name.empty() && r.name.back() == ' ') r.name.pop_back();
  if (nl != std::string::npos) {
    r.why = text.substr(nl + 1);
    while (!r.why.empty() && (r.why.back() == '\n' || r.why.back() == ' ')) r.why.pop_back();
  }
  return r;
}

}  // namespace

Store& Engine::store() {
  if (!store_) {
    store_ = std::make_unique<Store>(paths_.store_root, logger_);
    // The store is its metadata and its driver: a bad driver fails every store command.
    // Commands that only read records run outside the user namespace, where a driver
    // cannot be probed: on a store with no driver recorded yet (so with no layers either)
    // they leave the choice to the first command that can make it.
    if (::geteuid() == 0 || !read_recorded_driver(paths_.store_root / "storage-driver").name.empty())
      storage();
    else if (config_.storage_driver.value != kAutoDriver)
      loader_.create<StorageDriver>(config_.storage_driver.value,
                                    make_context(config_, paths_, rootless_, logger_, config_.storage_driver.value,
                                                 paths_.store_root / config_.storage_driver.value));
  }
  return *store_;
}

bool Engine::storage_choice_pending() const {
  return config_.storage_driver.value == kAutoDriver &&
         read_recorded_driver(paths_.store_root / "storage-driver").name.empty();
}

StorageDriver& Engine::storage() {
  auto& b = *backends_;
  if (b.storage) return *b.storage;
  std::string name = config_.storage_driver.value;
  std::string why = why_of(config_.storage_driver);
  fs::path recorded_file = paths_.store_root / "storage-driver";
  RecordedDriver recorded = read_recorded_driver(recorded_file);
  if (!recorded.name.empty() && recorded.name != name) {
    if (name != kAutoDriver && config_.storage_driver.source != "default")
      throw Error(Errc::kConfig, "the store " + paths_.store_root.string() + " was made by the \"" + recorded.name +
                                     "\" storage driver, not \"" + name + "\" (" + why +
                                     "); use --storage-driver " + recorded.name + ", or another --root for a new store");
  }
  if (!store_) store_ = std::make_unique<Store>(paths_.store_root, logger_);  // its directories first
  auto load = [&](const std::string& driver, LoadedPlugin* plugin) {
    return loader_.create<StorageDriver>(
        driver, make_context(config_, paths_, rootless_, logger_, driver, paths_.store_root / driver), plugin);
  };
  if (!recorded.name.empty()) {
    b.storage = load(recorded.name, &b.storage_info.plugin);
    name = recorded.name;
    why = "recorded in the store" + (recorded.why.empty() ? std::string() : ": " + recorded.why);
  } else if (name == kAutoDriver) {
    // A new store: try each driver for real, keep the first that works, and say why.
    std::string refused;
    for (const char* candidate : kDriverPreference) {
      std::unique_ptr<StorageDriver> driver;
      StorageProbe probe;
      try {
        driver = load(candidate, &b.storage_info.plugin);
        probe = driver->probe();
      } catch (const Error& e) {
        probe = {false, e.what()};
      }
      if (!probe.usable) {
        logger_.debug(std::string("storage driver ") + candidate + " cannot work here: " + probe.reason);
        refused += std::string(refused.empty() ? "" : "; ") + candidate + " cannot: " + probe.reason;
        try {
          if (driver) driver->clean_incomplete();
        } catch (const Error&) {
        }
        continue;
      }
      name = candidate;
      why = "chosen automatically: " + probe.reason + (refused.empty() ? "" : " (" + refused + ")");
      b.storage = std::move(driver);
      break;
    }
    if (!b.storage) throw Error(Errc::kConfig, "no storage driver works for " + paths_.store_root.string() + ": " + refused);
  } else {
    b.storage = load(name, &b.storage_info.plugin);
    StorageProbe probe = b.storage->probe();
    if (!probe.usable)
      throw Error(Errc::kConfig, "the storage driver \"" + name + "\" (" + why + ") cannot work for " +
                                     paths_.store_root.string() + ": " + probe.reason);
    why += "; " + probe.reason;
  }
  b.storage_info = {"storage", name, why, b.storage_info.plugin, b.storage->capabilities().description};
  if (recorded.name.empty()) write_file_atomic(recorded_file, name + "\n" + why + "\n", 0600);
  return *b.storage;
}

RuntimeBackend& Engine::runtime(const std::string& requested) {
  auto& b = *backends_;
  const std::string name = requested.empty() ? config_.runtime.value : requested;
  if (auto it = b.runtimes.find(name); it != b.runtimes.end()) return *it->second;
  LoadedPlugin loaded;
  std::unique_ptr<RuntimeBackend> backend;
  // "native", or a runtime plugin of that name; anything else is an OCI runtime program
  // (crun, runc, a path) run by the "oci" plugin, with [plugins.<name>] as its settings.
  std::string plugin = name;
  if (name != kNativeRuntime) {
    bool is_plugin = false;
    if (name.find('/') == std::string::npos)
      for (const auto& f : loader_.discover(RuntimeBackend::kFamily)) is_plugin |= f.name == name;
    if (!is_plugin) plugin = kOciRuntimePlugin;
  }
  PluginContext ctx = make_context(config_, paths_, rootless_, logger_, plugin, paths_.run_root / plugin);
  if (plugin != name) {
    std::string section = fs::path(name).filename().string();
    if (config_.plugins.contains(section))
      for (auto& [k, v] : config_.plugins[section].items()) ctx.config[k] = v;
    ctx.config["binary"] = name;
  }
  try {
    backend = loader_.create<RuntimeBackend>(plugin, ctx, &loaded);
  } catch (const Error& e) {
    if (plugin == name) throw;
    std::string plugins;
    for (const auto& f : loader_.discover(RuntimeBackend::kFamily))
      if (f.name != kOciRuntimePlugin) plugins += (plugins.empty() ? "" : ", ") + f.name;
    throw Error(Errc::kConfig, "the runtime \"" + name + "\" (" + (requested.empty() ? why_of(config_.runtime) : "the container's") + ") is neither a runtime plugin (" +
                                   plugins + ") nor a usable OCI runtime program: " + e.what());
  }
  if (name == config_.runtime.value)
    b.runtime_info = {"runtime", name, why_of(config_.runtime), loaded, backend->capabilities().description};
  return *(b.runtimes[name] = std::move(backend));
}

NetworkBackend& Engine::network(const std::string& requested) {
  auto& b = *backends_;
  std::string name = requested.empty() ? config_.network.value : requested;
  if (auto it = b.networks.find(name); it != b.networks.end()) return *it->second;
  BackendInfo info;
  auto backend = loader_.create<NetworkBackend>(
      name, make_context(config_, paths_, rootless_, logger_, name, paths_.store_root / "networks" / name),
      &info.plugin);
  info = {"network", name, requested.empty() ? why_of(config_.network) : "asked for with --network", info.plugin,
          backend->capabilities().description};
  b.network_info[name] = info;
  return *(b.networks[name] = std::move(backend));
}

Engine::ResolvedNetwork Engine::resolve_network(const std::vector<std::string>& asked) {
  ResolvedNetwork r;
  std::set<std::string> backends;
  for (const auto& f : loader_.discover(NetworkBackend::kFamily)) backends.insert(f.name);
  std::string backend_list;
  for (const auto& b : backends) backend_list += (backend_list.empty() ? "" : ", ") + b;
  if (asked.empty()) {
    r.backend = config_.network.value;
    if (config_.network.source == "default" && r.backend == "slirp") {
      std::string why;
      try {
        why = network("slirp").capabilities().unavailable;
      } catch (const Error& e) {
        if (e.code() != Errc::kNotFound) throw;  // a bad [plugins.slirp] is an error, not a reason
        why = e.what();
      }
      if (!why.empty()) {
        if (!announced_no_network_) logger_.warn("the container has no network (only loopback): " + why);
        announced_no_network_ = true;
        r.backend = "none";
      }
    }
    if (backends.count(r.backend)) return r;
    return resolve_network({r.backend});
  }
  for (const auto& a : asked) {
    std::string name = a.substr(0, a.find(':'));
    std::string opts = a.find(':') == std::string::npos ? "" : a.substr(a.find(':') + 1);
    if (name == "slirp4netns") name = "slirp";  // podman's name for it
    if (name == "private" || name == "default") name = config_.network.value;
    if (backends.count(name) && name != "bridge") {
      if (asked.size() > 1)
        throw Error(Errc::kUsage, "--network " + name + " cannot be combined with other networks; only user networks can");
      r.backend = name;
      if (!opts.empty() && name != "slirp")
        throw Error(Errc::kUsage, "--network " + a + ": the " + name + " network takes no options (only slirp does: slirp:mtu=1500,...)");
      std::stringstream list(opts);
      for (std::string kv; std::getline(list, kv, ',');) {
        if (kv.empty()) continue;
        auto eq = kv.find('=');
        r.options[kv.substr(0, eq)] = eq == std::string::npos ? "true" : kv.substr(eq + 1);
      }
      return r;
    }
    if (!opts.empty()) throw Error(Errc::kUsage, "--network " + a + ": options are for the slirp backend only");
    r.backend = "bridge";
    if (name == "bridge") name = "hutch";  // docker's --network bridge: the default user network
    if (!backends.count("bridge"))
      throw Error(Errc::kNotFound, "no network backend or network named \"" + name + "\"; backends: " + backend_list);
    bool known = name == "hutch";
    for (const auto& n : network("bridge").list_networks()) known |= n.name == name;
    if (!known)
      throw Error(Errc::kNotFound, "no such network: " + name + " (create it with \"hutch network create " + name +
                                       "\", see \"hutch network ls\"); backends: " + backend_list);
    if (std::find(r.networks.begin(), r.networks.end(), name) == r.networks.end()) r.networks.push_back(name);
  }
  return r;
}

ImageTransport& Engine::transport(const std::string& name) {
  // The plugin serving each transport prefix: "docker" registries, the archive formats.
  static const std::map<std::string, std::string> kPluginFor = {
      {"docker", "docker"}, {"oci", "archive"}, {"oci-archive", "archive"}, {"docker-archive", "archive"}};
  auto it = kPluginFor.find(name);
  if (it == kPluginFor.end())
    throw Error(Errc::kInvalidInput, "unknown transport \"" + name + "\"; known: docker, oci, oci-archive, docker-archive");
  auto& b = *backends_;
  if (auto t = b.transports.find(it->second); t != b.transports.end()) return *t->second;
  LoadedPlugin info;
  auto transport = loader_.create<ImageTransport>(
      it->second, make_context(config_, paths_, rootless_, logger_, it->second, paths_.store_root / "registry" / it->second),
      &info);
  b.transport_info[transport.get()] = info;
  return *(b.transports[it->second] = std::move(transport));
}

std::vector<BackendInfo> Engine::describe_backends() {
  std::vector<BackendInfo> out;
  auto attempt = [&](const std::string& family, const std::string& name, auto&& load) {
    try {
      out.push_back(load());
    } catch (const Error& e) {
      BackendInfo info;
      info.family = family;
      info.name = name;
      info.why = std::string("FAILED: ") + e.what();
      out.push_back(info);
    }
  };
  attempt("storage", config_.storage_driver.value, [&] {
    // Probing mounts in the user namespace, which `info` does not enter: on a store with no
    // driver recorded yet, leave the choice to the first command that uses the store.
    if (read_recorded_driver(paths_.store_root / "storage-driver").name.empty()) {
      BackendInfo pending;
      pending.family = "storage";
      pending.name = config_.storage_driver.value;
      if (pending.name == kAutoDriver) {
        pending.why = "not chosen yet: the first command that uses the store tries overlay, then fuse-overlayfs, "
                      "then vfs, and records the first that works";
        return pending;
      }
      auto driver = loader_.create<StorageDriver>(
          pending.name,
          make_context(config_, paths_, rootless_, logger_, pending.name, paths_.store_root / pending.name),
          &pending.plugin);
      pending.why = why_of(config_.storage_driver) + "; not tried yet: the first command that uses the store does";
      pending.description = driver->capabilities().description;
      return pending;
    }
    storage();
    return backends_->storage_info;
  });
  attempt("runtime", config_.runtime.value, [&] {
    runtime();
    return backends_->runtime_info;
  });
  attempt("network", config_.network.value, [&] {
    network("");
    return backends_->network_info[config_.network.value];
  });
  for (const char* t : {"docker", "oci-archive"}) {
    attempt("registry", t, [&] {
      ImageTransport& tr = transport(t);
      BackendInfo info;
      info.family = "registry";
      std::string list;
      for (const auto& name : tr.transports()) list += (list.empty() ? "" : ", ") + name;
      info.name = backends_->transport_info[&tr].name;
      info.plugin = backends_->transport_info[&tr];
      info.why = "serves " + list;
      info.description = tr.capabilities().description;
      return info;
    });
  }
  return out;
}

void Engine::recover_once() {
  if (recovered_) return;
  recovered_ = true;
  bool interrupted = store().clean_tmp();
  storage().clean_incomplete();
  // Every command that adds blobs or layers stages its work in tmp/ and writes records
  // before it lets go of the lock: a leftover there means one died between the two.
  if (interrupted) collect_unreferenced();
  // Containers whose monitor died (kill -9, a reboot) and whose process is gone too: exited,
  // or removed if --rm. One whose process still runs is left alone (ps shows it running;
  // "rm -f" ends it).
  auto containers = store().containers();
  bool removed = false;
  std::vector<ContainerRecord> keep;
  for (auto& c : containers) {
    const ContainerState& s = c.state;
    bool monitor_alive = s.monitor_pid > 0 && process_start_time(s.monitor_pid) == s.monitor_start;
    bool process_alive = s.pid > 0 && s.pid_start != 0 && process_start_time(s.pid) == s.pid_start;
    bool was_active = s.status != "exited" && s.monitor_pid > 0;
    if (!was_active || monitor_alive || (s.status != "restarting" && s.status != "created" && process_alive)) {
      keep.push_back(c);
      continue;
    }
    logger_.info("container " + c.id.substr(0, 12) + " lost its monitor; marking it exited");
    try {
      runtime(c.runtime).remove(c.id);
    } catch (const Error&) {
    }
    try {
      storage().unmount(c.id);
    } catch (const Error&) {
    }
    if (c.auto_remove || s.status == "creating") {  // a --rm one, or one whose create died midway
      cleanup_container(c);
      removed = true;
      continue;
    }
    ContainerState dead = live_state(c);
    dead.finished_at = now_rfc3339();
    dead.monitor_pid = 0;
    store().save_container_state(c.id, dead);
    keep.push_back(c);
  }
  if (removed) store().save_containers(keep);
}

ImageRecord Engine::import_image(int fd, const std::string& display_name, const std::string& reference,
                                 const ImportOptions& options) {
  ImageRef ref = parse_image_ref(reference);
  if (!ref.digest.empty()) throw Error(Errc::kInvalidInput, "cannot import to a digest reference \"" + reference + "\"; give NAME[:TAG]");
  Store& st = store();
  storage();  // fail early (unknown driver) before reading a large tarball
  auto staging = st.stage("import");
  fs::path plain = staging.dir() / "layer.tar";
  std::uint64_t size = 0;
  std::string diff_hex = decompress_layer(fd, display_name, plain, &size);
  std::string diff_id = "sha256:" + diff_hex;

  json image_config = detail::apply_image_changes(json::object(), options.changes);
  std::string created = now_rfc3339();
  json config = {{"created", created},
                 {"architecture", detail::host_architecture()},
                 {"os", "linux"},
                 {"config", image_config},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id}}}},
                 {"history", {{{"created", created}, {"created_by", "hutch import " + display_name},
                               {"comment", options.message}}}}};

  auto lock = st.lock(FileLock::Mode::kExclusive);
  recover_once();
  bool blob_was_there = st.has_blob("sha256:" + diff_hex);
  std::string layer_blob = st.commit_blob(plain, diff_hex);
  std::string chain = chain_id("", diff_id);
  auto layers = st.layers();
  bool known = std::any_of(layers.begin(), layers.end(), [&](const LayerRecord& l) { return l.id == chain; });
  if (!storage().has_layer(chain)) {
    try {
      storage().create_layer(chain, "", st.blob_path(layer_blob));
    } catch (Error& e) {
      // Nothing of a layer that cannot be applied stays behind.
      if (!blob_was_there) ::unlink(st.blob_path(layer_blob).c_str());
      throw std::move(e.with_context("unpacking " + display_name));
    }
  }
  if (!known) {
    layers.push_back({chain, "", diff_id, layer_blob, size});
    st.save_layers(layers);
  }
  std::string config_text = config.dump();
  std::string config_digest = st.put_blob(config_text);
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config",
                    {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                     {"digest", config_digest},
                     {"size", config_text.size()}}},
                   {"layers",
                    {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", layer_blob}, {"size", size}}}}};
  std::string manifest_digest = st.put_blob(manifest.dump());
  ImageRecord rec{digest_hex(config_digest), manifest_digest, {ref.full()}, {chain}, size, created};
  auto images = st.images();
  for (auto& img : images) img.names.erase(std::remove(img.names.begin(), img.names.end(), ref.full()), img.names.end());
  images.push_back(rec);
  st.save_images(images);
  return rec;
}

void Engine::tag_image(const std::string& source, const std::string& target) {
  ImageRef ref = parse_image_ref(target);
  if (!ref.digest.empty()) throw Error(Errc::kInvalidInput, "cannot tag with a digest: \"" + target + "\"");
  auto lock = store().lock(FileLock::Mode::kExclusive);
  auto img = store().find_image(source);
  if (!img) throw Error(Errc::kNotFound, "no such image: " + source + " (see \"hutch images\")");
  auto images = store().images();
  for (auto& i : images) {
    i.names.erase(std::remove(i.names.begin(), i.names.end(), ref.full()), i.names.end());
    if (i.id == img->id) i.names.push_back(ref.full());
  }
  store().save_images(images);
}

std::vector<std::string> Engine::remove_image(const std::string& reference, bool force) {
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kExclusive);
  recover_once();
  auto img = st.find_image(reference);
  if (!img) throw Error(Errc::kNotFound, "no such image: " + reference + " (see \"hutch images\")");
  std::vector<std::string> out;
  auto images = st.images();
  auto parsed = try_parse_image_ref(reference);
  bool by_name = parsed && std::find(img->names.begin(), img->names.end(), parsed->full()) != img->names.end();
  if (by_name && img->names.size() > 1) {
    for (auto& i : images)
      if (i.id == img->id) i.names.erase(std::remove(i.names.begin(), i.names.end(), parsed->full()), i.names.end());
    st.save_images(images);
    return {"Untagged: " + parsed->full()};
  }
  if (!by_name && img->names.size() > 1 && !force)
    throw Error(Errc::kInvalidInput, "image " + img->id.substr(0, 12) + " has several names (" +
                                         std::to_string(img->names.size()) +
                                         "); remove them one by one, or use \"hutch rmi -f\"");
  auto containers = st.containers();
  std::vector<ContainerRecord> keep;
  for (const auto& c : containers) {
    if (c.image_id != img->id) {
      keep.push_back(c);
      continue;
    }
    bool running = c.state.status == "running" && process_start_time(c.state.monitor_pid) == c.state.monitor_start;
    if (!force || running)
      throw Error(Errc::kInvalidInput, "image " + img->id.substr(0, 12) + " is in use by container " + c.id.substr(0, 12) +
                                           " (" + c.name + ")" + (running ? ", which is running" : "") +
                                           "; remove it first with \"hutch rm " + c.name + "\"" +
                                           (running ? "" : ", or use \"hutch rmi -f\""));
    cleanup_container(c);
  }
  if (keep.size() != containers.size()) st.save_containers(keep);
  for (const auto& n : img->names) out.push_back("Untagged: " + n);
  drop_image(*img);
  out.push_back("Deleted: " + img->id);
  return out;
}

void Engine::collect_unreferenced() {
  Store& st = store();
  auto wanted = st.referenced_blobs();
  for (const auto& d : st.blob_digests())
    if (!wanted.count(d)) {
      logger_.info("removing blob " + d + ", which an interrupted command left");
      ::unlink(st.blob_path(d).c_str());
    }
  std::set<std::string> recorded;
  for (const auto& l : st.layers()) recorded.insert(l.id);
  for (const auto& id : storage().list_layers())
    if (!recorded.count(id)) {
      logger_.info("removing layer " + id.substr(0, 12) + ", which an interrupted command left");
      storage().remove_layer(id);
    }
}

std::uint64_t Engine::drop_image(const ImageRecord& img) {
  Store& st = store();
  auto images = st.images();
  images.erase(std::remove_if(images.begin(), images.end(), [&](const ImageRecord& i) { return i.id == img.id; }),
               images.end());
  st.save_images(images);
  // Layers no other image stands on go too.
  std::set<std::string> used;
  for (const auto& i : images) used.insert(i.layers.begin(), i.layers.end());
  auto layers = st.layers();
  std::set<std::string> still_used_blobs;
  std::vector<LayerRecord> kept_layers;
  std::uint64_t freed = 0;
  for (const auto& l : layers) {
    bool mine = std::find(img.layers.begin(), img.layers.end(), l.id) != img.layers.end();
    if (mine && !used.count(l.id)) {
      storage().remove_layer(l.id);
      freed += l.size;
      continue;
    }
    kept_layers.push_back(l);
    still_used_blobs.insert(l.blob);
  }
  st.save_layers(kept_layers);
  for (const auto& l : layers)
    if (!still_used_blobs.count(l.blob) && !l.blob.empty()) ::unlink(st.blob_path(l.blob).c_str());
  bool manifest_shared = false, config_shared = false;
  for (const auto& i : images) {
    manifest_shared |= i.manifest_digest == img.manifest_digest;
    config_shared |= i.id == img.id;
  }
  if (!manifest_shared && !img.manifest_digest.empty()) ::unlink(st.blob_path(img.manifest_digest).c_str());
  if (!config_shared) ::unlink(st.blob_path("sha256:" + img.id).c_str());
  return freed;
}

std::vector<ImageRecord> Engine::list_images() {
  auto lock = store().lock(FileLock::Mode::kShared);
  return store().images();
}

json Engine::inspect_image(const std::string& reference) {
  auto lock = store().lock(FileLock::Mode::kShared);
  auto img = store().find_image(reference);
  if (!img) throw Error(Errc::kNotFound, "no such image: " + reference + " (see \"hutch images\")");
  json config = json::parse(store().read_blob("sha256:" + img->id));
  json manifest = json::parse(store().read_blob(img->manifest_digest));
  json cfg = config.value("config", json::object());
  json out = {{"Id", img->id},
              {"Digest", img->manifest_digest},
              {"RepoTags", img->names},
              {"RepoDigests", json::array()},
              {"Created", config.value("created", img->created)},
              {"Architecture", config.value("architecture", "")},
              {"Os", config.value("os", "")},
              {"Variant", config.value("variant", "")},
              {"Author", config.value("author", "")},
              {"Size", img->size},
              {"Config",
               {{"Env", cfg.value("Env", json::array())},
                {"Cmd", cfg.value("Cmd", json())},
                {"Entrypoint", cfg.value("Entrypoint", json())},
                {"WorkingDir", cfg.value("WorkingDir", "")},
                {"User", cfg.value("User", "")},
                {"Labels", cfg.value("Labels", json())}}},
              {"RootFS", {{"Type", "layers"}, {"Layers", config["rootfs"].value("diff_ids", json::array())}}},
              {"History", config.value("history", json::array())},
              {"ManifestType", manifest.value("mediaType", "")}};
  // Each repository with each digest it answers to: the manifest's, and the index's it came through.
  std::vector<std::string> digests = img->index_digests;
  digests.push_back(img->manifest_digest);
  std::set<std::string> repos_seen;
  for (const auto& n : img->names) {
    auto at = n.find('@');
    std::string repo = n.substr(0, at);
    if (at == std::string::npos) {
      auto colon = repo.rfind(':');
      auto slash = repo.rfind('/');
      if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) repo = repo.substr(0, colon);
    }
    if (!repos_seen.insert(repo).second) continue;
    for (const auto& d : digests) out["RepoDigests"].push_back(repo + "@" + d);
  }
  return out;
}

std::string Engine::unique_name(const std::vector<ContainerRecord>& existing) const {
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string hex = random_hex(2);
    unsigned v = static_cast<unsigned>(std::stoul(hex, nullptr, 16));
    std::string name = std::string(kAdjectives[v % 20]) + "_" + kNouns[(v / 20) % 20];
    if (attempt > 10) name += "_" + std::to_string(v);
    if (std::none_of(existing.begin(), existing.end(), [&](const ContainerRecord& c) { return c.name == name; }))
      return name;
  }
  return "hutch_" + random_hex(6);
}

void Engine::cleanup_container(const ContainerRecord& c) {
  try {
    storage().unmount(c.id);
    storage().remove_container_fs(c.id);
  } catch (const Error& e) {
    logger_.warn("cannot remove the filesystem of container " + c.id.substr(0, 12) + ": " + e.what());
  }
  try {
    remove_tree(store().container_dir(c.id));
  } catch (const Error& e) {
    logger_.warn("cannot remove " + store().container_dir(c.id).string() + ": " + e.what());
  }
}

namespace {

std::vector<std::string> parse_entrypoint(const std::string& text) {
  if (text.empty()) return {};
  if (text[0] == '[') {
    try {
      auto j = json::parse(text);
      if (j.is_array()) return j.get<std::vector<std::string>>();
    } catch (const json::exception&) {
    }
  }
  return {text};
}

}  // namespace

namespace {

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& e : v) out += (out.empty() ? "" : sep) + e;
  return out;
}

// The flags of a set of limits, for messages: "--memory 32m, --pids-limit 10".
std::string limit_flags(const RunOptions& o) {
  std::vector<std::string> f;
  auto add = [&](const char* flag, const std::string& v) {
    if (!v.empty()) f.push_back(std::string(flag) + " " + v);
  };
  add("--memory", o.memory);
  add("--memory-swap", o.memory_swap);
  add("--cpus", o.cpus);
  add("--cpu-shares", o.cpu_shares);
  add("--cpuset-cpus", o.cpuset_cpus);
  add("--pids-limit", o.pids_limit);
  return join(f, ", ");
}

// --userns=keep-id: the caller's uid and gid inside are theirs outside. hutch's namespace maps
// the caller to 0 and the subordinate range to 1..N-1; the container's own namespace maps
// U -> 0 and everything else around it, as podman does.
std::vector<IdMap> keep_id_map(unsigned long id, unsigned long count) {
  std::vector<IdMap> m;
  if (count > 1) m.push_back({0, 1, std::min(id, count - 1)});
  m.push_back({id, 0, 1});
  if (count > 1 && count - 1 > id) m.push_back({id + 1, id + 1, count - 1 - id});
  return m;
}

void check_maps_fit(const std::vector<IdMap>& maps, unsigned long count, const char* what) {
  for (const auto& m : maps)
    if (m.host_id + m.size > count)
      throw Error(Errc::kUsage, std::string("--") + what + " " + std::to_string(m.container_id) + ":" +
                                    std::to_string(m.host_id) + ":" + std::to_string(m.size) + ": hutch's namespace has only " +
                                    std::to_string(count) + " " + std::string(what).substr(0, 3) + "s (0-" + std::to_string(count - 1) +
                                    "; see \"hutch unshare cat /proc/self/" + std::string(what).substr(0, 3) + "_map\")");
}

}  // namespace

ContainerRecord Engine::create_container(const RunOptions& o) {
  Store& st = store();
  if (!o.workdir.empty() && o.workdir[0] != '/')
    throw Error(Errc::kUsage, "the working directory \"" + o.workdir + "\" must be an absolute path");
  // Everything the flags say, checked before anything is made.
  std::vector<std::string> extra_env;
  if (o.env_host)
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("_HUTCH_", 0) != 0) extra_env.push_back(*e);
  for (const auto& f : o.env_files) {
    auto v = read_env_file(f);
    extra_env.insert(extra_env.end(), v.begin(), v.end());
  }
  extra_env.insert(extra_env.end(), o.env.begin(), o.env.end());
  SpecInputs in;
  detail::apply_security_opts(o.security_opts, in);
  in.privileged = o.privileged;
  in.cap_add = o.cap_add;
  in.cap_drop = o.cap_drop;
  container_capabilities(in.privileged, in.cap_add, in.cap_drop);  // unknown names fail here
  in.ulimits = detail::parse_ulimits(o.ulimits, rootless_.mode == UsernsMode::kRealRoot);
  in.devices = detail::parse_devices(o.devices);
  if (o.privileged) {
    // The host's devices, as podman gives a privileged container: those the caller may open
    // (rootless, the others would be there and refuse every open).
    static const std::set<std::string> standard = {"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"};
    std::error_code ec;
    for (fs::directory_iterator it("/dev", ec), end; !ec && it != end; it.increment(ec)) {
      std::string name = it->path().filename().string();
      auto st = it->symlink_status(ec);
      if (ec || !(fs::is_character_file(st) || fs::is_block_file(st)) || standard.count(name) ||
          (name.rfind("tty", 0) == 0 && name.size() > 3) || name.rfind("vcs", 0) == 0)
        continue;
      if (::access(it->path().c_str(), R_OK) != 0 && ::access(it->path().c_str(), W_OK) != 0) continue;
      bool asked = false;
      for (const auto& d : in.devices) asked |= d.container == it->path().string();
      if (!asked) in.devices.push_back({it->path(), it->path().string(), "rwm"});
    }
    for (const char* extra : {"/dev/net/tun", "/dev/fuse"})
      if (::access(extra, R_OK | W_OK) == 0 && std::none_of(in.devices.begin(), in.devices.end(), [&](const DeviceRequest& d) { return d.container == extra; }))
        in.devices.push_back({extra, extra, "rwm"});
  }
  in.mounts = detail::parse_tmpfs_mounts(o);
  auto volume_mounts = detail::parse_volume_mounts(o);
  if (!o.shm_size.empty()) in.shm_size = static_cast<std::uint64_t>(detail::parse_bytes(o.shm_size, "--shm-size"));
  if (o.oom_score_adj) {
    if (*o.oom_score_adj < -1000 || *o.oom_score_adj > 1000)
      throw Error(Errc::kUsage, "--oom-score-adj " + std::to_string(*o.oom_score_adj) + ": must be between -1000 and 1000");
    in.oom_score_adj = o.oom_score_adj;
  }
  auto shared = [&](const std::string& value, const char* flag) {
    if (value.empty() || value == "private") return false;
    if (value == "host") return true;
    throw Error(Errc::kUsage, std::string(flag) + " \"" + value + "\": hutch takes host or private" +
                                  (value.rfind("container:", 0) == 0 ? " (joining another container's namespace is not supported yet)" : ""));
  };
  in.host_pid = shared(o.pid, "--pid");
  in.host_ipc = shared(o.ipc, "--ipc");
  in.host_uts = shared(o.uts, "--uts");
  in.read_only = o.read_only;
  in.read_only_tmpfs = o.read_only_tmpfs.value_or(true);
  in.terminal = o.tty;
  in.tty_group_mapped = rootless_.mode == UsernsMode::kRealRoot || rootless_.gid_count > 5;
  if (!o.stop_signal.empty() && detail::parse_signal(o.stop_signal) == 0)
    throw Error(Errc::kUsage, "--stop-signal \"" + o.stop_signal + "\" is not a signal (a name such as SIGINT, or a number)");
  std::optional<ProcessUser> keep_id_user;
  if (o.userns.rfind("keep-id", 0) == 0) {
    if (rootless_.mode == UsernsMode::kRealRoot)
      throw Error(Errc::kUsage, "--userns keep-id is for rootless hutch: as root, your IDs are the container's already");
    if (rootless_.uid_count < 2 || rootless_.gid_count < 2)
      throw Error(Errc::kUsage, "--userns keep-id needs subordinate IDs: without a range hutch's namespace holds only your own "
                                "ID, already the container's root, so what the container writes is yours on the host anyway "
                                "(add a range to show your uid inside: usermod --add-subuids 100000-165535 --add-subgids "
                                "100000-165535 " + std::string(getenv("USER") ? getenv("USER") : "USER") + ")");
    unsigned long uid = rootless_.host_uid, gid = rootless_.host_gid;
    if (o.userns.size() > 7) {
      if (o.userns[7] != ':') throw Error(Errc::kUsage, "--userns \"" + o.userns + "\": expected keep-id[:uid=U,gid=G]");
      std::stringstream ss(o.userns.substr(8));
      for (std::string kv; std::getline(ss, kv, ',');) {
        auto eq = kv.find('=');
        std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
        if ((k != "uid" && k != "gid") || v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
          throw Error(Errc::kUsage, "--userns \"" + o.userns + "\": expected keep-id[:uid=U,gid=G]");
        (k == "uid" ? uid : gid) = std::stoul(v);
      }
    }
    in.uid_mappings = keep_id_map(uid, rootless_.uid_count);
    in.gid_mappings = keep_id_map(gid, rootless_.gid_count);
    ProcessUser u;
    u.uid = static_cast<uid_t>(uid);
    u.gid = static_cast<gid_t>(gid);
    keep_id_user = u;
  } else if (!o.userns.empty() && o.userns != "host" && o.userns != "private") {
    throw Error(Errc::kUsage, "--userns \"" + o.userns + "\": hutch takes host (the default: hutch's own namespace) or keep-id[:uid=U,gid=G]");
  }
  if (!o.uidmap.empty() || !o.gidmap.empty()) {
    if (keep_id_user) throw Error(Errc::kUsage, "--userns keep-id and --uidmap/--gidmap cannot be combined");
    in.uid_mappings = detail::parse_id_maps(o.uidmap.empty() ? o.gidmap : o.uidmap, o.uidmap.empty() ? "--gidmap" : "--uidmap");
    in.gid_mappings = detail::parse_id_maps(o.gidmap.empty() ? o.uidmap : o.gidmap, o.gidmap.empty() ? "--uidmap" : "--gidmap");
    check_maps_fit(in.uid_mappings, rootless_.mode == UsernsMode::kRealRoot ? 4294967295ul : rootless_.uid_count, "uidmap");
    check_maps_fit(in.gid_mappings, rootless_.mode == UsernsMode::kRealRoot ? 4294967295ul : rootless_.gid_count, "gidmap");
    in.tty_group_mapped = std::any_of(in.gid_mappings.begin(), in.gid_mappings.end(),
                                      [](const IdMap& m) { return m.container_id <= 5 && 5 < m.container_id + m.size; });
    // The container's files belong to ID 0 of hutch's namespace (you, rootless): a map
    // without it leaves the container unable to reach its own root filesystem. (podman
    // copies the image with its owners shifted instead; hutch does not re-own images.)
    auto maps_zero = [](const std::vector<IdMap>& maps) {
      for (const auto& m : maps)
        if (m.host_id == 0) return true;
      return false;
    };
    if (!maps_zero(in.uid_mappings) || !maps_zero(in.gid_mappings))
      throw Error(Errc::kUsage, "--uidmap/--gidmap must map ID 0 of hutch's namespace (the owner of the image's files) "
                                "to some container ID, e.g. --uidmap 0:0:1 --uidmap 1:1:1000; or use --userns keep-id");
  }
  if (o.init) in.init_binary = detail::find_init_binary(config_);
  std::string hosts_extra;
  for (const auto& h : o.add_hosts) hosts_extra += detail::hosts_line(h);
  ResourceLimits limits = detail::parse_limits(o);
  CgroupSupport cgroups;
  if (limits.any()) {
    cgroups = detect_cgroups(rootless_.mode == UsernsMode::kRealRoot, config_.cgroup_parent);
    std::vector<std::string> missing;
    for (const auto& c : controllers_for(limits))
      if (std::find(cgroups.controllers.begin(), cgroups.controllers.end(), c) == cgroups.controllers.end())
        missing.push_back(c);
    if (!cgroups.usable || !missing.empty()) {
      std::string why = !cgroups.usable ? cgroups.reason + "; " + cgroups.fix
                                        : "the " + join(missing, ", ") + " controller" + (missing.size() > 1 ? "s are" : " is") +
                                              " not available to you in " + cgroups.parent;
      std::string msg = "resource limits (" + limit_flags(o) + ") cannot be enforced: " + why;
      if (config_.require_limits) throw Error(Errc::kConfig, msg + " ([engine] require_limits is set in hutch.conf)");
      logger_.warn(msg + "; the container runs without them");
      limits = {};
    }
  }

  // What the monitor does with it: its log, restart policy, healthcheck.
  ContainerRecord rec;
  rec.tty = o.tty;
  rec.interactive = o.interactive;
  rec.log_driver = o.log_driver.empty() ? config_.log_driver : o.log_driver;
  rec.log_opts = o.log_opts;
  parse_log_config(rec.log_driver, rec.log_opts, "ctr.log");  // bad values fail here
  // passthrough (podman's): the container gets this command's own stdin, stdout and stderr, so
  // nothing is logged or relayed; only for a container in the foreground without a terminal.
  if (rec.log_driver == "passthrough" && (o.detach || o.tty))
    throw Error(Errc::kUsage, std::string("--log-driver passthrough gives the container this command's own stdio: it cannot be "
                                          "combined with ") + (o.detach ? "-d" : "-t") + "; use k8s-file, json-file or none");
  detail::parse_restart_policy(o.restart, rec);
  if (rec.restart_policy != "no" && o.remove)
    throw Error(Errc::kUsage, "--restart " + o.restart + " and --rm cannot be combined: a container that is removed when it ends cannot be restarted");
  rec.labels = detail::parse_labels(o.labels, o.label_files, "--label");
  rec.annotations = detail::parse_labels(o.annotations, {}, "--annotation");
  if (o.stop_timeout) rec.stop_timeout = *o.stop_timeout;
  if (!o.detach_keys.empty()) attach::parse_detach_keys(o.detach_keys);

  ResolvedNetwork resolved = resolve_network(o.networks);
  NetworkBackend& net = network(resolved.backend);
  std::vector<PortMapping> ports;
  for (const auto& spec : o.publish)
    for (auto& p : parse_port_spec(spec)) ports.push_back(p);
  if (!o.network_aliases.empty() && resolved.networks.empty())
    throw Error(Errc::kUsage, "--network-alias needs a user network (\"hutch network create NAME\", then --network NAME); "
                              "the " + resolved.backend + " network has no names");
  runtime();  // an unknown runtime is refused before anything is made (and its monitor inherits it loaded)
  StorageDriver& sd = storage();

  ImageRecord image;
  ImageConfig icfg;
  {
    auto lock = st.lock(FileLock::Mode::kExclusive);
    recover_once();
    auto img = st.find_image(o.image);
    if (!img) throw Error(Errc::kNotFound, "no such image: " + o.image + " (see \"hutch images\", or \"hutch import\" one)");
    image = *img;
    json image_config = json::parse(st.read_blob("sha256:" + image.id));
    icfg = parse_image_config(image_config);
    rec.healthcheck = detail::healthcheck_for(o, image_config);
    auto containers = st.container_records();
    if (!o.name.empty()) {
      for (const auto& c : containers)
        if (c.name == o.name)
          throw Error(Errc::kAlreadyExists, "the container name \"" + o.name + "\" is already in use by " +
                                                c.id.substr(0, 12) + "; remove it with \"hutch rm " + o.name +
                                                "\" or choose another --name");
    }
    rec.id = random_hex(32);
    rec.name = o.name.empty() ? unique_name(containers) : o.name;
    rec.image_id = image.id;
    rec.image_name = image.names.empty() ? image.id.substr(0, 12) : image.names.front();
    rec.created = now_rfc3339();
    rec.runtime = config_.runtime.value;
    rec.network = resolved.backend;
    rec.network_options = resolved.options;
    rec.networks = resolved.networks;
    rec.network_aliases = o.network_aliases;
    if (o.publish_all) {
      // -P: every EXPOSEd port the -p flags left out, on a free host port.
      json exposed = image_config.value("config", json::object()).value("ExposedPorts", json::object());
      for (const auto& [key, _] : exposed.items())
        for (auto& p : parse_exposed_port(key)) {
          bool given = std::any_of(ports.begin(), ports.end(), [&](const PortMapping& q) {
            return q.container_port == p.container_port && q.protocol == p.protocol;
          });
          if (!given) ports.push_back(p);
        }
    }
    if (!ports.empty() && !net.capabilities().port_publishing) {
      if (!net.capabilities().isolated) {
        logger_.warn("published ports are discarded with --network " + resolved.backend + ": the container uses the host's ports directly");
        ports.clear();
      } else {
        throw Error(Errc::kUsage, "the " + resolved.backend + " network cannot publish ports (-p, -P); use the slirp network or a user network");
      }
    }
    rec.ports = ports;
    rec.auto_remove = o.remove;
    rec.stop_signal = o.stop_signal.empty() ? icfg.stop_signal : o.stop_signal;
    if (o.entrypoint) {
      rec.command = parse_entrypoint(*o.entrypoint);
      rec.command.insert(rec.command.end(), o.command.begin(), o.command.end());
    } else {
      rec.command = icfg.entrypoint;
      const auto& cmd = o.command.empty() ? icfg.cmd : o.command;
      rec.command.insert(rec.command.end(), cmd.begin(), cmd.end());
    }
    if (rec.command.empty())
      throw Error(Errc::kUsage, "no command given for image " + o.image +
                                    ", and it has no CMD or ENTRYPOINT; give one after the image name");
    for (auto& v : volume_mounts) {
      if (v.anonymous) v.volume = random_hex(32), rec.anonymous_volumes.push_back(v.volume);
      if (!v.volume.empty()) rec.volumes.push_back(v.volume);
    }
    make_dirs(st.container_dir(rec.id), 0700);
    try {
      sd.create_container_fs(rec.id, image.layers.back(), ContainerFsOptions{o.remove});
    } catch (Error& e) {
      remove_tree(st.container_dir(rec.id));
      throw std::move(e.with_context("creating the filesystem of container " + rec.name));
    }
    containers.push_back(rec);
    // "creating" until its bundle is written: ps does not show it, and if this command dies
    // before the end, the next one that changes the store removes it (its creator is gone).
    rec.state.status = "creating";
    rec.state.monitor_pid = getpid();
    rec.state.monitor_start = process_start_time(getpid());
    st.save_container_state(rec.id, rec.state, Durability::kVolatile);
    st.save_containers(containers);
  }
  if (limits.any()) {
    in.resources = limits;
    in.cgroups_path = container_cgroup_path(cgroups, rec.id);
  }

  NetworkRequest netreq = network_request(rec);
  try {
    fs::path bundle = st.container_dir(rec.id);
    fs::path rootfs = sd.mount(rec.id);
    in.rootfs = rootfs;
    if (!volume_mounts.empty()) {
      auto lock = st.lock(FileLock::Mode::kExclusive);
      for (const auto& v : volume_mounts) {
        MountRequest m;
        m.destination = v.destination;
        m.type = "bind";
        m.source = v.volume.empty() ? v.host : volume_for_run(v.volume, rootfs, v.destination);
        m.options = v.options;
        in.mounts.push_back(m);
      }
    }
    if (keep_id_user && o.user.empty()) {
      in.user = *keep_id_user;
      // The image may know the user: its home and groups then apply.
      try {
        ProcessUser known = resolve_user(rootfs, std::to_string(in.user.uid));
        in.user.home = known.home;
        in.user.additional_gids = known.additional_gids;
      } catch (const Error&) {
      }
    } else {
      in.user = resolve_user(rootfs, o.user.empty() ? icfg.user : o.user);
    }
    for (const auto& g : o.group_add) {
      gid_t gid = resolve_group(rootfs, g);
      if (std::find(in.user.additional_gids.begin(), in.user.additional_gids.end(), gid) == in.user.additional_gids.end())
        in.user.additional_gids.push_back(gid);
    }
    in.hostname = o.hostname.empty() ? rec.id.substr(0, 12) : o.hostname;
    in.args = rec.command;
    in.env = merge_env(icfg.env, extra_env, in.hostname, in.user.home, o.tty);
    in.cwd = o.workdir.empty() ? (icfg.working_dir.empty() ? "/" : icfg.working_dir) : o.workdir;
    in.network = net.plan(netreq);
    // /etc/hostname, /etc/hosts and /etc/resolv.conf are the container's own, bind-mounted.
    // A --rm container's bundle needs no fsync: it is not started again after a crash.
    const auto kBundle = o.remove ? Durability::kVolatile : Durability::kSynced;
    write_file_atomic(bundle / "hostname", in.hostname + "\n", 0644, kBundle);
    std::string hosts = "127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    std::string resolv;
    if (!o.dns.empty()) {
      for (const auto& ns : o.dns) resolv += "nameserver " + ns + "\n";
    } else {
      if (in.network.copy_host_dns) {
        try {
          resolv = read_file("/etc/resolv.conf");
        } catch (const Error&) {
        }
      }
      for (const auto& ns : in.network.nameservers) resolv += "nameserver " + ns + "\n";
    }
    if (!o.dns_search.empty()) resolv += "search " + join(o.dns_search, " ") + "\n";
    else if (!in.network.dns_search.empty()) resolv += "search " + join(in.network.dns_search, " ") + "\n";
    if (!o.dns_options.empty()) resolv += "options " + join(o.dns_options, " ") + "\n";
    // The container's own line: its address once its network is attached (the monitor puts it in).
    hosts += "127.0.1.1\t" + in.hostname + (rec.name != in.hostname ? " " + rec.name : "") + "\n";
    for (const auto& [address, names] : in.network.hosts) hosts += address + "\t" + names + "\n";
    hosts += hosts_extra;
    write_file_atomic(bundle / "hosts", hosts, 0644, kBundle);
    write_file_atomic(bundle / "resolv.conf", resolv, 0644, kBundle);
    in.file_binds = {{"/etc/hostname", bundle / "hostname"},
                     {"/etc/hosts", bundle / "hosts"},
                     {"/etc/resolv.conf", bundle / "resolv.conf"}};
    write_file_atomic(bundle / "config.json", generate_spec(in).dump(1) + "\n", 0600, kBundle);
    rec.state = st.update_container_state(
        rec.id,
        [](ContainerState& s) {
          s.status = "created";
          s.monitor_pid = 0;
          s.monitor_start = 0;
        },
        kBundle);
  } catch (...) {
    try {
      forget_container(rec);
    } catch (const Error& e) {
      logger_.warn("cannot remove the half-made container " + rec.name + ": " + e.what());
    }
    throw;
  }
  return rec;
}

std::optional<json> Engine::inspect_container(const std::string& name_or_id) {
  std::optional<ContainerRecord> found;
  for (const auto& c : list_containers())
    if (c.id == name_or_id || c.name == name_or_id || (name_or_id.size() >= 3 && c.id.rfind(name_or_id, 0) == 0))
      found = c;
  if (!found) return std::nullopt;
  const ContainerRecord& c = *found;
  json spec = json::object();
  try {
    spec = json::parse(read_file(store().container_dir(c.id) / "config.json"));
  } catch (const std::exception&) {
  }
  json mounts = json::array();
  for (const auto& m : spec.value("mounts", json::array())) {
    std::string dest = m.value("destination", "");
    if (m.value("type", "") != "bind" || dest.rfind("/etc/", 0) == 0 || dest.rfind("/dev", 0) == 0 ||
        dest == "/proc" || dest == "/sys" || dest == "/run/hutch-init")
      continue;
    auto opts = m.value("options", std::vector<std::string>{});
    bool ro = std::find(opts.begin(), opts.end(), "ro") != opts.end();
    std::string source = m.value("source", "");
    json entry = {{"Type", "bind"}, {"Source", source}, {"Destination", dest}, {"RW", !ro}};
    for (const auto& v : c.volumes)
      if (source.find("/volumes/" + v + "/") != std::string::npos) entry = {{"Type", "volume"}, {"Name", v}, {"Source", source}, {"Destination", dest}, {"Driver", "local"}, {"RW", !ro}};
    mounts.push_back(entry);
  }
  const json& process = spec.value("process", json::object());
  const ContainerState& st = c.state;
  json state = {{"Status", st.status},
                {"Running", st.status == "running" || st.status == "paused"},
                {"Paused", st.status == "paused"},
                {"Restarting", st.status == "restarting"},
                {"OOMKilled", st.oom_killed},
                {"Dead", false},
                {"Pid", st.status == "running" || st.status == "paused" ? st.pid : 0},
                {"ExitCode", st.exit_code},
                {"Error", st.error},
                {"StartedAt", st.started_at},
                {"FinishedAt", st.finished_at},
                {"ConmonPid", st.monitor_pid}};
  if (c.healthcheck) {
    json log = json::array();
    HealthState h = st.health.value_or(HealthState{"starting", 0, {}});
    for (const auto& r : h.log)
      log.push_back({{"Start", r.start}, {"End", r.end}, {"ExitCode", r.exit_code}, {"Output", r.output}});
    state["Health"] = {{"Status", h.status}, {"FailingStreak", h.failing_streak}, {"Log", log}};
  }
  json health = nullptr;
  if (c.healthcheck)
    health = {{"Test", c.healthcheck->test},
              {"Interval", c.healthcheck->interval},
              {"Timeout", c.healthcheck->timeout},
              {"StartPeriod", c.healthcheck->start_period},
              {"Retries", c.healthcheck->retries}};
  // docker's shape: "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}] while it runs, the
  // ports asked for (HostPort "" for a free one) in HostConfig.PortBindings.
  bool live = st.status == "running" || st.status == "paused";
  json ports = json::object(), bindings = json::object();
  for (const auto& p : c.ports) {
    std::string key = std::to_string(p.container_port) + "/" + p.protocol;
    bindings[key].push_back({{"HostIp", p.host_ip}, {"HostPort", p.host_port ? std::to_string(p.host_port) : ""}});
    if (!ports.contains(key)) ports[key] = nullptr;
  }
  for (const auto& p : live ? st.ports : std::vector<PortMapping>{}) {
    std::string key = std::to_string(p.container_port) + "/" + p.protocol;
    if (!ports[key].is_array()) ports[key] = json::array();
    ports[key].push_back({{"HostIp", p.host_ip.empty() ? "0.0.0.0" : p.host_ip}, {"HostPort", std::to_string(p.host_port)}});
  }
  json networks = json::object();
  json net_settings = {{"Ports", ports}, {"IPAddress", ""}, {"IPPrefixLen", 0}, {"Gateway", ""}, {"MacAddress", ""},
                       {"GlobalIPv6Address", ""}, {"GlobalIPv6PrefixLen", 0}, {"IPv6Gateway", ""}};
  for (const auto& ep : live ? st.endpoints : std::vector<NetworkEndpoint>{}) {
    json e = {{"IPAddress", ep.ipv4}, {"IPPrefixLen", ep.prefix}, {"Gateway", ep.gateway}, {"MacAddress", ep.mac},
              {"GlobalIPv6Address", ep.ipv6}, {"GlobalIPv6PrefixLen", ep.prefix6}, {"IPv6Gateway", ep.gateway6},
              {"Aliases", ep.aliases}, {"InterfaceName", ep.interface}};
    networks[ep.network] = e;
    if (net_settings["IPAddress"] == "")
      for (const char* k : {"IPAddress", "IPPrefixLen", "Gateway", "MacAddress", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPv6Gateway"})
        net_settings[k] = e[k];
  }
  if (!live)
    for (const auto& n : c.networks.empty() ? std::vector<std::string>{c.network} : c.networks)
      networks[n] = {{"IPAddress", ""}, {"Aliases", c.network_aliases}};
  net_settings["Networks"] = networks;
  json log_opts = json::object();
  for (const auto& kv : c.log_opts) log_opts[kv.substr(0, kv.find('='))] = kv.find('=') == std::string::npos ? "" : kv.substr(kv.find('=') + 1);
  return json{{"Id", c.id},
              {"Name", c.name},
              {"Created", c.created},
              {"Path", c.command.empty() ? "" : c.command.front()},
              {"Args", c.command.size() > 1 ? json(std::vector<std::string>(c.command.begin() + 1, c.command.end())) : json::array()},
              {"State", state},
              {"Image", "sha256:" + c.image_id},
              {"ImageName", c.image_name},
              {"RestartCount", st.restart_count},
              {"LogPath", (store().container_dir(c.id) / "ctr.log").string()},
              {"Config",
               {{"Hostname", spec.value("hostname", "")},
                {"Env", process.value("env", json::array())},
                {"Cmd", c.command},
                {"Image", c.image_name},
                {"WorkingDir", process.value("cwd", "/")},
                {"Labels", c.labels},
                {"Annotations", c.annotations},
                {"Tty", c.tty},
                {"OpenStdin", c.interactive},
                {"StopSignal", c.stop_signal.empty() ? "SIGTERM" : c.stop_signal},
                {"StopTimeout", c.stop_timeout},
                {"Healthcheck", health}}},
              {"HostConfig",
               {{"Runtime", c.runtime},
                {"NetworkMode", c.networks.empty() ? c.network : c.networks.front()},
                {"PortBindings", bindings},
                {"AutoRemove", c.auto_remove},
                {"RestartPolicy", {{"Name", c.restart_policy}, {"MaximumRetryCount", c.restart_max}}},
                {"LogConfig", {{"Type", c.log_driver}, {"Config", log_opts}}},
                {"ReadonlyRootfs", spec.contains("root") && spec["root"].value("readonly", false)},
                {"CapBounding", process.contains("capabilities") ? process["capabilities"].value("bounding", json::array())
                                                                  : json::array()}}},
              {"NetworkSettings", net_settings},
              {"Mounts", mounts}};
}

}  // namespace hutch
