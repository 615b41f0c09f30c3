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
#include <sstream>

#include "hutch/abi.hpp"
#include "hutch/cgroups.hpp"
#include "hutch/paths.hpp"
#include "hutch/runtime.hpp"
#include "hutch/store.hpp"
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
    int console_fd = -1;
    if (spec.terminal) {
      struct sockaddr_un addr {};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, io.console_socket.c_str(), sizeof addr.sun_path - 1);
      console_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (console_fd < 0 || ::connect(console_fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0)
        throw_errno("cannot connect to the console socket " + io.console_socket.string());
    }
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

  pid_t exec(const std::string& id, const json&, const RuntimeIo&) override {
    throw Error(Errc::kRuntime, "exec into " + id + " is not implemented yet");
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
