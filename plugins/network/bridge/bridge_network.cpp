// bridge: user networks without root. Each network lives in a network namespace of its own,
// held by a helper process ("hutch-bridge") that made it: a Linux bridge with the network's
// gateway address, a veth pair per container (the container's end is eth0, eth1, ... in its
// own namespace), a name server on the gateway for the containers' names and aliases, and,
// unless the network is internal, a libslirp uplink on a tap device for outbound traffic.
// Published ports are forwarded by a helper per container ("hutch-portfwd") from the host
// into the network's namespace. The holder ends when the last container leaves (or dies).
// What networks exist, and which container has which address, is in <plugin state>/bridge.json,
// changed under bridge.lock.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <condition_variable>

#include "../common/helper_process.hpp"
#include "../common/netutil.hpp"
#include "../common/port_forward.hpp"
#include "../common/slirp_stack.hpp"
#include "dns.hpp"
#include "hutch/abi.hpp"
#include "hutch/error.hpp"
#include "hutch/lock.hpp"
#include "hutch/network.hpp"
#include "hutch/paths.hpp"
#include "hutch/store.hpp"

namespace hutch::network::bridge {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace hutch::netutil;

constexpr const char* kDefaultNetwork = "hutch";  // docker's "bridge", podman's "podman"
constexpr const char* kBridgeIf = "hutch0";

struct Endpoint {
  std::string ip;
  std::string name;
  std::vector<std::string> aliases;
  pid_t pid = 0;
  unsigned long long pid_start = 0;
  std::string interface;
};

struct Net {
  NetworkInfo info;
  std::map<std::string, Endpoint> endpoints;  // by container id
  pid_t holder = 0;
  pid_t holder_tid = 0;  // the thread of the holder whose network namespace is the network's
  unsigned long long holder_start = 0;
  std::string netns() const { return "/proc/" + std::to_string(holder) + "/task/" + std::to_string(holder_tid) + "/ns/net"; }
};

struct State {
  std::map<std::string, Net> nets;
};

std::uint32_t ip_u32(const std::string& s) { return ntohl(parse_ipv4(s, "the network").s_addr); }
std::string u32_ip(std::uint32_t v) {
  in_addr a{htonl(v)};
  return ipv4_text(a);
}
int prefix_of(const std::string& subnet) { return parse_cidr4(subnet, "the network").second; }

State load(const fs::path& file) {
  State st;
  json j;
  try {
    j = json::parse(read_file(file));
  } catch (const Error&) {
    return st;
  } catch (const json::exception& e) {
    throw Error(Errc::kCorrupt, file.string() + " is not valid JSON (" + e.what() + "); remove it to start over");
  }
  json nets = j.value("networks", json::object());
  for (const auto& [name, n] : nets.items()) {
    Net net;
    net.info.name = name;
    net.info.driver = "bridge";
    net.info.id = n.value("id", "");
    net.info.subnet = n.value("subnet", "");
    net.info.gateway = n.value("gateway", "");
    net.info.internal = n.value("internal", false);
    net.info.created = n.value("created", "");
    net.info.labels = n.value("labels", std::map<std::string, std::string>{});
    net.info.dns_server = net.info.gateway;
    net.holder = n.value("holder", 0);
    net.holder_start = n.value("holder_start", 0ULL);
    net.holder_tid = n.value("holder_tid", 0);
    json eps = n.value("endpoints", json::object());
    for (const auto& [id, e] : eps.items())
      net.endpoints[id] = {e.value("ip", ""), e.value("name", ""), e.value("aliases", std::vector<std::string>{}),
                           e.value("pid", 0), e.value("pid_start", 0ULL), e.value("interface", "")};
    st.nets[name] = net;
  }
  return st;
}

void save(const fs::path& file, const State& st) {
  json nets = json::object();
  for (const auto& [name, n] : st.nets) {
    json eps = json::object();
    for (const auto& [id, e] : n.endpoints)
      eps[id] = {{"ip", e.ip}, {"name", e.name}, {"aliases", e.aliases}, {"pid", e.pid}, {"pid_start", e.pid_start},
                 {"interface", e.interface}};
    nets[name] = {{"id", n.info.id},         {"subnet", n.info.subnet},   {"gateway", n.info.gateway},
                  {"internal", n.info.internal}, {"created", n.info.created}, {"labels", n.info.labels},
                  {"holder", n.holder},      {"holder_start", n.holder_start}, {"holder_tid", n.holder_tid}, {"endpoints", eps}};
  }
  write_file_atomic(file, json{{"networks", nets}}.dump(1) + "\n", 0600, Durability::kSynced);
}

// A locally administered unicast MAC from the network's ID.
std::array<unsigned char, 6> bridge_mac(const std::string& id) {
  std::array<unsigned char, 6> mac{0x02, 0x68, 0, 0, 0, 0};  // 02:68 ("h")
  for (size_t i = 0; i < 4 && 2 * i + 1 < id.size(); ++i)
    mac[2 + i] = static_cast<unsigned char>(std::stoi(id.substr(2 * i, 2), nullptr, 16));
  return mac;
}

bool alive(pid_t pid, unsigned long long start) { return pid > 0 && start != 0 && process_start_time(pid) == start; }

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 64 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

class BridgeNetwork final : public NetworkBackend {
 public:
  explicit BridgeNetwork(const PluginContext& ctx) : ctx_(ctx) {
    for (const auto& [k, v] : ctx.config.items()) {
      if (k == "mtu" && v.is_number_integer() && v.get<long long>() >= 1280 && v.get<long long>() <= 65521)
        mtu_ = static_cast<unsigned>(v.get<long long>());
      else if (k == "allow_host_loopback" && v.is_boolean()) host_loopback_ = v.get<bool>();
      else throw Error(Errc::kConfig, "[plugins.bridge] " + k + ": unknown key or bad value; known: mtu (1280 to 65521), "
                                      "allow_host_loopback (true or false)");
    }
  }

  NetworkCapabilities capabilities() const override {
    NetworkCapabilities caps;
    caps.isolated = true;
    caps.connectivity = true;
    caps.port_publishing = true;
    caps.user_networks = true;
    caps.description = "user networks: a bridge in a network namespace per network, a veth per container, names "
                       "resolved by a name server on the gateway, a libslirp uplink";
    if (std::string why = tun_problem(); !why.empty()) caps.unavailable = why + "; only --internal networks work";
    return caps;
  }

  std::vector<NetworkInfo> list_networks() const override {
    auto lock = take_lock(FileLock::Mode::kShared);
    std::vector<NetworkInfo> out;
    for (const auto& [name, n] : load(state_file()).nets) out.push_back(n.info);
    return out;
  }

  NetworkInfo create_network(const NetworkCreateRequest& req) override {
    if (!valid_name(req.name))
      throw Error(Errc::kUsage, "invalid network name \"" + req.name + "\": letters, digits, -, _ and . (starting with a letter or digit)");
    if (req.name == "none" || req.name == "host" || req.name == "slirp" || req.name == "slirp4netns" || req.name == "bridge")
      throw Error(Errc::kUsage, "\"" + req.name + "\" is the name of a network backend; choose another name");
    auto lock = take_lock(FileLock::Mode::kExclusive);
    State st = load(state_file());
    if (st.nets.count(req.name)) throw Error(Errc::kAlreadyExists, "network " + req.name + " already exists (see \"hutch network inspect " + req.name + "\")");
    NetworkInfo info = make_info(st, req);
    st.nets[req.name].info = info;
    save(state_file(), st);
    return info;
  }

  void remove_network(const std::string& name) override {
    auto lock = take_lock(FileLock::Mode::kExclusive);
    State st = load(state_file());
    auto it = st.nets.find(name);
    if (it == st.nets.end()) throw Error(Errc::kNotFound, "no such network: " + name + " (see \"hutch network ls\")");
    for (const auto& [id, e] : it->second.endpoints)
      if (alive(e.pid, e.pid_start))
        throw Error(Errc::kAlreadyExists, "network " + name + " is in use by container " + e.name + "; stop it or disconnect it first");
    stop_holder(it->second);
    st.nets.erase(it);
    save(state_file(), st);
  }

  NetworkPlan plan(const NetworkRequest& req) override {
    if (req.networks.empty()) throw Error(Errc::kUsage, "the bridge backend needs a network: --network NAME");
    NetworkPlan plan;
    plan.new_netns = true;
    plan.loopback_up = true;
    auto lock = take_lock(FileLock::Mode::kExclusive);
    State st = load(state_file());
    for (const auto& name : req.networks) {
      Net& n = ensure(st, name);
      if (!n.info.internal || plan.nameservers.empty())
        if (std::find(plan.nameservers.begin(), plan.nameservers.end(), n.info.gateway) == plan.nameservers.end())
          plan.nameservers.push_back(n.info.gateway);
      if (!req.ports.empty() && name == req.networks.front() && n.info.internal)
        throw Error(Errc::kUsage, "network " + name + " is internal: its containers cannot publish ports");
    }
    save(state_file(), st);
    plan.hosts.push_back({kSlirpGateway, "host.containers.internal host.docker.internal"});
    return plan;
  }

  NetworkAttachment attach(const NetworkRequest& req, pid_t pid) override {
    NetworkAttachment out;
    try {
      for (size_t i = 0; i < req.networks.size(); ++i)
        out.endpoints.push_back(connect_one(req, req.networks[i], "eth" + std::to_string(i), pid, i == 0));
      if (!req.ports.empty()) out.ports = publish(req, out.endpoints.front(), pid);
    } catch (...) {
      detach(req);
      throw;
    }
    return out;
  }

  void detach(const NetworkRequest& req) override {
    stop_recorded_helper(forwarder_file(req.container_id));
    auto lock = take_lock(FileLock::Mode::kExclusive);
    State st = load(state_file());
    for (auto& [name, n] : st.nets) {
      n.endpoints.erase(req.container_id);
      reap_dead(n);
    }
    save(state_file(), st);
  }

  NetworkEndpoint connect(const NetworkRequest& req, const std::string& network, pid_t pid) override {
    size_t index = req.networks.size();
    return connect_one(req, network, "eth" + std::to_string(index), pid, req.networks.empty());
  }

  void disconnect(const NetworkRequest& req, const std::string& network) override {
    auto lock = take_lock(FileLock::Mode::kExclusive);
    State st = load(state_file());
    auto it = st.nets.find(network);
    if (it == st.nets.end()) throw Error(Errc::kNotFound, "no such network: " + network);
    auto ep = it->second.endpoints.find(req.container_id);
    if (ep != it->second.endpoints.end()) {
      if (alive(ep->second.pid, ep->second.pid_start)) {
        std::string ifname = ep->second.interface;
        try {
          run_in_netns(ep->second.pid, [&] {
            Netlink nl;
            if (int idx = nl.ifindex(ifname)) nl.remove_link(idx);
            return -1;
          });
        } catch (const Error&) {
        }
      }
      it->second.endpoints.erase(ep);
    }
    reap_dead(it->second);
    save(state_file(), st);
  }

 private:
  fs::path state_file() const { return ctx_.plugin_state / "bridge.json"; }
  fs::path forwarder_file(const std::string& id) const { return ctx_.run_root / ("portfwd-" + id.substr(0, 12) + ".pid"); }
  FileLock take_lock(FileLock::Mode mode) const {
    make_dirs(ctx_.plugin_state, 0700);
    return FileLock(ctx_.plugin_state / "bridge.lock", mode);
  }

  NetworkInfo make_info(const State& st, const NetworkCreateRequest& req) const {
    NetworkInfo info;
    info.name = req.name;
    info.driver = "bridge";
    info.id = random_hex(32);
    info.internal = req.internal;
    info.labels = req.labels;
    info.created = now_rfc3339();
    if (req.subnet.empty()) {
      // The next free 10.89.N.0/24 (the default network is 10.88.0.0/24), as podman numbers them.
      for (int n = 0; n < 256 && info.subnet.empty(); ++n) {
        std::string cand = "10.89." + std::to_string(n) + ".0/24";
        bool used = false;
        for (const auto& [_, net] : st.nets) used |= net.info.subnet == cand;
        if (!used) info.subnet = cand;
      }
      if (info.subnet.empty()) throw Error(Errc::kAlreadyExists, "every 10.89.N.0/24 subnet is taken; give one with --subnet");
    } else {
      auto [addr, prefix] = parse_cidr4(req.subnet, "--subnet");
      std::uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
      std::uint32_t base = ntohl(addr.s_addr) & mask;
      info.subnet = u32_ip(base) + "/" + std::to_string(prefix);
      std::vector<std::pair<std::string, std::string>> taken = {{"the uplink (libslirp)", "10.0.2.0/24"}};
      for (const auto& [_, net] : st.nets) taken.push_back({"network " + net.info.name, net.info.subnet});
      for (const auto& [who, subnet] : taken) {
        auto [oaddr, oprefix] = parse_cidr4(subnet, who);
        std::uint32_t m = ~0u << (32 - std::min(prefix, oprefix));
        if ((ntohl(oaddr.s_addr) & m) == (base & m))
          throw Error(Errc::kAlreadyExists, "subnet " + info.subnet + " overlaps " + who + "'s " + subnet + "; choose another --subnet");
      }
    }
    auto [addr, prefix] = parse_cidr4(info.subnet, "the subnet");
    std::uint32_t base = ntohl(addr.s_addr);
    std::uint32_t last = base | ~(~0u << (32 - prefix));
    if (req.gateway.empty()) {
      info.gateway = u32_ip(base + 1);
    } else {
      std::uint32_t g = ip_u32(req.gateway);
      if (g <= base || g >= last) throw Error(Errc::kUsage, "--gateway " + req.gateway + " is not a host address of " + info.subnet);
      info.gateway = req.gateway;
    }
    info.dns_server = info.gateway;
    return info;
  }

  // The network `name`, made on first use when it is the default one.
  Net& ensure(State& st, const std::string& name) {
    auto it = st.nets.find(name);
    if (it != st.nets.end()) return it->second;
    if (name != kDefaultNetwork) throw Error(Errc::kNotFound, "no such network: " + name + " (create it with \"hutch network create " + name + "\")");
    NetworkCreateRequest req;
    req.name = name;
    req.subnet = "10.88.0.0/24";
    Net n;
    n.info = make_info(st, req);
    return st.nets[name] = n;
  }

  // Drops endpoints whose container is gone; stops the holder when none is left.
  void reap_dead(Net& n) {
    for (auto it = n.endpoints.begin(); it != n.endpoints.end();)
      it = alive(it->second.pid, it->second.pid_start) ? std::next(it) : n.endpoints.erase(it);
    if (n.endpoints.empty()) stop_holder(n);
  }

  void stop_holder(Net& n) {
    if (alive(n.holder, n.holder_start)) {
      Helper h;
      h.pid = n.holder;
      h.pidfd = pidfd_of(n.holder);
      if (h.pidfd >= 0) stop_helper(h);
    }
    n.holder = 0;
    n.holder_tid = 0;
    n.holder_start = 0;
  }

  std::string allocate(const Net& n, const std::string& id) const {
    if (auto it = n.endpoints.find(id); it != n.endpoints.end()) return it->second.ip;
    auto [addr, prefix] = parse_cidr4(n.info.subnet, "network " + n.info.name);
    std::uint32_t base = ntohl(addr.s_addr);
    std::uint32_t last = base | ~(~0u << (32 - prefix));
    std::uint32_t gw = ip_u32(n.info.gateway);
    for (std::uint32_t a = base + 1; a < last; ++a) {
      if (a == gw) continue;
      std::string ip = u32_ip(a);
      bool used = false;
      for (const auto& [_, e] : n.endpoints) used |= e.ip == ip;
      if (!used) return ip;
    }
    throw Error(Errc::kAlreadyExists, "network " + n.info.name + " has no free address left in " + n.info.subnet);
  }

  // Starts the holder of network `n`: its namespace, bridge, name server and uplink.
  void start_holder(Net& n) {
    NetworkInfo info = n.info;
    fs::path state = state_file(), lock = ctx_.plugin_state / "bridge.lock";
    unsigned mtu = mtu_;
    bool host_loopback = host_loopback_;
    Helper h = spawn_helper("hutch-bridge", {}, [&](const auto& ready) {
      // The namespace is a thread's: the holder itself stays in the host's namespace, where
      // libslirp's sockets must be for the uplink to reach the world (and the host's loopback).
      struct Made {
        int tap = -1, dns = -1;
        pid_t tid = 0;
        std::string error;
        Errc code = Errc::kNetwork;
      } made;
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      std::thread ns_thread([&, info, mtu] {
        Made m;
        try {
          if (::unshare(CLONE_NEWNET) != 0) throw_errno("cannot make the network namespace of network " + info.name);
          auto [addr, prefix] = parse_cidr4(info.subnet, "network " + info.name);
          Netlink nl;
          nl.set_up(nl.ifindex("lo"));
          // A MAC of its own: a bridge otherwise takes its ports' lowest, which changes as
          // containers come and go, under the ARP caches of the others.
          nl.create_bridge(kBridgeIf, mtu, bridge_mac(info.id));
          int br = nl.ifindex(kBridgeIf);
          in_addr gw = parse_ipv4(info.gateway, "the gateway");
          nl.add_address(br, AF_INET, &gw, prefix);
          nl.set_up(br, mtu);
          if (!info.internal) {
            m.tap = open_tap("tap0");
            int t = nl.ifindex("tap0");
            nl.set_up(t, mtu);
            in_addr a = parse_ipv4(kSlirpGuest, "tap0"), g = parse_ipv4(kSlirpGateway, "tap0");
            nl.add_address(t, AF_INET, &a, kSlirpPrefix);
            nl.add_default_route(AF_INET, &g);
            write_sysctl("ipv4/ip_forward", "1");
            // libslirp answers the containers' addresses, which it has not seen on its own
            // subnet, by asking ARP; the namespace answers for the bridge behind it.
            write_sysctl("ipv4/conf/tap0/proxy_arp", "1");
          }
          m.dns = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
          sockaddr_in sa{};
          sa.sin_family = AF_INET;
          sa.sin_port = htons(53);
          sa.sin_addr = gw;
          if (m.dns < 0 || ::bind(m.dns, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
            throw_errno("cannot serve names on " + info.gateway + ":53");
          m.tid = static_cast<pid_t>(::gettid());
        } catch (const Error& e) {
          m.error = e.what();
          m.code = e.code();
        }
        {
          std::lock_guard lk(mu);
          made = m;
          done = true;
        }
        cv.notify_one();
        if (!m.error.empty()) return;
        // This thread keeps the namespace: it lives as long as the process, serving names.
        for (;;) pause();
      });
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return done; });
      }
      ns_thread.detach();
      if (!made.error.empty()) throw Error(made.code, made.error);
      std::unique_ptr<SlirpStack> stack;
      if (made.tap >= 0) {
        SlirpSettings s;
        s.mtu = mtu;
        s.ipv6 = false;
        s.allow_host_loopback = host_loopback;
        stack = std::make_unique<SlirpStack>(made.tap, s);
      }
      int dns = made.dns;
      ready(std::to_string(made.tid));
      std::string name = info.name;
      // The names of every network the asking container is on (found by its address here),
      // this network's first; a container not found here sees this network's names only.
      NameLookup lookup = [state, lock, name](const std::string& q, in_addr client) -> std::optional<in_addr> {
        FileLock l(lock, FileLock::Mode::kShared);
        State st = load(state);
        auto here = st.nets.find(name);
        if (here == st.nets.end()) return std::nullopt;
        std::string asker;
        std::string client_ip = ipv4_text(client);
        for (const auto& [id, e] : here->second.endpoints)
          if (e.ip == client_ip) asker = id;
        std::vector<const Net*> nets = {&here->second};
        for (const auto& [n, net] : st.nets)
          if (n != name && !asker.empty() && net.endpoints.count(asker)) nets.push_back(&net);
        for (const Net* net : nets)
          for (const auto& [id, e] : net->endpoints) {
            bool match = e.name == q || (q.size() >= 12 && id.rfind(q, 0) == 0);
            for (const auto& a : e.aliases) match |= a == q;
            if (match && !e.ip.empty()) return parse_ipv4(e.ip, "an endpoint");
          }
        return std::nullopt;
      };
      // Ends when no container of the network is left alive, also when nobody detached them
      // (their monitors were killed): the watch looks every two seconds.
      std::thread watch([state, lock, name] {
        for (;;) {
          std::this_thread::sleep_for(std::chrono::seconds(2));
          bool any = false;
          try {
            FileLock l(lock, FileLock::Mode::kShared);
            State st = load(state);
            auto it = st.nets.find(name);
            if (it != st.nets.end())
              for (const auto& [id, e] : it->second.endpoints) any |= alive(e.pid, e.pid_start) || e.pid == 0;
          } catch (const std::exception&) {
            any = true;
          }
          if (!any) _exit(0);
        }
      });
      watch.detach();
      // The name server's socket is the namespace's; serving it needs no thread of its own there.
      std::thread names([dns, lookup, uplink = bool(stack)] { serve_dns(dns, lookup, uplink ? kSlirpDns : ""); });
      names.detach();
      int never[2];
      if (pipe2(never, O_CLOEXEC) != 0) throw_errno("pipe");
      if (stack) stack->run(never[0]);
      else for (;;) pause();
    });
    n.holder = h.pid;
    n.holder_tid = std::atoi(h.ready.c_str());
    n.holder_start = process_start_time(h.pid);
    if (h.pidfd >= 0) ::close(h.pidfd);
  }

  NetworkEndpoint connect_one(const NetworkRequest& req, const std::string& name, const std::string& ifname, pid_t pid,
                              bool route) {
    auto lock = take_lock(FileLock::Mode::kExclusive);
    State st = load(state_file());
    Net& n = ensure(st, name);
    for (auto it = n.endpoints.begin(); it != n.endpoints.end();)
      it = alive(it->second.pid, it->second.pid_start) || it->first == req.container_id ? std::next(it) : n.endpoints.erase(it);
    Endpoint e;
    e.ip = allocate(n, req.container_id);
    e.name = req.container_name;
    if (auto a = req.aliases.find(name); a != req.aliases.end()) e.aliases = a->second;
    e.pid = pid;
    e.pid_start = process_start_time(pid);
    e.interface = ifname;
    n.endpoints[req.container_id] = e;
    if (!alive(n.holder, n.holder_start)) start_holder(n);
    save(state_file(), st);
    auto [addr, prefix] = parse_cidr4(n.info.subnet, "network " + name);
    std::string host_if = "vh" + req.container_id.substr(0, 9) + ifname.substr(3);
    std::string cns_path = "/proc/" + std::to_string(pid) + "/ns/net";
    int cns = ::open(cns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (cns < 0) throw_errno("cannot open the container's network namespace " + cns_path);
    unsigned mtu = mtu_;
    try {
      run_in_netns(n.netns(), [&] {
        Netlink nl;
        if (int old = nl.ifindex(host_if)) nl.remove_link(old);
        nl.create_veth(host_if, ifname, cns, mtu);
        int idx = nl.ifindex(host_if);
        nl.set_master(idx, nl.ifindex(kBridgeIf));
        nl.set_up(idx, mtu);
        return -1;
      });
    } catch (...) {
      ::close(cns);
      throw;
    }
    ::close(cns);
    bool internal = n.info.internal;
    std::string gateway = n.info.gateway;
    run_in_netns(pid, [&] {
      Netlink nl;
      int idx = nl.ifindex(ifname);
      nl.set_up(idx, mtu);
      in_addr a = parse_ipv4(e.ip, ifname);
      nl.add_address(idx, AF_INET, &a, prefix);
      if (route && !internal) {
        in_addr g = parse_ipv4(gateway, ifname);
        nl.add_default_route(AF_INET, &g);
      }
      return -1;
    });
    NetworkEndpoint ep;
    ep.network = name;
    ep.interface = ifname;
    ep.ipv4 = e.ip;
    ep.prefix = prefix;
    ep.gateway = n.info.gateway;
    ep.aliases = e.aliases;
    return ep;
  }

  std::vector<PortMapping> publish(const NetworkRequest& req, const NetworkEndpoint& ep, pid_t pid) {
    std::string ns_path;
    {
      auto lock = take_lock(FileLock::Mode::kShared);
      State st = load(state_file());
      ns_path = st.nets.at(ep.network).netns();
    }
    std::vector<PortMapping> ports = req.ports;
    std::vector<Forward> forwards;
    std::vector<int> keep;
    try {
      for (auto& p : ports) {
        Forward f;
        f.udp = p.protocol == "udp";
        f.listener = bind_host_port(f.udp, p.host_ip, p.host_port, &p.host_port);
        f.target = parse_ipv4(ep.ipv4, "the container");
        f.port = p.container_port;
        forwards.push_back(f);
        keep.push_back(f.listener);
      }
    } catch (...) {
      for (auto fd : keep) ::close(fd);
      throw;
    }
    int ns = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    int pidfd = pidfd_of(pid);
    keep.push_back(ns);
    keep.push_back(pidfd);
    Helper h;
    try {
      if (ns < 0 || pidfd < 0) throw Error(Errc::kRuntime, "the network's namespace or the container is gone");
      h = spawn_helper("hutch-portfwd", keep, [&](const auto& ready) {
        ready("");
        serve_forwards(forwards, ns, pidfd);
      });
    } catch (...) {
      for (auto fd : keep)
        if (fd >= 0) ::close(fd);
      throw;
    }
    for (auto fd : keep) ::close(fd);
    record_helper(forwarder_file(req.container_id), h.pid);
    if (h.pidfd >= 0) ::close(h.pidfd);
    return ports;
  }

  PluginContext ctx_;
  unsigned mtu_ = 65520;
  bool host_loopback_ = false;  // 10.0.2.2 reaches the host's 127.0.0.1 (podman's allow_host_loopback)
};

std::unique_ptr<NetworkBackend> make_bridge_network(const PluginContext& ctx) { return std::make_unique<BridgeNetwork>(ctx); }

}  // namespace
}  // namespace hutch::network::bridge

HUTCH_PLUGIN(hutch::NetworkBackend, "bridge", "0.1.0", hutch::network::bridge::make_bridge_network);
