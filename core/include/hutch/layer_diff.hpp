// What a container changed, as docker's `diff` shows it, and the layer tar that records it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hutch/error.hpp"

namespace hutch {

enum class ChangeKind { kAdded, kChanged, kDeleted };

struct Change {
  std::string path;  // absolute inside the container: "/etc/passwd"
  ChangeKind kind = ChangeKind::kChanged;
  bool opaque = false;  // a directory whose old content is all gone (overlay's opaque dir)
};

// 'A', 'C' or 'D'.
HUTCH_API char change_letter(ChangeKind kind);

// Full trees (vfs): what `upper` changed against `lower` (lower_fd -1: nothing below).
// A directory is "C" when its metadata changed or anything inside it did, as docker says.
HUTCH_API std::vector<Change> compare_trees(int lower_fd, int upper_fd);

// An overlay upper directory against its lower layers (top first): whiteout devices are
// deletions, opaque directories replace what is below.
HUTCH_API std::vector<Change> overlay_changes(int upper_fd, const std::vector<int>& lower_fds);

// Compares two trees entry by entry: names, types, modes, owners, sizes, mtimes (of all but
// directories), device numbers, symlink targets and the bytes of regular files. Returns the
// first difference ("usr/bin/x: content differs"), or nothing when they are the same. The
// roots' own metadata is not compared.
HUTCH_API std::optional<std::string> first_difference(int a_fd, int b_fd);

struct ExportedLayer {
  std::string diff_hex;  // sha256 of the tar: the layer's diff ID
  std::uint64_t size = 0;
};

// Writes the changes as an OCI layer tar (uncompressed, PAX): added and changed entries
// read from `root_fd` (the container's filesystem, or an overlay upper directory),
// deletions as `.wh.NAME`, opaque directories followed by `.wh..wh..opq`. Hardlinks among
// the written files stay hardlinks; overlay xattrs are left out.
HUTCH_API ExportedLayer write_changes_tar(int root_fd, const std::vector<Change>& changes,
                                          const std::filesystem::path& out);

}  // namespace hutch
