#include "netutil.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "hutch/error.hpp"

namespace hutch::netutil {

namespace {

// A netlink request built in place: the header, the family's struct, then attributes.
struct Msg {
  alignas(NLMSG_ALIGNTO) char buf[4096];
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf); }
  Msg(std::uint16_t type, std::uint16_t flags, const void* body, size_t len) {
    std::memset(buf, 0, sizeof buf);
    hdr()->nlmsg_type = type;
    hdr()->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    hdr()->nlmsg_len = static_cast<std::uint32_t>(NLMSG_LENGTH(len));
    std::memcpy(NLMSG_DATA(hdr()), body, len);
  }
  rtattr* put(std::uint16_t type, const void* data, size_t len) {
    auto* a = reinterpret_cast<rtattr*>(buf + NLMSG_ALIGN(hdr()->nlmsg_len));
    a->rta_type = type;
    a->rta_len = static_cast<std::uint16_t>(RTA_LENGTH(len));
    if (len) std::memcpy(RTA_DATA(a), data, len);
    hdr()->nlmsg_len = static_cast<std::uint32_t>(NLMSG_ALIGN(hdr()->nlmsg_len) + RTA_ALIGN(a->rta_len));
    return a;
  }
  void put_str(std::uint16_t type, const std::string& s) { put(type, s.c_str(), s.size() + 1); }
  void put_u32(std::uint16_t type, std::uint32_t v) { put(type, &v, sizeof v); }
  rtattr* nest(std::uint16_t type) { return put(type, nullptr, 0); }
  void end(rtattr* a) { a->rta_len = static_cast<std::uint16_t>(buf + hdr()->nlmsg_len - reinterpret_cast<char*>(a)); }
  // Where the nested ifinfomsg of a veth peer goes.
  void put_raw(const void* data, size_t len) {
    std::memcpy(buf + hdr()->nlmsg_len, data, len);
    hdr()->nlmsg_len = static_cast<std::uint32_t>(hdr()->nlmsg_len + NLMSG_ALIGN(len));
  }
};

}  // namespace

Netlink::Netlink() {
  fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) throw_errno("cannot open a netlink socket");
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    ::close(fd_);
    throw system_error("cannot bind a netlink socket", e);
  }
}

Netlink::~Netlink() {
  if (fd_ >= 0) ::close(fd_);
}

void Netlink::request(void* m, const char* what) {
  auto* h = static_cast<nlmsghdr*>(m);
  h->nlmsg_seq = ++seq_;
  if (::send(fd_, h, h->nlmsg_len, 0) < 0) throw_errno(std::string("netlink: ") + what);
  alignas(NLMSG_ALIGNTO) char reply[8192];
  for (;;) {
    ssize_t n = ::recv(fd_, reply, sizeof reply, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(std::string("netlink: ") + what);
    }
    for (auto* r = reinterpret_cast<nlmsghdr*>(reply); NLMSG_OK(r, static_cast<unsigned>(n)); r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_seq != seq_) continue;
      if (r->nlmsg_type == NLMSG_ERROR) {
        auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(r));
        if (err->error == 0) return;
        throw system_error(what, -err->error).with_context("configuring the container's network");
      }
    }
  }
}

int Netlink::ifindex(const std::string& name) const { return static_cast<int>(if_nametoindex(name.c_str())); }

void Netlink::set_up(int index, unsigned mtu) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  Msg m(RTM_NEWLINK, 0, &ifi, sizeof ifi);
  if (mtu) m.put_u32(IFLA_MTU, mtu);
  request(m.buf, "cannot bring an interface up");
}

void Netlink::add_address(int index, int family, const void* addr, int prefix) {
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<unsigned char>(family);
  ifa.ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa.ifa_index = static_cast<unsigned>(index);
  ifa.ifa_flags = family == AF_INET6 ? IFA_F_NODAD : 0;
  Msg m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, &ifa, sizeof ifa);
  size_t len = family == AF_INET ? sizeof(in_addr) : sizeof(in6_addr);
  m.put(IFA_LOCAL, addr, len);
  m.put(IFA_ADDRESS, addr, len);
  if (family == AF_INET6) m.put_u32(IFA_FLAGS, IFA_F_NODAD);
  request(m.buf, family == AF_INET ? "cannot add an IPv4 address" : "cannot add an IPv6 address");
}

void Netlink::add_default_route(int family, const void* gateway) {
  rtmsg rt{};
  rt.rtm_family = static_cast<unsigned char>(family);
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_BOOT;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  Msg m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rt, sizeof rt);
  m.put(RTA_GATEWAY, gateway, family == AF_INET ? sizeof(in_addr) : sizeof(in6_addr));
  request(m.buf, "cannot add the default route");
}

void Netlink::create_bridge(const std::string& name, unsigned mtu, const std::array<unsigned char, 6>& mac) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  Msg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
  m.put_str(IFLA_IFNAME, name);
  if (mtu) m.put_u32(IFLA_MTU, mtu);
  m.put(IFLA_ADDRESS, mac.data(), mac.size());
  rtattr* info = m.nest(IFLA_LINKINFO);
  m.put_str(IFLA_INFO_KIND, "bridge");
  m.end(info);
  request(m.buf, ("cannot create the bridge " + name).c_str());
}

void Netlink::create_veth(const std::string& name, const std::string& peer, int peer_netns_fd, unsigned mtu) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  Msg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
  m.put_str(IFLA_IFNAME, name);
  if (mtu) m.put_u32(IFLA_MTU, mtu);
  rtattr* info = m.nest(IFLA_LINKINFO);
  m.put_str(IFLA_INFO_KIND, "veth");
  rtattr* data = m.nest(IFLA_INFO_DATA);
  rtattr* peer_info = m.nest(VETH_INFO_PEER);
  ifinfomsg pifi{};
  pifi.ifi_family = AF_UNSPEC;
  m.put_raw(&pifi, sizeof pifi);
  m.put_str(IFLA_IFNAME, peer);
  if (mtu) m.put_u32(IFLA_MTU, mtu);
  m.put_u32(IFLA_NET_NS_FD, static_cast<std::uint32_t>(peer_netns_fd));
  m.end(peer_info);
  m.end(data);
  m.end(info);
  request(m.buf, ("cannot create the veth pair " + name).c_str());
}

void Netlink::set_master(int index, int master) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  Msg m(RTM_NEWLINK, 0, &ifi, sizeof ifi);
  m.put_u32(IFLA_MASTER, static_cast<std::uint32_t>(master));
  request(m.buf, "cannot attach a veth to its bridge");
}

void Netlink::remove_link(int index) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  Msg m(RTM_DELLINK, 0, &ifi, sizeof ifi);
  request(m.buf, "cannot remove an interface");
}

int open_tap(const std::string& name) {
  int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    throw Error(Errc::kPermission,
                "cannot open /dev/net/tun: " + std::string(std::strerror(e)) +
                    (e == EACCES || e == EPERM
                         ? " (it must be readable and writable by you, as distributions set it: mode 0666; "
                           "or use --network none)"
                         : e == ENOENT ? " (the tun module is not loaded: modprobe tun; or use --network none)" : ""));
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    int e = errno;
    ::close(fd);
    throw system_error("cannot create the tap device " + name, e);
  }
  return fd;
}

std::string tun_problem() {
  int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return "";
  }
  int e = errno;
  if (e == ENOENT) return "/dev/net/tun is missing (load the tun module: modprobe tun)";
  return "/dev/net/tun is not accessible to you (" + std::string(std::strerror(e)) +
         "); distributions make it mode 0666: chmod 0666 /dev/net/tun as root, or a udev rule";
}

std::string error_report(const Error& e) { return "E" + std::to_string(static_cast<int>(e.code())) + " " + e.what(); }

void throw_reported(const std::string& report, const std::string& fallback) {
  if (report.size() > 1 && report[0] == 'E') {
    auto sp = report.find(' ');
    int code = std::atoi(report.substr(1, sp - 1).c_str());
    throw Error(code > 0 ? static_cast<Errc>(code) : Errc::kInternal, sp == std::string::npos ? "" : report.substr(sp + 1));
  }
  throw Error(Errc::kNetwork, fallback);
}

int run_in_netns(pid_t pid, const std::function<int()>& fn) {
  return run_in_netns("/proc/" + std::to_string(pid) + "/ns/net", fn);
}

int run_in_netns(const std::string& path, const std::function<int()>& fn) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("socketpair");
  pid_t child = fork();
  if (child < 0) {
    int e = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    throw system_error("fork", e);
  }
  if (child == 0) {
    ::close(sv[0]);
    std::string reply;
    int fd = -1;
    try {
      int ns = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0) throw_errno("cannot open the network namespace " + path);
      if (::setns(ns, CLONE_NEWNET) != 0) throw_errno("cannot enter the network namespace " + path);
      ::close(ns);
      fd = fn();
      reply = "K";
    } catch (const Error& e) {
      reply = error_report(e);
    } catch (const std::exception& e) {
      reply = error_report(Error(Errc::kInternal, e.what()));
    }
    msghdr msg{};
    iovec iov{reply.data(), reply.size()};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))]{};
    if (fd >= 0) {
      msg.msg_control = ctl;
      msg.msg_controllen = sizeof ctl;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    (void)::sendmsg(sv[1], &msg, MSG_NOSIGNAL);
    _exit(0);
  }
  ::close(sv[1]);
  char buf[4096];
  msghdr msg{};
  iovec iov{buf, sizeof buf};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))]{};
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof ctl;
  ssize_t n;
  do n = ::recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  ::close(sv[0]);
  while (waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
  }
  int fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  std::string reply(buf, n > 0 ? static_cast<size_t>(n) : 0);
  if (reply == "K") return fd;
  if (fd >= 0) ::close(fd);
  throw_reported(reply, "the process that configures the network namespace " + path + " ended early");
}

void write_sysctl(const std::string& path, const std::string& value) {
  std::string full = "/proc/sys/net/" + path;
  int fd = ::open(full.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open " + full);
  ssize_t n = ::write(fd, value.data(), value.size());
  int e = errno;
  ::close(fd);
  if (n < 0) throw system_error("cannot write " + full, e);
}

in_addr parse_ipv4(const std::string& text, const std::string& what) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1)
    throw Error(Errc::kInvalidInput, "invalid IPv4 address \"" + text + "\" for " + what);
  return a;
}

in6_addr parse_ipv6(const std::string& text, const std::string& what) {
  in6_addr a{};
  if (inet_pton(AF_INET6, text.c_str(), &a) != 1)
    throw Error(Errc::kInvalidInput, "invalid IPv6 address \"" + text + "\" for " + what);
  return a;
}

std::string ipv4_text(in_addr a) {
  char buf[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &a, buf, sizeof buf);
}

std::string ipv6_text(const in6_addr& a) {
  char buf[INET6_ADDRSTRLEN];
  return inet_ntop(AF_INET6, &a, buf, sizeof buf);
}

std::pair<in_addr, int> parse_cidr4(const std::string& text, const std::string& what) {
  auto slash = text.find('/');
  if (slash == std::string::npos)
    throw Error(Errc::kInvalidInput, "invalid subnet \"" + text + "\" for " + what + "; write it as ADDRESS/PREFIX, e.g. 10.89.1.0/24");
  in_addr a = parse_ipv4(text.substr(0, slash), what);
  int prefix = -1;
  try {
    size_t used = 0;
    prefix = std::stoi(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) prefix = -1;
  } catch (const std::exception&) {
  }
  if (prefix < 8 || prefix > 30)
    throw Error(Errc::kInvalidInput, "invalid prefix in \"" + text + "\" for " + what + "; it is /8 to /30");
  return {a, prefix};
}

}  // namespace hutch::netutil
