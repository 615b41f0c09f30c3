#include "overlay_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "hutch/layer_tar.hpp"
#include "hutch/paths.hpp"
#include "hutch/unique_fd.hpp"

namespace hutch::storage::overlay {
namespace fs = std::filesystem;

namespace {

constexpr const char* kIncomplete = kIncompleteMarker;

struct FdList {
  std::vector<int> fds;
  ~FdList() {
    for (int fd : fds) ::close(fd);
  }
};

std::string read_trimmed(const fs::path& file) {
  std::string s = read_file(file);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// 26 characters of [A-Z0-9], as containers/storage names its links.
std::string new_short_name_into(std::string& out) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string hex = random_hex(26);
  out.clear();
  for (size_t i = 0; i < 26; ++i) out += kAlphabet[std::stoul(hex.substr(2 * i, 2), nullptr, 16) % 36];
  return out;
}

void make_dir(const fs::path& p, mode_t mode) {
  if (::mkdir(p.c_str(), mode) != 0 && errno != EEXIST) throw_errno("cannot create " + p.string());
}

}  // namespace

bool is_mount_point(const fs::path& path) {
  struct statx sx {};
  if (statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &sx) != 0)
    return errno == ENOTCONN;  // a FUSE mount whose server is gone
  return (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

OverlayStore::OverlayStore(const PluginContext& ctx)
    : ctx_(ctx),
      state_(ctx.plugin_state),
      links_(state_ / "l"),
      layers_(state_ / "layers"),
      containers_(state_ / "containers") {
  make_dirs(links_, 0700);
  make_dirs(layers_, 0700);
  make_dirs(containers_, 0700);
}

std::string OverlayStore::short_name(const std::string& id) const {
  std::string s = read_trimmed(layer_dir(id) / "link");
  if (s.empty() || s.find('/') != std::string::npos)
    throw Error(Errc::kSystem, "layer " + id.substr(0, 12) + " has a damaged link file; run \"hutch system check --repair\"");
  return s;
}

std::string OverlayStore::lower_of(const std::string& id) const { return read_trimmed(layer_dir(id) / "lower"); }

std::string OverlayStore::lowerdir_for(const std::string& top) const {
  std::string below = lower_of(top);
  return "l/" + short_name(top) + (below.empty() ? "" : ":" + below);
}

std::vector<int> OverlayStore::open_lowers(const std::string& lowerdir) const {
  std::vector<int> fds;
  size_t i = 0;
  while (i < lowerdir.size()) {
    size_t j = lowerdir.find(':', i);
    if (j == std::string::npos) j = lowerdir.size();
    fs::path p = state_ / lowerdir.substr(i, j - i);
    int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      for (int f : fds) ::close(f);
      throw system_error("a layer below is missing (" + p.string() + "); run \"hutch system check --repair\"", e);
    }
    fds.push_back(fd);
    i = j + 1;
  }
  return fds;
}

void OverlayStore::create_layer(const std::string& id, const std::string& parent, const fs::path& layer_tar) {
  std::string link;
  auto drop_link = [&] {
    if (!link.empty()) ::unlink((links_ / link).c_str());
  };
  build_directory(layer_dir(id), "layer " + id, [&](const fs::path& staging) {
    make_dir(staging / "diff", 0755);
    std::string lower = parent.empty() ? "" : lowerdir_for(parent);
    {
      UniqueFd diff = open_directory(staging / "diff");
      fill_diff(diff.get(), lower, layer_tar);
      if (::syncfs(diff.get()) != 0) throw_errno("cannot sync " + staging.string());
    }
    write_file_atomic(staging / "link", new_short_name_into(link) + "\n", 0600);
    write_file_atomic(staging / "lower", lower + "\n", 0600);
    // Dangling until the rename; clean_incomplete removes it if we die first.
    if (::symlink(("../layers/" + id + "/diff").c_str(), (links_ / link).c_str()) != 0) {
      int e = errno;
      link.clear();
      throw system_error("cannot create the short link of layer " + id.substr(0, 12), e);
    }
  }, true, drop_link);  // made meanwhile: the same content by its key
}

void OverlayStore::fill_diff(int diff_fd, const std::string& lower, const fs::path& layer_tar) {
  FdList lowers;
  lowers.fds = open_lowers(lower);
  ApplyOptions opts;
  opts.whiteouts = WhiteoutForm::kOverlay;
  opts.lower_fds = lowers.fds;
  opts.squash_ownership = ctx_.rootless.mode == UsernsMode::kSingleId;
  opts.uid_count = ctx_.rootless.uid_count;
  opts.gid_count = ctx_.rootless.gid_count;
  opts.logger = ctx_.logger;
  apply_layer_tar(diff_fd, layer_tar, opts);
}

std::optional<std::string> OverlayStore::verify_layer(const std::string& id, const std::string& parent,
                                                      const fs::path& layer_tar) {
  std::optional<std::string> difference;
  with_scratch_directory(layer_dir(id), [&](const fs::path& scratch) {
    make_dir(scratch / "diff", 0755);
    UniqueFd fresh = open_directory(scratch / "diff");
    fill_diff(fresh.get(), parent.empty() ? "" : lowerdir_for(parent), layer_tar);
    UniqueFd stored = open_directory(layer_dir(id) / "diff");
    difference = first_difference(stored.get(), fresh.get());
  });
  return difference;
}

bool OverlayStore::has_layer(const std::string& id) const {
  struct stat st;
  return ::stat((layer_dir(id) / "diff").c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
         ::stat((layer_dir(id) / "link").c_str(), &st) == 0;
}

void OverlayStore::remove_layer(const std::string& id) {
  try {
    std::string link = short_name(id);
    ::unlink((links_ / link).c_str());
  } catch (const Error&) {
  }
  remove_tree(layer_dir(id));
}

std::vector<std::string> OverlayStore::list_layers() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(layers_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.find(kIncomplete) == std::string::npos) out.push_back(n);
  }
  return out;
}

void OverlayStore::create_container_fs(const std::string& container_id, const std::string& top_layer,
                                       const ContainerFsOptions& options) {
  build_directory(container_dir(container_id), "the filesystem of container " + container_id,
                  [&](const fs::path& staging) {
                    make_dir(staging / "diff", 0755);
                    make_dir(staging / "work", 0700);
                    make_dir(staging / "merged", 0755);
                    // A --rm container's filesystem does not outlive a crash of the machine
                    // (its overlay is volatile too): its records need no fsync.
                    Durability d = options.ephemeral ? Durability::kVolatile : Durability::kSynced;
                    write_file_atomic(staging / "layer", top_layer + "\n", 0600, d);
                    write_file_atomic(staging / "lower", lowerdir_for(top_layer) + "\n", 0600, d);
                    if (options.ephemeral) write_file_atomic(staging / "ephemeral", "", 0600, d);
                  });
}

fs::path OverlayStore::mount(const std::string& container_id) {
  fs::path dir = container_dir(container_id);
  fs::path merged = dir / "merged";
  if (!has_container_fs(container_id))
    throw Error(Errc::kNotFound, "the filesystem of container " + container_id.substr(0, 12) + " is missing");
  if (is_mount_point(merged)) return merged;
  struct stat st;
  MountRequest req{read_trimmed(dir / "lower"), dir / "diff", dir / "work", merged, state_,
                   ::stat((dir / "ephemeral").c_str(), &st) == 0};
  try {
    mount_overlay(req);
  } catch (Error& e) {
    throw std::move(e.with_context("mounting the filesystem of container " + container_id.substr(0, 12)));
  }
  return merged;
}

void OverlayStore::unmount(const std::string& container_id) {
  fs::path merged = container_dir(container_id) / "merged";
  if (is_mount_point(merged)) unmount_overlay(merged);
}

std::optional<fs::path> OverlayStore::mounted(const std::string& container_id) const {
  fs::path merged = container_dir(container_id) / "merged";
  if (is_mount_point(merged)) return merged;
  return std::nullopt;
}

void OverlayStore::remove_container_fs(const std::string& container_id) {
  unmount(container_id);
  remove_tree(container_dir(container_id));
}

bool OverlayStore::has_container_fs(const std::string& container_id) const {
  struct stat st;
  return ::stat((container_dir(container_id) / "diff").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<Change> OverlayStore::changes(const std::string& container_id) {
  fs::path dir = container_dir(container_id);
  FdList lowers;
  lowers.fds = open_lowers(read_trimmed(dir / "lower"));
  UniqueFd upper = open_directory(dir / "diff");
  return overlay_changes(upper.get(), lowers.fds);
}

ExportedLayer OverlayStore::export_changes(const std::string& container_id, const std::vector<Change>& list,
                                           const fs::path& tar) {
  UniqueFd upper = open_directory(container_dir(container_id) / "diff");
  return write_changes_tar(upper.get(), list, tar);
}

std::uint64_t OverlayStore::layer_disk_usage(const std::string& id, std::set<std::pair<dev_t, ino_t>>* seen) const {
  UniqueFd d = open_directory(layer_dir(id) / "diff");
  return disk_usage(d.get(), seen);
}

std::uint64_t OverlayStore::container_disk_usage(const std::string& container_id) const {
  UniqueFd d = open_directory(container_dir(container_id) / "diff");
  return disk_usage(d.get(), nullptr);
}

void OverlayStore::clean_incomplete() {
  for (const auto& dir : {layers_, containers_}) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().filename().string().find(kIncomplete) == std::string::npos) continue;
      if (ctx_.logger) ctx_.logger->info("overlay: removing incomplete " + it->path().string());
      remove_tree(it->path());
    }
  }
  // Short links whose layer never got committed.
  std::error_code ec;
  for (fs::directory_iterator it(links_, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st;
    if (::stat(it->path().c_str(), &st) != 0 && errno == ENOENT) ::unlink(it->path().c_str());
  }
}

StorageProbe OverlayStore::probe_mount(const std::string& what) {
  fs::path dir = state_ / ("probe" + std::string(kIncomplete) + random_hex(4));
  auto cleanup = [&] {
    try {
      if (is_mount_point(dir / "merged")) unmount_overlay(dir / "merged");
      remove_tree(dir);
    } catch (const Error&) {
    }
  };
  try {
    for (const char* sub : {"", "/l1", "/l2", "/upper", "/work", "/merged"}) make_dir(dir.string() + sub, 0700);
    write_file_atomic(dir / "l1" / "gone", "x", 0600);
    write_file_atomic(dir / "l2" / "kept", "y", 0600);
    mount_overlay({"l2:l1", dir / "upper", dir / "work", dir / "merged", dir});
    write_file_atomic(dir / "merged" / "new", "z", 0600);
    if (::unlink((dir / "merged" / "gone").c_str()) != 0) throw_errno("cannot delete a lower file through the mount");
    if (read_file(dir / "merged" / "kept") != "y") throw Error(Errc::kSystem, "the lower layers do not show through");
    unmount_overlay(dir / "merged");
    struct stat st;
    if (::lstat((dir / "upper" / "gone").c_str(), &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != 0)
      throw Error(Errc::kSystem, "a deletion did not leave a whiteout in the upper directory");
  } catch (const Error& e) {
    cleanup();
    return {false, e.what()};
  }
  cleanup();
  return {true, what};
}

}  // namespace hutch::storage::overlay
