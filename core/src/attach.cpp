#include "attach.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cctype>

#include "foreground.hpp"
#include "hutch/error.hpp"
#include "hutch/paths.hpp"

namespace hutch::attach {

bool send_frame(int fd, char type, std::string_view payload) {
  do {
    std::size_t n = std::min(payload.size(), kMaxFrame);
    std::string msg;
    msg.reserve(n + 1);
    msg += type;
    msg.append(payload.data(), n);
    for (;;) {
      ssize_t w = ::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL);
      if (w >= 0) break;
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pf {fd, POLLOUT, 0};
        ::poll(&pf, 1, 1000);
        continue;
      }
      return false;
    }
    payload.remove_prefix(n);
  } while (!payload.empty());
  return true;
}

std::optional<Frame> receive_frame(int fd) {
  static thread_local std::string buf(kMaxFrame + 1, '\0');
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return Frame{};
    if (n <= 0) return std::nullopt;
    return Frame{buf[0], std::string(buf.data() + 1, static_cast<std::size_t>(n - 1))};
  }
}

std::vector<unsigned char> parse_detach_keys(const std::string& keys) {
  std::vector<unsigned char> out;
  if (keys.empty()) return out;
  std::size_t start = 0;
  auto bad = [&](const std::string& what) {
    return Error(Errc::kUsage, "--detach-keys \"" + keys + "\": \"" + what +
                                   "\" is not a key; use a letter or ctrl-<value> (a-z, @, [, \\, ], ^, _), comma-separated");
  };
  while (start <= keys.size()) {
    auto comma = keys.find(',', start);
    std::string k = keys.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (k.size() == 1) {
      out.push_back(static_cast<unsigned char>(k[0]));
    } else if (k.size() == 6 && k.compare(0, 5, "ctrl-") == 0) {
      char c = static_cast<char>(std::tolower(static_cast<unsigned char>(k[5])));
      if (c >= 'a' && c <= 'z') out.push_back(static_cast<unsigned char>(c - 'a' + 1));
      else if (c == '@') out.push_back(0);
      else if (c >= '[' && c <= '_') out.push_back(static_cast<unsigned char>(c - '[' + 27));
      else throw bad(k);
    } else {
      throw bad(k);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string socket_path(const std::string& run_root, const std::string& container_id) {
  return run_root + "/attach-" + container_id.substr(0, 12) + ".sock";
}

namespace {

void send_window_size(int conn) {
  struct winsize ws {};
  if ((ioctl(0, TIOCGWINSZ, &ws) != 0 && ioctl(1, TIOCGWINSZ, &ws) != 0) || ws.ws_row == 0) return;
  send_frame(conn, kResize, std::to_string(ws.ws_row) + " " + std::to_string(ws.ws_col));
}

class RawTerminal {
 public:
  explicit RawTerminal(bool want) {
    if (!want || !isatty(0) || tcgetattr(0, &saved_) != 0) return;
    struct termios raw = saved_;
    cfmakeraw(&raw);
    raw_ = tcsetattr(0, TCSADRAIN, &raw) == 0;
  }
  ~RawTerminal() {
    if (raw_) tcsetattr(0, TCSADRAIN, &saved_);
  }

 private:
  struct termios saved_ {};
  bool raw_ = false;
};

}  // namespace

std::optional<int> relay(int conn, const RelayOptions& o) {
  SignalForwarding signals;
  int sfd = signalfd(-1, &signals.set(), SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) throw_errno("signalfd");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{sfd};
  RawTerminal raw(o.tty && o.stdin_open);
  send_frame(conn, kHello, o.stdin_open ? "1" : "0");
  if (o.tty) send_window_size(conn);
  bool stdin_open = o.stdin_open;
  std::size_t matched = 0;  // how much of the detach sequence was typed
  char buf[16384];
  for (;;) {
    struct pollfd fds[3] = {{conn, POLLIN, 0}, {sfd, POLLIN, 0}, {0, POLLIN, 0}};
    if (::poll(fds, stdin_open ? 3 : 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      auto f = receive_frame(conn);
      if (!f) return -1;
      if (f->type == kStdout) write_all(1, f->payload.data(), f->payload.size());
      else if (f->type == kStderr) write_all(2, f->payload.data(), f->payload.size());
      else if (f->type == kExit) return std::stoi(f->payload);
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (::read(sfd, &si, sizeof si) == sizeof si) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGWINCH) {
          if (o.tty) send_window_size(conn);
        } else if (sig != SIGCHLD && o.sig_proxy && o.forward_signal) {
          o.forward_signal(sig);
        }
      }
    }
    if (stdin_open && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::read(0, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        stdin_open = false;
        send_frame(conn, kStdinEof, "");
        continue;
      }
      std::string out;
      const auto& keys = o.detach_keys;
      for (ssize_t i = 0; i < n; ++i) {
        auto b = static_cast<unsigned char>(buf[i]);
        if (!keys.empty() && b == keys[matched]) {
          if (++matched == keys.size()) {
            if (!out.empty()) send_frame(conn, kStdin, out);
            return std::nullopt;
          }
          continue;
        }
        if (matched > 0) out.append(reinterpret_cast<const char*>(keys.data()), matched);
        matched = 0;
        if (!keys.empty() && b == keys[0]) matched = 1;
        else out += static_cast<char>(b);
      }
      if (!out.empty() && !send_frame(conn, kStdin, out)) return -1;
    }
  }
}

}  // namespace hutch::attach
