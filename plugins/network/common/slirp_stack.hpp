// libslirp's user-mode TCP/IP stack on a tap device: what the slirp backend runs per container,
// and the bridge backend for the uplink of its shared namespace. The addresses are
// slirp4netns's, so what a podman user knows holds: 10.0.2.0/24, the host (gateway) 10.0.2.2,
// the DNS forwarder 10.0.2.3, the guest 10.0.2.100; fd00::/64 with ::2, ::3 and ::100.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct Slirp;

namespace hutch::netutil {

inline constexpr const char* kSlirpGuest = "10.0.2.100";
inline constexpr const char* kSlirpGateway = "10.0.2.2";
inline constexpr const char* kSlirpDns = "10.0.2.3";
inline constexpr const char* kSlirpGuest6 = "fd00::100";
inline constexpr const char* kSlirpGateway6 = "fd00::2";
inline constexpr const char* kSlirpDns6 = "fd00::3";
inline constexpr int kSlirpPrefix = 24;
inline constexpr int kSlirpPrefix6 = 64;

struct SlirpSettings {
  unsigned mtu = 65520;
  bool ipv6 = true;
  bool allow_host_loopback = false;  // 10.0.2.2 reaches the host's 127.0.0.1
  bool slirp_ports = false;          // TCP ports as libslirp host forwards (port_handler=slirp4netns)
};

class SlirpStack {
 public:
  SlirpStack(int tap_fd, const SlirpSettings& settings);
  ~SlirpStack();
  SlirpStack(const SlirpStack&) = delete;
  SlirpStack& operator=(const SlirpStack&) = delete;

  // Publishes host_ip:host_port (host_port 0: a free one, returned) on guest:guest_port.
  // Throws naming the port: in use, or below net.ipv4.ip_unprivileged_port_start.
  std::uint16_t forward(bool udp, const std::string& host_ip, std::uint16_t host_port, in_addr guest,
                        std::uint16_t guest_port);
  // Serves until `exit_fd` is readable or hangs up (a pidfd of the process it serves, or a pipe).
  void run(int exit_fd);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Probes `host_ip:port` (0: any) as slirp will bind it and returns the port it got; throws
// with the reason a user can act on.
std::uint16_t probe_host_port(bool udp, const std::string& host_ip, std::uint16_t port);
// The same, keeping the socket (bound, not yet listening): its fd, and the port in `bound`.
int bind_host_port(bool udp, const std::string& host_ip, std::uint16_t port, std::uint16_t* bound);

}  // namespace hutch::netutil
