// Named volumes, docker's "local" driver: create, list, inspect, remove, prune, and the
// volume a `run -v NAME:/path` mounts (made when missing, seeded with the image's files).
//
//   <root>/volumes/<name>/volume.json   the record (name, driver, created, labels, options)
//   <root>/volumes/<name>/_data         the data, mode 0755, owned by the namespace's root
//   <root>/volumes/.partial-XXXX        a volume being made, seeded or removed; whatever a
//                                       killed command left is removed by the next change
//
// A name is [a-zA-Z0-9][a-zA-Z0-9_.-]*, so ".partial-" can never be one.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <set>

#include "engine_internal.hpp"
#include "hutch/engine.hpp"
#include "hutch/layer_tar.hpp"
#include "hutch/paths.hpp"
#include "hutch/unique_fd.hpp"

namespace hutch {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kRecordFile = "volume.json";
constexpr const char* kDataDir = "_data";
constexpr const char* kPartialPrefix = ".partial-";

bool valid_volume_name(const std::string& name) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (name.empty() || !alnum(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

void check_volume_name(const std::string& name) {
  if (!valid_volume_name(name))
    throw Error(Errc::kInvalidInput, "invalid volume name \"" + name +
                                         "\": a name starts with a letter or digit and has only letters, digits, "
                                         "'_', '.' and '-' ([a-zA-Z0-9][a-zA-Z0-9_.-]*)");
}

json record_json(const VolumeRecord& v) {
  return json{{"name", v.name}, {"driver", v.driver}, {"created", v.created}, {"labels", v.labels}, {"options", v.options}};
}

fs::path volumes_dir(const fs::path& store_root) { return store_root / "volumes"; }

bool is_missing(int err) { return err == ENOENT || err == ENOTDIR; }

// The record of volume `name`; nullopt when there is no such volume. A damaged record is an
// error naming the file.
std::optional<VolumeRecord> read_volume(const fs::path& dir, const std::string& name) {
  if (!valid_volume_name(name)) return std::nullopt;
  fs::path file = dir / name / kRecordFile;
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) {
    if (is_missing(errno)) return std::nullopt;
    throw system_error("cannot read " + file.string(), errno);
  }
  VolumeRecord v;
  try {
    json j = json::parse(read_file(file));
    v.name = j.at("name").get<std::string>();
    v.driver = j.value("driver", "local");
    v.created = j.value("created", "");
    v.labels = j.value("labels", std::map<std::string, std::string>{});
    v.options = j.value("options", std::map<std::string, std::string>{});
  } catch (const json::exception& e) {
    throw Error(Errc::kInvalidInput, "the record of volume " + name + " (" + file.string() + ") is damaged: " + e.what() +
                                         "; remove the volume with \"hutch volume rm " + name + "\"");
  }
  if (v.name != name)
    throw Error(Errc::kInvalidInput, "the record " + file.string() + " names volume \"" + v.name + "\", not \"" + name +
                                         "\"; remove the volume with \"hutch volume rm " + name + "\"");
  v.mountpoint = dir / name / kDataDir;
  return v;
}

// The names of the volume directories, sorted (leftovers and strays skipped).
std::vector<std::string> volume_names(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (valid_volume_name(n) && it->is_directory(ec)) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Makes <root>/volumes and removes what killed commands left in it. Under the exclusive lock:
// every .partial- directory belongs to a command that died.
fs::path prepare_volumes_dir(const fs::path& store_root, const Logger& logger) {
  fs::path dir = volumes_dir(store_root);
  make_dirs(dir, 0700);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind(kPartialPrefix, 0) != 0) continue;
    logger.info("removing what an interrupted volume command left: " + it->path().string());
    try {
      remove_tree(it->path());
    } catch (const Error& e) {
      logger.warn("cannot remove leftover " + it->path().string() + ": " + e.what());
    }
  }
  return dir;
}

fs::path partial_dir(const fs::path& dir) {
  fs::path p = dir / (std::string(kPartialPrefix) + random_hex(8));
  if (::mkdir(p.c_str(), 0700) != 0) throw_errno("cannot create " + p.string());
  return p;
}

// Bytes the files of a volume take on disk; its _data directory itself counts 0, so an empty
// volume is 0B as in docker.
std::uint64_t content_bytes(const fs::path& data) {
  int fd = ::open(data.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  UniqueFd guard(fd);
  struct stat st;
  std::uint64_t own = fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_blocks) * 512 : 0;
  std::uint64_t all = disk_usage(fd);
  return all > own ? all - own : 0;
}

bool is_empty_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_empty(dir, ec) && !ec;
}

// Builds the volume whole under a .partial- name, then renames it into place. `seed` fills
// the _data directory first (given as an open directory).
VolumeRecord make_volume(const fs::path& dir, VolumeRecord rec, const std::function<void(int data_fd)>& seed = {}) {
  fs::path staging = partial_dir(dir);
  try {
    fs::path data = staging / kDataDir;
    if (::mkdir(data.c_str(), 0755) != 0) throw_errno("cannot create " + data.string());
    if (::chmod(data.c_str(), 0755) != 0) throw_errno("cannot set the mode of " + data.string());  // whatever the umask
    if (seed) seed(open_directory(data).get());
    write_file_atomic(staging / kRecordFile, record_json(rec).dump(1) + "\n", 0600);
    fs::path final = dir / rec.name;
    if (::rename(staging.c_str(), final.c_str()) != 0) {
      int e = errno;
      if (e == EEXIST || e == ENOTEMPTY)
        throw Error(Errc::kAlreadyExists, final.string() + " exists but is not a volume (it has no " + kRecordFile +
                                              "); move it away or remove it, then create the volume again");
      throw system_error("cannot create volume " + rec.name + " at " + final.string(), e);
    }
    rec.mountpoint = final / kDataDir;
  } catch (...) {
    try {
      remove_tree(staging);
    } catch (const Error&) {
    }
    throw;
  }
  return rec;
}

// Renames the volume out of sight, then removes it: a killed removal leaves only a .partial-.
void discard_volume(const fs::path& dir, const std::string& name) {
  fs::path gone = dir / (std::string(kPartialPrefix) + random_hex(8));
  fs::path from = dir / name;
  if (::rename(from.c_str(), gone.c_str()) != 0) throw_errno("cannot remove volume " + name + " (" + from.string() + ")");
  remove_tree(gone);
}

std::vector<ContainerRecord> users_of(const std::vector<ContainerRecord>& containers, const std::string& volume) {
  std::vector<ContainerRecord> out;
  for (const auto& c : containers)
    if (std::find(c.volumes.begin(), c.volumes.end(), volume) != c.volumes.end()) out.push_back(c);
  return out;
}

bool monitor_alive(const ContainerRecord& c) {
  return c.state.monitor_pid > 0 && process_start_time(c.state.monitor_pid) == c.state.monitor_start;
}

// Copies the image's files at `destination` (resolved beneath `rootfs`: its symlinks cannot
// lead outside) into the directory `target_fd`, with owners, modes, times, symlinks and
// hardlinks; the target takes the owner and mode of the image's directory, as in docker.
// False when the image has nothing there.
bool copy_image_files(const fs::path& rootfs, const std::string& destination, int target_fd) {
  UniqueFd root(::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) throw_errno("cannot open the container's filesystem " + rootfs.string());
  std::string rel = destination.substr(destination.find_first_not_of('/'));
  UniqueFd at(open_dir_beneath(root.get(), rel, false));
  if (at.get() < 0) {
    if (is_missing(errno)) return false;
    throw system_error("cannot open " + destination + " in the image", errno);
  }
  UniqueFd src(::openat(at.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (src.get() < 0) throw system_error("cannot read " + destination + " in the image", errno);
  copy_tree(src.get(), target_fd);
  return true;
}

}  // namespace

namespace detail {

std::vector<DiskUsageReport::VolumeUsage> measure_volumes(const fs::path& store_root,
                                                          const std::vector<ContainerRecord>& containers,
                                                          const Logger& logger) {
  std::vector<DiskUsageReport::VolumeUsage> out;
  fs::path dir = volumes_dir(store_root);
  for (const auto& name : volume_names(dir)) {
    try {
      auto v = read_volume(dir, name);
      if (!v) continue;
      out.push_back({*v, content_bytes(v->mountpoint), static_cast<int>(users_of(containers, name).size())});
    } catch (const Error& e) {
      logger.warn(e.what());
    }
  }
  return out;
}

}  // namespace detail

VolumeRecord Engine::create_volume(const std::string& name, const std::map<std::string, std::string>& labels,
                                   const std::map<std::string, std::string>& options, bool ignore_existing) {
  VolumeRecord rec;
  rec.name = name.empty() ? random_hex(32) : name;
  check_volume_name(rec.name);
  rec.created = now_rfc3339();
  rec.labels = labels;
  rec.options = options;
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kExclusive);
  recover_once();
  fs::path dir = prepare_volumes_dir(st.root(), logger_);
  if (auto existing = read_volume(dir, rec.name)) {
    if (ignore_existing) return *existing;
    throw Error(Errc::kAlreadyExists, "volume " + rec.name + " already exists; use it as it is, remove it first with "
                                          "\"hutch volume rm " + rec.name + "\", or pass --ignore");
  }
  if (!options.empty())
    logger_.warn("volume " + rec.name + ": its options are kept (\"hutch volume inspect\" shows them) but not acted on: "
                 "hutch's local driver keeps the data in a directory and mounts nothing with type, device or o");
  return make_volume(dir, rec);
}

std::vector<VolumeRecord> Engine::list_volumes() {
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kShared);
  fs::path dir = volumes_dir(st.root());
  std::vector<VolumeRecord> out;
  for (const auto& name : volume_names(dir)) {
    try {
      if (auto v = read_volume(dir, name)) out.push_back(*v);
    } catch (const Error& e) {
      logger_.warn(e.what());
    }
  }
  return out;
}

VolumeRecord Engine::inspect_volume(const std::string& name) {
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kShared);
  auto v = read_volume(volumes_dir(st.root()), name);
  if (!v) throw Error(Errc::kNotFound, "no such volume: " + name + " (see \"hutch volume ls\")");
  return *v;
}

void Engine::remove_volume(const std::string& name, bool force) {
  Store& st = store();
  // With `force`, the users are removed (remove_container takes the lock itself), then the
  // volume under the lock again; a container made meanwhile is a user too, so look again.
  for (int round = 0;; ++round) {
    std::vector<ContainerRecord> users;
    {
      auto lock = st.lock(FileLock::Mode::kExclusive);
      recover_once();
      fs::path dir = prepare_volumes_dir(st.root(), logger_);
      if (!valid_volume_name(name) || !fs::exists(dir / name / kRecordFile))
        throw Error(Errc::kNotFound, "no such volume: " + name + " (see \"hutch volume ls\")");
      users = users_of(st.containers(), name);
      if (users.empty()) {
        discard_volume(dir, name);
        return;
      }
      std::string names;
      bool any_running = false;
      for (const auto& c : users) {
        names += (names.empty() ? "" : " ") + c.name;
        any_running |= (c.state.status == "running" || c.state.status == "created") && monitor_alive(c);
      }
      if (!force)
        throw Error(Errc::kInvalidInput, "volume " + name + " is in use by container" + (users.size() > 1 ? "s " : " ") +
                                             names + "; remove " + (users.size() > 1 ? "them" : "it") + " first with \"hutch rm " +
                                             (any_running ? "-f " : "") + names + "\", or remove " +
                                             (users.size() > 1 ? "them" : "it") + " with the volume: \"hutch volume rm -f " +
                                             name + "\"");
      if (round >= 3)
        throw Error(Errc::kInvalidInput, "volume " + name + " is still in use (by " + names +
                                             "): containers using it keep being made; stop what makes them and try again");
    }
    for (const auto& c : users) {
      try {
        remove_container(c.id, true);
      } catch (Error& e) {
        if (e.code() == Errc::kNotFound) continue;  // gone meanwhile
        throw std::move(e.with_context("removing container " + c.name + ", which uses volume " + name));
      }
    }
  }
}

std::vector<std::string> Engine::prune_volumes(std::uint64_t* reclaimed) {
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kExclusive);
  recover_once();
  fs::path dir = prepare_volumes_dir(st.root(), logger_);
  std::set<std::string> used;
  for (const auto& c : st.container_records()) used.insert(c.volumes.begin(), c.volumes.end());
  std::vector<std::string> removed;
  std::uint64_t bytes = 0;
  for (const auto& name : volume_names(dir)) {
    // A directory without a record is not a volume hutch made: left alone.
    if (used.count(name) || !fs::exists(dir / name / kRecordFile)) continue;
    bytes += content_bytes(dir / name / kDataDir);
    discard_volume(dir, name);
    removed.push_back(name);
  }
  if (reclaimed) *reclaimed = bytes;
  return removed;
}

fs::path Engine::volume_for_run(const std::string& name, const fs::path& rootfs, const std::string& destination) {
  check_volume_name(name);
  if (destination.empty() || destination[0] != '/' || destination.find_first_not_of('/') == std::string::npos)
    throw Error(Errc::kUsage, "volume " + name + ": the destination \"" + destination +
                                  "\" must be an absolute path other than /");
  // The caller holds the exclusive store lock.
  fs::path dir = prepare_volumes_dir(store().root(), logger_);
  auto seed = [&](int data_fd) {
    try {
      return copy_image_files(rootfs, destination, data_fd);
    } catch (Error& e) {
      throw std::move(e.with_context("copying the image's files at " + destination + " into volume " + name));
    }
  };
  auto existing = read_volume(dir, name);
  if (!existing) {
    VolumeRecord rec;
    rec.name = name;
    rec.created = now_rfc3339();
    return make_volume(dir, rec, seed).mountpoint;
  }
  fs::path data = existing->mountpoint;
  if (!is_empty_dir(data)) return data;
  // An empty volume: copy into a .partial- directory, then rename each entry into _data (the
  // directory itself stays: a running container may have it mounted). A killed copy leaves
  // the volume empty and a leftover to remove.
  fs::path staging = partial_dir(dir);
  try {
    UniqueFd staged = open_directory(staging);
    if (!seed(staged.get())) {
      remove_tree(staging);
      return data;
    }
    UniqueFd target = open_directory(data);
    std::error_code ec;
    for (fs::directory_iterator it(staging, ec), end; !ec && it != end; it.increment(ec)) {
      std::string n = it->path().filename().string();
      if (::renameat2(staged.get(), n.c_str(), target.get(), n.c_str(), RENAME_NOREPLACE) != 0 && errno != EEXIST)
        throw system_error("cannot move " + n + " into volume " + name, errno);
    }
    struct stat st;
    if (fstat(staged.get(), &st) == 0) {
      if (fchown(target.get(), st.st_uid, st.st_gid) != 0)
        logger_.debug("volume " + name + ": cannot give _data the owner of " + destination);
      fchmod(target.get(), st.st_mode & 07777);
      struct timespec ts[2] = {st.st_atim, st.st_mtim};
      futimens(target.get(), ts);
    }
  } catch (...) {
    try {
      remove_tree(staging);
    } catch (const Error&) {
    }
    throw;
  }
  remove_tree(staging);
  return data;
}

}  // namespace hutch
