// The engine's storage verbs: diff, commit, mount, system df, prune and check.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "engine_internal.hpp"
#include "hutch/digest.hpp"
#include "hutch/engine.hpp"
#include "hutch/image_ref.hpp"
#include "hutch/oci_spec.hpp"

namespace hutch {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool monitor_alive(const ContainerRecord& c) {
  return c.state.monitor_pid > 0 && process_start_time(c.state.monitor_pid) == c.state.monitor_start;
}

// Its monitor runs, or (the monitor killed) its process does.
bool is_running(const ContainerRecord& c) {
  return monitor_alive(c) || (c.state.status != "exited" && c.state.status != "created" && c.state.pid > 0 &&
                              process_start_time(c.state.pid) == c.state.pid_start);
}

// Files and directories the runtime makes only as targets of its mounts: not the
// container's changes (docker keeps them in an init layer that diff and commit skip).
bool is_mount_target(const std::string& path) {
  static const char* const kTargets[] = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys", "/dev",
                                         "/run/.containerenv", "/run/hutch-init"};
  for (const char* t : kTargets)
    if (path == t) return true;
  return path.rfind("/dev/", 0) == 0;
}

// The container's own changes: the empty mount targets go, and so does a directory
// listed only because such a target was made in it.
std::vector<Change> without_mount_targets(const std::vector<Change>& all, int rootfs_fd) {
  auto empty_target = [&](const Change& c) {
    if (c.kind != ChangeKind::kAdded || !is_mount_target(c.path)) return false;
    struct stat st;
    if (rootfs_fd < 0 || fstatat(rootfs_fd, c.path.c_str() + 1, &st, AT_SYMLINK_NOFOLLOW) != 0) return true;
    return (S_ISREG(st.st_mode) && st.st_size == 0) || S_ISDIR(st.st_mode);
  };
  std::vector<Change> kept;
  std::set<std::string> dropped;
  for (const auto& c : all) {
    if (empty_target(c) || (c.path.rfind("/dev/", 0) == 0 && c.kind == ChangeKind::kAdded)) dropped.insert(c.path);
    else kept.push_back(c);
  }
  if (dropped.empty()) return kept;
  auto under = [](const std::string& child, const std::string& dir) {
    return child.size() > dir.size() && child.compare(0, dir.size(), dir) == 0 && child[dir.size()] == '/';
  };
  std::vector<Change> out;
  for (const auto& c : kept) {
    // A directory changed, or made, only to hold such targets (/run for /run/hutch-init).
    if (c.kind == ChangeKind::kChanged || c.kind == ChangeKind::kAdded) {
      bool had_dropped = std::any_of(dropped.begin(), dropped.end(), [&](const std::string& d) { return under(d, c.path); });
      bool has_other = std::any_of(kept.begin(), kept.end(), [&](const Change& o) { return under(o.path, c.path); });
      if (had_dropped && !has_other) continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::vector<Change> Engine::own_changes(const std::string& container_id) {
  auto all = storage().changes(container_id);
  int rootfs = -1;
  if (auto p = storage().mounted(container_id)) rootfs = ::open(p->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  auto out = without_mount_targets(all, rootfs);
  if (rootfs >= 0) ::close(rootfs);
  return out;
}

ContainerRecord Engine::find_container_or_throw(const std::string& name_or_id) {
  auto c = store().find_container(name_or_id);
  if (!c) throw Error(Errc::kNotFound, "no such container: " + name_or_id + " (see \"hutch ps -a\")");
  return *c;
}

std::vector<Change> Engine::container_changes(const std::string& name_or_id) {
  auto lock = store().lock(FileLock::Mode::kShared);
  ContainerRecord c = find_container_or_throw(name_or_id);
  try {
    return own_changes(c.id);
  } catch (Error& e) {
    throw std::move(e.with_context("comparing container " + c.name + " with its image"));
  }
}

ImageRecord Engine::commit_container(const std::string& name_or_id, const std::string& reference,
                                     const CommitOptions& options) {
  Store& st = store();
  std::optional<ImageRef> ref;
  if (!reference.empty()) {
    ref = parse_image_ref(reference);
    if (!ref->digest.empty())
      throw Error(Errc::kInvalidInput, "cannot commit to a digest reference \"" + reference + "\"; give NAME[:TAG]");
  }
  ContainerRecord c;
  ImageRecord base;
  json config;
  auto staging = st.stage("commit");
  fs::path tar = staging.dir() / "layer.tar";
  ExportedLayer exported;
  {
    // Readers may go on while the changes are written out; nobody may remove the container.
    auto lock = st.lock(FileLock::Mode::kShared);
    c = find_container_or_throw(name_or_id);
    auto img = st.find_image(c.image_id);
    if (!img)
      throw Error(Errc::kNotFound, "the image of container " + c.name + " (" + c.image_id.substr(0, 12) +
                                       ") is gone; run \"hutch system check\"");
    base = *img;
    config = json::parse(st.read_blob("sha256:" + base.id));
    try {
      exported = storage().export_changes(c.id, own_changes(c.id), tar);
    } catch (Error& e) {
      throw std::move(e.with_context("writing the changes of container " + c.name));
    }
  }
  std::string diff_id = "sha256:" + exported.diff_hex;
  std::string created = now_rfc3339();
  config["created"] = created;
  config["config"] = detail::apply_image_changes(config.value("config", json::object()), options.changes);
  if (!options.author.empty()) config["author"] = options.author;
  if (!config.contains("rootfs")) config["rootfs"] = {{"type", "layers"}, {"diff_ids", json::array()}};
  config["rootfs"]["diff_ids"].push_back(diff_id);
  std::string created_by = "hutch commit";
  for (const auto& a : c.command) created_by += " " + a;
  json history = {{"created", created}, {"created_by", created_by}};
  if (!options.author.empty()) history["author"] = options.author;
  if (!options.message.empty()) history["comment"] = options.message;
  config["history"].push_back(history);

  auto lock = st.lock(FileLock::Mode::kExclusive);
  recover_once();
  if (!st.find_image(base.id))
    throw Error(Errc::kNotFound, "the image of container " + c.name + " was removed while committing");
  bool blob_was_there = st.has_blob(diff_id);
  std::string layer_blob = st.commit_blob(tar, exported.diff_hex);
  std::string parent = base.layers.empty() ? "" : base.layers.back();
  std::string chain = chain_id(parent, diff_id);
  auto layers = st.layers();
  bool known = std::any_of(layers.begin(), layers.end(), [&](const LayerRecord& l) { return l.id == chain; });
  if (!storage().has_layer(chain)) {
    try {
      storage().create_layer(chain, parent, st.blob_path(layer_blob));
    } catch (Error& e) {
      if (!blob_was_there) ::unlink(st.blob_path(layer_blob).c_str());
      throw std::move(e.with_context("storing the new layer of container " + c.name));
    }
  }
  if (!known) {
    layers.push_back({chain, parent, diff_id, layer_blob, exported.size});
    st.save_layers(layers);
  }
  std::string config_text = config.dump();
  std::string config_digest = st.put_blob(config_text);
  json manifest = json::parse(st.read_blob(base.manifest_digest));
  manifest["config"] = {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                        {"digest", config_digest},
                        {"size", config_text.size()}};
  if (!manifest.contains("layers")) manifest["layers"] = json::array();
  manifest["layers"].push_back(
      {{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", layer_blob}, {"size", exported.size}});
  std::string manifest_digest = st.put_blob(manifest.dump());
  ImageRecord rec;
  rec.id = digest_hex(config_digest);
  rec.manifest_digest = manifest_digest;
  if (ref) rec.names = {ref->full()};
  rec.layers = base.layers;
  rec.layers.push_back(chain);
  rec.size = base.size + exported.size;
  rec.created = created;
  auto images = st.images();
  if (ref)
    for (auto& img : images)
      img.names.erase(std::remove(img.names.begin(), img.names.end(), ref->full()), img.names.end());
  images.erase(std::remove_if(images.begin(), images.end(), [&](const ImageRecord& i) { return i.id == rec.id; }),
               images.end());
  images.push_back(rec);
  st.save_images(images);
  return rec;
}

MountedContainer Engine::mount_container(const std::string& name_or_id) {
  auto lock = store().lock(FileLock::Mode::kShared);
  ContainerRecord c = find_container_or_throw(name_or_id);
  try {
    return {c, storage().mount(c.id)};
  } catch (Error& e) {
    throw std::move(e.with_context("mounting container " + c.name));
  }
}

std::string Engine::unmount_container(const std::string& name_or_id) {
  auto lock = store().lock(FileLock::Mode::kShared);
  ContainerRecord c = find_container_or_throw(name_or_id);
  if (is_running(c))
    throw Error(Errc::kInvalidInput, "container " + c.name + " is running; its filesystem stays mounted until it stops");
  storage().unmount(c.id);
  return c.id;
}

std::vector<MountedContainer> Engine::mounted_containers() {
  auto lock = store().lock(FileLock::Mode::kShared);
  std::vector<MountedContainer> out;
  for (const auto& c : store().containers())
    if (auto p = storage().mounted(c.id)) out.push_back({c, *p});
  return out;
}

DiskUsageReport Engine::disk_usage() {
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kShared);
  DiskUsageReport r;
  auto images = st.images();
  auto containers = st.containers();
  std::map<std::string, std::uint64_t> layer_size;
  for (const auto& l : st.layers()) layer_size[l.id] = l.size;
  std::map<std::string, int> layer_users;  // images per layer
  for (const auto& i : images)
    for (const auto& l : std::set<std::string>(i.layers.begin(), i.layers.end())) layer_users[l]++;
  std::set<std::string> active_layers;
  for (const auto& i : images) {
    DiskUsageReport::ImageUsage u;
    u.image = i;
    for (const auto& c : containers) u.containers += c.image_id == i.id;
    for (const auto& l : std::set<std::string>(i.layers.begin(), i.layers.end())) {
      std::uint64_t s = layer_size[l];
      u.size += s;
      (layer_users[l] > 1 ? u.shared_size : u.unique_size) += s;
      if (u.containers > 0) active_layers.insert(l);
    }
    r.images.push_back(u);
  }
  for (const auto& [id, users] : layer_users) {
    r.images_size += layer_size[id];
    if (!active_layers.count(id)) r.images_reclaimable += layer_size[id];
  }
  for (const auto& c : containers) {
    DiskUsageReport::ContainerUsage u{c, 0};
    try {
      if (storage().has_container_fs(c.id)) u.size = storage().container_disk_usage(c.id);
    } catch (const Error& e) {
      logger_.debug("cannot measure container " + c.id.substr(0, 12) + ": " + e.what());
    }
    r.containers_size += u.size;
    if (!is_running(c)) r.containers_reclaimable += u.size;
    r.containers.push_back(u);
  }
  r.volumes = detail::measure_volumes(st.root(), containers, logger_);
  for (const auto& v : r.volumes) {
    r.volumes_size += v.size;
    if (v.containers == 0) r.volumes_reclaimable += v.size;
  }
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const auto& id : storage().list_layers()) {
    try {
      r.disk_bytes += storage().layer_disk_usage(id, &seen);
    } catch (const Error&) {
    }
  }
  return r;
}

PruneReport Engine::prune_containers() {
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kExclusive);
  recover_once();
  PruneReport r;
  std::vector<ContainerRecord> keep;
  for (const auto& c : st.containers()) {
    if (is_running(c)) {
      keep.push_back(c);
      continue;
    }
    try {
      if (storage().has_container_fs(c.id)) r.reclaimed += storage().container_disk_usage(c.id);
    } catch (const Error&) {
    }
    cleanup_container(c);
    r.containers.push_back(c.id);
  }
  st.save_containers(keep);
  return r;
}

PruneReport Engine::prune_images(bool all) {
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kExclusive);
  recover_once();
  PruneReport r;
  // Removing an image can leave another without users only through layers, never through
  // names; one pass over a snapshot is enough.
  std::set<std::string> in_use;
  for (const auto& c : st.container_records()) in_use.insert(c.image_id);
  for (const auto& img : st.images()) {
    if (in_use.count(img.id)) continue;
    if (!all && !img.names.empty()) continue;
    for (const auto& n : img.names) r.images.push_back("untagged: " + n);
    r.reclaimed += drop_image(img);
    r.images.push_back("deleted: sha256:" + img.id);
  }
  // Layers no image uses: what a pull killed midway kept for the next one. Only while no other
  // command is staging work (a pull going on now records its layers before its image).
  std::error_code ec;
  bool staging = fs::directory_iterator(st.tmp_dir(), ec) != fs::directory_iterator();
  if (!ec && !staging) {
    std::set<std::string> used;
    for (const auto& img : st.images()) used.insert(img.layers.begin(), img.layers.end());
    auto layers = st.layers();
    std::vector<LayerRecord> keep;
    std::set<std::string> kept_blobs;
    for (const auto& l : layers) {
      if (used.count(l.id)) {
        keep.push_back(l);
        kept_blobs.insert(l.blob);
        continue;
      }
      storage().remove_layer(l.id);
      r.reclaimed += l.size;
      r.images.push_back("deleted: layer " + l.id.substr(0, 12) + " (no image uses it)");
    }
    if (keep.size() != layers.size()) {
      st.save_layers(keep);
      for (const auto& l : layers)
        if (!kept_blobs.count(l.blob) && !l.blob.empty()) ::unlink(st.blob_path(l.blob).c_str());
    }
  }
  return r;
}

CheckReport Engine::check_store(bool repair, bool quick) {
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kExclusive);
  recover_once();
  CheckReport r;
  auto problem = [&](const std::string& what) { r.problems.push_back(what); };

  // Blobs: each file must hash to its name.
  std::set<std::string> bad_blobs;
  std::error_code ec;
  fs::path blob_dir = st.root() / "blobs" / "sha256";
  for (fs::directory_iterator it(blob_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!is_hex64(name)) {
      problem("a stray file in the blob store: " + it->path().string());
      if (repair && ::unlink(it->path().c_str()) == 0) r.repairs.push_back("removed " + it->path().string());
      continue;
    }
    std::string actual;
    try {
      actual = sha256_file_hex(it->path());
    } catch (const Error& e) {
      actual = "(unreadable: " + std::string(e.what()) + ")";
    }
    if (actual != name) {
      problem("blob sha256:" + name + " is corrupt: its content hashes to " + actual);
      bad_blobs.insert("sha256:" + name);
    }
  }
  auto blob_ok = [&](const std::string& digest) { return !bad_blobs.count(digest) && st.has_blob(digest); };

  auto wanted = st.referenced_blobs();
  for (const auto& d : st.blob_digests())
    if (!wanted.count(d) && !bad_blobs.count(d)) {
      problem("blob " + d + " is referenced by no layer or image");
      if (repair && ::unlink(st.blob_path(d).c_str()) == 0) r.repairs.push_back("removed the unreferenced blob " + d);
    }

  // Layers: a sound blob, and the driver's content.
  auto layers = st.layers();
  std::set<std::string> driver_layers;
  for (const auto& id : storage().list_layers()) driver_layers.insert(id);
  std::set<std::string> lost_layers;  // nothing left to rebuild them from
  std::set<std::string> recorded;
  for (const auto& l : layers) {
    recorded.insert(l.id);
    bool blob_good = blob_ok(l.blob);
    if (!blob_good)
      problem("layer " + l.id.substr(0, 12) + ": its blob " + l.blob + " is " + (st.has_blob(l.blob) ? "corrupt" : "missing"));
    bool content = driver_layers.count(l.id) > 0;
    if (!content) problem("layer " + l.id.substr(0, 12) + ": its files are missing from the storage driver");
    if (repair && !content && blob_good && (l.parent.empty() || driver_layers.count(l.parent))) {
      try {
        storage().create_layer(l.id, l.parent, st.blob_path(l.blob));
        driver_layers.insert(l.id);
        content = true;
        r.repairs.push_back("rebuilt layer " + l.id.substr(0, 12) + " from its blob");
      } catch (const Error& e) {
        r.repairs.push_back("could not rebuild layer " + l.id.substr(0, 12) + ": " + e.what());
      }
    }
    // Its files, against what its blob makes (the slow part: --quick skips it).
    if (content && blob_good && !quick) {
      std::optional<std::string> difference;
      try {
        difference = storage().verify_layer(l.id, l.parent, st.blob_path(l.blob));
      } catch (const Error& e) {
        difference = std::string("cannot apply its blob again: ") + e.what();
      }
      if (difference) {
        problem("layer " + l.id.substr(0, 12) + ": its files are not what its blob " + l.blob + " makes (" + *difference + ")");
        content = false;
      }
    }
    // A layer without a sound blob cannot be pushed, saved or rebuilt: its images are damaged.
    if (!content || !blob_good) lost_layers.insert(l.id);
  }
  for (const auto& id : driver_layers)
    if (!recorded.count(id)) {
      problem("layer " + id.substr(0, 12) + " is in the storage driver but in no record");
      if (repair) {
        storage().remove_layer(id);
        r.repairs.push_back("removed the unrecorded layer " + id.substr(0, 12));
      }
    }

  // Images: config, manifest, and every layer.
  auto images = st.images();
  std::vector<ImageRecord> damaged;
  std::set<std::string> layer_ids;
  for (const auto& l : layers) layer_ids.insert(l.id);
  for (const auto& img : images) {
    std::vector<std::string> why;
    if (!blob_ok("sha256:" + img.id)) why.push_back("its config blob is damaged or missing");
    if (!img.manifest_digest.empty() && !blob_ok(img.manifest_digest)) why.push_back("its manifest blob is damaged or missing");
    for (const auto& l : img.layers)
      if (!layer_ids.count(l) || lost_layers.count(l)) why.push_back("layer " + l.substr(0, 12) + " is damaged");
    if (why.empty()) continue;
    std::string name = img.names.empty() ? img.id.substr(0, 12) : img.names.front();
    std::string joined;
    for (const auto& w : why) joined += (joined.empty() ? "" : ", ") + w;
    problem("image " + name + " (" + img.id.substr(0, 12) + "): " + joined);
    damaged.push_back(img);
  }

  // Containers: their image and their filesystem.
  auto containers = st.containers();
  std::set<std::string> damaged_ids;
  for (const auto& d : damaged) damaged_ids.insert(d.id);
  std::vector<ContainerRecord> kept_containers;
  for (const auto& c : containers) {
    std::vector<std::string> why;
    bool has_image = std::any_of(images.begin(), images.end(), [&](const ImageRecord& i) { return i.id == c.image_id; });
    if (!has_image) why.push_back("its image " + c.image_id.substr(0, 12) + " is gone");
    else if (damaged_ids.count(c.image_id)) why.push_back("its image is damaged");
    if (!storage().has_container_fs(c.id)) why.push_back("its filesystem is missing");
    if (why.empty() || is_running(c)) {
      kept_containers.push_back(c);
      continue;
    }
    std::string joined;
    for (const auto& w : why) joined += (joined.empty() ? "" : ", ") + w;
    problem("container " + c.name + " (" + c.id.substr(0, 12) + "): " + joined);
    if (repair) {
      cleanup_container(c);
      r.repairs.push_back("removed container " + c.name);
    } else {
      kept_containers.push_back(c);
    }
  }
  if (repair && kept_containers.size() != containers.size()) st.save_containers(kept_containers);

  if (repair) {
    std::set<std::string> users;
    for (const auto& c : kept_containers) users.insert(c.image_id);
    for (const auto& img : damaged) {
      if (users.count(img.id)) {
        r.repairs.push_back("kept the damaged image " + img.id.substr(0, 12) + ": a running container uses it");
        continue;
      }
      drop_image(img);
      r.repairs.push_back("removed the damaged image " + (img.names.empty() ? img.id.substr(0, 12) : img.names.front()));
    }
    // Layer records that no image uses any more, and whose content is lost.
    auto now_layers = st.layers();
    std::set<std::string> used;
    for (const auto& i : st.images()) used.insert(i.layers.begin(), i.layers.end());
    std::vector<LayerRecord> keep;
    for (const auto& l : now_layers) {
      if (!used.count(l.id) && lost_layers.count(l.id)) {
        r.repairs.push_back("dropped the record of lost layer " + l.id.substr(0, 12));
        continue;
      }
      keep.push_back(l);
    }
    if (keep.size() != now_layers.size()) st.save_layers(keep);
    // Corrupt blobs nothing needs any more.
    for (const auto& b : bad_blobs)
      if (st.has_blob(b) && ::unlink(st.blob_path(b).c_str()) == 0) r.repairs.push_back("removed the corrupt blob " + b);
  }
  return r;
}

}  // namespace hutch
