// oci: hands core's bundle to an OCI runtime program (crun, runc, or one at a path), with
// the runc command line every such runtime shares: create, start, state, kill, delete, exec.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "hutch/abi.hpp"
#include "hutch/cgroups.hpp"
#include "hutch/paths.hpp"
#include "hutch/runtime.hpp"
#include "hutch/unique_fd.hpp"

namespace hutch::runtime::oci {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr long kCgroup2Magic = 0x63677270;

// A program name is looked up as core's find_program does (PATH, then the sbin directories
// an unprivileged user's PATH often lacks: Debian puts runc in /usr/sbin); a path is taken as is.
fs::path find_runtime(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) != 0)
      throw Error(Errc::kConfig, "the OCI runtime " + name + " cannot be run: " + std::strerror(errno));
    return fs::absolute(name);
  }
  fs::path p = find_program(name);
  if (p.empty())
    throw Error(Errc::kConfig, "the OCI runtime \"" + name + "\" is not installed (not found in PATH or the sbin directories); "
                               "install it (Debian has crun and runc: apt-get install crun runc), or name a program with --runtime /path/to/runtime");
  return p;
}

// crun refuses a hybrid layout (v1 controllers plus a cgroup2 mount with controllers of its
// own, here /sys/fs/cgroup/unified). The runtime then runs in a private mount namespace
// where an empty tmpfs covers that mount: it sees no cgroup2 controllers, which it handles
// (what it writes there to track processes goes with that private namespace). Unmounting
// is not possible: in a user namespace the mounts inherited from the host are locked.
bool unified_mount_in_the_way() {
  struct statfs root {}, unified {};
  if (::statfs("/sys/fs/cgroup", &root) != 0 || static_cast<long>(root.f_type) == kCgroup2Magic) return false;
  return ::statfs("/sys/fs/cgroup/unified", &unified) == 0 && static_cast<long>(unified.f_type) == kCgroup2Magic;
}

struct Outcome {
  int code = -1;
  std::string error;  // what the runtime logged at level error, else its exit
};

// The errors of a runtime's JSON log ({"level":"error","msg":"..."} lines; crun and runc both).
std::string logged_errors(const fs::path& log) {
  std::string text;
  try {
    text = read_file(log);
  } catch (const Error&) {
    return "";
  }
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    try {
      json j = json::parse(line);
      if (j.value("level", "") == "error" || j.value("level", "") == "fatal") {
        std::string msg = j.value("msg", "");
        if (!msg.empty()) out = msg;  // the last one says the most
      }
    } catch (const json::exception&) {
      if (!line.empty()) out = line;
    }
  }
  return out;
}

// As docker and podman: a command that is not there is 127, one that cannot run 126; the
// runtime says which in its words ("executable file `x` not found", "exec: ...: permission denied").
Errc failure_code(const Outcome& o) {
  auto has = [&](const char* s) { return o.error.find(s) != std::string::npos; };
  if (!has("exec")) return Errc::kRuntime;
  if (has("not found") || has("no such file or directory") || has("No such file or directory")) return Errc::kCommandNotFound;
  if (has("ermission denied") || has("not permitted") || has("exec format error")) return Errc::kNotExecutable;
  return Errc::kRuntime;
}

class OciRuntime final : public RuntimeBackend {
 public:
  explicit OciRuntime(const PluginContext& ctx) : ctx_(ctx) {
    std::string name = ctx.config.value("binary", "");
    if (name.empty()) name = ctx.config.value("path", "crun");
    program_ = find_runtime(name);
    label_ = program_.filename().string();
    state_root_ = ctx.run_root / ("oci-" + label_);
    make_dirs(state_root_, 0700);
    hide_unified_ = unified_mount_in_the_way();
  }

  RuntimeCapabilities capabilities() const override {
    return {true, "the OCI runtime " + program_.string() + " (runc's command line; state in " + state_root_.string() + ")"};
  }

  pid_t create(const std::string& id, const fs::path& bundle, const RuntimeIo& io) override {
    json config = read_bundle_config(bundle);
    // What every runtime needs, checked here so that the error names the field (crun only
    // says "open executable: Invalid argument" for an empty args).
    if (!config.contains("process") || !config["process"].contains("args") || !config["process"]["args"].is_array() ||
        config["process"]["args"].empty())
      throw Error(Errc::kInvalidInput, (bundle / "config.json").string() + ": process.args is empty: there is no command to run");
    bool cgroups = config.contains("linux") && config["linux"].contains("cgroupsPath");
    // Kept in a file, not in memory: exec and delete may come from other processes (`hutch
    // exec`, `hutch rm`) than the one that creates (the container's monitor).
    if (cgroups)
      write_file_atomic(cgroup_file(id), config["linux"]["cgroupsPath"].get<std::string>(), 0600, Durability::kVolatile);
    fs::path pid_file = state_root_ / (id + ".pid");
    ::unlink(pid_file.c_str());
    std::vector<std::string> args = {"create", "--bundle", bundle.string(), "--pid-file", pid_file.string()};
    if (!io.console_socket.empty()) args.insert(args.end(), {"--console-socket", io.console_socket.string()});
    args.push_back(id);
    Outcome o = invoke(args, io, cgroups);
    if (o.code != 0) {
      try {
        invoke({"delete", "--force", id}, {}, cgroups);
      } catch (const Error&) {
      }
      forget_cgroup(id);
      throw Error(failure_code(o), o.error);
    }
    pid_t pid = 0;
    try {
      pid = static_cast<pid_t>(std::stol(read_file(pid_file)));
    } catch (const std::exception&) {
      throw Error(Errc::kRuntime, label_ + " create left no pid in " + pid_file.string());
    }
    ::unlink(pid_file.c_str());
    return pid;
  }

  void start(const std::string& id) override {
    Outcome o = invoke({"start", id}, {}, false);
    if (o.code != 0) throw Error(Errc::kRuntime, o.error);
  }

  std::optional<RuntimeState> state(const std::string& id) override {
    std::string out;
    Outcome o = invoke({"state", id}, {}, false, &out);
    if (o.code != 0) return std::nullopt;
    try {
      json j = json::parse(out);
      RuntimeState s;
      s.id = id;
      s.status = j.value("status", "");
      s.pid = j.value("pid", 0);
      s.bundle = j.value("bundle", "");
      return s;
    } catch (const json::exception& e) {
      throw Error(Errc::kRuntime, label_ + " state " + id + " printed no JSON: " + e.what());
    }
  }

  void kill(const std::string& id, int signal) override {
    Outcome o = invoke({"kill", id, std::to_string(signal)}, {}, false);
    if (o.code != 0 && state(id) && state(id)->status != "stopped") throw Error(Errc::kRuntime, o.error);
  }

  // `exec --detach`: the runtime starts the process and exits, and the process is reparented
  // to the nearest subreaper, which the caller must be (hutch's monitor and `hutch exec` are)
  // to reap it. The runtime joins the container's namespaces, cgroup and seccomp filter itself.
  pid_t exec(const std::string& id, const json& process, const RuntimeIo& io) override {
    if (!process.is_object() || !process.contains("args") || !process["args"].is_array() || process["args"].empty())
      throw Error(Errc::kInvalidInput, "the process to exec in container " + id + ": process.args is empty: there is no command to run");
    if (process.value("terminal", false) && io.console_socket.empty())
      throw Error(Errc::kInvalidInput, "the process to exec in container " + id +
                                           " asks for a terminal (process.terminal), but no console socket was given");
    std::string stem = "exec-" + id + "-" + std::to_string(::getpid()) + "-" + std::to_string(++execs_);
    fs::path process_file = state_root_ / (stem + ".json"), pid_file = state_root_ / (stem + ".pid");
    write_file_atomic(process_file, process.dump(), 0600, Durability::kVolatile);
    std::vector<std::string> args = {"exec", "--process", process_file.string(), "--pid-file", pid_file.string(), "--detach"};
    if (!io.console_socket.empty()) args.insert(args.end(), {"--console-socket", io.console_socket.string()});
    args.push_back(id);
    // crun joins the container's cgroup only with the manager it was created with.
    Outcome o = invoke(args, io, cgroup_of(id).has_value());
    ::unlink(process_file.c_str());
    if (o.code != 0) {
      ::unlink(pid_file.c_str());
      // crun says only that it cannot open the container's status file.
      if (!state(id)) throw Error(Errc::kNotFound, "no container " + id + " in " + label_ + " (" + o.error + ")");
      throw Error(failure_code(o), o.error);
    }
    pid_t pid = 0;
    try {
      pid = static_cast<pid_t>(std::stol(read_file(pid_file)));
    } catch (const std::exception&) {
      throw Error(Errc::kRuntime, label_ + " exec left no pid in " + pid_file.string());
    }
    ::unlink(pid_file.c_str());
    return pid;
  }

  void remove(const std::string& id) override {
    Outcome o = invoke({"delete", "--force", id}, {}, true);
    if (o.code != 0 && state(id)) throw Error(Errc::kRuntime, o.error);
    forget_cgroup(id);
  }

 private:
  // What a runtime made of the container's cgroup and did not remove (crun leaves its v1
  // directories behind when it fails midway) goes too.
  void forget_cgroup(const std::string& id) {
    auto path = cgroup_of(id);
    if (!path) return;
    try {
      remove_container_cgroup(detect_cgroups(ctx_.rootless.mode == UsernsMode::kRealRoot), *path);
    } catch (const Error& e) {
      ctx_.logger->debug("cgroup of " + id + ": " + e.what());
    }
    ::unlink(cgroup_file(id).c_str());
  }

  // The linux.cgroupsPath a container was created with, when it had one.
  fs::path cgroup_file(const std::string& id) const { return state_root_ / (id + ".cgroup"); }
  std::optional<std::string> cgroup_of(const std::string& id) const {
    try {
      return read_file(cgroup_file(id));
    } catch (const Error&) {
      return std::nullopt;
    }
  }

  // Runs the runtime with `args` after the global flags; its stdio is `io`'s (what a created
  // container or an exec'd process inherits), or /dev/null and, with `out`, a pipe for stdout.
  Outcome invoke(const std::vector<std::string>& args, const RuntimeIo& io, bool cgroups, std::string* out = nullptr) {
    fs::path log = state_root_ / ("log-" + std::to_string(::getpid()) + "-" + args[0]);
    ::unlink(log.c_str());
    std::vector<std::string> argv = {program_.string(), "--root", state_root_.string(), "--log", log.string(),
                                     "--log-format", "json"};
    if (label_.find("crun") != std::string::npos)
      argv.push_back(cgroups ? "--cgroup-manager=cgroupfs" : "--cgroup-manager=disabled");
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);

    int pipe_fds[2] = {-1, -1};
    if (out && ::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("pipe");
    // What the runtime starts (a created container, an exec'd process) inherits its stdio.
    bool passes_io = args[0] == "create" || args[0] == "exec";
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    pid_t pid = ::fork();
    if (pid < 0) throw_errno("cannot start " + program_.string());
    if (pid == 0) {
      int in = passes_io ? io.stdin_fd : devnull;
      int o1 = out ? pipe_fds[1] : (passes_io ? io.stdout_fd : devnull);
      int o2 = passes_io ? io.stderr_fd : devnull;
      if (!io.console_socket.empty()) in = o1 = o2 = devnull;
      ::dup2(in, 0);
      ::dup2(o1, 1);
      ::dup2(o2, 2);
      if (hide_unified_) {
        if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0 ||
            ::mount("tmpfs", "/sys/fs/cgroup/unified", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k") != 0) {
          std::string m = std::string("hutch: cannot hide /sys/fs/cgroup/unified from the runtime: ") + std::strerror(errno) + "\n";
          ssize_t w = ::write(2, m.data(), m.size());
          (void)w;
          _exit(125);
        }
      }
      ::execv(cargv[0], cargv.data());
      _exit(127);
    }
    ::close(devnull);
    if (out) {
      ::close(pipe_fds[1]);
      char buf[4096];
      ssize_t n;
      while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) out->append(buf, static_cast<size_t>(n));
      ::close(pipe_fds[0]);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    Outcome o;
    o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (o.code != 0) {
      o.error = logged_errors(log);
      if (o.error.empty()) o.error = label_ + " " + args[0] + " failed (exit " + std::to_string(o.code) + ")";
      else o.error = label_ + ": " + o.error;
    }
    ::unlink(log.c_str());
    return o;
  }

  PluginContext ctx_;
  fs::path program_;
  std::string label_;
  fs::path state_root_;
  bool hide_unified_ = false;
  int execs_ = 0;  // names this process's exec files apart
};

std::unique_ptr<RuntimeBackend> make_oci_runtime(const PluginContext& ctx) { return std::make_unique<OciRuntime>(ctx); }

}  // namespace
}  // namespace hutch::runtime::oci

HUTCH_PLUGIN(hutch::RuntimeBackend, "oci", "0.1.0", hutch::runtime::oci::make_oci_runtime);
