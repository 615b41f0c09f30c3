#include "helper_process.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "hutch/error.hpp"
#include "hutch/store.hpp"
#include "netutil.hpp"

namespace hutch::netutil {

int pidfd_of(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

namespace {

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void close_all_but(std::vector<int> keep) {
  std::sort(keep.begin(), keep.end());
  unsigned from = 3;
  for (int k : keep) {
    if (k < 3) continue;
    if (static_cast<unsigned>(k) > from) syscall(SYS_close_range, from, static_cast<unsigned>(k) - 1, 0);
    from = static_cast<unsigned>(k) + 1;
  }
  syscall(SYS_close_range, from, ~0U, 0);
}

}  // namespace

Helper spawn_helper(const std::string& name, std::vector<int> keep,
                    const std::function<void(const std::function<void(const std::string&)>&)>& body) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw_errno("cannot make a pipe for the network helper");
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    ::close(p[0]);
    ::close(p[1]);
    throw system_error("cannot start the network helper " + name, e);
  }
  if (pid == 0) {
    ::close(p[0]);
    keep.push_back(p[1]);
    close_all_but(keep);
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    // Nobody should hold the starting command's terminal through us.
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0), dup2(null, 1);
      if (null > 2) ::close(null);
    }
    bool reported = false;
    int report = p[1];
    try {
      body([&](const std::string& text) {
        write_all(report, "R" + text);
        ::close(report);
        reported = true;
      });
    } catch (const Error& e) {
      if (!reported) write_all(report, error_report(e));
      _exit(1);
    } catch (const std::exception& e) {
      if (!reported) write_all(report, error_report(Error(Errc::kInternal, e.what())));
      _exit(1);
    }
    _exit(0);
  }
  ::close(p[1]);
  Helper h;
  h.pid = pid;
  h.pidfd = pidfd_of(pid);
  std::string got;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  if (!got.empty() && got[0] == 'R') {
    h.ready = got.substr(1);
    return h;
  }
  // It failed (or died) before it was set up: reap it and say why.
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (h.pidfd >= 0) ::close(h.pidfd);
  throw_reported(got, "the network helper " + name + " ended before it was set up");
}

void stop_helper(Helper& h, int grace_ms) {
  if (h.pid <= 0) return;
  if (h.pidfd >= 0) {
    syscall(SYS_pidfd_send_signal, h.pidfd, SIGTERM, nullptr, 0);
    pollfd pfd{h.pidfd, POLLIN, 0};
    if (poll(&pfd, 1, grace_ms) == 0) syscall(SYS_pidfd_send_signal, h.pidfd, SIGKILL, nullptr, 0), poll(&pfd, 1, 5000);
    ::close(h.pidfd);
  }
  waitpid(h.pid, nullptr, WNOHANG);  // ours unless the monitor's reaper got there first
  h = Helper{};
}

void record_helper(const std::filesystem::path& file, pid_t pid) {
  write_file_atomic(file, std::to_string(pid) + " " + std::to_string(process_start_time(pid)) + "\n", 0600,
                    Durability::kVolatile);
}

void stop_recorded_helper(const std::filesystem::path& file) {
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error&) {
    return;
  }
  pid_t pid = 0;
  unsigned long long start = 0;
  if (std::sscanf(text.c_str(), "%d %llu", &pid, &start) == 2 && pid > 0 && process_start_time(pid) == start) {
    Helper h;
    h.pid = pid;
    h.pidfd = pidfd_of(pid);
    if (h.pidfd >= 0 && process_start_time(pid) == start) stop_helper(h);
    else if (h.pidfd >= 0) ::close(h.pidfd);
  }
  std::error_code ec;
  std::filesystem::remove(file, ec);
}

}  // namespace hutch::netutil
