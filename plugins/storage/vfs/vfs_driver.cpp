// vfs: every layer and container filesystem a whole tree. Works on any filesystem.
//
//   layers/<chain-id>/              the layer's full tree; its files hardlinked from the parent
//                                   layer's where the layer did not replace them
//   containers/<id>/rootfs          a full copy of the image's top layer (written in place)
//   containers/<id>/layer           the chain ID it was copied from (for diff and commit)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "hutch/abi.hpp"
#include "hutch/layer_tar.hpp"
#include "hutch/paths.hpp"
#include "hutch/storage.hpp"
#include "hutch/unique_fd.hpp"

namespace hutch::storage::vfs {
namespace fs = std::filesystem;

namespace {

constexpr const char* kIncomplete = kIncompleteMarker;

class VfsDriver final : public StorageDriver {
 public:
  explicit VfsDriver(const PluginContext& ctx) : ctx_(ctx), layers_(ctx.plugin_state / "layers"),
                                                  containers_(ctx.plugin_state / "containers") {
    make_dirs(layers_, 0700);
    make_dirs(containers_, 0700);
  }

  StorageCapabilities capabilities() const override {
    return {false, false, "full copies of every container, layers sharing their parents' files (any filesystem)"};
  }

  StorageProbe probe() override { return {true, "plain directories work on any filesystem"}; }

  void create_layer(const std::string& id, const std::string& parent, const fs::path& layer_tar) override {
    // Visible only once complete, and all at once; made meanwhile means the same content.
    build_directory(layer_path(id), "layer " + id, [&](const fs::path& staging) {
      ::chmod(staging.c_str(), 0755);
      UniqueFd dst = open_directory(staging);
      fill_layer(dst.get(), parent, layer_tar);
      if (::syncfs(dst.get()) != 0) throw_errno("cannot sync " + staging.string());
    }, true);
  }

  std::optional<std::string> verify_layer(const std::string& id, const std::string& parent,
                                          const fs::path& layer_tar) override {
    std::optional<std::string> difference;
    with_scratch_directory(layer_path(id), [&](const fs::path& scratch) {
      ::chmod(scratch.c_str(), 0755);
      UniqueFd fresh = open_directory(scratch);
      fill_layer(fresh.get(), parent, layer_tar);
      UniqueFd stored = open_directory(layer_path(id));
      difference = first_difference(stored.get(), fresh.get());
    });
    return difference;
  }

  bool has_layer(const std::string& id) const override {
    struct stat st;
    return ::stat(layer_path(id).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  void remove_layer(const std::string& id) override { remove_tree(layer_path(id)); }

  std::vector<std::string> list_layers() const override {
    std::vector<std::string> out;
    std::error_code ec;
    for (fs::directory_iterator it(layers_, ec), end; !ec && it != end; it.increment(ec)) {
      std::string n = it->path().filename().string();
      if (n.find(kIncomplete) == std::string::npos) out.push_back(n);
    }
    return out;
  }

  // A copy is never synced: nothing to gain from ephemeral.
  void create_container_fs(const std::string& container_id, const std::string& top_layer,
                           const ContainerFsOptions&) override {
    build_directory(container_path(container_id), "the filesystem of container " + container_id,
                    [&](const fs::path& staging) {
                      write_file_atomic(staging / "layer", top_layer + "\n", 0600);
                      if (::mkdir((staging / "rootfs").c_str(), 0755) != 0) throw_errno("cannot create " + staging.string());
                      UniqueFd dst = open_directory(staging / "rootfs");
                      UniqueFd src = open_directory(layer_path(top_layer));
                      copy_tree(src.get(), dst.get());
                    });
  }

  // Nothing is mounted; a marker says the filesystem is in use, as `hutch mount` lists it.
  fs::path mount(const std::string& container_id) override {
    fs::path p = rootfs_path(container_id);
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) throw_errno("the filesystem of container " + container_id + " is missing");
    write_file_atomic(container_path(container_id) / "mounted", "", 0600);
    return p;
  }

  void unmount(const std::string& container_id) override { ::unlink((container_path(container_id) / "mounted").c_str()); }

  std::optional<fs::path> mounted(const std::string& container_id) const override {
    struct stat st;
    if (!has_container_fs(container_id) || ::stat((container_path(container_id) / "mounted").c_str(), &st) != 0)
      return std::nullopt;
    return rootfs_path(container_id);
  }

  void remove_container_fs(const std::string& container_id) override { remove_tree(container_path(container_id)); }

  bool has_container_fs(const std::string& container_id) const override {
    struct stat st;
    return ::stat(rootfs_path(container_id).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  std::vector<Change> changes(const std::string& container_id) override { return diff_of(container_id); }

  ExportedLayer export_changes(const std::string& container_id, const std::vector<Change>& list,
                               const fs::path& tar) override {
    UniqueFd upper = open_directory(rootfs_path(container_id));
    return write_changes_tar(upper.get(), list, tar);
  }

  std::uint64_t layer_disk_usage(const std::string& id, std::set<std::pair<dev_t, ino_t>>* seen) const override {
    UniqueFd d = open_directory(layer_path(id));
    return disk_usage(d.get(), seen);
  }

  std::uint64_t container_disk_usage(const std::string& container_id) const override {
    // The copy shares nothing with the layer; what the container wrote is its changes.
    std::uint64_t total = 0;
    UniqueFd upper = open_directory(rootfs_path(container_id));
    for (const auto& c : diff_of(container_id)) {
      if (c.kind == ChangeKind::kDeleted) continue;
      struct stat st;
      if (fstatat(upper.get(), c.path.c_str() + 1, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
        total += static_cast<std::uint64_t>(st.st_size);
    }
    return total;
  }

  void clean_incomplete() override {
    for (const auto& dir : {layers_, containers_}) {
      std::error_code ec;
      for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().filename().string().find(kIncomplete) == std::string::npos) continue;
        if (ctx_.logger) ctx_.logger->info("vfs: removing incomplete " + it->path().string());
        remove_tree(it->path());
      }
    }
  }

 private:
  fs::path layer_path(const std::string& id) const { return layers_ / id; }
  // The parent's files (hardlinked), then the tar applied.
  void fill_layer(int dst, const std::string& parent, const fs::path& layer_tar) {
    if (!parent.empty()) {
      UniqueFd src = open_directory(layer_path(parent));
      link_tree(src.get(), dst);  // applying the tar replaces files, never writes into them
    }
    ApplyOptions opts;
    opts.squash_ownership = ctx_.rootless.mode == UsernsMode::kSingleId;
    opts.uid_count = ctx_.rootless.uid_count;
    opts.gid_count = ctx_.rootless.gid_count;
    opts.logger = ctx_.logger;
    apply_layer_tar(dst, layer_tar, opts);
  }
  fs::path container_path(const std::string& id) const { return containers_ / id; }
  fs::path rootfs_path(const std::string& id) const { return containers_ / id / "rootfs"; }
  std::vector<Change> diff_of(const std::string& container_id) const {
    UniqueFd upper = open_directory(rootfs_path(container_id));
    UniqueFd lower = open_directory(layer_path(container_layer(container_id)));
    return compare_trees(lower.get(), upper.get());
  }
  std::string container_layer(const std::string& id) const {
    std::string l = read_file(container_path(id) / "layer");
    while (!l.empty() && (l.back() == '\n' || l.back() == ' ')) l.pop_back();
    if (l.empty() || !has_layer(l))
      throw Error(Errc::kNotFound, "the image layer under container " + id.substr(0, 12) + " (" + l.substr(0, 12) +
                                       ") is missing; run \"hutch system check\"");
    return l;
  }

  PluginContext ctx_;
  fs::path layers_;
  fs::path containers_;
};

std::unique_ptr<StorageDriver> make_vfs_driver(const PluginContext& ctx) { return std::make_unique<VfsDriver>(ctx); }

}  // namespace

}  // namespace hutch::storage::vfs

HUTCH_PLUGIN(hutch::StorageDriver, "vfs", "0.1.0", hutch::storage::vfs::make_vfs_driver);
