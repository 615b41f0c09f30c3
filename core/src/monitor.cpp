// The monitor: one small process per running container (conmon's role for podman). It
// outlives the command that started it (two forks, a new session), holds the container's
// stdio or terminal, writes its log, serves attached clients, waits for it, records how it
// ended, runs its healthcheck and restart policy, undoes its mounts and runtime state, honours
// --rm, and exits with the container. It keeps hutch's user namespace alive while it runs (it
// inherited the shared flock on userns.lock): when no container runs, no hutch process runs.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <sstream>

#include "attach.hpp"
#include "engine_internal.hpp"
#include "foreground.hpp"
#include "hutch/cgroups.hpp"
#include "hutch/container_log.hpp"
#include "hutch/engine.hpp"

namespace hutch {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::int64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// The status pipe's message: "S<pid>" when the container runs, "E<errc> <message>" when not.
void report(int& status_fd, const std::string& message) {
  if (status_fd < 0) return;
  std::string m = message;
  while (!m.empty()) {
    ssize_t w = ::write(status_fd, m.data(), m.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    m.erase(0, static_cast<std::size_t>(w));
  }
  close_fd(status_fd);
}

}  // namespace

// Everything the monitor keeps; one object in the monitor process.
class Monitor {
 public:
  Monitor(Engine& engine, ContainerRecord record, int& status_fd, int first_client)
      : e_(engine), rec_(std::move(record)), st_(engine.store()), status_fd_(status_fd) {
    if (first_client >= 0) clients_.push_back({first_client, false, false});
  }

  int run();

 private:
  struct Client {
    int fd;
    bool hello = false;  // sent its kHello
    bool stdin_open = false;
  };

  void setup();
  bool start_container(std::string* error, Errc* code);
  void serve_until_exit();
  void handle_signals();
  void reap();
  void pump_output(int& fd, const char* stream);
  void accept_client();
  void serve_client(std::size_t index);
  void broadcast(char type, std::string_view data);
  void end_run();
  bool should_restart();
  void health_tick();
  void health_done(int status);
  void finish();

  Engine& e_;
  ContainerRecord rec_;
  Store& st_;
  int& status_fd_;
  std::vector<Client> clients_;
  int listen_fd_ = -1;
  int sfd_ = -1;
  std::unique_ptr<LogWriter> log_;
  Durability durability_ = Durability::kSynced;
  CgroupSupport cgroups_;
  std::string cgroups_path_;

  // One run of the container.
  pid_t pid_ = 0;
  int exit_code_ = -1;
  int out_ = -1, err_ = -1, in_ = -1, master_ = -1;
  std::int64_t started_ns_ = 0;
  bool stop_requested_ = false;  // SIGTERM to the monitor: do not restart
  bool health_restart_ = false;  // --health-on-failure restart
  bool log_failed_ = false;
  int restarts_this_monitor_ = 0;

  // The healthcheck.
  pid_t health_pid_ = 0;
  int health_out_ = -1;
  std::string health_output_;
  std::string health_started_;
  std::int64_t health_deadline_ = 0;
  std::int64_t next_health_ = 0;
};

void Monitor::setup() {
  // Signals arrive through a signalfd; the container and its stdio are ours to wait for.
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM}) sigaddset(&set, s);
  sigprocmask(SIG_SETMASK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  sfd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd_ < 0) throw_errno("signalfd");
  // Runtimes that fork (crun, runc) leave the container's init to the nearest subreaper.
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  durability_ = rec_.auto_remove ? Durability::kVolatile : Durability::kSynced;

  // Later clients (`hutch attach`) connect here.
  std::string path = attach::socket_path(e_.paths().run_root.string(), rec_.id);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.size() < sizeof addr.sun_path) {
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ::unlink(path.c_str());
    if (listen_fd_ >= 0 && (bind(listen_fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0 ||
                            listen(listen_fd_, 8) != 0))
      close_fd(listen_fd_);
  }

  fs::path dir = st_.container_dir(rec_.id);
  log_ = std::make_unique<LogWriter>(parse_log_config(rec_.log_driver, rec_.log_opts, dir / "ctr.log"));
  try {
    json spec = read_bundle_config(dir);
    if (spec.contains("linux") && spec["linux"].contains("cgroupsPath")) {
      cgroups_path_ = spec["linux"]["cgroupsPath"].get<std::string>();
      cgroups_ = detect_cgroups(e_.rootless().mode == UsernsMode::kRealRoot, e_.config().cgroup_parent);
    }
  } catch (const std::exception&) {
  }
}

namespace {

// The hosts file names the container at 127.0.1.1 until its network says its address. It is
// bind-mounted into the container, so it is rewritten in place (the same inode), before start.
void name_own_address(const fs::path& hosts, const NetworkAttachment& a) {
  if (a.endpoints.empty() || a.endpoints.front().ipv4.empty()) return;
  std::string text;
  try {
    text = read_file(hosts);
  } catch (const Error&) {
    return;
  }
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("127.0.1.1\t", 0) == 0) {
      std::string names = line.substr(10);
      line.clear();
      for (const auto& ep : a.endpoints)
        if (!ep.ipv4.empty()) {
          std::string extra;
          for (const auto& al : ep.aliases) extra += " " + al;
          line += (line.empty() ? "" : "\n") + ep.ipv4 + "\t" + names + extra;
        }
    }
    out += line + "\n";
  }
  int fd = ::open(hosts.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return;
  (void)!::write(fd, out.data(), out.size());
  ::close(fd);
}

}  // namespace

bool Monitor::start_container(std::string* error, Errc* code) {
  RuntimeBackend& rt = e_.runtime(rec_.runtime);
  fs::path bundle = st_.container_dir(rec_.id);
  RuntimeIo io;
  int child_in = -1, child_out = -1, child_err = -1;
  std::unique_ptr<ConsoleSocket> console;
  NetworkAttachment attachment;
  bool attached = false;
  try {
    e_.storage().mount(rec_.id);
    if (rec_.log_driver == "passthrough") {
      const int* fds = e_.passthrough_fds_;
      if (rec_.interactive) io.stdin_fd = fds[0];
      else io.stdin_fd = child_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      io.stdout_fd = fds[1];
      io.stderr_fd = fds[2];
    } else if (rec_.tty) {
      console = std::make_unique<ConsoleSocket>(e_.paths().run_root / ("console-" + rec_.id.substr(0, 12) + ".sock"));
      io.console_socket = console->path();
    } else {
      int p[2];
      if (pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
      out_ = p[0], child_out = p[1];
      if (pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
      err_ = p[0], child_err = p[1];
      if (rec_.interactive) {
        if (pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
        child_in = p[0], in_ = p[1];
      } else {
        child_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      }
      io.stdin_fd = child_in;
      io.stdout_fd = child_out;
      io.stderr_fd = child_err;
    }
    try {
      pid_ = rt.create(rec_.id, bundle, io);
    } catch (Error& e) {
      throw std::move(e.with_context("creating container " + rec_.name));
    }
    close_fd(child_in);
    close_fd(child_out);
    close_fd(child_err);
    if (console) {
      try {
        master_ = console->receive_master(10000);
      } catch (...) {
        ::kill(pid_, SIGKILL);
        throw;
      }
      console.reset();
      struct winsize ws {};
      ws.ws_row = 24;
      ws.ws_col = 80;
      ioctl(master_, TIOCSWINSZ, &ws);
    }
    try {
      attachment = e_.network(rec_.network).attach(network_request(rec_), pid_);
      attached = true;
    } catch (Error& e) {
      throw std::move(e.with_context("connecting container " + rec_.name + " to its network (" + rec_.network + ")"));
    }
    name_own_address(bundle / "hosts", attachment);
    rt.start(rec_.id);
  } catch (const Error& e) {
    for (int* fd : {&child_in, &child_out, &child_err, &out_, &err_, &in_, &master_}) close_fd(*fd);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = 0;
    try {
      rt.remove(rec_.id);
    } catch (const Error&) {
    }
    if (attached) {
      try {
        e_.network(rec_.network).detach(network_request(rec_));
      } catch (const Error&) {
      }
    }
    *error = e.what();
    *code = e.code();
    return false;
  }
  for (int fd : {out_, err_, master_, in_})
    if (fd >= 0) set_nonblocking(fd);
  started_ns_ = now_ns();
  exit_code_ = -1;
  unsigned long long pid_start = process_start_time(pid_);
  bool restart = restarts_this_monitor_ > 0;
  st_.update_container_state(
      rec_.id,
      [&](ContainerState& s) {
        s.status = "running";
        s.pid = pid_;
        s.pid_start = pid_start;
        s.started_at = now_rfc3339();
        s.error.clear();
        s.oom_killed = false;
        s.ports = attachment.ports;
        s.endpoints = attachment.endpoints;
        if (restart) ++s.restart_count;
        if (rec_.healthcheck) s.health = HealthState{"starting", 0, s.health ? s.health->log : std::vector<HealthResult>{}};
      },
      Durability::kVolatile);
  if (rec_.healthcheck) next_health_ = started_ns_ + rec_.healthcheck->interval;
  return true;
}

void Monitor::broadcast(char type, std::string_view data) {
  for (auto& c : clients_)
    if (c.fd >= 0 && !attach::send_frame(c.fd, type, data)) close_fd(c.fd);
}

void Monitor::pump_output(int& fd, const char* stream) {
  char buf[attach::kMaxFrame];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {  // EOF, or EIO: the terminal has no slave left
      close_fd(fd);
      return;
    }
    std::string_view data(buf, static_cast<std::size_t>(n));
    try {
      log_->write(stream, data);
    } catch (const Error& e) {
      // A full disk must not end the monitor (and so the container's bookkeeping): say it once.
      if (!log_failed_) e_.logger().warn("cannot write the log of container " + rec_.name + ": " + e.what());
      log_failed_ = true;
    }
    broadcast(stream[3] == 'e' ? attach::kStderr : attach::kStdout, data);
  }
}

void Monitor::accept_client() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    clients_.push_back({fd, false, false});
  }
}

void Monitor::serve_client(std::size_t i) {
  auto f = attach::receive_frame(clients_[i].fd);
  if (!f) {
    close_fd(clients_[i].fd);
    return;
  }
  Client& c = clients_[i];
  switch (f->type) {
    case attach::kHello:
      c.hello = true;
      c.stdin_open = f->payload == "1";
      break;
    case attach::kStdin: {
      int to = master_ >= 0 ? master_ : in_;
      if (to < 0) break;
      write_all(to, f->payload.data(), f->payload.size());
      break;
    }
    case attach::kStdinEof:
      // docker closes the container's stdin when the (one) attached client's input ends.
      if (master_ >= 0) {
        const char eot = 4;
        (void)!::write(master_, &eot, 1);
      } else {
        close_fd(in_);
      }
      break;
    case attach::kResize:
      if (master_ >= 0) {
        struct winsize ws {};
        unsigned rows = 0, cols = 0;
        if (std::sscanf(f->payload.c_str(), "%u %u", &rows, &cols) == 2 && rows > 0 && cols > 0) {
          ws.ws_row = static_cast<unsigned short>(rows);
          ws.ws_col = static_cast<unsigned short>(cols);
          ioctl(master_, TIOCSWINSZ, &ws);
        }
      }
      break;
    default:
      break;
  }
}

void Monitor::reap() {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(-1, &status, WNOHANG);
    if (r <= 0) break;
    if (r == pid_ && exit_code_ < 0) exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r == health_pid_) health_done(status);
  }
}

void Monitor::handle_signals() {
  struct signalfd_siginfo si;
  while (::read(sfd_, &si, sizeof si) == sizeof si) {
    int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGCHLD) reap();
    else if (sig == SIGTERM) stop_requested_ = true;  // `hutch stop` while it waits to restart
  }
}

void Monitor::serve_until_exit() {
  while (exit_code_ < 0) {
    std::vector<struct pollfd> fds;
    fds.push_back({sfd_, POLLIN, 0});
    std::size_t fixed_begin = fds.size();
    for (int fd : {out_, err_, master_, health_out_}) fds.push_back({fd, static_cast<short>(fd >= 0 ? POLLIN : 0), 0});
    fds.push_back({listen_fd_, static_cast<short>(listen_fd_ >= 0 ? POLLIN : 0), 0});
    std::size_t clients_begin = fds.size();
    for (const auto& c : clients_) fds.push_back({c.fd, static_cast<short>(c.fd >= 0 ? POLLIN : 0), 0});
    int timeout = -1;
    if (rec_.healthcheck) {
      std::int64_t due = health_pid_ ? health_deadline_ : next_health_;
      std::int64_t left = due - now_ns();
      timeout = left <= 0 ? 0 : static_cast<int>(std::min<std::int64_t>(left / 1'000'000 + 1, 60'000));
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) throw_errno("poll");
    auto ready = [&](std::size_t i) { return fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)); };
    if (ready(fixed_begin)) pump_output(out_, "stdout");
    if (ready(fixed_begin + 1)) pump_output(err_, "stderr");
    if (ready(fixed_begin + 2)) pump_output(master_, "stdout");
    if (ready(fixed_begin + 3)) {
      char buf[4096];
      ssize_t n = ::read(health_out_, buf, sizeof buf);
      if (n > 0 && health_output_.size() < 4096) health_output_.append(buf, static_cast<std::size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) close_fd(health_out_);
    }
    if (ready(fixed_begin + 4)) accept_client();
    for (std::size_t i = clients_begin; i < fds.size(); ++i)
      if (ready(i)) serve_client(i - clients_begin);
    clients_.erase(std::remove_if(clients_.begin(), clients_.end(), [](const Client& c) { return c.fd < 0; }),
                   clients_.end());
    if (fds[0].revents & POLLIN) handle_signals();
    if (rec_.healthcheck) health_tick();
  }
  // What the container wrote last (its pipes may stay open in an orphan with --pid host:
  // take what is there now).
  for (int* fd : {&out_, &err_, &master_})
    if (*fd >= 0) pump_output(*fd, fd == &err_ ? "stderr" : "stdout");
  close_fd(out_);
  close_fd(err_);
  close_fd(master_);
  close_fd(in_);
}

void Monitor::health_tick() {
  std::int64_t now = now_ns();
  if (health_pid_) {
    if (now >= health_deadline_) {
      ::kill(health_pid_, SIGKILL);
      health_deadline_ = now + 1'000'000'000;  // until it is reaped
      health_output_ = "Health check exceeded timeout (" + std::to_string(rec_.healthcheck->timeout / 1'000'000'000) + "s)";
      health_out_ >= 0 ? close_fd(health_out_) : void();
    }
    return;
  }
  if (now < next_health_ || pid_ <= 0) return;
  const auto& h = *rec_.healthcheck;
  ExecOptions eo;
  if (!h.test.empty() && h.test[0] == "CMD-SHELL") eo.command = {"/bin/sh", "-c", h.test.size() > 1 ? h.test[1] : ""};
  else if (!h.test.empty() && h.test[0] == "CMD") eo.command.assign(h.test.begin() + 1, h.test.end());
  else eo.command = h.test;
  health_started_ = now_rfc3339();
  health_output_.clear();
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return;
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  RuntimeIo io;
  io.stdin_fd = devnull;
  io.stdout_fd = p[1];
  io.stderr_fd = p[1];
  try {
    health_pid_ = e_.runtime(rec_.runtime).exec(rec_.id, e_.exec_process(rec_, eo), io);
    health_out_ = p[0];
    set_nonblocking(health_out_);
    health_deadline_ = now + h.timeout;
  } catch (const Error& e) {
    ::close(p[0]);
    HealthResult r{health_started_, now_rfc3339(), -1, e.what()};
    e_.record_health(rec_, r);
    next_health_ = now + h.interval;
  }
  ::close(p[1]);
  ::close(devnull);
}

void Monitor::health_done(int status) {
  health_pid_ = 0;
  if (health_out_ >= 0) {
    char buf[4096];
    for (ssize_t n; (n = ::read(health_out_, buf, sizeof buf)) > 0 && health_output_.size() < 4096;)
      health_output_.append(buf, static_cast<std::size_t>(n));
    close_fd(health_out_);
  }
  bool timed_out = health_output_.rfind("Health check exceeded timeout", 0) == 0;
  int code = timed_out ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (health_output_.size() > 4096) health_output_.resize(4096);
  HealthResult r{health_started_, now_rfc3339(), code, health_output_};
  HealthState hs = e_.record_health(rec_, r);
  next_health_ = now_ns() + rec_.healthcheck->interval;
  if (hs.status != "unhealthy" || pid_ <= 0 || exit_code_ >= 0) return;
  const std::string& action = rec_.healthcheck->on_failure;
  if (action == "kill" || action == "stop") {
    st_.update_container_state(rec_.id, [](ContainerState& s) { s.stopped_by_user = true; }, Durability::kVolatile);
    e_.runtime(rec_.runtime).kill(rec_.id, action == "kill" ? SIGKILL : detail::parse_signal(rec_.stop_signal.empty() ? "SIGTERM" : rec_.stop_signal));
  } else if (action == "restart") {
    e_.runtime(rec_.runtime).kill(rec_.id, SIGKILL);  // and it restarts below, whatever the policy
    health_restart_ = true;
  }
}

void Monitor::end_run() {
  RuntimeBackend& rt = e_.runtime(rec_.runtime);
  if (health_pid_) {
    ::kill(health_pid_, SIGKILL);
    waitpid(health_pid_, nullptr, 0);
    health_pid_ = 0;
    close_fd(health_out_);
  }
  bool oom = !cgroups_path_.empty() && cgroup_oom_killed(cgroups_, cgroups_path_);
  try {
    rt.remove(rec_.id);
  } catch (const Error& e) {
    e_.logger().warn("cannot delete container " + rec_.name + " in its runtime: " + e.what());
  }
  try {
    e_.network(rec_.network).detach(network_request(rec_));
  } catch (const Error& e) {
    e_.logger().warn("cannot detach container " + rec_.name + " from its network: " + e.what());
  }
  int code = exit_code_;
  pid_ = 0;
  st_.update_container_state(
      rec_.id,
      [&](ContainerState& s) {
        s.status = "exited";
        s.exit_code = code;
        s.ports.clear();
        s.endpoints.clear();
        s.finished_at = now_rfc3339();
        s.oom_killed = oom;
        if (oom) s.error = "the kernel's OOM killer ended it (--memory)";
        stop_requested_ |= s.stopped_by_user;
      },
      durability_);
}

bool Monitor::should_restart() {
  if (health_restart_) {
    health_restart_ = false;
    return !stop_requested_;
  }
  if (stop_requested_) return false;
  const std::string& p = rec_.restart_policy;
  if (p == "always" || p == "unless-stopped") return true;
  if (p == "on-failure")
    return exit_code_ != 0 && (rec_.restart_max == 0 || restarts_this_monitor_ < rec_.restart_max);
  return false;
}

void Monitor::finish() {
  try {
    e_.storage().unmount(rec_.id);
  } catch (const Error& e) {
    e_.logger().warn("cannot unmount the filesystem of container " + rec_.name + ": " + e.what());
  }
  if (listen_fd_ >= 0) {
    close_fd(listen_fd_);
    ::unlink(attach::socket_path(e_.paths().run_root.string(), rec_.id).c_str());
  }
  if (rec_.auto_remove) e_.forget_container(rec_);
}

int Monitor::run() {
  setup();
  // One monitor per container: a second `start` racing this one finds this one's pid.
  {
    auto lock = st_.lock_container_state(rec_.id);
    ContainerState s = st_.container_state(rec_.id);
    if (s.monitor_pid > 0 && s.monitor_pid != getpid() && process_start_time(s.monitor_pid) == s.monitor_start) {
      report(status_fd_, "E" + std::to_string(static_cast<int>(Errc::kInvalidInput)) + " container " + rec_.name +
                             " is already running");
      return 0;
    }
    s.monitor_pid = getpid();
    s.monitor_start = process_start_time(getpid());
    s.stopped_by_user = false;
    s.error.clear();
    st_.save_container_state(rec_.id, s, Durability::kVolatile);
  }
  std::int64_t backoff = 100'000'000;  // docker's: 100 ms, doubled per restart, at most a minute
  for (bool first = true;; first = false) {
    std::string error;
    Errc code = Errc::kRuntime;
    if (!start_container(&error, &code)) {
      st_.update_container_state(
          rec_.id,
          [&](ContainerState& s) {
            s.status = first && s.finished_at.empty() ? "created" : "exited";
            s.exit_code = code == Errc::kCommandNotFound ? 127 : code == Errc::kNotExecutable ? 126 : 125;
            s.error = error;
            s.monitor_pid = 0;
          },
          durability_);
      if (first) {
        for (auto& c : clients_) close_fd(c.fd);
        finish();  // first: `run --rm` must find it gone when it returns
        report(status_fd_, "E" + std::to_string(static_cast<int>(code)) + " " + error);
        return 0;
      }
      exit_code_ = code == Errc::kCommandNotFound ? 127 : code == Errc::kNotExecutable ? 126 : 125;
    } else {
      if (first) report(status_fd_, "S" + std::to_string(pid_));
      serve_until_exit();
      end_run();
    }
    bool again = should_restart();
    if (!again) break;
    // The attached clients see this run end (docker's attach ends with the container's run).
    broadcast(attach::kExit, std::to_string(exit_code_));
    for (auto& c : clients_) close_fd(c.fd);
    clients_.clear();
    if (now_ns() - started_ns_ > 10'000'000'000LL) backoff = 100'000'000;  // it ran a while: start over
    st_.update_container_state(rec_.id, [](ContainerState& s) { s.status = "restarting"; }, Durability::kVolatile);
    // Wait out the backoff; `hutch stop` sends SIGTERM to end it.
    std::int64_t until = now_ns() + backoff;
    while (!stop_requested_ && now_ns() < until) {
      struct pollfd pf {sfd_, POLLIN, 0};
      ::poll(&pf, 1, static_cast<int>((until - now_ns()) / 1'000'000 + 1));
      handle_signals();
    }
    backoff = std::min<std::int64_t>(backoff * 2, 60'000'000'000LL);
    ++restarts_this_monitor_;
    if (stop_requested_ || st_.container_state(rec_.id).stopped_by_user) {
      st_.update_container_state(rec_.id, [](ContainerState& s) { s.status = "exited"; }, durability_);
      break;
    }
    // What `rename` and `network connect/disconnect` changed meanwhile applies to the next run.
    try {
      if (auto now = st_.find_container_record(rec_.id)) {
        rec_.name = now->name;
        rec_.networks = now->networks;
        rec_.network_aliases = now->network_aliases;
      }
    } catch (const Error&) {
    }
  }
  st_.update_container_state(rec_.id, [](ContainerState& s) { s.monitor_pid = 0; }, durability_);
  if (rec_.auto_remove) {
    // `hutch wait` finds the exit code here once the container is gone.
    try {
      make_dirs(e_.paths().run_root / "exits", 0700);
      write_file_atomic(e_.paths().run_root / "exits" / rec_.id, std::to_string(exit_code_) + "\n", 0600, Durability::kVolatile);
    } catch (const Error&) {
    }
  }
  finish();
  // Last, so that a foreground `run --rm` returns once the container is gone.
  broadcast(attach::kExit, std::to_string(exit_code_));
  for (auto& c : clients_) close_fd(c.fd);
  return 0;
}

void Engine::launch_monitor(const ContainerRecord& record, int status_fd, int client_fd,
                            const std::vector<int>& close_in_child) {
  pid_t child = fork();
  if (child < 0) throw_errno("cannot start the monitor of container " + record.name + " (fork)");
  if (child == 0) {
    for (int fd : close_in_child)
      if (fd >= 0) ::close(fd);
    setsid();
    pid_t m = fork();
    if (m != 0) _exit(m < 0 ? 1 : 0);
    // Nothing the starting command inherited stays open here (a caller's pipe would never see
    // its end while the container runs), except the namespace's membership, taken anew: the
    // monitor keeps hutch's user namespace alive as long as it lives.
    int member = -1;
    if (rootless_.mode != UsernsMode::kRealRoot) {
      member = ::open((paths_.run_root / "userns.lock").c_str(), O_RDWR | O_CLOEXEC);
      if (member >= 0) flock(member, LOCK_SH);
    }
    std::vector<int> stray;
    std::error_code ec;
    for (fs::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) {
      int fd = std::atoi(it->path().filename().c_str());
      if (fd > 2 && fd != status_fd && fd != client_fd && fd != member) stray.push_back(fd);
    }
    for (int fd : stray) ::close(fd);  // (the directory's own descriptor is gone already: EBADF)
    monitor_main(record, status_fd, client_fd);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
}

[[noreturn]] void Engine::monitor_main(ContainerRecord record, int status_fd, int client_fd) {
  // Our stdio are the CLI's terminal or pipes, which must not stay open: a pipe's reader
  // would wait for us. Warnings go to the container's monitor.log.
  // --log-driver passthrough: the container gets the starting command's own stdio.
  if (record.log_driver == "passthrough")
    for (int i = 0; i < 3; ++i) passthrough_fds_[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
  int devnull = ::open("/dev/null", O_RDWR);
  int log = ::open((store().container_dir(record.id) / "monitor.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  dup2(devnull, 0);
  dup2(devnull, 1);
  dup2(log >= 0 ? log : devnull, 2);
  if (devnull > 2) ::close(devnull);
  if (log > 2) ::close(log);
  std::string name = record.name;
  try {
    Monitor(*this, std::move(record), status_fd, client_fd).run();
  } catch (const std::exception& e) {
    logger_.error("the monitor of container " + name + " failed: " + e.what());
    report(status_fd, "E" + std::to_string(static_cast<int>(Errc::kInternal)) + " the monitor failed: " + e.what());
    _exit(1);
  }
  _exit(0);
}

}  // namespace hutch
