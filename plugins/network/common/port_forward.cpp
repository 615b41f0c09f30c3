#include "port_forward.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <map>
#include <memory>

#include "hutch/error.hpp"

namespace hutch::netutil {

namespace {

constexpr size_t kBuffer = 256 * 1024;

struct Pipe {  // one direction of a TCP connection
  std::unique_ptr<char[]> buf{new char[kBuffer]};
  size_t len = 0, off = 0;
  bool eof = false, shut = false;
};

struct Conn {
  int a = -1, b = -1;  // a: the client's (host side), b: to the container
  bool connected = false;
  Pipe ab, ba;
  bool dead = false;
};

struct UdpAssoc {
  int fd = -1;  // connected to the container, in the network's namespace
  sockaddr_storage client{};
  socklen_t client_len = 0;
  int listener = -1;
  std::int64_t last = 0;
};

std::int64_t now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

int connect_to(in_addr target, std::uint16_t port, bool udp) {
  int fd = ::socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr = target;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Moves what it can from `from` through `p` to `to`; false when the connection is broken.
bool pump(int from, int to, Pipe& p, short rev_from) {
  if (!p.eof && p.len == 0 && (rev_from & (POLLIN | POLLHUP | POLLERR))) {
    ssize_t n = ::read(from, p.buf.get(), kBuffer);
    if (n > 0) p.len = static_cast<size_t>(n), p.off = 0;
    else if (n == 0) p.eof = true;
    else if (errno != EAGAIN && errno != EINTR) return false;
  }
  if (p.len > 0) {  // non-blocking: EAGAIN waits for the next POLLOUT
    ssize_t n = ::send(to, p.buf.get() + p.off, p.len, MSG_NOSIGNAL);
    if (n > 0) p.off += static_cast<size_t>(n), p.len -= static_cast<size_t>(n);
    else if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
  }
  if (p.eof && p.len == 0 && !p.shut) {
    ::shutdown(to, SHUT_WR);
    p.shut = true;
  }
  return true;
}

}  // namespace

void serve_forwards(std::vector<Forward> forwards, int netns_fd, int exit_fd) {
  for (auto& f : forwards) {
    if (!f.udp && ::listen(f.listener, 128) != 0) throw_errno("cannot listen on a published port");
    fcntl(f.listener, F_SETFL, fcntl(f.listener, F_GETFL) | O_NONBLOCK);
  }
  if (::setns(netns_fd, CLONE_NEWNET) != 0) throw_errno("cannot enter the network's namespace");
  ::close(netns_fd);
  std::list<Conn> conns;
  std::map<std::pair<int, std::string>, UdpAssoc> udp;  // (listener, client address bytes)
  std::vector<pollfd> fds;
  char dgram[65536];
  for (;;) {
    fds.clear();
    fds.push_back({exit_fd, POLLIN, 0});
    for (const auto& f : forwards) fds.push_back({f.listener, POLLIN, 0});
    for (auto& c : conns) {
      short ea = 0, eb = 0;
      if (!c.connected) {
        eb = POLLOUT;
      } else {
        if (!c.ab.eof && c.ab.len == 0) ea |= POLLIN;
        if (c.ab.len > 0) eb |= POLLOUT;
        if (!c.ba.eof && c.ba.len == 0) eb |= POLLIN;
        if (c.ba.len > 0) ea |= POLLOUT;
      }
      fds.push_back({c.a, ea, 0});
      fds.push_back({c.b, eb, 0});
    }
    std::vector<UdpAssoc*> polled;  // map nodes stay put while new ones are added below
    for (auto& [k, u] : udp) fds.push_back({u.fd, POLLIN, 0}), polled.push_back(&u);
    int n = ::poll(fds.data(), fds.size(), 10000);
    if (n < 0 && errno != EINTR) return;
    if (fds[0].revents) return;  // the container is gone
    size_t i = 1;
    for (auto& f : forwards) {
      short rev = fds[i++].revents;
      if (!(rev & POLLIN)) continue;
      if (!f.udp) {
        for (;;) {
          int a = ::accept4(f.listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (a < 0) break;
          int b = connect_to(f.target, f.port, false);
          if (b < 0) {
            ::close(a);
            continue;
          }
          Conn c;
          c.a = a, c.b = b;
          conns.push_back(std::move(c));
        }
      } else {
        for (;;) {
          sockaddr_storage from{};
          socklen_t len = sizeof from;
          ssize_t got = ::recvfrom(f.listener, dgram, sizeof dgram, 0, reinterpret_cast<sockaddr*>(&from), &len);
          if (got < 0) break;
          auto key = std::make_pair(f.listener, std::string(reinterpret_cast<char*>(&from), len));
          auto it = udp.find(key);
          if (it == udp.end()) {
            UdpAssoc u;
            u.fd = connect_to(f.target, f.port, true);
            if (u.fd < 0) continue;
            u.client = from, u.client_len = len, u.listener = f.listener;
            it = udp.emplace(key, u).first;
          }
          it->second.last = now_s();
          (void)::send(it->second.fd, dgram, static_cast<size_t>(got), MSG_NOSIGNAL);
        }
      }
    }
    size_t ci = i;
    for (auto& c : conns) {
      short ra = fds[ci++].revents, rb = fds[ci++].revents;
      if (!c.connected) {
        if (rb & (POLLOUT | POLLERR | POLLHUP)) {
          int err = 0;
          socklen_t el = sizeof err;
          getsockopt(c.b, SOL_SOCKET, SO_ERROR, &err, &el);
          if (err) c.dead = true;
          else c.connected = true;
        }
        continue;
      }
      if (!pump(c.a, c.b, c.ab, ra) || !pump(c.b, c.a, c.ba, rb)) c.dead = true;
      if (c.ab.shut && c.ba.shut) c.dead = true;
    }
    i = ci;
    std::int64_t now = now_s();
    for (UdpAssoc* u : polled) {
      if (!(fds[i++].revents & POLLIN)) continue;
      for (;;) {
        ssize_t got = ::recv(u->fd, dgram, sizeof dgram, 0);
        if (got < 0) break;
        (void)::sendto(u->listener, dgram, static_cast<size_t>(got), 0, reinterpret_cast<sockaddr*>(&u->client), u->client_len);
        u->last = now;
      }
    }
    for (auto it = udp.begin(); it != udp.end();) {
      if (now - it->second.last > 60) {
        ::close(it->second.fd);
        it = udp.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = conns.begin(); it != conns.end();) {
      if (it->dead) {
        ::close(it->a);
        ::close(it->b);
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }
}

}  // namespace hutch::netutil
