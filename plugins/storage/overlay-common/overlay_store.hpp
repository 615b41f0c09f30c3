// The on-disk layout shared by the overlay and fuse-overlayfs drivers: each layer holds only
// its own diff (whiteouts as 0:0 devices, opaque directories by xattr); a container is an
// upper and a work directory over its image's layers, mounted by the concrete driver.
//
//   <state>/l/<SHORT>                 symlink to ../layers/<chain-id>/diff (short names keep
//                                     the mount options of a deep image under a page)
//   <state>/layers/<chain-id>/diff    the layer's own files
//   <state>/layers/<chain-id>/link    its short name
//   <state>/layers/<chain-id>/lower   the layers below as "l/A:l/B" (top first), empty for a base
//   <state>/containers/<id>/{diff,work,merged}
//   <state>/containers/<id>/layer     the image's top layer
//   <state>/containers/<id>/lower     the lowerdir option of its mount
//   <state>/containers/<id>/ephemeral present for a container removed when it stops
//
// Layers and containers are built under "<id>.incomplete-*" and renamed into place.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hutch/storage.hpp"

namespace hutch::storage::overlay {

class OverlayStore : public StorageDriver {
 public:
  explicit OverlayStore(const PluginContext& ctx);

  void create_layer(const std::string& id, const std::string& parent, const std::filesystem::path& layer_tar) override;
  bool has_layer(const std::string& id) const override;
  std::optional<std::string> verify_layer(const std::string& id, const std::string& parent,
                                          const std::filesystem::path& layer_tar) override;
  void remove_layer(const std::string& id) override;
  std::vector<std::string> list_layers() const override;

  void create_container_fs(const std::string& container_id, const std::string& top_layer,
                           const ContainerFsOptions& options) override;
  std::filesystem::path mount(const std::string& container_id) override;
  void unmount(const std::string& container_id) override;
  std::optional<std::filesystem::path> mounted(const std::string& container_id) const override;
  void remove_container_fs(const std::string& container_id) override;
  bool has_container_fs(const std::string& container_id) const override;

  std::vector<Change> changes(const std::string& container_id) override;
  ExportedLayer export_changes(const std::string& container_id, const std::vector<Change>& changes,
                               const std::filesystem::path& tar) override;
  std::uint64_t layer_disk_usage(const std::string& id, std::set<std::pair<dev_t, ino_t>>* seen) const override;
  std::uint64_t container_disk_usage(const std::string& container_id) const override;

  void clean_incomplete() override;

 protected:
  struct MountRequest {
    std::string lowerdir;  // relative to `cwd`: "l/A:l/B"
    std::filesystem::path upper, work, target, cwd;
    bool ephemeral = false;  // no syncs of the upper directory (the container goes when it stops)
  };
  // Mounts the overlay; throws an Error that says why not.
  virtual void mount_overlay(const MountRequest& request) = 0;
  virtual void unmount_overlay(const std::filesystem::path& target) = 0;
  // A real test: two lowers, an upper, a write and a delete through the mount.
  StorageProbe probe_mount(const std::string& what);

  const PluginContext& context() const { return ctx_; }
  const std::filesystem::path& state() const { return state_; }

 private:
  std::filesystem::path layer_dir(const std::string& id) const { return layers_ / id; }
  std::filesystem::path container_dir(const std::string& id) const { return containers_ / id; }
  std::string short_name(const std::string& id) const;
  // The layer's own files (overlay form) into `diff_fd`, on the layers of `lower`.
  void fill_diff(int diff_fd, const std::string& lower, const std::filesystem::path& layer_tar);
  std::string lower_of(const std::string& id) const;  // the layer's own lower file
  std::string lowerdir_for(const std::string& top) const;  // "l/<top>:<top's lower>"
  // Opened diff directories of a lowerdir string, top first; the caller closes them.
  std::vector<int> open_lowers(const std::string& lowerdir) const;

  PluginContext ctx_;
  std::filesystem::path state_, links_, layers_, containers_;
};

// Whether `path` is the root of a mount (a FUSE mount whose server died counts).
bool is_mount_point(const std::filesystem::path& path);

}  // namespace hutch::storage::overlay
