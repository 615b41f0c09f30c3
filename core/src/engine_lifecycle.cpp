// A container's life after it is made: start (its monitor), stop, kill, wait, attach, exec,
// logs, healthchecks, rename, top, rm. No daemon: each is a short command that reads the
// container's state file and signals or connects to its monitor.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>

#include "attach.hpp"
#include "engine_internal.hpp"
#include "foreground.hpp"
#include "hutch/container_log.hpp"
#include "hutch/engine.hpp"
#include "hutch/oci_spec.hpp"

namespace hutch {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool alive(pid_t pid, unsigned long long start) { return pid > 0 && start != 0 && process_start_time(pid) == start; }

// Waits for a process that is not our child to end; true when it did within `timeout_ms`.
bool wait_gone(pid_t pid, unsigned long long start, int timeout_ms) {
  if (!alive(pid, start)) return true;
  int pfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pfd >= 0 && !alive(pid, start)) {  // the pid was reused between the two looks
    ::close(pfd);
    return true;
  }
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long elapsed = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
    if (elapsed >= timeout_ms) break;
    int slice = static_cast<int>(std::min<long>(timeout_ms - elapsed, 100));
    if (pfd >= 0) {
      struct pollfd pf {pfd, POLLIN, 0};
      if (::poll(&pf, 1, slice) > 0) break;
    } else {
      ::usleep(static_cast<useconds_t>(slice) * 1000);
    }
    if (!alive(pid, start)) break;
  }
  if (pfd >= 0) ::close(pfd);
  return !alive(pid, start);
}

bool is_active(const std::string& status) {
  return status == "running" || status == "restarting" || status == "paused" || status == "stopping";
}

std::int64_t parse_rfc3339_ns(const std::string& t) {
  struct tm tm {};
  if (t.size() < 19 || !strptime(t.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  std::int64_t ns = static_cast<std::int64_t>(timegm(&tm)) * 1'000'000'000;
  if (t.size() > 20 && t[19] == '.') {
    std::string frac;
    for (std::size_t i = 20; i < t.size() && std::isdigit(static_cast<unsigned char>(t[i])); ++i) frac += t[i];
    frac.resize(9, '0');
    ns += std::stoll(frac.substr(0, 9));
  }
  return ns;
}

std::int64_t wall_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

fs::path exit_file(const EnginePaths& p, const std::string& id) { return p.run_root / "exits" / id; }

// The pids of every process in the PID namespace of `pid`.
std::vector<pid_t> namespace_pids(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  std::string ns = fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/pid", ec).string();
  if (ec) return out;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code e2;
    if (fs::read_symlink(it->path() / "ns/pid", e2).string() == ns && !e2) out.push_back(std::stoi(name));
  }
  return out;
}

std::string slurp(const std::string& path) {
  try {
    return read_file(path);
  } catch (const Error&) {
    return "";
  }
}

// utime + stime of a process, in clock ticks.
std::uint64_t cpu_ticks(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto rp = stat.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream in(stat.substr(rp + 2));
  std::string f;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && (in >> f); ++i) {
    if (i == 14) utime = std::stoull(f);
    if (i == 15) stime = std::stoull(f);
  }
  return utime + stime;
}

std::uint64_t field_kb(const std::string& text, const std::string& key) {
  auto at = text.find(key);
  if (at == std::string::npos) return 0;
  return std::stoull(text.substr(at + key.size())) * 1024;
}


}  // namespace

ContainerState Engine::live_state(const ContainerRecord& c) const {
  ContainerState s = c.state;
  bool monitored = alive(s.monitor_pid, s.monitor_start);
  if (s.status == "created" && monitored) return s;  // starting
  if (!is_active(s.status) || monitored) return s;
  if (s.status != "restarting" && alive(s.pid, s.pid_start)) {
    s.error = "its monitor (pid " + std::to_string(s.monitor_pid) +
              ") is gone: its output is not logged and its exit will not be recorded; \"hutch rm -f " + c.name +
              "\" removes it";
    return s;
  }
  s.status = "exited";
  s.exit_code = 137;
  s.error = "its monitor (pid " + std::to_string(s.monitor_pid) + ") ended before it could record how the container ended";
  return s;
}

std::vector<ContainerRecord> Engine::list_containers() {
  auto lock = store().lock(FileLock::Mode::kShared);
  std::vector<ContainerRecord> all;
  for (auto& c : store().containers()) {
    if (c.state.status == "creating") continue;  // half-made: done soon, or removed by recovery
    c.state = live_state(c);
    all.push_back(std::move(c));
  }
  return all;
}

void Engine::forget_container(const ContainerRecord& rec) {
  {
    auto lock = store().lock(FileLock::Mode::kExclusive);
    cleanup_container(rec);
    auto containers = store().container_records();
    containers.erase(std::remove_if(containers.begin(), containers.end(), [&](const ContainerRecord& c) { return c.id == rec.id; }),
                     containers.end());
    store().save_containers(containers, Durability::kVolatile);
  }
  // Anonymous volumes go with a --rm container, as in docker.
  for (const auto& v : rec.anonymous_volumes) try {
      remove_volume(v, false);
    } catch (const Error& e) {
      logger_.warn("cannot remove the anonymous volume " + v + ": " + e.what());
    }
}

attach::RelayOptions Engine::relay_options(const ContainerRecord& rec, bool stdin_open,
                                           const std::vector<unsigned char>& keys, bool sig_proxy) {
  attach::RelayOptions ro;
  ro.stdin_open = stdin_open;
  ro.tty = rec.tty;
  ro.detach_keys = keys;
  ro.sig_proxy = sig_proxy && !rec.tty;  // with a terminal, ^C is a byte for the container
  RuntimeBackend* rt = &runtime(rec.runtime);
  std::string id = rec.id;
  ro.forward_signal = [rt, id](int sig) {
    try {
      rt->kill(id, sig);
    } catch (const Error&) {
    }
  };
  return ro;
}

int Engine::run(const RunOptions& o, std::string* id) {
  ContainerRecord rec = create_container(o);
  if (id) *id = rec.id;
  StartOptions so;
  so.attach = !o.detach;
  so.interactive = o.interactive;
  if (!o.detach_keys.empty() || o.detach_keys.size()) so.detach_keys = o.detach_keys;
  so.sig_proxy = o.sig_proxy.value_or(true);
  return start_container(rec.id, so);
}

int Engine::start_container(const std::string& name_or_id, const StartOptions& o) {
  auto keys = attach::parse_detach_keys(o.detach_keys);
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kExclusive);
    recover_once();
    rec = find_container_or_throw(name_or_id);
  }
  ContainerState s = live_state(rec);
  if (is_active(s.status) || alive(s.monitor_pid, s.monitor_start)) {
    if (!o.attach) return 0;  // docker: starting a running container is no error
    AttachOptions ao;
    ao.stdin_open = o.interactive;
    ao.detach_keys = o.detach_keys;
    ao.sig_proxy = o.sig_proxy;
    return attach_container(rec.id, ao);
  }
  if (!fs::exists(store().container_dir(rec.id) / "config.json"))
    throw Error(Errc::kNotFound, "the bundle of container " + rec.name + " is missing; remove it with \"hutch rm " + rec.name + "\"");
  ::unlink(exit_file(paths_, rec.id).c_str());
  int status[2];
  if (pipe2(status, O_CLOEXEC) != 0) throw_errno("pipe");
  int sv[2] = {-1, -1};
  if (o.attach && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    int e = errno;
    ::close(status[0]);
    ::close(status[1]);
    throw system_error("socketpair", e);
  }
  try {
    launch_monitor(rec, status[1], sv[1], {status[0], sv[0]});
  } catch (...) {
    for (int fd : {status[0], status[1], sv[0], sv[1]})
      if (fd >= 0) ::close(fd);
    throw;
  }
  ::close(status[1]);
  if (sv[1] >= 0) ::close(sv[1]);
  std::string msg;
  char buf[4096];
  for (ssize_t n; (n = ::read(status[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    msg.append(buf, static_cast<std::size_t>(n));
  }
  ::close(status[0]);
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) ::close(fd);
    }
  } conn{sv[0]};
  if (msg.empty() || (msg[0] != 'S' && msg[0] != 'E'))
    throw Error(Errc::kRuntime, "the monitor of container " + rec.name + " ended before the container started; see " +
                                    (store().container_dir(rec.id) / "monitor.log").string());
  if (msg[0] == 'E') {
    auto sp = msg.find(' ');
    int code = std::atoi(msg.substr(1, sp).c_str());
    throw Error(static_cast<Errc>(code), sp == std::string::npos ? "" : msg.substr(sp + 1));
  }
  if (!o.attach) return 0;
  // passthrough: the container reads our stdin itself.
  auto code = attach::relay(conn.fd, relay_options(rec, o.interactive && rec.log_driver != "passthrough", keys, o.sig_proxy));
  if (!code) return 0;  // detached
  if (*code >= 0) return *code;
  // The monitor went away without telling: what it recorded, if anything.
  if (auto c = store().find_container(rec.id)) return live_state(*c).exit_code;
  try {
    return std::stoi(read_file(exit_file(paths_, rec.id)));
  } catch (const std::exception&) {
    return 125;
  }
}

void Engine::kill_and_wait(const ContainerRecord& rec) {
  ContainerState s = live_state(rec);
  bool monitored = alive(s.monitor_pid, s.monitor_start);
  if (!is_active(s.status) && !monitored) return;
  store().update_container_state(rec.id, [](ContainerState& st) { st.stopped_by_user = true; }, Durability::kVolatile);
  if (s.status == "restarting" && monitored) {
    ::kill(s.monitor_pid, SIGTERM);
  } else {
    if (s.status == "paused") pause_container(rec.id, false);
    try {
      runtime(rec.runtime).kill(rec.id, SIGKILL);
    } catch (const Error&) {
      if (alive(s.pid, s.pid_start)) ::kill(s.pid, SIGKILL);
    }
  }
  bool gone = monitored ? wait_gone(s.monitor_pid, s.monitor_start, 15000) : wait_gone(s.pid, s.pid_start, 10000);
  if (!gone) throw Error(Errc::kRuntime, "container " + rec.name + " did not end after SIGKILL");
}

void Engine::stop_container(const std::string& name_or_id, std::optional<int> timeout) {
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    rec = find_container_or_throw(name_or_id);
  }
  ContainerState s = live_state(rec);
  bool monitored = alive(s.monitor_pid, s.monitor_start);
  if (!is_active(s.status)) return;  // docker: stopping a stopped container is no error
  store().update_container_state(rec.id, [](ContainerState& st) { st.stopped_by_user = true; }, Durability::kVolatile);
  if (s.status == "restarting" && monitored) {
    ::kill(s.monitor_pid, SIGTERM);
    wait_gone(s.monitor_pid, s.monitor_start, 10000);
    return;
  }
  if (s.status == "paused") pause_container(rec.id, false);
  RuntimeBackend& rt = runtime(rec.runtime);
  int sig = detail::parse_signal(rec.stop_signal.empty() ? "SIGTERM" : rec.stop_signal);
  try {
    rt.kill(rec.id, sig);
  } catch (const Error& e) {
    logger_.debug("stop signal to " + rec.name + ": " + e.what());
  }
  int t = std::max(0, timeout.value_or(rec.stop_timeout));
  auto wait = [&](int ms) {
    return monitored ? wait_gone(s.monitor_pid, s.monitor_start, ms) : wait_gone(s.pid, s.pid_start, ms);
  };
  if (!wait(t * 1000)) {
    logger_.info("container " + rec.name + " did not stop within " + std::to_string(t) + " s; sending SIGKILL");
    try {
      rt.kill(rec.id, SIGKILL);
    } catch (const Error&) {
      ::kill(s.pid, SIGKILL);
    }
    if (!wait(10000)) throw Error(Errc::kRuntime, "container " + rec.name + " did not end after SIGKILL");
  }
  if (!monitored) {
    // Nobody else will record it.
    auto lock = store().lock(FileLock::Mode::kExclusive);
    try {
      rt.remove(rec.id);
    } catch (const Error&) {
    }
    try {
      storage().unmount(rec.id);
    } catch (const Error&) {
    }
    store().update_container_state(rec.id, [&](ContainerState& st) {
      st.status = "exited";
      st.exit_code = 128 + SIGKILL;
      st.finished_at = now_rfc3339();
      st.monitor_pid = 0;
    });
  }
}

void Engine::kill_container(const std::string& name_or_id, int sig) {
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    rec = find_container_or_throw(name_or_id);
  }
  ContainerState s = live_state(rec);
  if (!is_active(s.status) || s.status == "restarting")
    throw Error(Errc::kInvalidInput, "container " + rec.name + " is not running");
  int stop = detail::parse_signal(rec.stop_signal.empty() ? "SIGTERM" : rec.stop_signal);
  // A container the user ended is not restarted by its policy (docker's rule).
  if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == stop)
    store().update_container_state(rec.id, [](ContainerState& st) { st.stopped_by_user = true; }, Durability::kVolatile);
  try {
    runtime(rec.runtime).kill(rec.id, sig);
  } catch (Error& e) {
    throw std::move(e.with_context("signalling container " + rec.name));
  }
  // SIGKILL ends it for sure: return once that is recorded, so that `rm` may follow.
  if (sig == SIGKILL && alive(s.monitor_pid, s.monitor_start)) {
    for (int i = 0; i < 100; ++i) {
      auto c = store().find_container(rec.id);
      if (!c || live_state(*c).status != "running") break;
      ::usleep(20000);
    }
  }
}

void Engine::restart_container(const std::string& name_or_id, std::optional<int> timeout) {
  stop_container(name_or_id, timeout);
  // The monitor may still be tearing the container down after it recorded the exit.
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    rec = find_container_or_throw(name_or_id);
  }
  wait_gone(rec.state.monitor_pid, rec.state.monitor_start, 10000);
  start_container(rec.id, StartOptions{});
}

int Engine::wait_container(const std::string& name_or_id) {
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    rec = find_container_or_throw(name_or_id);
  }
  std::string first_finish = rec.state.finished_at;
  for (;;) {
    std::optional<ContainerRecord> c;
    {
      auto lock = store().lock(FileLock::Mode::kShared);
      c = store().find_container(rec.id);
    }
    if (!c) {  // removed (--rm): its monitor left the exit code behind
      try {
        return std::stoi(read_file(exit_file(paths_, rec.id)));
      } catch (const std::exception&) {
        throw Error(Errc::kNotFound, "container " + rec.name + " was removed before its exit code could be read");
      }
    }
    ContainerState s = live_state(*c);
    bool monitored = alive(s.monitor_pid, s.monitor_start);
    if (s.status == "exited" && !monitored) return s.exit_code;
    if (s.status != "running" && s.finished_at != first_finish) return s.exit_code;  // one run ended, restarting
    if (monitored) wait_gone(s.monitor_pid, s.monitor_start, 200);
    else if (is_active(s.status)) wait_gone(s.pid, s.pid_start, 200);
    else ::usleep(200000);  // created: docker waits until it has run
  }
}

int Engine::attach_container(const std::string& name_or_id, const AttachOptions& o) {
  auto keys = attach::parse_detach_keys(o.detach_keys);
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    rec = find_container_or_throw(name_or_id);
  }
  ContainerState s = live_state(rec);
  if (s.status != "running" && s.status != "paused")
    throw Error(Errc::kInvalidInput, "you cannot attach to container " + rec.name + ": it is " + s.status +
                                         "; start it first (\"hutch start -a " + rec.name + "\")");
  if (!alive(s.monitor_pid, s.monitor_start))
    throw Error(Errc::kRuntime, "container " + rec.name + " has no monitor any more, so nothing holds its output: " + s.error);
  std::string path = attach::socket_path(paths_.run_root.string(), rec.id);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0)
    throw system_error("cannot connect to the monitor of container " + rec.name + " at " + path, errno);
  auto code = attach::relay(fd, relay_options(rec, o.stdin_open && rec.interactive, keys, o.sig_proxy));
  if (!code) return 0;
  if (*code >= 0) return *code;
  if (auto c = store().find_container(rec.id)) return live_state(*c).exit_code;
  return 0;
}

json Engine::exec_process(const ContainerRecord& rec, const ExecOptions& o) {
  json spec = read_bundle_config(store().container_dir(rec.id));
  json p = spec.value("process", json::object());
  p["args"] = o.command;
  p["terminal"] = o.tty;
  p.erase("consoleSize");
  std::vector<std::string> env = p.value("env", std::vector<std::string>{});
  std::vector<std::string> extra;
  for (const auto& f : o.env_files) {
    auto v = read_env_file(f);
    extra.insert(extra.end(), v.begin(), v.end());
  }
  extra.insert(extra.end(), o.env.begin(), o.env.end());
  for (std::string kv : extra) {
    if (kv.find('=') == std::string::npos) {  // -e NAME: from our environment, as docker
      const char* v = getenv(kv.c_str());
      if (!v) continue;
      kv += std::string("=") + v;
    }
    std::string key = kv.substr(0, kv.find('='));
    env.erase(std::remove_if(env.begin(), env.end(), [&](const std::string& e) { return e.compare(0, key.size() + 1, key + "=") == 0; }),
              env.end());
    env.push_back(kv);
  }
  if (o.tty && std::none_of(env.begin(), env.end(), [](const std::string& e) { return e.rfind("TERM=", 0) == 0; }))
    env.push_back("TERM=xterm");
  p["env"] = env;
  if (!o.workdir.empty()) {
    if (o.workdir[0] != '/') throw Error(Errc::kUsage, "-w \"" + o.workdir + "\": the working directory must be an absolute path");
    p["cwd"] = o.workdir;
  }
  json caps = p.value("capabilities", json::object());
  if (o.privileged) {
    auto all = container_capabilities(true, {}, {});
    caps = {{"bounding", all}, {"effective", all}, {"permitted", all}, {"inheritable", json::array()}, {"ambient", json::array()}};
  }
  if (!o.user.empty()) {
    auto rootfs = storage().mounted(rec.id);
    if (!rootfs) throw Error(Errc::kRuntime, "the filesystem of container " + rec.name + " is not mounted");
    ProcessUser u = resolve_user(*rootfs, o.user);
    p["user"] = {{"uid", u.uid}, {"gid", u.gid}};
    if (!u.additional_gids.empty()) p["user"]["additionalGids"] = u.additional_gids;
    // Root has the container's capabilities; another user none effective, as docker does.
    json bounding = caps.value("bounding", json::array());
    if (u.uid == 0) caps["effective"] = caps["permitted"] = bounding;
    else caps["effective"] = caps["permitted"] = caps["ambient"] = caps["inheritable"] = json::array();
    for (auto& e : env)
      if (e.rfind("HOME=", 0) == 0) e = "HOME=" + u.home;
    p["env"] = env;
  }
  if (!caps.empty()) p["capabilities"] = caps;
  return p;
}

int Engine::exec_container(const std::string& name_or_id, const ExecOptions& o) {
  if (o.command.empty()) throw Error(Errc::kUsage, "\"hutch exec\" needs a command to run in the container");
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    rec = find_container_or_throw(name_or_id);
  }
  ContainerState s = live_state(rec);
  if (s.status != "running") throw Error(Errc::kInvalidInput, "container " + rec.name + " is not running (it is " + s.status + ")");
  json process = exec_process(rec, o);
  RuntimeBackend& rt = runtime(rec.runtime);
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  RuntimeIo io;
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) ::close(fd);
    }
  } dn{devnull};
  std::unique_ptr<ConsoleSocket> console;
  if (o.tty && !o.detach) {
    console = std::make_unique<ConsoleSocket>(paths_.run_root / ("exec-" + random_hex(6) + ".sock"));
    io.console_socket = console->path();
  } else if (o.tty) {
    process["terminal"] = false;
  }
  if (o.detach) io.stdin_fd = io.stdout_fd = io.stderr_fd = devnull;
  else if (!o.interactive) io.stdin_fd = devnull;
  SignalForwarding signals;
  pid_t pid;
  try {
    pid = rt.exec(rec.id, process, io);
  } catch (Error& e) {
    throw std::move(e.with_context("exec in container " + rec.name));
  }
  if (o.detach) return 0;
  std::unique_ptr<Terminal> pty;
  if (console) {
    try {
      pty = std::make_unique<Terminal>(console->receive_master(10000));
    } catch (...) {
      ::kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      throw;
    }
    console.reset();
    if (o.interactive) pty->make_caller_raw();
  }
  return wait_foreground(pid, signals.set(), pty.get(), o.interactive);
}

void Engine::rename_container(const std::string& name_or_id, const std::string& new_name) {
  static const auto valid = [](const std::string& n) {
    if (n.empty() || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
    return std::all_of(n.begin(), n.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-'; });
  };
  if (!valid(new_name))
    throw Error(Errc::kUsage, "\"" + new_name + "\" is not a valid container name: use [a-zA-Z0-9][a-zA-Z0-9_.-]*");
  auto lock = store().lock(FileLock::Mode::kExclusive);
  ContainerRecord rec = find_container_or_throw(name_or_id);
  auto all = store().container_records();
  for (const auto& c : all)
    if (c.name == new_name && c.id != rec.id)
      throw Error(Errc::kAlreadyExists, "the container name \"" + new_name + "\" is already in use by " + c.id.substr(0, 12));
  for (auto& c : all)
    if (c.id == rec.id) c.name = new_name;
  store().save_containers(all);
}

HealthResult Engine::health_probe(const ContainerRecord& rec, RuntimeBackend& rt) {
  const HealthConfig& h = *rec.healthcheck;
  ExecOptions eo;
  if (h.test[0] == "CMD-SHELL") eo.command = {"/bin/sh", "-c", h.test.size() > 1 ? h.test[1] : ""};
  else eo.command.assign(h.test.begin() + 1, h.test.end());
  HealthResult r;
  r.start = now_rfc3339();
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  RuntimeIo io;
  io.stdin_fd = devnull;
  io.stdout_fd = io.stderr_fd = p[1];
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  pid_t pid = -1;
  try {
    pid = rt.exec(rec.id, exec_process(rec, eo), io);
  } catch (const Error& e) {
    r.exit_code = -1;
    r.output = e.what();
  }
  ::close(p[1]);
  ::close(devnull);
  if (pid > 0) {
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    std::int64_t deadline = wall_ns() + h.timeout;
    bool timed_out = false;
    int status = 0;
    for (;;) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      char buf[4096];
      for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
        if (r.output.size() < 4096) r.output.append(buf, static_cast<std::size_t>(n));
      if (w == pid) break;
      if (wall_ns() >= deadline && !timed_out) {
        ::kill(pid, SIGKILL);
        timed_out = true;
      }
      struct pollfd pf {p[0], POLLIN, 0};
      ::poll(&pf, 1, 20);
    }
    r.exit_code = timed_out ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (timed_out) r.output = "Health check exceeded timeout (" + std::to_string(h.timeout / 1'000'000'000) + "s)";
  }
  ::close(p[0]);
  if (r.output.size() > 4096) r.output.resize(4096);
  r.end = now_rfc3339();
  return r;
}

HealthState Engine::record_health(const ContainerRecord& rec, const HealthResult& r) {
  const HealthConfig& h = *rec.healthcheck;
  ContainerState s = store().update_container_state(
      rec.id,
      [&](ContainerState& st) {
        HealthState hs = st.health.value_or(HealthState{"starting", 0, {}});
        hs.log.push_back(r);
        if (hs.log.size() > 5) hs.log.erase(hs.log.begin());
        bool starting = parse_rfc3339_ns(st.started_at) + h.start_period > parse_rfc3339_ns(r.start);
        if (r.exit_code == 0) {
          hs.status = "healthy";
          hs.failing_streak = 0;
        } else if (!starting || hs.status != "starting") {
          // In the start period a failure does not count, unless it was healthy once.
          if (++hs.failing_streak >= h.retries) hs.status = "unhealthy";
        }
        st.health = hs;
      },
      Durability::kVolatile);
  return *s.health;
}

bool Engine::run_healthcheck(const std::string& name_or_id) {
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    rec = find_container_or_throw(name_or_id);
  }
  if (!rec.healthcheck) throw Error(Errc::kInvalidInput, "container " + rec.name + " has no healthcheck (see --health-cmd)");
  if (live_state(rec).status != "running") throw Error(Errc::kInvalidInput, "container " + rec.name + " is not running");
  HealthResult r = health_probe(rec, runtime(rec.runtime));
  HealthState hs = record_health(rec, r);
  return r.exit_code == 0 && hs.status == "healthy";
}

void Engine::container_logs(const std::string& name_or_id, const LogsOptions& o) {
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    rec = find_container_or_throw(name_or_id);
  }
  if (rec.log_driver == "none")
    throw Error(Errc::kInvalidInput, "container " + rec.name + " has no log: it was made with --log-driver none");
  LogConfig cfg = parse_log_config(rec.log_driver, rec.log_opts, store().container_dir(rec.id) / "ctr.log");
  LogReadOptions ro;
  ro.tail = o.tail;
  ro.follow = o.follow;
  std::int64_t now = wall_ns();
  if (!o.since.empty()) ro.since_ns = parse_log_time(o.since, "--since", now);
  if (!o.until.empty()) ro.until_ns = parse_log_time(o.until, "--until", now);
  pid_t monitor = rec.state.monitor_pid;
  unsigned long long monitor_start = rec.state.monitor_start;
  read_log(
      cfg, ro,
      [&](const LogEntry& e) {
        std::string text = format_log_entry(e, o.timestamps);
        int fd = e.stream == "stderr" ? 2 : 1;
        const char* p = text.data();
        std::size_t n = text.size();
        while (n > 0) {
          ssize_t w = ::write(fd, p, n);
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) return false;  // the reader went away (EPIPE)
          p += w;
          n -= static_cast<std::size_t>(w);
        }
        return true;
      },
      [&] { return !alive(monitor, monitor_start); });
}

std::vector<std::vector<std::string>> Engine::container_top(const std::string& name_or_id, const std::vector<std::string>& ps_args) {
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    rec = find_container_or_throw(name_or_id);
  }
  ContainerState s = live_state(rec);
  if (s.status != "running" && s.status != "paused") throw Error(Errc::kInvalidInput, "container " + rec.name + " is not running");
  // Its processes: those in its PID namespace.
  std::set<std::string> pids;
  for (pid_t p : namespace_pids(s.pid)) pids.insert(std::to_string(p));
  if (pids.empty()) throw Error(Errc::kRuntime, "cannot read the PID namespace of container " + rec.name);
  std::vector<std::string> args = {"ps"};
  if (ps_args.empty()) args.push_back("-ef");
  else args.insert(args.end(), ps_args.begin(), ps_args.end());
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
  pid_t child = fork();
  if (child == 0) {
    dup2(p[1], 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp("ps", argv.data());
    _exit(127);
  }
  ::close(p[1]);
  std::string out;
  char buf[8192];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(p[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(Errc::kRuntime, "\"ps" + [&] {
      std::string a;
      for (std::size_t i = 1; i < args.size(); ++i) a += " " + args[i];
      return a;
    }() + "\" failed" + (WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ": ps is not installed (apt-get install procps)" : ""));
  std::istringstream in(out);
  std::string header;
  std::getline(in, header);
  std::vector<std::string> cols;
  {
    std::istringstream hs(header);
    for (std::string c; hs >> c;) cols.push_back(c);
  }
  auto pid_col = std::find(cols.begin(), cols.end(), "PID");
  if (pid_col == cols.end()) throw Error(Errc::kUsage, "the ps options must include the PID column (e.g. -o pid,args)");
  std::size_t pidx = static_cast<std::size_t>(pid_col - cols.begin());
  std::vector<std::vector<std::string>> rows = {cols};
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream ls(line);
    for (std::size_t i = 0; i + 1 < cols.size(); ++i) {
      std::string c;
      if (!(ls >> c)) break;
      cells.push_back(c);
    }
    std::string rest;
    std::getline(ls, rest);
    rest.erase(0, rest.find_first_not_of(' '));
    cells.push_back(rest);
    if (cells.size() == cols.size() && pids.count(cells[pidx])) rows.push_back(cells);
  }
  return rows;
}

void Engine::pause_container(const std::string& name_or_id, bool pause) {
  ContainerRecord rec;
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    rec = find_container_or_throw(name_or_id);
  }
  ContainerState s = live_state(rec);
  if (pause && s.status != "running") throw Error(Errc::kInvalidInput, "container " + rec.name + " is not running");
  if (!pause && s.status != "paused") throw Error(Errc::kInvalidInput, "container " + rec.name + " is not paused");
  // The freezer of the container's cgroup when it has one (v1 freezer or cgroup.freeze);
  // otherwise (rootless on v1: no cgroup of its own) SIGSTOP/SIGCONT to every process of its PID
  // namespace, which stops them as surely, though a process may see it (its parent gets SIGCHLD).
  json spec = read_bundle_config(store().container_dir(rec.id));
  std::string cg = spec.contains("linux") ? spec["linux"].value("cgroupsPath", "") : "";
  bool frozen = false;
  if (!cg.empty()) {
    for (const fs::path& f : {fs::path("/sys/fs/cgroup/freezer") / cg.substr(1) / "freezer.state",
                              fs::path("/sys/fs/cgroup") / cg.substr(1) / "cgroup.freeze"}) {
      if (!fs::exists(f)) continue;
      bool v1 = f.filename() == "freezer.state";
      write_file_in_place(f, v1 ? (pause ? "FROZEN" : "THAWED") : (pause ? "1" : "0"));
      frozen = true;
      break;
    }
  }
  if (!frozen)
    for (pid_t p : namespace_pids(s.pid)) ::kill(p, pause ? SIGSTOP : SIGCONT);
  store().update_container_state(rec.id, [&](ContainerState& st) { st.status = pause ? "paused" : "running"; });
}

std::vector<ContainerStats> Engine::container_stats(const std::vector<std::string>& names, int interval_ms) {
  std::vector<ContainerRecord> targets;
  for (const auto& c : list_containers()) {
    bool running = c.state.status == "running" || c.state.status == "paused";
    bool named = std::any_of(names.begin(), names.end(), [&](const std::string& n) {
      return n == c.name || n == c.id || (n.size() >= 3 && c.id.rfind(n, 0) == 0);
    });
    if (names.empty() ? running : named) {
      if (!running) throw Error(Errc::kInvalidInput, "container " + c.name + " is not running");
      targets.push_back(c);
    }
  }
  for (const auto& n : names)
    if (std::none_of(targets.begin(), targets.end(), [&](const ContainerRecord& c) {
          return n == c.name || n == c.id || (n.size() >= 3 && c.id.rfind(n, 0) == 0);
        }))
      throw Error(Errc::kNotFound, "no such container: " + n + " (see \"hutch ps -a\")");
  auto sample_cpu = [&](std::vector<std::uint64_t>& out) {
    out.clear();
    for (const auto& c : targets) {
      std::uint64_t t = 0;
      for (pid_t p : namespace_pids(c.state.pid)) t += cpu_ticks(p);
      out.push_back(t);
    }
  };
  std::vector<std::uint64_t> before, after;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  sample_cpu(before);
  ::usleep(static_cast<useconds_t>(interval_ms) * 1000);
  sample_cpu(after);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double wall = static_cast<double>(t1.tv_sec - t0.tv_sec) + static_cast<double>(t1.tv_nsec - t0.tv_nsec) / 1e9;
  double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::uint64_t host_memory = field_kb(slurp("/proc/meminfo"), "MemTotal:");
  std::vector<ContainerStats> out;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const ContainerRecord& c = targets[i];
    ContainerStats s;
    s.id = c.id;
    s.name = c.name;
    s.cpu_percent = wall > 0 ? static_cast<double>(after[i] - std::min(after[i], before[i])) / hz / wall * 100.0 : 0;
    auto pids = namespace_pids(c.state.pid);
    s.pids = static_cast<int>(pids.size());
    for (pid_t p : pids) {
      std::string base = "/proc/" + std::to_string(p);
      std::string rollup = slurp(base + "/smaps_rollup");
      s.memory += rollup.empty() ? field_kb(slurp(base + "/status"), "VmRSS:") : field_kb(rollup, "Pss:");
      std::string io = slurp(base + "/io");
      if (!io.empty()) {
        auto num = [&](const std::string& key) {
          auto at = io.find(key);
          return at == std::string::npos ? 0ULL : std::stoull(io.substr(at + key.size()));
        };
        s.block_read += num("read_bytes: ");
        s.block_write += num("write_bytes: ");
      }
    }
    // A container on the host's network has no traffic of its own to show (docker shows 0B).
    std::error_code e1, e2;
    bool own_net = fs::read_symlink("/proc/" + std::to_string(c.state.pid) + "/ns/net", e1) != fs::read_symlink("/proc/self/ns/net", e2);
    std::istringstream dev(own_net ? slurp("/proc/" + std::to_string(c.state.pid) + "/net/dev") : "");
    std::string line;
    for (int n = 0; std::getline(dev, line); ++n) {
      auto colon = line.find(':');
      if (n < 2 || colon == std::string::npos) continue;
      std::string ifname = line.substr(0, colon);
      ifname.erase(0, ifname.find_first_not_of(' '));
      if (ifname == "lo") continue;
      std::istringstream f(line.substr(colon + 1));
      std::uint64_t v[9] = {};
      for (auto& x : v) f >> x;
      s.net_rx += v[0];
      s.net_tx += v[8];
    }
    s.memory_limit = host_memory;
    try {
      json spec = read_bundle_config(store().container_dir(c.id));
      if (spec.contains("linux") && spec["linux"].contains("resources") && spec["linux"]["resources"].contains("memory"))
        s.memory_limit = spec["linux"]["resources"]["memory"].value("limit", host_memory);
    } catch (const std::exception&) {
    }
    out.push_back(s);
  }
  return out;
}

void Engine::remove_container(const std::string& name_or_id, bool force, bool volumes) {
  auto errors = remove_containers({name_or_id}, force, volumes);
  if (!errors[0].empty()) throw Error(errors[0][0] == 'N' ? Errc::kNotFound : Errc::kInvalidInput, errors[0].substr(1));
}

std::vector<std::string> Engine::remove_containers(const std::vector<std::string>& names, bool force, bool volumes) {
  std::vector<std::string> errors(names.size());
  std::vector<std::optional<ContainerRecord>> found(names.size());
  {
    auto lock = store().lock(FileLock::Mode::kShared);
    for (std::size_t i = 0; i < names.size(); ++i) {
      try {
        found[i] = find_container_or_throw(names[i]);
      } catch (const Error& e) {
        errors[i] = std::string(e.code() == Errc::kNotFound ? "N" : "I") + e.what();
      }
    }
  }
  // Outside the store lock: a --rm container's monitor takes it to remove its container.
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!found[i]) continue;
    ContainerState s = live_state(*found[i]);
    if ((is_active(s.status) || alive(s.monitor_pid, s.monitor_start)) && !force) {
      errors[i] = "Icontainer " + found[i]->name + " is " + s.status + "; stop it first, or use \"hutch rm -f\"";
      found[i].reset();
      continue;
    }
    try {
      kill_and_wait(*found[i]);
    } catch (const Error& e) {
      errors[i] = std::string("I") + e.what();
      found[i].reset();
    }
  }
  // All of them under one lock, with one write of the records.
  {
    auto lock = store().lock(FileLock::Mode::kExclusive);
    recover_once();
    auto all = store().container_records();
    std::set<std::string> gone;
    for (const auto& f : found) {
      if (!f) continue;
      auto it = std::find_if(all.begin(), all.end(), [&](const ContainerRecord& r) { return r.id == f->id; });
      if (it == all.end()) continue;  // it was --rm: its monitor removed it
      try {
        runtime(it->runtime).remove(it->id);
      } catch (const Error&) {
      }
      cleanup_container(*it);
      gone.insert(it->id);
    }
    if (!gone.empty()) {
      all.erase(std::remove_if(all.begin(), all.end(), [&](const ContainerRecord& r) { return gone.count(r.id) > 0; }), all.end());
      store().save_containers(all);
    }
  }
  if (volumes)
    for (const auto& f : found)
      if (f)
        for (const auto& v : f->anonymous_volumes) try {
            remove_volume(v, false);
          } catch (const Error& e) {
            logger_.warn("cannot remove the anonymous volume " + v + ": " + e.what());
          }
  return errors;
}

}  // namespace hutch
