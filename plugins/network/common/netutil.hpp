// What the network plugins share: rtnetlink for links, addresses and routes, tap devices,
// moving between network namespaces, and the address text forms.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "hutch/error.hpp"

namespace hutch::netutil {

// One rtnetlink socket of the network namespace this thread was in when it was made. Every
// call waits for the kernel's answer and throws Error(kNetwork) with the kernel's errno.
class Netlink {
 public:
  Netlink();
  ~Netlink();
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;

  int ifindex(const std::string& name) const;  // 0 when there is none
  void set_up(int ifindex, unsigned mtu = 0);
  void add_address(int ifindex, int family, const void* addr, int prefix);  // IPv6: no DAD
  void add_default_route(int family, const void* gateway);
  void create_bridge(const std::string& name, unsigned mtu, const std::array<unsigned char, 6>& mac);
  // A veth pair: `name` stays here, `peer` is made in the namespace open at `peer_netns_fd`.
  void create_veth(const std::string& name, const std::string& peer, int peer_netns_fd, unsigned mtu);
  void set_master(int ifindex, int master_ifindex);
  void remove_link(int ifindex);

 private:
  void request(void* msg, const char* what);
  int fd_ = -1;
  std::uint32_t seq_ = 0;
};

// A tap device named `name` in the current network namespace (IFF_TAP | IFF_NO_PI); its fd.
int open_tap(const std::string& name);
// Why /dev/net/tun cannot serve a tap device to this user, with the fix, or "" when it can.
std::string tun_problem();

// How a child reports an Error to its parent ("E<code> <message>"), and the parent's side:
// throws the Error `report` holds (`fallback` when it holds none).
std::string error_report(const Error& e);
[[noreturn]] void throw_reported(const std::string& report, const std::string& fallback);

// Runs `fn` in a child process that enters the network namespace of `pid` (a process can
// leave for a namespace of hutch's user namespace but never return to the host's, which the
// init user namespace owns). `fn` may return an fd (or -1), which comes back to the caller
// (SCM_RIGHTS); its Error comes back as an Error with the same code and message.
int run_in_netns(pid_t pid, const std::function<int()>& fn);
// The same for the namespace at `path` (/proc/PID/task/TID/ns/net).
int run_in_netns(const std::string& path, const std::function<int()>& fn);

// /proc/sys/net/... of the current network namespace.
void write_sysctl(const std::string& path, const std::string& value);

in_addr parse_ipv4(const std::string& text, const std::string& what);
in6_addr parse_ipv6(const std::string& text, const std::string& what);
std::string ipv4_text(in_addr a);
std::string ipv6_text(const in6_addr& a);
// "10.89.1.0/24" into its address and prefix; throws naming `what`.
std::pair<in_addr, int> parse_cidr4(const std::string& text, const std::string& what);

}  // namespace hutch::netutil
