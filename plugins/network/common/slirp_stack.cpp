#include "slirp_stack.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

extern "C" {
#include <slirp/libslirp.h>
}

#include "hutch/error.hpp"
#include "netutil.hpp"

namespace hutch::netutil {

namespace {

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

int unprivileged_port_start() {
  std::ifstream f("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  int n = 1024;
  f >> n;
  return n;
}

// host_ip:port as a socket address ("" is every IPv4 address).
socklen_t host_sockaddr(const std::string& host_ip, std::uint16_t port, sockaddr_storage* ss) {
  *ss = sockaddr_storage{};
  if (host_ip.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = parse_ipv6(host_ip, "-p");
    return sizeof *a;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(ss);
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr = host_ip.empty() ? in_addr{htonl(INADDR_ANY)} : parse_ipv4(host_ip, "-p");
  return sizeof *a;
}

}  // namespace

struct Timer {
  SlirpTimerCb cb = nullptr;
  void* cb_opaque = nullptr;
  std::int64_t expire_ms = -1;  // -1: not armed
};

struct SlirpStack::Impl {
  int tap = -1;
  Slirp* slirp = nullptr;
  std::vector<pollfd> fds;
  std::vector<std::unique_ptr<Timer>> timers;
  in_addr vnet{}, vmask{}, vhost{}, vdhcp{}, vdns{};
  in6_addr vprefix6{}, vhost6{}, vdns6{};

  static ssize_t send_packet(const void* buf, size_t len, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    for (;;) {
      ssize_t n = ::write(self->tap, buf, len);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {  // the tap is non-blocking for reads; wait to write
        pollfd p{self->tap, POLLOUT, 0};
        ::poll(&p, 1, 100);
        continue;
      }
      return n;
    }
  }
  static void guest_error(const char*, void*) {}
  static std::int64_t clock_ns(void*) { return now_ns(); }
  static void* timer_new(SlirpTimerCb cb, void* cb_opaque, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    auto t = std::make_unique<Timer>();
    t->cb = cb;
    t->cb_opaque = cb_opaque;
    self->timers.push_back(std::move(t));
    return self->timers.back().get();
  }
  static void timer_free(void* timer, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    std::erase_if(self->timers, [&](const auto& t) { return t.get() == timer; });
  }
  static void timer_mod(void* timer, std::int64_t expire_ms, void*) { static_cast<Timer*>(timer)->expire_ms = expire_ms; }
  static void register_fd(int, void*) {}
  static void unregister_fd(int, void*) {}
  static void notify(void*) {}

  static int add_poll(int fd, int events, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    short ev = 0;
    if (events & SLIRP_POLL_IN) ev |= POLLIN;
    if (events & SLIRP_POLL_OUT) ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI) ev |= POLLPRI;
    self->fds.push_back({fd, ev, 0});
    return static_cast<int>(self->fds.size() - 1);
  }
  static int get_revents(int idx, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    short r = self->fds[static_cast<size_t>(idx)].revents;
    int out = 0;
    if (r & POLLIN) out |= SLIRP_POLL_IN;
    if (r & POLLOUT) out |= SLIRP_POLL_OUT;
    if (r & POLLPRI) out |= SLIRP_POLL_PRI;
    if (r & POLLERR) out |= SLIRP_POLL_ERR;
    if (r & POLLHUP) out |= SLIRP_POLL_HUP;
    return out;
  }
};

namespace {
const SlirpCb kCallbacks = {
    .send_packet = SlirpStack::Impl::send_packet,
    .guest_error = SlirpStack::Impl::guest_error,
    .clock_get_ns = SlirpStack::Impl::clock_ns,
    .timer_new = SlirpStack::Impl::timer_new,
    .timer_free = SlirpStack::Impl::timer_free,
    .timer_mod = SlirpStack::Impl::timer_mod,
    .register_poll_fd = SlirpStack::Impl::register_fd,
    .unregister_poll_fd = SlirpStack::Impl::unregister_fd,
    .notify = SlirpStack::Impl::notify,
    .init_completed = nullptr,
    .timer_new_opaque = nullptr,
};
}  // namespace

SlirpStack::SlirpStack(int tap_fd, const SlirpSettings& s) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.tap = tap_fd;
  m.vnet = parse_ipv4("10.0.2.0", "slirp");
  m.vmask = parse_ipv4("255.255.255.0", "slirp");
  m.vhost = parse_ipv4(kSlirpGateway, "slirp");
  m.vdhcp = parse_ipv4("10.0.2.15", "slirp");
  m.vdns = parse_ipv4(kSlirpDns, "slirp");
  m.vprefix6 = parse_ipv6("fd00::", "slirp");
  m.vhost6 = parse_ipv6(kSlirpGateway6, "slirp");
  m.vdns6 = parse_ipv6(kSlirpDns6, "slirp");
  SlirpConfig cfg{};
  cfg.version = 4;
  cfg.restricted = 0;
  cfg.in_enabled = true;
  cfg.vnetwork = m.vnet;
  cfg.vnetmask = m.vmask;
  cfg.vhost = m.vhost;
  cfg.in6_enabled = s.ipv6;
  cfg.vprefix_addr6 = m.vprefix6;
  cfg.vprefix_len = kSlirpPrefix6;
  cfg.vhost6 = m.vhost6;
  cfg.vdhcp_start = m.vdhcp;
  cfg.vnameserver = m.vdns;
  cfg.vnameserver6 = m.vdns6;
  cfg.if_mtu = s.mtu;
  cfg.if_mru = s.mtu;
  cfg.disable_host_loopback = !s.allow_host_loopback;
  cfg.enable_emu = false;
  cfg.disable_dhcp = true;
  m.slirp = slirp_new(&cfg, &kCallbacks, &m);
  if (!m.slirp) throw Error(Errc::kNetwork, "libslirp could not start its stack (slirp_new failed)");
}

SlirpStack::~SlirpStack() {
  if (impl_->slirp) slirp_cleanup(impl_->slirp);
}

std::uint16_t probe_host_port(bool udp, const std::string& host_ip, std::uint16_t port) {
  std::uint16_t bound = 0;
  ::close(bind_host_port(udp, host_ip, port, &bound));
  return bound;
}

int bind_host_port(bool udp, const std::string& host_ip, std::uint16_t port, std::uint16_t* bound) {
  bool v6 = host_ip.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("cannot make a socket to publish a port");
  // As slirp binds it: a TCP listener with SO_REUSEADDR (a port in TIME_WAIT is free), a UDP
  // socket without (so that a port another socket holds shows as taken).
  int one = 1;
  if (!udp) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss;
  socklen_t len = host_sockaddr(host_ip, port, &ss);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len);
  int e = errno;
  if (rc == 0) {
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    *bound = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    return fd;
  }
  ::close(fd);
  std::string where = std::to_string(port) + "/" + (udp ? "udp" : "tcp") + " on " + (host_ip.empty() ? "0.0.0.0" : host_ip);
  if (e == EADDRINUSE)
    throw Error(Errc::kAlreadyExists, "cannot publish port " + where +
                                          ": it is already in use by another program or container; choose another "
                                          "host port (-p OTHER:PORT), or give only the container's port for a free one");
  if (e == EACCES && port < unprivileged_port_start())
    throw Error(Errc::kPermission, "cannot publish port " + where + ": ports below " +
                                       std::to_string(unprivileged_port_start()) +
                                       " (net.ipv4.ip_unprivileged_port_start) need privileges you do not have; "
                                       "publish a higher port (-p 8080:PORT), or have root lower it: "
                                       "sysctl net.ipv4.ip_unprivileged_port_start=" + std::to_string(port));
  if (e == EADDRNOTAVAIL)
    throw Error(Errc::kInvalidInput, "cannot publish port " + where + ": " + host_ip + " is not an address of this host");
  throw system_error("cannot publish port " + where, e);
}

std::uint16_t SlirpStack::forward(bool udp, const std::string& host_ip, std::uint16_t host_port, in_addr guest,
                                  std::uint16_t guest_port) {
  std::uint16_t port = probe_host_port(udp, host_ip, host_port);
  bool v6 = host_ip.find(':') != std::string::npos;
  sockaddr_storage h;
  socklen_t hlen = host_sockaddr(host_ip, port, &h);
  sockaddr_in g{};
  g.sin_family = AF_INET;
  g.sin_port = htons(guest_port);
  g.sin_addr = guest;
  int flags = (udp ? SLIRP_HOSTFWD_UDP : 0) | (v6 ? SLIRP_HOSTFWD_V6ONLY : 0);
  if (slirp_add_hostxfwd(impl_->slirp, reinterpret_cast<sockaddr*>(&h), hlen, reinterpret_cast<sockaddr*>(&g), sizeof g,
                         flags) < 0) {
    int e = errno;
    throw system_error("cannot publish port " + std::to_string(port) + "/" + (udp ? "udp" : "tcp") +
                           " (libslirp refused the forward)", e ? e : EINVAL);
  }
  return port;
}

void SlirpStack::run(int exit_fd) {
  Impl& m = *impl_;
  fcntl(m.tap, F_SETFL, fcntl(m.tap, F_GETFL) | O_NONBLOCK);
  std::vector<std::uint8_t> frame(m.tap >= 0 ? 65536 + 64 : 0);
  for (;;) {
    m.fds.clear();
    m.fds.push_back({m.tap, POLLIN, 0});
    m.fds.push_back({exit_fd, POLLIN, 0});
    std::uint32_t timeout = UINT32_MAX;
    slirp_pollfds_fill(m.slirp, &timeout, Impl::add_poll, &m);
    std::int64_t now_ms = now_ns() / 1000000;
    for (const auto& t : m.timers)
      if (t->expire_ms >= 0) {
        std::int64_t left = t->expire_ms - now_ms;
        if (left < 0) left = 0;
        if (left < static_cast<std::int64_t>(timeout)) timeout = static_cast<std::uint32_t>(left);
      }
    int wait = timeout == UINT32_MAX ? -1 : static_cast<int>(std::min<std::uint32_t>(timeout, 1000000));
    int n = ::poll(m.fds.data(), m.fds.size(), wait);
    if (n < 0 && errno != EINTR) return;
    if (n > 0 && m.fds[1].revents) return;  // the container is gone
    if (n > 0 && (m.fds[0].revents & POLLIN)) {
      // A burst of frames at a time: one poll for many, as a bulk transfer out of the
      // container sends them back to back.
      for (int k = 0; k < 64; ++k) {
        ssize_t got = ::read(m.tap, frame.data(), frame.size());
        if (got <= 0) break;
        slirp_input(m.slirp, frame.data(), static_cast<int>(got));
      }
    }
    if (n > 0 && (m.fds[0].revents & (POLLERR | POLLHUP | POLLNVAL))) return;
    slirp_pollfds_poll(m.slirp, n < 0, Impl::get_revents, &m);
    now_ms = now_ns() / 1000000;
    // A timer's callback may modify or free timers: take the due ones first.
    std::vector<Timer*> due;
    for (const auto& t : m.timers)
      if (t->expire_ms >= 0 && t->expire_ms <= now_ms) due.push_back(t.get());
    for (Timer* t : due) {
      bool alive = false;
      for (const auto& u : m.timers) alive |= u.get() == t;
      if (!alive || t->expire_ms < 0 || t->expire_ms > now_ms) continue;
      t->expire_ms = -1;
      t->cb(t->cb_opaque);
    }
  }
}

}  // namespace hutch::netutil
