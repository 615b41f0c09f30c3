// The storage family: layers by id with a parent chain, container filesystems on top.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <string>
#include <vector>

#include "hutch/context.hpp"
#include "hutch/layer_diff.hpp"

namespace hutch {

struct StorageCapabilities {
  bool cheap_copy_on_write = false;  // container layers cost no copy (overlay)
  bool needs_mount = false;          // rootfs must be mounted before use
  std::string description;           // one line for `hutch info`
};

struct ContainerFsOptions {
  // The container is removed when it stops (run --rm): its writes need not survive a crash,
  // so the driver may skip syncing them (overlay's `volatile`, as podman does for --rm).
  bool ephemeral = false;
};

// Can the driver work on this host, for this store? Answered by really trying.
struct StorageProbe {
  bool usable = false;
  std::string reason;  // why (not): shown by `hutch info`, recorded with an automatic choice
};

class StorageDriver {
 public:
  static constexpr const char* kFamily = "storage";
  virtual ~StorageDriver() = default;

  virtual StorageCapabilities capabilities() const = 0;
  // Tries the driver for real (overlay: mounts a test overlay in the user namespace).
  virtual StorageProbe probe() = 0;

  // A new layer `id`: the content of `parent` (empty: none) with the layer tar applied.
  // The layer is visible only once complete; a crash leaves nothing under `id`.
  virtual void create_layer(const std::string& id, const std::string& parent,
                            const std::filesystem::path& layer_tar) = 0;
  virtual bool has_layer(const std::string& id) const = 0;
  // Applies `layer_tar` again beside layer `id` (on `parent`) and compares the two: nothing
  // when the layer's files are what its tar makes, else the first difference.
  virtual std::optional<std::string> verify_layer(const std::string& id, const std::string& parent,
                                                  const std::filesystem::path& layer_tar) = 0;
  virtual void remove_layer(const std::string& id) = 0;
  virtual std::vector<std::string> list_layers() const = 0;

  // A writable filesystem for a container on top of the image's top layer.
  virtual void create_container_fs(const std::string& container_id, const std::string& top_layer,
                                   const ContainerFsOptions& options) = 0;
  void create_container_fs(const std::string& container_id, const std::string& top_layer) {
    create_container_fs(container_id, top_layer, ContainerFsOptions{});
  }
  // The path of the container's root filesystem, mounted if the driver needs it.
  // Mounting an already mounted container returns its path again.
  virtual std::filesystem::path mount(const std::string& container_id) = 0;
  virtual void unmount(const std::string& container_id) = 0;
  // The path where the container's filesystem is mounted now, if it is.
  virtual std::optional<std::filesystem::path> mounted(const std::string& container_id) const = 0;
  virtual void remove_container_fs(const std::string& container_id) = 0;
  virtual bool has_container_fs(const std::string& container_id) const = 0;

  // What the container changed against its image, sorted by path (docker's `diff`).
  virtual std::vector<Change> changes(const std::string& container_id) = 0;
  // `changes` (from changes(), possibly filtered) as a layer tar at `tar` (uncompressed), for `commit`.
  virtual ExportedLayer export_changes(const std::string& container_id, const std::vector<Change>& changes,
                                       const std::filesystem::path& tar) = 0;

  // Bytes on disk, hardlinks shared with other layers counted once per `seen` set.
  virtual std::uint64_t layer_disk_usage(const std::string& id, std::set<std::pair<dev_t, ino_t>>* seen) const = 0;
  // The bytes of the container's writable layer (its changes).
  virtual std::uint64_t container_disk_usage(const std::string& container_id) const = 0;

  // Remove what a crash left behind (incomplete layers and container filesystems).
  virtual void clean_incomplete() = 0;
};

}  // namespace hutch
