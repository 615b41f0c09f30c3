// host: the container shares the host's network namespace, as `--network host`.
#include "hutch/abi.hpp"
#include "hutch/network.hpp"

namespace hutch::network::host {
namespace {

class HostNetwork final : public NetworkBackend {
 public:
  NetworkCapabilities capabilities() const override {
    NetworkCapabilities caps;
    caps.isolated = false;
    caps.connectivity = true;
    caps.description = "the host's network namespace (no isolation; ports are the host's)";
    return caps;
  }
  std::vector<NetworkInfo> list_networks() const override {
    NetworkInfo n;
    n.name = "host";
    n.driver = "host";
    return {n};
  }
  NetworkPlan plan(const NetworkRequest&) override {
    NetworkPlan p;
    p.new_netns = false;
    p.loopback_up = false;
    p.copy_host_dns = true;
    return p;
  }
  NetworkAttachment attach(const NetworkRequest&, pid_t) override { return {}; }  // already there
  void detach(const NetworkRequest&) override {}
};

std::unique_ptr<NetworkBackend> make_host_network(const PluginContext&) { return std::make_unique<HostNetwork>(); }

}  // namespace
}  // namespace hutch::network::host

HUTCH_PLUGIN(hutch::NetworkBackend, "host", "0.1.0", hutch::network::host::make_host_network);
