// Layer tars: decompressed, checked, and applied beneath a root that they cannot escape.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "hutch/logger.hpp"

namespace hutch {

struct ApplyOptions {
  // Single-ID mode: every file is owned by the namespace's root (the caller).
  bool squash_ownership = false;
  // IDs that exist in the namespace: an owner at or past these is an error naming the file.
  unsigned long uid_count = 4294967295UL;
  unsigned long gid_count = 4294967295UL;
  const Logger* logger = nullptr;
};

struct ApplyStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  std::uint64_t skipped_devices = 0;
};

// Applies `tar` (any compression libarchive reads) on the directory `root_fd`, OCI style:
// whiteouts (.wh.NAME, .wh..wh..opq) delete from what is below. Every path is resolved
// beneath the root (openat2 RESOLVE_IN_ROOT): "..", absolute paths and symlinks or
// hardlinks that point outside never reach outside.
HUTCH_API ApplyStats apply_layer_tar(int root_fd, const std::filesystem::path& tar, const ApplyOptions& options);

// Decompresses `input` (plain or gzip/xz/zstd/bzip2) into the plain tar `output`, checks
// that it is a tar archive, and returns the sha256 hex of the plain tar (the layer's diff ID).
// Throws Errc::kInvalidInput naming `display_name` when it is not a tar.
HUTCH_API std::string decompress_layer(int input_fd, const std::string& display_name,
                                       const std::filesystem::path& output, std::uint64_t* size = nullptr);

// Copies the tree at src_fd into the (existing, empty) directory dst_fd, keeping modes,
// owners, times, hardlinks, symlinks, device nodes and extended attributes.
HUTCH_API void copy_tree(int src_fd, int dst_fd);

// Removes `name` (a file or a whole tree) in the directory `dir_fd`, never following symlinks.
HUTCH_API void remove_beneath(int dir_fd, const std::string& name);

// Opens (O_PATH) the directory `relative` beneath root_fd, creating missing components
// with mode 0755 when `create`. Returns -1 with errno set on failure.
HUTCH_API int open_dir_beneath(int root_fd, const std::string& relative, bool create);

}  // namespace hutch
