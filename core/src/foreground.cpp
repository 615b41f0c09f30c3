#include "foreground.hpp"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "hutch/error.hpp"
#include "hutch/paths.hpp"

namespace hutch {

SignalForwarding::SignalForwarding() {
  sigemptyset(&set_);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGALRM, SIGCHLD})
    sigaddset(&set_, s);
  sigprocmask(SIG_BLOCK, &set_, &old_);
}

SignalForwarding::~SignalForwarding() { sigprocmask(SIG_SETMASK, &old_, nullptr); }

ConsoleSocket::ConsoleSocket(const std::filesystem::path& path) : path_(path) {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof addr.sun_path)
    throw Error(Errc::kSystem, "the console socket path " + path.string() + " is too long; use a shorter --runroot");
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw_errno("socket");
  ::unlink(path.c_str());
  if (bind(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 1) != 0) {
    int e = errno;
    ::close(fd_);
    throw system_error("cannot listen on " + path.string(), e);
  }
}

ConsoleSocket::~ConsoleSocket() {
  if (fd_ >= 0) ::close(fd_);
  ::unlink(path_.c_str());
}

int ConsoleSocket::receive_master(int timeout_ms) {
  struct pollfd pf {fd_, POLLIN, 0};
  if (poll(&pf, 1, timeout_ms) <= 0) throw Error(Errc::kRuntime, "the runtime sent no terminal over " + path_.string());
  int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (conn < 0) throw_errno("accept on " + path_.string());
  char byte;
  struct iovec iov {&byte, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  ::close(conn);
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (n < 0 || !c || c->cmsg_type != SCM_RIGHTS) throw Error(Errc::kRuntime, "the runtime sent no terminal over " + path_.string());
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

Terminal::Terminal(int master) : master_(master) { copy_window_size(); }

Terminal::~Terminal() {
  if (restore_) tcsetattr(0, TCSADRAIN, &saved_);
  if (master_ >= 0) ::close(master_);
}

void Terminal::copy_window_size() {
  struct winsize ws {};
  if ((ioctl(0, TIOCGWINSZ, &ws) != 0 && ioctl(1, TIOCGWINSZ, &ws) != 0) || ws.ws_row == 0) {
    ws.ws_row = 24;  // not a terminal on our side: the classic size, as docker gives
    ws.ws_col = 80;
  }
  ioctl(master_, TIOCSWINSZ, &ws);
}

void Terminal::make_caller_raw() {
  if (!isatty(0) || tcgetattr(0, &saved_) != 0) return;
  struct termios raw = saved_;
  cfmakeraw(&raw);
  if (tcsetattr(0, TCSADRAIN, &raw) == 0) restore_ = true;
}

namespace {


// Copies what is there now; false when the source is finished (EOF or EIO: no slave left).
bool pump(int from, int to) {
  char buf[16384];
  ssize_t n = ::read(from, buf, sizeof buf);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;
  write_all(to, buf, static_cast<size_t>(n));
  return true;
}

}  // namespace

int wait_foreground(pid_t pid, const sigset_t& signals, Terminal* terminal, bool relay_stdin) {
  int sfd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) throw_errno("signalfd");
  int master = terminal ? terminal->master() : -1;
  bool master_open = master >= 0;
  bool stdin_open = terminal && relay_stdin;
  int code = -1;
  while (code < 0) {
    struct pollfd fds[3];
    int n = 0;
    fds[n++] = {sfd, POLLIN, 0};
    int mi = -1, si = -1;
    if (master_open) mi = n, fds[n++] = {master, POLLIN, 0};
    if (stdin_open) si = n, fds[n++] = {0, POLLIN, 0};
    if (poll(fds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      ::close(sfd);
      throw_errno("poll");
    }
    if (mi >= 0 && (fds[mi].revents & (POLLIN | POLLHUP | POLLERR))) master_open = pump(master, 1);
    if (si >= 0 && (fds[si].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (!pump(0, master)) {
        stdin_open = false;
        const char eot = 4;  // end of input, as the terminal's ^D
        write_all(master, &eot, 1);
      }
    }
    if (!(fds[0].revents & POLLIN)) continue;
    struct signalfd_siginfo si_info;
    while (::read(sfd, &si_info, sizeof si_info) == sizeof si_info) {
      int sig = static_cast<int>(si_info.ssi_signo);
      if (sig == SIGWINCH && terminal) {
        terminal->copy_window_size();
        continue;
      }
      if (sig != SIGCHLD) {
        ::kill(pid, sig);
        continue;
      }
      // Reap everything that ended (reparented orphans too, as a subreaper must).
      for (;;) {
        int status = 0;
        pid_t r = waitpid(-1, &status, WNOHANG);
        if (r <= 0) break;
        if (r == pid) code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
  }
  ::close(sfd);
  if (master_open) {
    // What the container wrote last.
    int flags = fcntl(master, F_GETFL);
    fcntl(master, F_SETFL, flags | O_NONBLOCK);
    while (pump(master, 1)) {
      struct pollfd pf {master, POLLIN, 0};
      if (poll(&pf, 1, 50) <= 0) break;
    }
  }
  return code;
}

}  // namespace hutch
