// none: the container gets a network namespace of its own with only loopback.
#include "hutch/abi.hpp"
#include "hutch/network.hpp"

namespace hutch::network::none {
namespace {

class NoneNetwork final : public NetworkBackend {
 public:
  NetworkCapabilities capabilities() const override {
    NetworkCapabilities caps;
    caps.isolated = true;
    caps.connectivity = false;
    caps.description = "an isolated network namespace with only the loopback interface";
    return caps;
  }
  std::vector<NetworkInfo> list_networks() const override {
    NetworkInfo n;
    n.name = "none";
    n.driver = "none";
    return {n};
  }
  NetworkPlan plan(const NetworkRequest&) override {
    NetworkPlan p;
    p.new_netns = true;
    p.loopback_up = true;
    p.copy_host_dns = false;
    return p;
  }
  NetworkAttachment attach(const NetworkRequest&, pid_t) override { return {}; }  // nothing to connect
  void detach(const NetworkRequest&) override {}
};

std::unique_ptr<NetworkBackend> make_none_network(const PluginContext&) { return std::make_unique<NoneNetwork>(); }

}  // namespace
}  // namespace hutch::network::none

HUTCH_PLUGIN(hutch::NetworkBackend, "none", "0.1.0", hutch::network::none::make_none_network);
