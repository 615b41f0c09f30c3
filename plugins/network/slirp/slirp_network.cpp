// slirp: user-mode networking without root, the rootless default (slirp4netns's role, with
// libslirp linked in). For each container the monitor forks a helper ("hutch-slirp") that makes
// the tap device eth0 in the container's network namespace, configures it, publishes the
// ports, then runs libslirp on it until the container's init ends.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "../common/helper_process.hpp"
#include "../common/netutil.hpp"
#include "../common/port_forward.hpp"
#include "../common/slirp_stack.hpp"
#include "hutch/abi.hpp"
#include "hutch/error.hpp"
#include "hutch/network.hpp"
#include "hutch/paths.hpp"

namespace hutch::network::slirp {
namespace {

using nlohmann::json;
using namespace hutch::netutil;

bool parse_bool(const std::string& v, const std::string& what) {
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  throw Error(Errc::kUsage, what + " is true or false, not \"" + v + "\"");
}

unsigned parse_mtu(const std::string& v, const std::string& what) {
  unsigned long n = 0;
  try {
    size_t used = 0;
    n = std::stoul(v, &used);
    if (used != v.size()) n = 0;
  } catch (const std::exception&) {
  }
  if (n < 1280 || n > 65521) throw Error(Errc::kUsage, what + " must be from 1280 to 65521, not \"" + v + "\"");
  return static_cast<unsigned>(n);
}

class SlirpNetwork final : public NetworkBackend {
 public:
  explicit SlirpNetwork(const PluginContext& ctx) : ctx_(ctx) {
    const json& c = ctx.config;
    for (const auto& [k, v] : c.items()) {
      std::string what = "[plugins.slirp] " + k;
      if (k == "mtu") {
        // TOML integers arrive as signed JSON numbers.
        if (!v.is_number_integer()) throw Error(Errc::kConfig, what + " must be a number from 1280 to 65521");
        defaults_.mtu = parse_mtu(std::to_string(v.get<long long>()), what);
      } else if (k == "port_handler") {
        if (!v.is_string() || (v != "rootlesskit" && v != "slirp4netns"))
          throw Error(Errc::kConfig, what + " is \"rootlesskit\" (relayed socket to socket, the default) or \"slirp4netns\" (libslirp's forwards)");
        defaults_.slirp_ports = v == "slirp4netns";
      } else if (k == "allow_host_loopback" || k == "enable_ipv6") {
        if (!v.is_boolean()) throw Error(Errc::kConfig, what + " must be true or false");
        (k == "enable_ipv6" ? defaults_.ipv6 : defaults_.allow_host_loopback) = v.get<bool>();
      } else {
        throw Error(Errc::kConfig, "unknown key " + what + "; known: mtu, allow_host_loopback, enable_ipv6, port_handler");
      }
    }
  }

  NetworkCapabilities capabilities() const override {
    NetworkCapabilities caps;
    caps.isolated = true;
    caps.connectivity = true;
    caps.port_publishing = true;
    caps.description = "user-mode TCP/IP (libslirp) on a tap device in the container's network namespace, "
                       "one helper process per container; 10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3";
    caps.unavailable = tun_problem();
    return caps;
  }

  std::vector<NetworkInfo> list_networks() const override {
    NetworkInfo n;
    n.name = "slirp";
    n.driver = "slirp";
    n.subnet = "10.0.2.0/24";
    n.gateway = kSlirpGateway;
    n.dns_server = kSlirpDns;
    return {n};
  }

  NetworkPlan plan(const NetworkRequest& req) override {
    SlirpSettings s = settings_for(req);
    if (!req.networks.empty())
      throw Error(Errc::kUsage, "the slirp network has no user networks; use \"--network NAME\" of \"hutch network create\"");
    for (const auto& p : req.ports)
      if (!p.host_ip.empty() && p.host_ip.find(':') != std::string::npos && !s.ipv6)
        throw Error(Errc::kUsage, "-p on " + p.host_ip + " needs IPv6, which is off (enable_ipv6=false)");
    NetworkPlan plan;
    plan.new_netns = true;
    plan.loopback_up = true;
    plan.nameservers = {kSlirpDns};
    if (s.ipv6) plan.nameservers.push_back(kSlirpDns6);
    plan.hosts.push_back({kSlirpGateway, "host.containers.internal host.docker.internal"});
    return plan;
  }

  NetworkAttachment attach(const NetworkRequest& req, pid_t container_pid) override {
    SlirpSettings s = settings_for(req);
    std::string problem = tun_problem();
    if (!problem.empty()) throw Error(Errc::kPermission, "the slirp network cannot work: " + problem + "; or use --network none");
    std::vector<PortMapping> ports = req.ports;
    Helper h = spawn_helper("hutch-slirp", {}, [&](const auto& ready) {
      int pidfd = pidfd_of(container_pid);
      if (pidfd < 0) throw Error(Errc::kRuntime, "the container's process " + std::to_string(container_pid) + " is gone");
      int tap = run_in_netns(container_pid, [&] {
        int fd = open_tap("eth0");
        Netlink nl;
        int idx = nl.ifindex("eth0");
        nl.set_up(idx, s.mtu);
        in_addr a = parse_ipv4(kSlirpGuest, "eth0"), gw = parse_ipv4(kSlirpGateway, "eth0");
        nl.add_address(idx, AF_INET, &a, kSlirpPrefix);
        nl.add_default_route(AF_INET, &gw);
        if (s.ipv6) {
          in6_addr a6 = parse_ipv6(kSlirpGuest6, "eth0"), gw6 = parse_ipv6(kSlirpGateway6, "eth0");
          nl.add_address(idx, AF_INET6, &a6, kSlirpPrefix6);
          nl.add_default_route(AF_INET6, &gw6);
        }
        return fd;
      });
      SlirpStack stack(tap, s);
      in_addr guest = parse_ipv4(kSlirpGuest, "eth0");
      std::string bound;
      // Published ports are relayed socket to socket by a thread of this helper that enters
      // the container's namespace (a thread's namespace is its own), as podman's default
      // (rootlesskit's port driver) does: the container sees connections from its own address.
      // With port_handler=slirp4netns TCP ports are libslirp's host forwards instead, which
      // show the client as 10.0.2.2 and cost a trip through the user-mode stack. UDP ports are
      // always relayed: libslirp sends a local client's answers to its alias 10.0.2.2, which it
      // drops unless the host's loopback is allowed.
      std::vector<Forward> relayed;
      for (auto& p : ports) {
        if (p.protocol == "tcp" && s.slirp_ports) {
          p.host_port = stack.forward(false, p.host_ip, p.host_port, guest, p.container_port);
        } else {
          Forward f;
          f.udp = p.protocol == "udp";
          f.listener = bind_host_port(f.udp, p.host_ip, p.host_port, &p.host_port);
          f.target = guest;
          f.port = p.container_port;
          relayed.push_back(f);
        }
        bound += std::to_string(p.host_port) + " ";
      }
      if (!relayed.empty()) {
        std::string path = "/proc/" + std::to_string(container_pid) + "/ns/net";
        int ns = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (ns < 0) throw_errno("cannot open the network namespace " + path);
        int exit_fd = ::dup(pidfd);
        std::thread([relayed, ns, exit_fd] {
          try {
            serve_forwards(relayed, ns, exit_fd);
          } catch (const std::exception&) {
          }
        }).detach();
      }
      ready(bound);
      stack.run(pidfd);
    });
    std::istringstream in(h.ready);
    for (auto& p : ports) in >> p.host_port;
    record_helper(helper_file(req.container_id), h.pid);
    {
      std::lock_guard lk(mu_);
      helpers_[req.container_id] = h;
    }
    NetworkAttachment out;
    out.ports = ports;
    NetworkEndpoint ep;
    ep.network = "slirp";
    ep.interface = "eth0";
    ep.ipv4 = kSlirpGuest;
    ep.prefix = kSlirpPrefix;
    ep.gateway = kSlirpGateway;
    if (s.ipv6) ep.ipv6 = kSlirpGuest6, ep.prefix6 = kSlirpPrefix6, ep.gateway6 = kSlirpGateway6;
    out.endpoints.push_back(ep);
    return out;
  }

  void detach(const NetworkRequest& req) override {
    Helper h;
    {
      std::lock_guard lk(mu_);
      if (auto it = helpers_.find(req.container_id); it != helpers_.end()) h = it->second, helpers_.erase(it);
    }
    if (h.pid > 0) {
      stop_helper(h);
      std::error_code ec;
      std::filesystem::remove(helper_file(req.container_id), ec);
    } else {
      stop_recorded_helper(helper_file(req.container_id));
    }
  }

 private:
  SlirpSettings settings_for(const NetworkRequest& req) const {
    SlirpSettings s = defaults_;
    for (const auto& [k, v] : req.options) {
      std::string what = "--network slirp option " + k;
      if (k == "mtu") s.mtu = parse_mtu(v, what);
      else if (k == "allow_host_loopback") s.allow_host_loopback = parse_bool(v, what);
      else if (k == "enable_ipv6") s.ipv6 = parse_bool(v, what);
      else if (k == "port_handler" && (v == "slirp4netns" || v == "rootlesskit")) s.slirp_ports = v == "slirp4netns";
      else
        throw Error(Errc::kUsage, "unknown " + what + " (or bad value); known: mtu, allow_host_loopback, enable_ipv6, "
                                  "port_handler=rootlesskit|slirp4netns");
    }
    return s;
  }
  std::filesystem::path helper_file(const std::string& id) const { return ctx_.run_root / ("slirp-" + id.substr(0, 12) + ".pid"); }

  PluginContext ctx_;
  SlirpSettings defaults_;
  std::mutex mu_;
  std::map<std::string, Helper> helpers_;
};

std::unique_ptr<NetworkBackend> make_slirp_network(const PluginContext& ctx) { return std::make_unique<SlirpNetwork>(ctx); }

}  // namespace
}  // namespace hutch::network::slirp

HUTCH_PLUGIN(hutch::NetworkBackend, "slirp", "0.1.0", hutch::network::slirp::make_slirp_network);
