#include "hutch/store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <sstream>

#include "hutch/digest.hpp"
#include "hutch/error.hpp"
#include "hutch/image_ref.hpp"
#include "hutch/paths.hpp"

namespace hutch {
namespace fs = std::filesystem;
using nlohmann::json;

void to_json(json& j, const LayerRecord& r) {
  j = json{{"id", r.id}, {"parent", r.parent}, {"diff_id", r.diff_id}, {"blob", r.blob}, {"size", r.size}};
}
void from_json(const json& j, LayerRecord& r) {
  r.id = j.at("id").get<std::string>();
  r.parent = j.value("parent", "");
  r.diff_id = j.at("diff_id").get<std::string>();
  r.blob = j.value("blob", "");
  r.size = j.value("size", std::uint64_t{0});
}
void to_json(json& j, const ImageRecord& r) {
  j = json{{"id", r.id},         {"manifest_digest", r.manifest_digest}, {"names", r.names},
           {"layers", r.layers}, {"size", r.size},                       {"created", r.created}};
  if (!r.index_digests.empty()) j["index_digests"] = r.index_digests;
}
void from_json(const json& j, ImageRecord& r) {
  r.id = j.at("id").get<std::string>();
  r.manifest_digest = j.value("manifest_digest", "");
  r.names = j.value("names", std::vector<std::string>{});
  r.layers = j.value("layers", std::vector<std::string>{});
  r.size = j.value("size", std::uint64_t{0});
  r.created = j.value("created", "");
  r.index_digests = j.value("index_digests", std::vector<std::string>{});
}
void to_json(json& j, const HealthConfig& h) {
  j = json{{"test", h.test},         {"interval", h.interval}, {"timeout", h.timeout},
           {"start_period", h.start_period}, {"retries", h.retries}, {"on_failure", h.on_failure}};
}
void from_json(const json& j, HealthConfig& h) {
  h.test = j.value("test", std::vector<std::string>{});
  h.interval = j.value("interval", h.interval);
  h.timeout = j.value("timeout", h.timeout);
  h.start_period = j.value("start_period", h.start_period);
  h.retries = j.value("retries", h.retries);
  h.on_failure = j.value("on_failure", h.on_failure);
}
void to_json(json& j, const ContainerState& s) {
  j = json{{"status", s.status},
           {"exit_code", s.exit_code},
           {"pid", s.pid},
           {"pid_start", s.pid_start},
           {"monitor_pid", s.monitor_pid},
           {"monitor_start", s.monitor_start},
           {"started_at", s.started_at},
           {"finished_at", s.finished_at},
           {"oom_killed", s.oom_killed},
           {"restart_count", s.restart_count},
           {"stopped_by_user", s.stopped_by_user},
           {"error", s.error}};
  if (!s.ports.empty()) j["ports"] = s.ports;
  if (!s.endpoints.empty()) j["endpoints"] = s.endpoints;
  if (s.health) {
    json log = json::array();
    for (const auto& r : s.health->log)
      log.push_back({{"start", r.start}, {"end", r.end}, {"exit_code", r.exit_code}, {"output", r.output}});
    j["health"] = {{"status", s.health->status}, {"failing_streak", s.health->failing_streak}, {"log", log}};
  }
}
void from_json(const json& j, ContainerState& s) {
  s.status = j.value("status", "created");
  s.exit_code = j.value("exit_code", 0);
  s.pid = j.value("pid", 0);
  s.pid_start = j.value("pid_start", 0ULL);
  s.monitor_pid = j.value("monitor_pid", 0);
  s.monitor_start = j.value("monitor_start", 0ULL);
  s.started_at = j.value("started_at", "");
  s.finished_at = j.value("finished_at", "");
  s.oom_killed = j.value("oom_killed", false);
  s.restart_count = j.value("restart_count", 0);
  s.stopped_by_user = j.value("stopped_by_user", false);
  s.error = j.value("error", "");
  s.ports = j.value("ports", std::vector<PortMapping>{});
  s.endpoints = j.value("endpoints", std::vector<NetworkEndpoint>{});
  if (j.contains("health")) {
    HealthState h;
    const json& hj = j["health"];
    h.status = hj.value("status", "");
    h.failing_streak = hj.value("failing_streak", 0);
    for (const auto& r : hj.value("log", json::array()))
      h.log.push_back({r.value("start", ""), r.value("end", ""), r.value("exit_code", 0), r.value("output", "")});
    s.health = h;
  }
}
void to_json(json& j, const PortMapping& p) {
  j = json{{"host_ip", p.host_ip}, {"host_port", p.host_port}, {"container_port", p.container_port}, {"protocol", p.protocol}};
}
void from_json(const json& j, PortMapping& p) {
  p.host_ip = j.value("host_ip", "");
  p.host_port = j.value("host_port", std::uint16_t{0});
  p.container_port = j.value("container_port", std::uint16_t{0});
  p.protocol = j.value("protocol", "tcp");
}
void to_json(json& j, const NetworkEndpoint& e) {
  j = json{{"network", e.network}, {"interface", e.interface}, {"ipv4", e.ipv4}, {"prefix", e.prefix},
           {"gateway", e.gateway}, {"ipv6", e.ipv6}, {"prefix6", e.prefix6}, {"gateway6", e.gateway6},
           {"mac", e.mac}, {"aliases", e.aliases}};
}
void from_json(const json& j, NetworkEndpoint& e) {
  e.network = j.value("network", "");
  e.interface = j.value("interface", "");
  e.ipv4 = j.value("ipv4", "");
  e.prefix = j.value("prefix", 0);
  e.gateway = j.value("gateway", "");
  e.ipv6 = j.value("ipv6", "");
  e.prefix6 = j.value("prefix6", 0);
  e.gateway6 = j.value("gateway6", "");
  e.mac = j.value("mac", "");
  e.aliases = j.value("aliases", std::vector<std::string>{});
}
NetworkRequest network_request(const ContainerRecord& r) {
  NetworkRequest q;
  q.container_id = r.id;
  q.network = r.network;
  q.container_name = r.name;
  q.networks = r.networks;
  for (const auto& n : r.networks) q.aliases[n] = r.network_aliases;
  q.options = r.network_options;
  q.ports = r.ports;
  return q;
}
void to_json(json& j, const ContainerRecord& r) {
  j = json{{"id", r.id},
           {"name", r.name},
           {"image_id", r.image_id},
           {"image_name", r.image_name},
           {"command", r.command},
           {"created", r.created},
           {"runtime", r.runtime},
           {"network", r.network},
           {"auto_remove", r.auto_remove},
           {"stop_signal", r.stop_signal},
           {"stop_timeout", r.stop_timeout},
           {"volumes", r.volumes},
           {"anonymous_volumes", r.anonymous_volumes},
           {"tty", r.tty},
           {"interactive", r.interactive},
           {"log_driver", r.log_driver},
           {"log_opts", r.log_opts},
           {"restart_policy", r.restart_policy},
           {"restart_max", r.restart_max},
           {"labels", r.labels},
           {"annotations", r.annotations},
           {"ports", r.ports},
           {"network_options", r.network_options},
           {"networks", r.networks},
           {"network_aliases", r.network_aliases}};
  if (r.healthcheck) j["healthcheck"] = *r.healthcheck;
}
void from_json(const json& j, ContainerRecord& r) {
  r.id = j.at("id").get<std::string>();
  r.name = j.value("name", "");
  r.image_id = j.value("image_id", "");
  r.image_name = j.value("image_name", "");
  r.command = j.value("command", std::vector<std::string>{});
  r.created = j.value("created", "");
  r.runtime = j.value("runtime", "");
  r.network = j.value("network", "");
  r.auto_remove = j.value("auto_remove", false);
  r.stop_signal = j.value("stop_signal", "");
  r.stop_timeout = j.value("stop_timeout", 10);
  r.volumes = j.value("volumes", std::vector<std::string>{});
  r.anonymous_volumes = j.value("anonymous_volumes", std::vector<std::string>{});
  r.tty = j.value("tty", false);
  r.interactive = j.value("interactive", false);
  r.log_driver = j.value("log_driver", "k8s-file");
  r.log_opts = j.value("log_opts", std::vector<std::string>{});
  r.restart_policy = j.value("restart_policy", "no");
  r.restart_max = j.value("restart_max", 0);
  r.labels = j.value("labels", std::map<std::string, std::string>{});
  r.annotations = j.value("annotations", std::map<std::string, std::string>{});
  r.ports = j.value("ports", std::vector<PortMapping>{});
  r.network_options = j.value("network_options", std::map<std::string, std::string>{});
  r.networks = j.value("networks", std::vector<std::string>{});
  r.network_aliases = j.value("network_aliases", std::vector<std::string>{});
  if (j.contains("healthcheck")) r.healthcheck = j["healthcheck"].get<HealthConfig>();
}

unsigned long long process_start_time(pid_t pid) {
  std::string stat;
  try {
    stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  } catch (const Error&) {
    return 0;
  }
  auto rp = stat.rfind(')');
  if (rp == std::string::npos || rp + 2 >= stat.size()) return 0;
  // A zombie has ended; only its parent has not reaped it yet (a monitor's parent is
  // whichever subreaper or init adopted it).
  if (stat[rp + 2] == 'Z' || stat[rp + 2] == 'X') return 0;
  std::istringstream in(stat.substr(rp + 2));
  std::string field;
  for (int i = 3; i < 22 && (in >> field); ++i) {
  }
  unsigned long long st = 0;
  in >> st;
  return st;
}

std::string chain_id(const std::string& parent_chain_id_hex, const std::string& diff_id) {
  if (parent_chain_id_hex.empty()) return digest_hex(diff_id);
  return sha256_hex("sha256:" + parent_chain_id_hex + " " + diff_id);
}

std::string now_rfc3339() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  snprintf(out, sizeof out, "%s.%09ldZ", buf, ts.tv_nsec);
  return out;
}

Store::Store(fs::path root, const Logger& logger) : root_(std::move(root)), logger_(logger) {
  make_dirs(root_, 0700);
  make_dirs(root_ / "blobs" / "sha256", 0700);
  make_dirs(root_ / "containers", 0700);
  make_dirs(root_ / "tmp", 0700);
}

FileLock Store::lock(FileLock::Mode mode) const { return FileLock(root_ / "store.lock", mode); }

fs::path Store::blob_path(const std::string& digest) const { return root_ / "blobs" / "sha256" / digest_hex(digest); }

bool Store::has_blob(const std::string& digest) const {
  struct stat st;
  return ::stat(blob_path(digest).c_str(), &st) == 0;
}

std::string Store::commit_blob(const fs::path& file, const std::string& hex) {
  std::string digest = "sha256:" + hex;
  fs::path dest = blob_path(digest);
  if (has_blob(digest)) {
    ::unlink(file.c_str());
    return digest;
  }
  if (::rename(file.c_str(), dest.c_str()) != 0) throw_errno("cannot store blob " + digest);
  return digest;
}

std::string Store::put_blob(const std::string& content) {
  std::string hex = sha256_hex(content);
  std::string digest = "sha256:" + hex;
  if (!has_blob(digest)) write_file_atomic(blob_path(digest), content);
  return digest;
}

std::string Store::read_blob(const std::string& digest) const { return read_file(blob_path(digest)); }

Store::Staging::~Staging() {
  if (dir_.empty()) return;
  try {
    remove_tree(dir_);
  } catch (const Error&) {
  }
  fs::path lock_file = dir_;
  lock_file += ".lock";
  ::unlink(lock_file.c_str());
}

Store::Staging Store::stage(const std::string& what) const {
  for (;;) {
    fs::path dir = tmp_dir() / (what + "-" + random_hex(8));
    fs::path lock_file = dir;
    lock_file += ".lock";
    FileLock lock(lock_file, FileLock::Mode::kExclusive);  // taken before the directory exists
    // clean_tmp removes a lone lock nobody holds: if it did so between our open and our
    // flock, the lock we hold is on a file that is gone. Then start again under a new name.
    struct stat held {}, named {};
    if (::fstat(lock.fd(), &held) != 0 || ::stat(lock_file.c_str(), &named) != 0 || held.st_ino != named.st_ino ||
        held.st_dev != named.st_dev)
      continue;
    if (::mkdir(dir.c_str(), 0700) != 0) throw_errno("cannot create " + dir.string());
    return Staging(dir, std::move(lock));
  }
}

template <typename T>
std::vector<T> Store::load(const char* file) const {
  fs::path p = root_ / file;
  std::string text;
  try {
    text = read_file(p);
  } catch (const Error& e) {
    if (e.code() == Errc::kNotFound) return {};
    throw;
  }
  try {
    return json::parse(text).get<std::vector<T>>();
  } catch (const json::exception& e) {
    throw Error(Errc::kInternal, p.string() + " is corrupt (" + e.what() +
                                     "); restore it from a backup or remove the store with \"hutch system reset\"");
  }
}

template <typename T>
void Store::save(const char* file, const std::vector<T>& items, Durability durability) {
  write_file_atomic(root_ / file, json(items).dump(1) + "\n", 0600, durability);
}

std::vector<LayerRecord> Store::layers() const { return load<LayerRecord>("layers.json"); }
void Store::save_layers(const std::vector<LayerRecord>& v) { save("layers.json", v); }
std::vector<ImageRecord> Store::images() const { return load<ImageRecord>("images.json"); }
void Store::save_images(const std::vector<ImageRecord>& v) { save("images.json", v); }
std::vector<ContainerRecord> Store::container_records() const { return load<ContainerRecord>("containers.json"); }

std::vector<ContainerRecord> Store::containers() const {
  auto all = container_records();
  for (auto& c : all) c.state = container_state(c.id);
  return all;
}

ContainerState Store::container_state(const std::string& id) const {
  fs::path p = container_dir(id) / "state.json";
  std::string text;
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};  // never started (or being made)
  char buf[8192];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  try {
    return json::parse(text).get<ContainerState>();
  } catch (const json::exception& e) {
    logger_.warn(p.string() + " is corrupt (" + e.what() + "); the container is shown as exited");
    ContainerState s;
    s.status = "exited";
    s.error = "its state file was corrupt";
    return s;
  }
}

FileLock Store::lock_container_state(const std::string& id) const {
  return FileLock(container_dir(id) / "state.lock", FileLock::Mode::kExclusive);
}

void Store::save_container_state(const std::string& id, const ContainerState& state, Durability durability) {
  write_file_atomic(container_dir(id) / "state.json", json(state).dump() + "\n", 0600, durability);
}

ContainerState Store::update_container_state(const std::string& id, const std::function<void(ContainerState&)>& change,
                                             Durability durability) {
  auto lock = lock_container_state(id);
  ContainerState s = container_state(id);
  change(s);
  save_container_state(id, s, durability);
  return s;
}
void Store::save_containers(const std::vector<ContainerRecord>& v, Durability durability) {
  save("containers.json", v, durability);
}

std::optional<ImageRecord> Store::find_image(const std::string& reference) const {
  auto all = images();
  std::string ref = reference;
  if (ref.rfind("sha256:", 0) == 0) ref = ref.substr(7);
  for (const auto& img : all)
    if (img.id == ref) return img;
  if (auto parsed = try_parse_image_ref(reference)) {
    std::string full = parsed->full();
    for (const auto& img : all)
      for (const auto& n : img.names)
        if (n == full) return img;
  }
  // A unique ID prefix (at least 3 hex digits).
  bool hex = ref.size() >= 3 && ref.size() < 64 && ref.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (hex) {
    std::optional<ImageRecord> found;
    for (const auto& img : all) {
      if (img.id.compare(0, ref.size(), ref) == 0) {
        if (found)
          throw Error(Errc::kInvalidInput, "the ID prefix \"" + ref + "\" matches more than one image; give more digits");
        found = img;
      }
    }
    return found;
  }
  return std::nullopt;
}

std::optional<ContainerRecord> Store::find_container(const std::string& name_or_id) const {
  auto found = find_container_record(name_or_id);
  if (found) found->state = container_state(found->id);
  return found;
}

std::optional<ContainerRecord> Store::find_container_record(const std::string& name_or_id) const {
  // One state file read (the match's), not one per container.
  auto all = load<ContainerRecord>("containers.json");
  for (const auto& c : all)
    if (c.id == name_or_id || c.name == name_or_id) return c;
  std::optional<ContainerRecord> found;
  if (name_or_id.size() >= 3)
    for (const auto& c : all)
      if (c.id.compare(0, name_or_id.size(), name_or_id) == 0) {
        if (found)
          throw Error(Errc::kInvalidInput, "the ID prefix \"" + name_or_id + "\" matches more than one container");
        found = c;
      }
  return found;
}

bool Store::clean_tmp() {
  bool found = false;
  std::error_code ec;
  for (fs::directory_iterator it(tmp_dir(), ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".lock") {
      // A lock with no staging area: its command died after taking it and before making the
      // directory, or after removing the directory and before the lock. Nobody holds it.
      fs::path area = it->path();
      area.replace_extension();
      std::error_code gone;
      if (fs::exists(area, gone)) continue;  // handled with its directory
      FileLock held = FileLock::try_lock(it->path(), FileLock::Mode::kExclusive);
      if (!held.held()) continue;  // a live command about to make its directory
      logger_.info("removing what an interrupted command left: " + it->path().string());
      ::unlink(it->path().c_str());
      found = true;
      continue;
    }
    fs::path lock_file = it->path();
    lock_file += ".lock";
    FileLock held = FileLock::try_lock(lock_file, FileLock::Mode::kExclusive);
    if (!held.held()) continue;  // a live command's staging area
    logger_.info("removing what an interrupted command left: " + it->path().string());
    found = true;
    ::unlink(lock_file.c_str());
    try {
      remove_tree(it->path());
    } catch (const Error& e) {
      logger_.warn("cannot remove leftover " + it->path().string() + ": " + e.what());
    }
  }
  // Atomic writes (records, configs, manifests) that died before their rename. Every one
  // happens under the exclusive store lock, which our caller holds: none is alive.
  // (storage-driver is written before any lock is taken: its temporary file is left alone.)
  for (const fs::path& dir : {root_, root_ / "blobs" / "sha256"}) {
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name.find(".tmp-") == std::string::npos || !it->is_regular_file() || name.rfind("storage-driver", 0) == 0)
        continue;
      logger_.info("removing what an interrupted write left: " + it->path().string());
      ::unlink(it->path().c_str());
      found = true;
    }
  }
  return found;
}

std::set<std::string> Store::referenced_blobs() const {
  std::set<std::string> out;
  for (const auto& l : layers()) out.insert(l.blob);
  for (const auto& i : images()) {
    out.insert("sha256:" + i.id);
    out.insert(i.manifest_digest);
  }
  return out;
}

std::vector<std::string> Store::blob_digests() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(root_ / "blobs" / "sha256", ec), end; !ec && it != end; it.increment(ec))
    if (is_hex64(it->path().filename().string())) out.push_back("sha256:" + it->path().filename().string());
  return out;
}

}  // namespace hutch
