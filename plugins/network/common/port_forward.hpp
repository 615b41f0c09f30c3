// Published ports of a container on a bridge network, forwarded in user space (podman's
// rootlessport role): listeners bound in the host's network namespace, connections made from
// the network's namespace to the container's address.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <vector>

namespace hutch::netutil {

struct Forward {
  int listener = -1;  // bound in the host's namespace (TCP: not yet listening)
  bool udp = false;
  in_addr target{};
  std::uint16_t port = 0;  // the container's
};

// Enters the namespace at `netns_fd`, then relays until `exit_fd` is readable. Never returns
// an error once it serves: a connection that fails is closed.
void serve_forwards(std::vector<Forward> forwards, int netns_fd, int exit_fd);

}  // namespace hutch::netutil
