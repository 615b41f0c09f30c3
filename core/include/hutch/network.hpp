// The network family: how a container's network namespace is made and connected.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "hutch/context.hpp"

namespace hutch {

struct NetworkCapabilities {
  bool isolated = false;      // the container gets its own network namespace
  bool connectivity = false;  // the container can reach other hosts
  bool port_publishing = false;
  std::string description;
};

struct NetworkInfo {
  std::string name;
  std::string driver;
};

// What the backend wants of the container's spec.
struct NetworkPlan {
  bool new_netns = true;        // a new network namespace (false: the host's)
  bool loopback_up = true;      // bring `lo` up in the new namespace
  bool copy_host_dns = false;   // the container's resolv.conf is the host's
  std::vector<std::string> nameservers;
};

struct NetworkRequest {
  std::string container_id;
  std::string network;  // the name the user asked for
};

class NetworkBackend {
 public:
  static constexpr const char* kFamily = "network";
  virtual ~NetworkBackend() = default;
  virtual NetworkCapabilities capabilities() const = 0;
  virtual std::vector<NetworkInfo> list_networks() const = 0;
  virtual NetworkPlan plan(const NetworkRequest& request) = 0;
  // The container exists (its network namespace is /proc/<pid>/ns/net): connect it.
  virtual void attach(const NetworkRequest& request, pid_t container_pid) = 0;
  virtual void detach(const NetworkRequest& request) = 0;
};

}  // namespace hutch
