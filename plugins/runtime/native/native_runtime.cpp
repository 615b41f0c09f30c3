// native: hutch's own OCI runtime for the spec core generates; no helper process.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <sstream>

#include "hutch/abi.hpp"
#include "hutch/cgroups.hpp"
#include "hutch/paths.hpp"
#include "hutch/runtime.hpp"
#include "hutch/store.hpp"
#include "hutch/unique_fd.hpp"
#include "native_spec.hpp"
#include "seccomp_filter.hpp"

namespace hutch::runtime::native {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

unsigned long namespace_flag(const std::string& type) {
  if (type == "pid") return CLONE_NEWPID;
  if (type == "network") return CLONE_NEWNET;
  if (type == "mount") return CLONE_NEWNS;
  if (type == "ipc") return CLONE_NEWIPC;
  if (type == "uts") return CLONE_NEWUTS;
  if (type == "user") return CLONE_NEWUSER;
  if (type == "cgroup") return CLONE_NEWCGROUP;
  throw Error(Errc::kInvalidInput, "config.json: unknown namespace type \"" + type + "\"");
}

std::string map_text(const std::vector<IdMapping>& m) {
  std::string out;
  for (const auto& e : m)
    out += std::to_string(e.container_id) + " " + std::to_string(e.host_id) + " " + std::to_string(e.size) + "\n";
  return out;
}

void write_proc(pid_t pid, const char* file, const std::string& text) {
  write_file_in_place("/proc/" + std::to_string(pid) + "/" + file, text);
}

unsigned long long start_time_of(pid_t pid) { return process_start_time(pid); }

// Exists and is not a zombie.
bool alive(pid_t pid) {
  std::string stat;
  try {
    stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  } catch (const Error&) {
    return false;
  }
  auto rp = stat.rfind(')');
  return rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] != 'Z';
}

// A connection to the console socket, where the process sends its terminal's master.
int connect_console(const fs::path& socket_path) {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    throw system_error("cannot connect to the console socket " + socket_path.string(), e);
  }
  return fd;
}

// The namespaces exec joins, in this order: the container's user namespace first (its
// capabilities are what the others are joined with), then mnt (which also sets root and
// working directory to the container's pivoted root), the rest, and pid last: setns puts
// only the children forked after it in there.
struct NamespaceKind {
  const char* name;  // in /proc/PID/ns
  int flag;
};
constexpr NamespaceKind kExecNamespaces[] = {{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},   {"ipc", CLONE_NEWIPC},
                                             {"uts", CLONE_NEWUTS},   {"net", CLONE_NEWNET},  {"cgroup", CLONE_NEWCGROUP},
                                             {"pid", CLONE_NEWPID}};

// What exec's joining process reports: the pid of the process it forked in there, or the
// namespace (an index of kExecNamespaces) it could not join, or the fork's errno.
struct JoinReport {
  pid_t pid = 0;
  int err = 0;
  int failed_namespace = -1;
};

class NativeRuntime final : public RuntimeBackend {
 public:
  explicit NativeRuntime(const PluginContext& ctx) : ctx_(ctx), state_root_(ctx.run_root / "native") {
    make_dirs(state_root_, 0700);
  }

  RuntimeCapabilities capabilities() const override {
    return {true, "hutch's built-in OCI runtime (clone, pivot_root, no helper process)"};
  }

  pid_t create(const std::string& id, const fs::path& bundle, const RuntimeIo& io) override {
    json config = read_bundle_config(bundle);
    NativeSpec spec = parse_spec(config, bundle);
    if (!spec.seccomp.is_null())
      spec.seccomp_filter = std::make_shared<SeccompFilter>(spec.seccomp, state_root_ / "seccomp-cache");
    if (spec.terminal && io.console_socket.empty())
      throw Error(Errc::kInvalidInput, "config.json asks for a terminal (process.terminal), but no console socket was given");
    int console_fd = spec.terminal ? connect_console(io.console_socket) : -1;
    fs::path dir = state_root_ / id;
    if (::mkdir(dir.c_str(), 0700) != 0) {
      if (errno == EEXIST) throw Error(Errc::kAlreadyExists, "container " + id + " already exists in the native runtime");
      throw_errno("cannot create " + dir.string());
    }
    fs::path fifo = dir / "exec.fifo";
    // Writable by the container's user: it opens the fifo after it dropped to that user
    // (through /proc/self/fd, so the private state directory around it does not matter).
    if (::mkfifo(fifo.c_str(), 0622) != 0 || ::chmod(fifo.c_str(), 0622) != 0)
      throw_errno("cannot create " + fifo.string());
    int fifo_fd = ::open(fifo.c_str(), O_PATH | O_CLOEXEC);
    if (fifo_fd < 0) throw_errno("cannot open " + fifo.string());

    // The cgroup first, so that a limit the kernel refuses fails before anything runs.
    std::string cgroups_path;
    CgroupSupport cgroups;
    if (config.contains("linux") && config["linux"].contains("cgroupsPath") && config["linux"].contains("resources")) {
      cgroups_path = config["linux"]["cgroupsPath"].get<std::string>();
      cgroups = detect_cgroups(ctx_.rootless.mode == UsernsMode::kRealRoot);
      try {
        create_container_cgroup(cgroups, cgroups_path, config["linux"]["resources"]);
      } catch (...) {
        try {
          remove_container_cgroup(cgroups, cgroups_path);
        } catch (const Error&) {
        }
        remove_tree(dir);
        throw;
      }
    }

    unsigned long flags = 0;
    for (const auto& n : spec.namespaces)
      if (n.path.empty()) flags |= namespace_flag(n.type);
    int sync[2], maps[2] = {-1, -1};
    if (pipe2(sync, O_CLOEXEC) != 0) throw_errno("pipe");
    bool userns = flags & CLONE_NEWUSER;
    if (userns && pipe2(maps, O_CLOEXEC) != 0) throw_errno("pipe");

    pid_t pid = static_cast<pid_t>(syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, 0));
    if (pid < 0) {
      int e = errno;
      ::close(sync[0]);
      ::close(sync[1]);
      ::close(fifo_fd);
      remove_tree(dir);
      throw system_error("cannot create the container's namespaces (clone)", e);
    }
    if (pid == 0) {
      ::close(sync[0]);
      if (userns) ::close(maps[1]);
      if (io.stdin_fd != 0) dup2(io.stdin_fd, 0);
      if (io.stdout_fd != 1) dup2(io.stdout_fd, 1);
      if (io.stderr_fd != 2) dup2(io.stderr_fd, 2);
      // Nothing of ours leaks into the container: every other descriptor closes on exec.
      syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
      container_main(spec, sync[1], userns ? maps[0] : -1, fifo_fd, console_fd);
    }
    if (console_fd >= 0) ::close(console_fd);
    ::close(sync[1]);
    ::close(fifo_fd);
    if (userns) {
      ::close(maps[0]);
      // setgroups stays allowed in the container's namespace when it is allowed in ours
      // (a namespace under one that denies it must deny it too).
      bool deny = true;
      try {
        deny = read_file("/proc/self/setgroups").rfind("deny", 0) == 0;
      } catch (const Error&) {
      }
      if (deny) try {
          write_proc(pid, "setgroups", "deny");
        } catch (const Error&) {
        }
      try {
        write_proc(pid, "uid_map", map_text(spec.uid_mappings));
        write_proc(pid, "gid_map", map_text(spec.gid_mappings));
      } catch (...) {
        ::kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        remove_tree(dir);
        throw;
      }
      ssize_t w = ::write(maps[1], "M", 1);
      (void)w;
      ::close(maps[1]);
    }
    std::string reply;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(sync[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
      if (reply == "R") break;
    }
    ::close(sync[0]);
    if (reply != "R") {
      int status = 0;
      waitpid(pid, &status, 0);
      remove_tree(dir);
      std::string why = reply.size() > 1 ? reply.substr(1) : "the container process died while being set up";
      throw Error(Errc::kRuntime, why);
    }
    if (!cgroups_path.empty()) {
      try {
        join_container_cgroup(cgroups, cgroups_path, pid);
      } catch (...) {
        ::kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        remove_container_cgroup(cgroups, cgroups_path);
        remove_tree(dir);
        throw;
      }
    }
    json state = {{"id", id}, {"pid", pid}, {"start_time", start_time_of(pid)}, {"bundle", bundle.string()},
                  {"status", "created"}, {"cgroups_path", cgroups_path}};
    write_file_atomic(dir / "state.json", state.dump() + "\n", 0600, Durability::kVolatile);  // the run root is volatile
    return pid;
  }

  void start(const std::string& id) override {
    auto st = load(id);
    if (!st) throw Error(Errc::kNotFound, "no container " + id + " in the native runtime");
    fs::path fifo = state_root_ / id / "exec.fifo";
    int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) throw Error(Errc::kRuntime, "container " + id + " was already started");
      throw_errno("cannot open " + fifo.string());
    }
    pid_t pid = (*st)["pid"].get<pid_t>();
    bool started = false;
    for (;;) {
      struct pollfd p {fd, POLLIN, 0};
      int r = poll(&p, 1, 100);
      if (r > 0) {
        char c;
        ssize_t n = ::read(fd, &c, 1);
        if (n == 1) {
          started = true;
          break;
        }
      }
      if (r < 0 && errno != EINTR) break;
      if (!alive(pid)) break;  // it died (or is a zombie) before it could start
    }
    ::close(fd);
    ::unlink(fifo.c_str());
    if (!started) throw Error(Errc::kRuntime, "container " + id + " exited before it started");
    (*st)["status"] = "running";
    write_file_atomic(state_root_ / id / "state.json", st->dump() + "\n", 0600, Durability::kVolatile);
  }

  std::optional<RuntimeState> state(const std::string& id) override {
    auto st = load(id);
    if (!st) return std::nullopt;
    RuntimeState s;
    s.id = id;
    s.pid = (*st)["pid"].get<pid_t>();
    s.bundle = (*st)["bundle"].get<std::string>();
    s.status = (*st)["status"].get<std::string>();
    if (start_time_of(s.pid) != (*st)["start_time"].get<unsigned long long>()) s.status = "stopped";
    return s;
  }

  void kill(const std::string& id, int signal) override {
    auto s = state(id);
    if (!s) throw Error(Errc::kNotFound, "no container " + id + " in the native runtime");
    if (s->status == "stopped") return;
    if (::kill(s->pid, signal) != 0 && errno != ESRCH) throw_errno("cannot signal container " + id);
  }

  // A process forked from here joins the namespaces of the container's init (those that are
  // not ours already) and forks the process with CLONE_PARENT: that one is in the container's
  // PID namespace too, and a direct child of the caller, who reaps it (no subreaper needed).
  // Before it joins anything, the joining process is put in the container's cgroup, which its
  // child inherits. The child takes the process object's identity (exec_main) and execs; it
  // reports a failure, its exec included, over a close-on-exec pipe, so exec fails as create
  // would: a command not found is Errc::kCommandNotFound (127), one that cannot run 126.
  pid_t exec(const std::string& id, const json& process, const RuntimeIo& io) override {
    auto st = load(id);
    if (!st) throw Error(Errc::kNotFound, "no container " + id + " in the native runtime");
    pid_t init = (*st)["pid"].get<pid_t>();
    if (start_time_of(init) != (*st)["start_time"].get<unsigned long long>() || !alive(init))
      throw Error(Errc::kRuntime, "container " + id + " is not running");
    fs::path bundle = (*st)["bundle"].get<std::string>();
    // The container's spec with the process replaced: its root, namespaces and linux.seccomp
    // go with it, so the process gets the container's seccomp filter.
    json config = read_bundle_config(bundle);
    config["process"] = process;
    NativeSpec spec;
    try {
      spec = parse_spec(config, bundle);
    } catch (Error& e) {
      throw std::move(e.with_context("the process to exec in container " + id));
    }
    if (!spec.seccomp.is_null())
      spec.seccomp_filter = std::make_shared<SeccompFilter>(spec.seccomp, state_root_ / "seccomp-cache");
    if (spec.terminal && io.console_socket.empty())
      throw Error(Errc::kInvalidInput, "the process to exec in container " + id +
                                           " asks for a terminal (process.terminal), but no console socket was given");

    std::vector<std::pair<UniqueFd, int>> joins;  // namespace fd, kExecNamespaces index
    for (int i = 0; i < static_cast<int>(std::size(kExecNamespaces)); ++i) {
      std::string theirs = "/proc/" + std::to_string(init) + "/ns/" + kExecNamespaces[i].name;
      std::string ours = std::string("/proc/self/ns/") + kExecNamespaces[i].name;
      struct stat a {}, b {};
      if (::stat(theirs.c_str(), &a) != 0) throw_errno("cannot find the namespaces of container " + id + " (" + theirs + ")");
      if (::stat(ours.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;  // shared with us
      int fd = ::open(theirs.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw_errno("cannot open " + theirs + ", a namespace of container " + id);
      joins.emplace_back(UniqueFd(fd), i);
    }
    // The fds hold the namespaces now; they are the init's if its pid was not reused meanwhile.
    if (start_time_of(init) != (*st)["start_time"].get<unsigned long long>())
      throw Error(Errc::kRuntime, "container " + id + " is not running");
    std::string cgroups_path = st->value("cgroups_path", "");
    CgroupSupport cgroups;
    if (!cgroups_path.empty()) cgroups = detect_cgroups(ctx_.rootless.mode == UsernsMode::kRealRoot);

    UniqueFd console(spec.terminal ? connect_console(io.console_socket) : -1);
    int go[2], report[2], sync[2];
    if (pipe2(go, O_CLOEXEC) != 0) throw_errno("pipe");
    UniqueFd go_read(go[0]), go_write(go[1]);
    if (pipe2(report, O_CLOEXEC) != 0) throw_errno("pipe");
    UniqueFd report_read(report[0]), report_write(report[1]);
    if (pipe2(sync, O_CLOEXEC) != 0) throw_errno("pipe");
    UniqueFd sync_read(sync[0]), sync_write(sync[1]);

    pid_t joiner = ::fork();
    if (joiner < 0) throw_errno("cannot fork to exec in container " + id);
    if (joiner == 0) {
      // Nothing allocates from here to the fork below.
      char c = 0;
      if (::read(go_read.get(), &c, 1) != 1) _exit(125);  // the caller gave up
      if (io.stdin_fd != 0) dup2(io.stdin_fd, 0);
      if (io.stdout_fd != 1) dup2(io.stdout_fd, 1);
      if (io.stderr_fd != 2) dup2(io.stderr_fd, 2);
      syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
      JoinReport r;
      for (const auto& [fd, i] : joins)
        if (setns(fd.get(), kExecNamespaces[i].flag) != 0) {
          r.err = errno;
          r.failed_namespace = i;
          ssize_t w = ::write(report_write.get(), &r, sizeof r);
          (void)w;
          _exit(125);
        }
      pid_t child = static_cast<pid_t>(syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, 0));
      if (child == 0) exec_main(spec, sync_write.get(), console.get());
      r.pid = child;
      r.err = child < 0 ? errno : 0;
      ssize_t w = ::write(report_write.get(), &r, sizeof r);
      (void)w;
      _exit(0);
    }
    go_read.reset();
    report_write.reset();
    sync_write.reset();
    console.reset();
    auto reap = [](pid_t pid) {
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    };
    if (!cgroups_path.empty()) {
      try {
        join_container_cgroup(cgroups, cgroups_path, joiner);
      } catch (...) {
        ::kill(joiner, SIGKILL);
        reap(joiner);
        throw;
      }
    }
    if (::write(go_write.get(), "G", 1) != 1) {
      int e = errno;
      ::kill(joiner, SIGKILL);
      reap(joiner);
      throw system_error("cannot start the process to exec in container " + id, e);
    }
    go_write.reset();
    JoinReport r;
    ssize_t n;
    while ((n = ::read(report_read.get(), &r, sizeof r)) < 0 && errno == EINTR) {
    }
    reap(joiner);
    if (n != static_cast<ssize_t>(sizeof r))
      throw Error(Errc::kRuntime, "the process joining the namespaces of container " + id + " died");
    if (r.failed_namespace >= 0)
      throw system_error(std::string("cannot join the ") + kExecNamespaces[r.failed_namespace].name +
                             " namespace of container " + id,
                         r.err);
    if (r.pid <= 0) throw system_error("cannot fork in the PID namespace of container " + id, r.err);

    std::string reply;
    char buf[4096];
    for (;;) {
      ssize_t m = ::read(sync_read.get(), buf, sizeof buf);
      if (m < 0 && errno == EINTR) continue;
      if (m <= 0) break;
      reply.append(buf, static_cast<size_t>(m));
    }
    if (reply.empty()) return r.pid;  // the pipe closed with the exec
    reap(r.pid);
    Errc code = reply[0] == 'N' ? Errc::kCommandNotFound : reply[0] == 'X' ? Errc::kNotExecutable : Errc::kRuntime;
    throw Error(code, reply.size() > 1 ? reply.substr(1) : "the process to exec in container " + id + " died while being set up");
  }

  void remove(const std::string& id) override {
    auto s = state(id);
    if (s && s->status != "stopped") ::kill(s->pid, SIGKILL);
    if (auto st = load(id); st && !st->value("cgroups_path", "").empty()) {
      CgroupSupport cgroups = detect_cgroups(ctx_.rootless.mode == UsernsMode::kRealRoot);
      std::string path = (*st)["cgroups_path"].get<std::string>();
      // A killed process leaves the cgroup a moment after it is reaped.
      for (int i = 0; i < 100; ++i) {
        try {
          remove_container_cgroup(cgroups, path);
          break;
        } catch (const Error& e) {
          if (i == 99) ctx_.logger->warn(std::string("cannot remove the cgroup of container ") + id + ": " + e.what());
          ::usleep(10000);
        }
      }
    }
    remove_tree(state_root_ / id);
  }

 private:
  std::optional<json> load(const std::string& id) {
    try {
      return json::parse(read_file(state_root_ / id / "state.json"));
    } catch (const Error&) {
      return std::nullopt;
    } catch (const json::exception&) {
      return std::nullopt;
    }
  }

  PluginContext ctx_;
  fs::path state_root_;
};

std::unique_ptr<RuntimeBackend> make_native_runtime(const PluginContext& ctx) {
  return std::make_unique<NativeRuntime>(ctx);
}

}  // namespace
}  // namespace hutch::runtime::native

HUTCH_PLUGIN(hutch::RuntimeBackend, "native", "0.1.0", hutch::runtime::native::make_native_runtime);
