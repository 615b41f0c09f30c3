// The user namespace: one per user, shared by every invocation and container.
//
// The first hutch that needs it makes it: a child unshares a user and a mount namespace
// and waits on a pipe, the parent writes its ID maps with newuidmap/newgidmap from the
// caller's subordinate ranges (or a single-ID map), then the child re-executes itself as
// a tiny pause process that holds the namespace. Every hutch (the first included) joins
// it with setns(2) and holds a shared lock on <runroot>/userns.lock while it runs; the pause
// process waits for an exclusive lock on that file, and so exits as soon as nothing of ours
// is inside.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hutch/context.hpp"
#include "hutch/lock.hpp"

namespace hutch {

// Ranges of `user` (name) or `uid` in the text of /etc/subuid or /etc/subgid.
HUTCH_API std::vector<IdRange> parse_subid_file(const std::string& content, const std::string& user, uid_t uid);
// The sum of the counts in a /proc/PID/uid_map text.
HUTCH_API unsigned long count_id_map(const std::string& map_text);

struct UsernsPlan {
  UsernsMode mode = UsernsMode::kRealRoot;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;
  std::vector<IdRange> uid_ranges;  // subordinate ranges (empty in single-ID mode)
  std::vector<IdRange> gid_ranges;
  std::string ranges_source;        // "libsubid" or the files
  std::string newuidmap;            // path of newuidmap/newgidmap, empty if missing
  std::string newgidmap;
  std::string single_id_reason;     // why single-ID mode, with the fix
};

// What the namespace would be for the calling (host) user; no side effects.
HUTCH_API UsernsPlan plan_user_namespace();

// True when this process is already inside hutch's namespace (a hutch run from `hutch unshare`).
HUTCH_API bool inside_hutch_namespace();

class HUTCH_API UsernsSession {
 public:
  // Joins (or first makes) the namespace; call early in main, before threads or plugins.
  // Real root: nothing to join. Holds membership until destroyed.
  static UsernsSession enter(const std::filesystem::path& run_root, const Logger& logger);
  // The facts of the namespace this process is in (inside already, or real root).
  static RootlessInfo current();

  const RootlessInfo& info() const { return info_; }
  // The membership lock's descriptor, to keep across exec (hutch unshare).
  int membership_fd() const { return member_.fd(); }
  bool created() const { return created_; }
  // This process joined the shared namespace for this command only (it was not started
  // inside it, as `hutch unshare` children are, and is not real root): what it mounts
  // lives only as long as some hutch process stays in the namespace.
  bool joined_for_this_command() const { return member_.fd() >= 0; }

 private:
  RootlessInfo info_;
  FileLock member_;
  bool created_ = false;
};

// In single-ID mode, one warning per run root (that is, per boot), saying why and the fix.
HUTCH_API void warn_single_id_once(const std::filesystem::path& run_root, const Logger& logger);

// The pause process's main, reached through re-exec with _HUTCH_PAUSE set.
HUTCH_API int pause_process_main(const char* lock_path);

inline constexpr const char* kEnvPause = "_HUTCH_PAUSE";
inline constexpr const char* kEnvHostUid = "_HUTCH_HOST_UID";
inline constexpr const char* kEnvHostGid = "_HUTCH_HOST_GID";
inline constexpr const char* kEnvUsernsMode = "_HUTCH_USERNS_MODE";

}  // namespace hutch
