// Where things live (XDG), and the small file helpers everything uses.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>

#include "hutch/error.hpp"

namespace hutch {

HUTCH_API std::filesystem::path home_dir(uid_t uid);
HUTCH_API std::filesystem::path xdg_config_home(uid_t uid);
// $XDG_DATA_HOME/hutch (~/.local/share/hutch); /var/lib/hutch for real root.
HUTCH_API std::filesystem::path default_store_root(uid_t uid);

struct RunRoot {
  std::filesystem::path path;
  std::string why;  // how it was chosen, for `hutch info`
};
// $XDG_RUNTIME_DIR/hutch when that is set and the caller's; else a private /tmp/hutch-run-<uid>
// (mode 0700, owner checked); /run/hutch for real root.
HUTCH_API RunRoot default_run_root(uid_t uid);

// mkdir -p with `mode` for what it creates.
HUTCH_API void make_dirs(const std::filesystem::path& dir, mode_t mode = 0755);
// A directory only `uid` may use: created 0700, refused if it is a symlink or another's.
HUTCH_API void ensure_private_dir(const std::filesystem::path& dir, uid_t uid);

HUTCH_API std::string read_file(const std::filesystem::path& file);
// Writes all of `data` to `fd`, through EINTR, and (waiting in poll) EAGAIN on a non-blocking
// descriptor; false, with errno set, when a write fails.
HUTCH_API bool write_all(int fd, const void* data, std::size_t size);
// "/a/./b//../c/" -> "a/c": lexically, as docker and tar paths are cleaned; ".." stops at the root.
HUTCH_API std::string normalize_path(const std::string& raw);
// An executable `name` in $PATH, then in the sbin and bin directories an unprivileged user's
// PATH often lacks (Debian keeps newuidmap in /usr/bin but runc in /usr/sbin); empty if none.
HUTCH_API std::filesystem::path find_program(const std::string& name);
// Whether a write must survive a crash of the machine (fsync before the rename), or only be
// atomic for readers: files made again whenever they are needed (a container's bundle, a
// runtime's state under the run root, the metadata of a --rm container's filesystem).
enum class Durability { kSynced, kVolatile };
// Write to a temporary file beside it, fsync (kSynced), rename over: readers see old or new,
// never half.
HUTCH_API void write_file_atomic(const std::filesystem::path& file, const std::string& content,
                                 mode_t mode = 0644, Durability durability = Durability::kSynced);
// One write(2) of `content` to an existing file, in place: for /proc and /sys files
// (uid_map, setgroups), where a partial write is an error.
HUTCH_API void write_file_in_place(const std::filesystem::path& file, const std::string& content);
// Removes a tree; files are made writable first where a parent lacked the write bit.
HUTCH_API void remove_tree(const std::filesystem::path& path);

// The suffix of a directory being built; a crash leaves it, and the owner removes it.
inline constexpr const char* kIncompleteMarker = ".incomplete-";

// Builds the directory `final` whole or not at all: `build` fills a fresh sibling
// "<final>.incomplete-XXXX", which is then renamed to `final`. On any failure the sibling is
// removed (and `undo` called). Returns false, having removed the sibling, when `final` was made
// meanwhile and `exists_ok` (content-addressed things: the same content); otherwise that is an
// error naming `what`.
HUTCH_API bool build_directory(const std::filesystem::path& final, const std::string& what,
                               const std::function<void(const std::filesystem::path& staging)>& build,
                               bool exists_ok = false, const std::function<void()>& undo = {});

// A directory "<near>.incomplete-scratch-XXXX" for the time of `use`, removed after it
// (whether it returns or throws; after a crash, the marker gets it removed with the rest).
HUTCH_API void with_scratch_directory(const std::filesystem::path& near,
                                      const std::function<void(const std::filesystem::path& scratch)>& use);

// 64 lowercase hex characters of randomness, for container IDs.
HUTCH_API std::string random_hex(size_t bytes = 32);

}  // namespace hutch
