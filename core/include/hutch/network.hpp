// The network family: how a container's network namespace is made and connected, its
// published ports, and the user networks (`hutch network create`) of the backends that have them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "hutch/context.hpp"

namespace hutch {

struct NetworkCapabilities {
  bool isolated = false;        // the container gets its own network namespace
  bool connectivity = false;    // the container can reach other hosts
  bool port_publishing = false;
  std::string description;
  bool user_networks = false;   // create_network, remove_network, connect, disconnect
  // Empty when the backend works on this host; else why not and the fix (`hutch info`).
  std::string unavailable;
};

// One published port: -p [host_ip:][host_port:]container_port[/protocol].
struct PortMapping {
  std::string host_ip;             // empty: every address of the host
  std::uint16_t host_port = 0;     // 0: a free port, chosen when the container starts
  std::uint16_t container_port = 0;
  std::string protocol = "tcp";    // tcp or udp
  bool operator==(const PortMapping&) const = default;
};

// One network a running container is on.
struct NetworkEndpoint {
  std::string network;
  std::string interface;        // inside the container: eth0, eth1...
  std::string ipv4;             // 10.0.2.100
  int prefix = 0;               // 24
  std::string gateway;
  std::string ipv6;             // empty: none
  int prefix6 = 0;
  std::string gateway6;
  std::string mac;
  std::vector<std::string> aliases;
};

// A user network (bridge): `hutch network create`.
struct NetworkInfo {
  std::string name;
  std::string driver;
  std::string id;               // 64 hex; empty for the backends' own fixed networks
  std::string subnet;           // 10.89.1.0/24
  std::string gateway;
  bool internal = false;        // no uplink: no outbound traffic, no published ports
  std::string created;          // RFC 3339
  std::map<std::string, std::string> labels;
  std::string dns_server;       // what its containers' resolv.conf names
};

struct NetworkCreateRequest {
  std::string name;
  std::string subnet;           // empty: the next free 10.89.N.0/24
  std::string gateway;          // empty: the subnet's first address
  bool internal = false;
  std::map<std::string, std::string> labels;
};

// What the backend wants of the container's spec.
struct NetworkPlan {
  bool new_netns = true;        // a new network namespace (false: the host's)
  bool loopback_up = true;      // bring `lo` up in the new namespace
  bool copy_host_dns = false;   // the container's resolv.conf is the host's
  std::vector<std::string> nameservers;
  std::vector<std::string> dns_search;
  std::vector<std::pair<std::string, std::string>> hosts;  // extra /etc/hosts lines: address, names
};

struct NetworkRequest {
  std::string container_id;
  std::string network;                        // the name the user asked for (--network)
  std::string container_name;
  std::vector<std::string> networks;          // the user networks it is on (bridge), in order
  std::map<std::string, std::vector<std::string>> aliases;  // --network-alias, by network
  std::map<std::string, std::string> options; // --network slirp:mtu=1500,allow_host_loopback=true
  std::vector<PortMapping> ports;             // -p, -P
};

// What attach made: the ports as bound (a free port chosen for host_port 0), the endpoints.
struct NetworkAttachment {
  std::vector<PortMapping> ports;
  std::vector<NetworkEndpoint> endpoints;
};

class HUTCH_API NetworkBackend {
 public:
  static constexpr const char* kFamily = "network";
  virtual ~NetworkBackend() = default;
  virtual NetworkCapabilities capabilities() const = 0;
  virtual std::vector<NetworkInfo> list_networks() const = 0;
  // Refuses what it cannot do (bad options, ports it cannot publish) before anything is made.
  virtual NetworkPlan plan(const NetworkRequest& request) = 0;
  // The container exists (its network namespace is /proc/<pid>/ns/net): connect it. A port
  // that cannot be bound fails here, naming the port and why.
  virtual NetworkAttachment attach(const NetworkRequest& request, pid_t container_pid) = 0;
  // Undoes attach; also after the container's processes are gone. Never throws for what is
  // already gone.
  virtual void detach(const NetworkRequest& request) = 0;

  // User networks; only when capabilities().user_networks.
  virtual NetworkInfo create_network(const NetworkCreateRequest& request);
  virtual void remove_network(const std::string& name);
  // Hot-plugs a running container (its init is `container_pid`) into one more network, or
  // out of one; `request` names the networks it is on before the change.
  virtual NetworkEndpoint connect(const NetworkRequest& request, const std::string& network, pid_t container_pid);
  virtual void disconnect(const NetworkRequest& request, const std::string& network);
};

// The -p syntax, docker's: [ip:][hostPort[-end]:]containerPort[-end][/tcp|udp]. Ranges expand
// to one mapping a port; throws kUsage naming the flag's value.
HUTCH_API std::vector<PortMapping> parse_port_spec(const std::string& spec);
// The EXPOSE syntax (80, 80/udp, 8000-8002/tcp), as an image's ExposedPorts key.
HUTCH_API std::vector<PortMapping> parse_exposed_port(const std::string& key);
// docker's words: "0.0.0.0:8080->80/tcp" for ps, and inspect's "80/tcp".
HUTCH_API std::string port_display(const PortMapping& p);

}  // namespace hutch
