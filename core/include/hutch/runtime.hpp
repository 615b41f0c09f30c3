// The runtime family: run an OCI bundle (config.json + rootfs), the runc verbs.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "hutch/context.hpp"

namespace hutch {

struct RuntimeCapabilities {
  bool user_namespace_in_spec = false;  // honours a "user" namespace in the spec
  std::string description;
};

struct RuntimeIo {
  int stdin_fd = 0;
  int stdout_fd = 1;
  int stderr_fd = 2;
  // With process.terminal in the spec: the runtime makes the container's terminal (in the
  // container's own /dev/pts) and sends its master over this AF_UNIX socket with SCM_RIGHTS,
  // as runc and crun do with --console-socket. The three fds above are then unused.
  std::filesystem::path console_socket;
};

struct RuntimeState {
  std::string id;
  std::string status;  // "created", "running", "stopped"
  pid_t pid = 0;
  std::filesystem::path bundle;
};

// bundle/config.json, parsed; throws Errc::kInvalidInput naming the file when it is not JSON.
HUTCH_API nlohmann::json read_bundle_config(const std::filesystem::path& bundle);

class RuntimeBackend {
 public:
  static constexpr const char* kFamily = "runtime";
  virtual ~RuntimeBackend() = default;
  virtual RuntimeCapabilities capabilities() const = 0;
  // Create the container from bundle/config.json; its process waits before the user's
  // command. Returns the container's init pid (a child or, reparented, of a subreaper caller).
  virtual pid_t create(const std::string& id, const std::filesystem::path& bundle,
                       const RuntimeIo& io) = 0;
  virtual void start(const std::string& id) = 0;
  virtual std::optional<RuntimeState> state(const std::string& id) = 0;
  virtual void kill(const std::string& id, int signal) = 0;
  virtual void remove(const std::string& id) = 0;  // the runc "delete"
  // Runs `process` (an OCI process object: args, env, cwd, user, capabilities, rlimits,
  // noNewPrivileges, terminal, ...) in the running container `id`: in its namespaces (its
  // user namespace first, when it has one of its own), its root, its cgroup, under its seccomp
  // filter unless the spec's process had none. With process.terminal, the terminal's master
  // goes over io.console_socket as for create. Returns the process's pid as the caller sees it:
  // a child of the caller or, reparented, of a subreaper caller; the caller reaps it (and, as a
  // subreaper, whatever else a runtime leaves it). Errors as create's: a command not found is
  // Errc::kCommandNotFound (127), one that cannot run kNotExecutable (126); an unknown
  // container kNotFound.
  virtual pid_t exec(const std::string& id, const nlohmann::json& process, const RuntimeIo& io) = 0;
};

}  // namespace hutch
