// Layer tars: decompressed, checked, and applied beneath a root that they cannot escape.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <utility>
#include <filesystem>
#include <string>
#include <vector>

#include "hutch/logger.hpp"

namespace hutch {

// How a layer records what it deletes from the layers below.
enum class WhiteoutForm {
  kDelete,   // the layer is applied on a copy of the layers below, whiteouts delete (vfs)
  kOverlay,  // the layer stands alone: a whiteout is a 0:0 character device, an opaque
             // directory has the xattr kOverlayOpaqueXattr (overlay, fuse-overlayfs)
  kNone,     // not a layer (hutch cp): a ".wh." name is a file like any other
};

// Overlay metadata in the "user." namespace: what the kernel reads with the `userxattr`
// mount option (usable inside a user namespace) and what fuse-overlayfs reads too.
inline constexpr const char* kOverlayOpaqueXattr = "user.overlay.opaque";

struct ApplyOptions {
  WhiteoutForm whiteouts = WhiteoutForm::kDelete;
  // kOverlay: the layers below, top first, where a hardlink's target may be found.
  std::vector<int> lower_fds;
  // Single-ID mode: every file is owned by the namespace's root (the caller).
  bool squash_ownership = false;
  // IDs that exist in the namespace: an owner at or past these is an error naming the file.
  unsigned long uid_count = 4294967295UL;
  unsigned long gid_count = 4294967295UL;
  // docker cp's extraction: an entry for the root itself (".") changes nothing, and a
  // directory is never replaced by a non-directory nor the other way round (an error naming
  // both), where a layer replaces whatever is there.
  bool copy_extraction = false;
  const Logger* logger = nullptr;
};

struct ApplyStats {
  std::uint64_t entries = 0;
  std::uint64_t bytes = 0;
  std::uint64_t skipped_devices = 0;
};

// Applies `tar` (any compression libarchive reads) on the directory `root_fd`, OCI style:
// whiteouts (.wh.NAME, .wh..wh..opq) become `options.whiteouts`' form. Overlay metadata
// xattrs in the tar (trusted.overlay.*, user.overlay.*) are dropped: an image must not
// steer the overlay filesystem (redirects, origins). Every path is resolved
// beneath the root (openat2 RESOLVE_IN_ROOT): "..", absolute paths and symlinks or
// hardlinks that point outside never reach outside.
HUTCH_API ApplyStats apply_layer_tar(int root_fd, const std::filesystem::path& tar, const ApplyOptions& options);
// The same from a stream (a pipe, stdin); `display_name` names it in errors.
HUTCH_API ApplyStats apply_tar_stream(int root_fd, int tar_fd, const std::string& display_name,
                                      const ApplyOptions& options);

// Decompresses `input` (plain or gzip/xz/zstd/bzip2) into the plain tar `output`, checks
// that it is a tar archive, and returns the sha256 hex of the plain tar (the layer's diff ID).
// Throws Errc::kInvalidInput naming `display_name` when it is not a tar.
HUTCH_API std::string decompress_layer(int input_fd, const std::string& display_name,
                                       const std::filesystem::path& output, std::uint64_t* size = nullptr);

// Like copy_tree, but regular files, symlinks and special files are hardlinked instead of
// copied (directories are made anew): a child layer that shares its parent's files costs no
// space. Safe because layer application replaces a file rather than writing into it. Falls
// back to a copy where a link cannot be made (too many links, another filesystem).
HUTCH_API void link_tree(int src_fd, int dst_fd);

// Bytes a tree takes on disk (st_blocks), each inode counted once across calls with the
// same `seen` set: hardlinks shared between trees are counted once.
HUTCH_API std::uint64_t disk_usage(int dir_fd, std::set<std::pair<dev_t, ino_t>>* seen = nullptr);

// Copies the tree at src_fd into the (existing, empty) directory dst_fd, keeping modes,
// owners, times, hardlinks, symlinks, device nodes and extended attributes.
HUTCH_API void copy_tree(int src_fd, int dst_fd);

// Removes `name` (a file or a whole tree) in the directory `dir_fd`, never following symlinks.
HUTCH_API void remove_beneath(int dir_fd, const std::string& name);

// Opens (O_PATH) the directory `relative` beneath root_fd, creating missing components
// with mode 0755 when `create`. Returns -1 with errno set on failure.
HUTCH_API int open_dir_beneath(int root_fd, const std::string& relative, bool create);

// openat2(root_fd, relative, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): "..", absolute
// paths and symlinks all stay beneath root_fd. Returns -1 with errno set on failure.
HUTCH_API int open_beneath(int root_fd, const std::string& relative, int flags);

}  // namespace hutch
