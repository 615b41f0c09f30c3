// The network plugins' helper processes (the slirp stack of a container, the bridge's port
// forwarder, the shared namespace's holder): forked from the monitor, set up, report, serve.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace hutch::netutil {

struct Helper {
  pid_t pid = 0;
  int pidfd = -1;     // the caller's; survives the helper being reaped by someone else
  std::string ready;  // what the helper reported once it was set up
};

// Forks `body` as a helper named `name` (its comm, as ps shows it). The child keeps only the
// fds in `keep`, has default signals and an empty signal mask, calls `ready(text)` once set up
// and then serves until it returns (the child then exits 0). An exception before `ready` is
// the caller's: spawn_helper throws it again, its code and message, after reaping the child.
Helper spawn_helper(const std::string& name, std::vector<int> keep,
                    const std::function<void(const std::function<void(const std::string&)>& ready)>& body);

// SIGTERM, up to `grace_ms` for it to end, then SIGKILL; closes the pidfd.
void stop_helper(Helper& helper, int grace_ms = 2000);

// The helper's pid and start time in `file`, so another process can find it again.
void record_helper(const std::filesystem::path& file, pid_t pid);
// Stops the helper `file` names if it is still that process (same start time), removes the file.
void stop_recorded_helper(const std::filesystem::path& file);

// A pidfd for `pid` (-1 when it is gone).
int pidfd_of(pid_t pid);

}  // namespace hutch::netutil
