// User networks: network create, ls, inspect, rm, prune, connect, disconnect. The networks
// themselves are the bridge backend's (its own state, under its own lock); which containers
// are on which network is in the containers' records.
#include <algorithm>

#include "engine_internal.hpp"
#include "hutch/engine.hpp"

namespace hutch {

using nlohmann::json;

namespace {

constexpr const char* kUserNetworks = "bridge";

bool running(const ContainerRecord& c) { return c.state.status == "running" || c.state.status == "paused"; }

}  // namespace

NetworkInfo Engine::create_network(const NetworkCreateRequest& request) {
  return network(kUserNetworks).create_network(request);
}

std::vector<NetworkInfo> Engine::list_networks() {
  std::vector<NetworkInfo> out;
  for (const auto& f : loader_.discover(NetworkBackend::kFamily)) {
    try {
      for (auto& n : network(f.name).list_networks()) out.push_back(n);
    } catch (const Error& e) {
      logger_.debug("network backend " + f.name + ": " + e.what());
    }
  }
  return out;
}

std::optional<json> Engine::inspect_network(const std::string& name) {
  for (const auto& n : list_networks()) {
    if (n.name != name && (n.id.empty() || n.id.rfind(name, 0) != 0 || name.size() < 3)) continue;
    json containers = json::object();
    for (const auto& c : list_containers()) {
      bool on = std::find(c.networks.begin(), c.networks.end(), n.name) != c.networks.end() ||
                (c.networks.empty() && c.network == n.name);
      if (!on) continue;
      std::string ip;
      for (const auto& ep : running(c) ? c.state.endpoints : std::vector<NetworkEndpoint>{})
        if (ep.network == n.name && !ep.ipv4.empty()) ip = ep.ipv4 + "/" + std::to_string(ep.prefix);
      containers[c.id] = {{"Name", c.name}, {"IPv4Address", ip}, {"Aliases", c.network_aliases}};
    }
    json ipam = json::array();
    if (!n.subnet.empty()) ipam.push_back({{"Subnet", n.subnet}, {"Gateway", n.gateway}});
    return json{{"Name", n.name},
                {"Id", n.id},
                {"Created", n.created},
                {"Driver", n.driver},
                {"IPAM", {{"Driver", "default"}, {"Config", ipam}}},
                {"Internal", n.internal},
                {"DNSEnabled", !n.dns_server.empty()},
                {"Containers", containers},
                {"Labels", n.labels}};
  }
  return std::nullopt;
}

std::vector<std::string> Engine::remove_network(const std::string& name, bool force) {
  auto j = inspect_network(name);
  if (!j) throw Error(Errc::kNotFound, "no such network: " + name + " (see \"hutch network ls\")");
  if ((*j)["Driver"] != kUserNetworks)
    throw Error(Errc::kUsage, "network " + name + " is the " + (*j)["Driver"].get<std::string>() + " backend's own; it cannot be removed");
  std::string real = (*j)["Name"];
  std::vector<std::string> users;
  for (const auto& [id, c] : (*j)["Containers"].items()) users.push_back(c["Name"]);
  if (!users.empty()) {
    if (!force) {
      std::string list;
      for (const auto& u : users) list += (list.empty() ? "" : ", ") + u;
      throw Error(Errc::kAlreadyExists, "network " + real + " is used by container" + (users.size() > 1 ? "s " : " ") + list +
                                            "; remove them first, or use \"hutch network rm -f\" to remove them too");
    }
    // One entry a name, empty where it went well.
    for (const auto& err : remove_containers(users, true))
      if (!err.empty()) throw Error(Errc::kRuntime, "cannot remove the containers of network " + real + ": " + err);
  }
  network(kUserNetworks).remove_network(real);
  return users;
}

std::vector<std::string> Engine::prune_networks() {
  std::vector<std::string> removed;
  for (const auto& n : network(kUserNetworks).list_networks()) {
    auto j = inspect_network(n.name);
    if (!j || !(*j)["Containers"].empty()) continue;
    try {
      network(kUserNetworks).remove_network(n.name);
      removed.push_back(n.name);
    } catch (const Error& e) {
      logger_.warn("cannot remove network " + n.name + ": " + e.what());
    }
  }
  return removed;
}

void Engine::connect_network(const std::string& net, const std::string& container, const std::vector<std::string>& aliases) {
  if (!inspect_network(net) && net != "hutch")
    throw Error(Errc::kNotFound, "no such network: " + net + " (create it with \"hutch network create " + net + "\")");
  ContainerRecord before;
  {
    auto lock = store().lock(FileLock::Mode::kExclusive);
    ContainerRecord rec = find_container_or_throw(container);
    if (rec.network != kUserNetworks)
      throw Error(Errc::kUsage, "container " + rec.name + " is on the " + rec.network +
                                    " network; only containers on user networks (--network NAME) can join more");
    if (std::find(rec.networks.begin(), rec.networks.end(), net) != rec.networks.end())
      throw Error(Errc::kAlreadyExists, "container " + rec.name + " is already on network " + net);
    before = rec;
    auto all = store().container_records();
    for (auto& c : all)
      if (c.id == rec.id) {
        c.networks.push_back(net);
        for (const auto& a : aliases)
          if (std::find(c.network_aliases.begin(), c.network_aliases.end(), a) == c.network_aliases.end()) c.network_aliases.push_back(a);
      }
    store().save_containers(all);
  }
  if (!running(before)) return;
  NetworkRequest req = network_request(before);
  req.aliases[net] = aliases;
  NetworkEndpoint ep = network(kUserNetworks).connect(req, net, before.state.pid);
  store().update_container_state(before.id, [&](ContainerState& s) { s.endpoints.push_back(ep); }, Durability::kVolatile);
}

void Engine::disconnect_network(const std::string& net, const std::string& container) {
  ContainerRecord before;
  {
    auto lock = store().lock(FileLock::Mode::kExclusive);
    ContainerRecord rec = find_container_or_throw(container);
    if (std::find(rec.networks.begin(), rec.networks.end(), net) == rec.networks.end())
      throw Error(Errc::kNotFound, "container " + rec.name + " is not on network " + net);
    before = rec;
    auto all = store().container_records();
    for (auto& c : all)
      if (c.id == rec.id) std::erase(c.networks, net);
    store().save_containers(all);
  }
  if (!running(before)) return;
  network(kUserNetworks).disconnect(network_request(before), net);
  store().update_container_state(
      before.id, [&](ContainerState& s) { std::erase_if(s.endpoints, [&](const NetworkEndpoint& e) { return e.network == net; }); },
      Durability::kVolatile);
}

}  // namespace hutch
