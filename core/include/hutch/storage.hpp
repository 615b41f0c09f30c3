// The storage family: layers by id with a parent chain, container filesystems on top.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "hutch/context.hpp"

namespace hutch {

struct StorageCapabilities {
  bool cheap_copy_on_write = false;  // container layers cost no copy (overlay)
  bool needs_mount = false;          // rootfs must be mounted before use
  std::string description;           // one line for `hutch info`
};

class StorageDriver {
 public:
  static constexpr const char* kFamily = "storage";
  virtual ~StorageDriver() = default;

  virtual StorageCapabilities capabilities() const = 0;

  // A new layer `id`: the content of `parent` (empty: none) with the layer tar applied.
  // The layer is visible only once complete; a crash leaves nothing under `id`.
  virtual void create_layer(const std::string& id, const std::string& parent,
                            const std::filesystem::path& layer_tar) = 0;
  virtual bool has_layer(const std::string& id) const = 0;
  virtual void remove_layer(const std::string& id) = 0;
  virtual std::vector<std::string> list_layers() const = 0;

  // A writable filesystem for a container on top of the image's top layer.
  virtual void create_container_fs(const std::string& container_id, const std::string& top_layer) = 0;
  // The path of the container's root filesystem, mounted if the driver needs it.
  virtual std::filesystem::path mount(const std::string& container_id) = 0;
  virtual void unmount(const std::string& container_id) = 0;
  virtual void remove_container_fs(const std::string& container_id) = 0;

  // Remove what a crash left behind (incomplete layers and container filesystems).
  virtual void clean_incomplete() = 0;
};

}  // namespace hutch
