// The bridge backend: user networks (network create, ls, inspect, rm, prune, connect,
// disconnect), containers on them (addresses, routes, resolv.conf, hosts), names between
// containers of one network and not across networks, published ports, the uplink's host
// loopback, and the helpers (hutch-bridge per network, hutch-portfwd per container with ports).
//
// Traffic goes only to loopback and to the test's own container networks: names that must not
// resolve are asked with nslookup (single-label names never leave the network's name server),
// never fetched (busybox-static's wget crashes on a name it cannot resolve).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include "harness.hpp"
#include "skip.hpp"

namespace hit {
namespace {

using Clock = std::chrono::steady_clock;

const char* kLoop = "trap 'exit 0' TERM; while true; do sleep 0.2; done";

// An httpd serving `text` as / on port 80.
std::vector<std::string> web_command(const std::string& text) {
  return {"sh", "-c", "mkdir -p /www && echo " + text + " > /www/index.html && exec httpd -f -p 80 -h /www"};
}

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  int port = -1;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0)
    port = ntohs(sa.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

// GET / from 127.0.0.1:port; the whole response, or "" (with *why) when it failed.
std::string http_get_local(int port, std::string* why) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = "socket failed";
    return "";
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    *why = std::string("connect: ") + strerror(errno);
    ::close(fd);
    return "";
  }
  std::string req = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    *why = "send failed";
    ::close(fd);
    return "";
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (out.empty()) *why = "no response";
  return out;
}

// A tiny HTTP server of the test's own on 127.0.0.1: the host's loopback, as the uplink sees it.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::string body) : body_(std::move(body)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
      return;
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++accepted_;
      // Reads the request (up to its blank line, or a short while), answers, closes.
      std::string req;
      char buf[2048];
      for (int i = 0; i < 20 && req.find("\r\n\r\n") == std::string::npos; ++i) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 100) != 1) continue;
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body_.size()) +
                         "\r\nConnection: close\r\n\r\n" + body_;
      (void)::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }
  std::string body_;
  int fd_ = -1;
  int port_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

class BridgeTest : public ImageTest {
 protected:
  void SetUp() override {
    ImageTest::SetUp();
    if (HasFatalFailure()) return;
    if (access("/dev/net/tun", R_OK | W_OK) != 0)
      HUTCH_SKIP_OUTSIDE_CI("/dev/net/tun is not usable by this user: the bridge backend's uplink needs it");
  }
  void TearDown() override {
    // Whatever a failed test left running.
    Result q = hutch({"ps", "-a", "-q"});
    for (const auto& id : lines(q.out)) hutch({"rm", "-f", id}, slow());
    hutch({"network", "prune", "-f"});
    ImageTest::TearDown();
  }
  static Options slow() {
    Options o;
    o.timeout = 120s;
    return o;
  }
  // run -d ARGS...; the container's full ID ("" and a failure when it did not start).
  std::string run_d(std::vector<std::string> args) {
    args.insert(args.begin(), {"run", "-d"});
    Result r = hutch(args, slow());
    EXPECT_OK(r);
    auto ls = lines(r.out);
    if (r.code != 0 || ls.size() != 1 || !is_hex(ls[0], 64)) {
      ADD_FAILURE() << "run -d must print the container's ID" << r;
      return "";
    }
    return ls[0];
  }
  // A long-running container NAME on the networks given in `net_args` (--network ... flags).
  std::string run_idle(const std::string& name, std::vector<std::string> net_args) {
    net_args.insert(net_args.begin(), {"--name", name});
    for (const auto& a : std::vector<std::string>{"bb", "sh", "-c", kLoop}) net_args.push_back(a);
    return run_d(net_args);
  }
  std::string run_web(const std::string& name, std::vector<std::string> net_args, const std::string& text) {
    net_args.insert(net_args.begin(), {"--name", name});
    net_args.push_back("bb");
    for (const auto& a : web_command(text)) net_args.push_back(a);
    return run_d(net_args);
  }
  Result exec(const std::string& container, std::vector<std::string> args) {
    args.insert(args.begin(), {"exec", container});
    return hutch(args, slow());
  }
  // network create OPTIONS... NAME; it prints the name.
  void create_net(const std::string& name, std::vector<std::string> opts = {}) {
    opts.insert(opts.begin(), {"network", "create"});
    opts.push_back(name);
    Result r = hutch(opts);
    ASSERT_OK(r);
    ASSERT_EQ(r.out, name + "\n") << "network create prints the name" << r;
  }
  // Polls `step` (which sets *last) until it returns true or `timeout` passes.
  static bool poll_until(const std::function<bool()>& step, std::chrono::milliseconds timeout,
                         std::chrono::milliseconds every = 300ms) {
    auto until = Clock::now() + timeout;
    for (;;) {
      if (step()) return true;
      if (Clock::now() >= until) return false;
      std::this_thread::sleep_for(every);
    }
  }
  // wget -qO- URL from inside `client` until it prints `want`; the last try in *last.
  bool fetch(const std::string& client, const std::string& url, const std::string& want, Result* last,
             std::chrono::milliseconds timeout = 60s) {
    return poll_until(
        [&] {
          *last = exec(client, {"timeout", "15", "wget", "-qO-", url});
          return last->code == 0 && contains(last->out, want);
        },
        timeout);
  }
  // nslookup NAME inside `client` until it gives `ip`; the last try in *last.
  bool resolves(const std::string& client, const std::string& name, const std::string& ip, Result* last,
                std::chrono::milliseconds timeout = 30s) {
    return poll_until(
        [&] {
          *last = exec(client, {"nslookup", name});
          return last->code == 0 && contains(last->out, "Address: " + ip);
        },
        timeout);
  }
  // The answer to nslookup NAME is "not found" (no timeout: the name server answered).
  ::testing::AssertionResult NotFound(const std::string& client, const std::string& name) {
    Result r = exec(client, {"nslookup", name});
    if (r.code == 0) return ::testing::AssertionFailure() << name << " resolved in " << client << r;
    if (!contains(r.out + r.err, "can't find") && !icontains(r.out + r.err, "NXDOMAIN"))
      return ::testing::AssertionFailure() << "the name server did not answer \"not found\" for " << name << r;
    return ::testing::AssertionSuccess();
  }
  // The container's address on network `net`, from network inspect ("" when absent).
  std::string address_on(const std::string& net, const std::string& container) {
    Result r = hutch({"network", "inspect", net});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (r.code != 0 || !j.is_array() || j.size() != 1) {
      ADD_FAILURE() << "network inspect " << net << r;
      return "";
    }
    for (const auto& [id, c] : j[0]["Containers"].items())
      if (c.value("Name", "") == container) {
        std::string a = c.value("IPv4Address", "");
        return a.substr(0, a.find('/'));
      }
    return "";
  }
  // pids of the processes of ours named `comm` that belong to this test's store.
  std::vector<pid_t> helpers(const std::string& comm) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
      std::string name = e.path().filename().string();
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      if (trim(read_file("/proc/" + name + "/comm")) != comm) continue;
      std::string status = read_file("/proc/" + name + "/status");
      if (contains(status, "State:\tZ")) continue;
      auto pos = status.find("\nUid:\t");
      if (pos == std::string::npos || split_ws(status.substr(pos + 6, 20)).front() != std::to_string(getuid())) continue;
      std::string cmdline = read_file("/proc/" + name + "/cmdline");
      for (auto& c : cmdline)
        if (c == '\0') c = ' ';
      if (contains(cmdline, root_ + " ")) out.push_back(static_cast<pid_t>(std::stol(name)));
    }
    return out;
  }
  bool helpers_become(const std::string& comm, size_t n, std::chrono::milliseconds timeout = 10s) {
    return poll_until([&] { return helpers(comm).size() == n; }, timeout, 100ms);
  }
  std::vector<std::string> strays_after_settling() {
    std::vector<std::string> left;
    poll_until([&] { return (left = stray_hutch_processes()).empty(); }, 10s, 100ms);
    return left;
  }
};

// ---- network create / ls / inspect / rm / prune --------------------------------------------------

TEST_F(BridgeTest, CreateDefaultsAndInspect) {
  create_net("first");
  create_net("second", {"--label", "team=blue", "--label", "tier=db"});
  Result r = hutch({"network", "inspect", "first", "second"});
  ASSERT_OK(r);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 2) << "docker's JSON array, one object per network" << r;
  EXPECT_EQ(j[0]["Name"], "first");
  EXPECT_EQ(j[0]["Driver"], "bridge");
  EXPECT_TRUE(j[0]["Id"].is_string() && is_hex(j[0]["Id"].get<std::string>(), 64)) << r;
  EXPECT_EQ(j[0]["IPAM"]["Config"][0]["Subnet"], "10.89.0.0/24") << r;
  EXPECT_EQ(j[0]["IPAM"]["Config"][0]["Gateway"], "10.89.0.1") << r;
  EXPECT_EQ(j[0]["Internal"], false);
  EXPECT_TRUE(j[0]["Containers"].is_object() && j[0]["Containers"].empty()) << r;
  EXPECT_TRUE(j[0]["Labels"].is_object() && j[0]["Labels"].empty()) << r;
  EXPECT_EQ(j[1]["Name"], "second");
  EXPECT_EQ(j[1]["IPAM"]["Config"][0]["Subnet"], "10.89.1.0/24") << "the next free 10.89.N.0/24" << r;
  EXPECT_EQ(j[1]["IPAM"]["Config"][0]["Gateway"], "10.89.1.1") << r;
  EXPECT_EQ(j[1]["Labels"], (nlohmann::json{{"team", "blue"}, {"tier", "db"}})) << r;
  EXPECT_NE(j[0]["Id"], j[1]["Id"]);

  Result f = hutch({"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "second"});
  EXPECT_OK(f);
  EXPECT_EQ(f.out, "10.89.1.0/24\n");

  // A prefix of the ID finds the network too.
  std::string id = j[0]["Id"];
  Result byid = hutch({"network", "inspect", "-f", "{{.Name}}", id.substr(0, 12)});
  EXPECT_OK(byid);
  EXPECT_EQ(trim(byid.out), "first");

  EXPECT_TRUE(EngineError(hutch({"network", "inspect", "nosuchnet"}), {"nosuchnet"}));
}

TEST_F(BridgeTest, CreateWithSubnetGatewayInternal) {
  create_net("inner", {"--subnet", "172.30.5.0/24", "--gateway", "172.30.5.254", "--internal"});
  auto j = nlohmann::json::parse(hutch({"network", "inspect", "inner"}).out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1);
  EXPECT_EQ(j[0]["IPAM"]["Config"][0]["Subnet"], "172.30.5.0/24");
  EXPECT_EQ(j[0]["IPAM"]["Config"][0]["Gateway"], "172.30.5.254");
  EXPECT_EQ(j[0]["Internal"], true);
  // Host bits given in --subnet are dropped.
  create_net("other", {"--subnet", "172.31.7.9/24"});
  Result f = hutch({"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", "other"});
  EXPECT_EQ(trim(f.out), "172.31.7.0/24 172.31.7.1") << f;
}

TEST_F(BridgeTest, CreateRefusals) {
  create_net("taken");  // 10.89.0.0/24
  EXPECT_TRUE(OneLineError(hutch({"network", "create", "taken"}), {"taken", "exists"}));
  EXPECT_TRUE(OneLineError(hutch({"network", "create", "--subnet", "10.89.0.128/25", "overlap"}), {"overlaps", "taken"}));
  EXPECT_TRUE(OneLineError(hutch({"network", "create", "--subnet", "10.0.0.0/8", "wide"}), {"overlaps"}))
      << "10.0.0.0/8 holds the uplink's 10.0.2.0/24 and taken's subnet";
  EXPECT_TRUE(OneLineError(hutch({"network", "create", "--subnet", "10.0.2.0/24", "up"}), {"overlaps"}));
  EXPECT_TRUE(OneLineError(hutch({"network", "create", "--subnet", "not-a-cidr", "badsub"})));
  EXPECT_TRUE(OneLineError(hutch({"network", "create", "--subnet", "172.30.9.0/24", "--gateway", "172.30.10.1", "badgw"}),
                           {"gateway"}));
  for (const std::string bad : {"-lead", "has space", "sl/ash", "_under", ""})
    EXPECT_TRUE(OneLineError(hutch({"network", "create", "--", bad}))) << "name \"" << bad << "\"";
  for (const std::string backend : {"none", "host", "slirp", "bridge"})
    EXPECT_TRUE(OneLineError(hutch({"network", "create", backend}), {backend})) << backend;
  Result ls = hutch({"network", "ls", "-q"});
  EXPECT_OK(ls);
  EXPECT_EQ(lines(ls.out), (std::vector<std::string>{"none", "host", "slirp", "taken"}))
      << "the refused creates left no network behind" << ls;
}

TEST_F(BridgeTest, LsListsBackendsAndUserNetworks) {
  create_net("alpha");
  create_net("beta");
  Result q = hutch({"network", "ls", "-q"});
  ASSERT_OK(q);
  auto names = lines(q.out);
  for (const std::string n : {"none", "host", "slirp", "alpha", "beta"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n << q;
  EXPECT_EQ(names.size(), 5u) << q;

  Result t = hutch({"network", "ls"});
  ASSERT_OK(t);
  auto ls = lines(t.out);
  ASSERT_EQ(ls.size(), 6u) << "a header and five networks" << t;
  EXPECT_EQ(split_columns(ls[0]), (std::vector<std::string>{"NETWORK ID", "NAME", "DRIVER"})) << t;
  std::string alpha_id = trim(hutch({"network", "inspect", "-f", "{{.Id}}", "alpha"}).out);
  bool seen = false;
  for (size_t i = 1; i < ls.size(); ++i) {
    auto cols = split_columns(ls[i]);
    ASSERT_EQ(cols.size(), 3u) << ls[i];
    if (cols[1] == "alpha") {
      seen = true;
      EXPECT_EQ(cols[0], alpha_id.substr(0, 12)) << t;
      EXPECT_EQ(cols[2], "bridge") << t;
    }
    if (cols[1] == "slirp") {
      EXPECT_EQ(cols[2], "slirp") << t;
    }
  }
  EXPECT_TRUE(seen) << t;
}

TEST_F(BridgeTest, RmAndPrune) {
  create_net("gone");
  create_net("kept");
  create_net("unused");
  Result rm = hutch({"network", "rm", "gone"});
  EXPECT_OK(rm);
  EXPECT_EQ(rm.out, "gone\n");
  EXPECT_TRUE(EngineError(hutch({"network", "rm", "gone"}), {"gone"}));
  EXPECT_TRUE(EngineError(hutch({"network", "rm", "slirp"}), {"slirp"})) << "a backend's own network cannot go";

  // A container (even a stopped one) on a network keeps it from prune and from rm.
  ASSERT_OK(hutch({"run", "--name", "user", "--network", "kept", "bb", "true"}, slow()));
  EXPECT_TRUE(EngineError(hutch({"network", "rm", "kept"}), {"kept", "user"}));
  Result p = hutch({"network", "prune", "-f"});
  EXPECT_OK(p);
  EXPECT_EQ(p.out, "Deleted Networks:\nunused\n") << p;
  Result ls = hutch({"network", "ls", "-q"});
  EXPECT_EQ(lines(ls.out), (std::vector<std::string>{"none", "host", "slirp", "kept"})) << ls;
  Result again = hutch({"network", "prune", "-f"});
  EXPECT_OK(again);
  EXPECT_EQ(again.out, "") << "nothing to prune prints nothing" << again;
  ASSERT_OK(hutch({"rm", "user"}));
  Result p2 = hutch({"network", "prune", "-f"});
  EXPECT_OK(p2);
  EXPECT_EQ(p2.out, "Deleted Networks:\nkept\n") << p2;
}

TEST_F(BridgeTest, RmForceRemovesTheContainersOnIt) {
  create_net("doomed");
  run_idle("runner", {"--network", "doomed"});
  ASSERT_OK(hutch({"run", "--name", "stopped", "--network", "doomed", "bb", "true"}, slow()));
  run_idle("bystander", {"--network", "bridge"});
  Result refused = hutch({"network", "rm", "doomed"});
  EXPECT_TRUE(EngineError(refused, {"doomed", "runner", "stopped"}));
  EXPECT_EQ(lines(hutch({"ps", "-a", "-q"}).out).size(), 3u) << "a refused rm removes nothing";

  Result rm = hutch({"network", "rm", "-f", "doomed"}, slow());
  EXPECT_OK(rm);
  EXPECT_EQ(rm.out, "doomed\n") << rm;
  Result ps = hutch({"ps", "-a", "--format", "{{.Names}}"});
  EXPECT_EQ(lines(ps.out), std::vector<std::string>{"bystander"}) << ps;
  Result ls = hutch({"network", "ls", "-q"});
  auto names = lines(ls.out);
  EXPECT_EQ(std::find(names.begin(), names.end(), "doomed"), names.end()) << ls;
}

// ---- containers on a network ------------------------------------------------------------------------

TEST_F(BridgeTest, ContainerGetsAddressRouteResolvConfAndHosts) {
  create_net("lan", {"--subnet", "172.30.5.0/24", "--gateway", "172.30.5.254"});
  Result r = hutch({"run", "--rm", "--name", "probe", "--network", "lan", "bb", "sh", "-c",
                    "ip -4 -o addr show dev eth0; echo ---; ip route; echo ---; cat /etc/resolv.conf; echo ---; "
                    "cat /etc/hosts; echo ---; cat /proc/net/dev"},
                   slow());
  ASSERT_OK(r);
  auto parts = std::vector<std::string>{};
  {
    std::string cur;
    for (const auto& l : raw_lines(r.out)) {
      if (l == "---") {
        parts.push_back(cur);
        cur.clear();
      } else {
        cur += l + "\n";
      }
    }
    parts.push_back(cur);
  }
  ASSERT_EQ(parts.size(), 5u) << r;
  // eth0 with an address of the subnet (not the gateway's).
  auto addr_words = split_ws(parts[0]);
  auto inet = std::find(addr_words.begin(), addr_words.end(), "inet");
  ASSERT_NE(inet, addr_words.end()) << r;
  ASSERT_NE(inet + 1, addr_words.end()) << r;
  std::string cidr = *(inet + 1);
  EXPECT_EQ(cidr.rfind("172.30.5.", 0), 0u) << r;
  EXPECT_EQ(cidr.substr(cidr.find('/')), "/24") << r;
  std::string ip = cidr.substr(0, cidr.find('/'));
  EXPECT_NE(ip, "172.30.5.254") << r;
  EXPECT_NE(ip, "172.30.5.0") << r;
  EXPECT_TRUE(contains(parts[1], "default via 172.30.5.254 dev eth0")) << r;
  auto ns = lines(parts[2]);
  EXPECT_NE(std::find(ns.begin(), ns.end(), "nameserver 172.30.5.254"), ns.end()) << r;
  for (const auto& l : ns)
    if (l.rfind("nameserver", 0) == 0) {
      EXPECT_EQ(l, "nameserver 172.30.5.254") << "only the network's name server" << r;
    }
  bool named = false;
  for (const auto& l : lines(parts[3])) {
    auto w = split_ws(l);
    if (!w.empty() && w[0] == ip) named = std::find(w.begin(), w.end(), "probe") != w.end();
  }
  EXPECT_TRUE(named) << "/etc/hosts names the container at its address " << ip << r;
  EXPECT_EQ(net_devices(parts[4]), (std::vector<std::string>{"eth0", "lo"})) << r;
}

TEST_F(BridgeTest, InternalNetworkHasNoDefaultRoute) {
  create_net("sealed", {"--internal", "--subnet", "172.30.6.0/24"});
  Result r = hutch({"run", "--rm", "--network", "sealed", "bb", "sh", "-c", "ip route; echo ---; cat /etc/resolv.conf"}, slow());
  ASSERT_OK(r);
  EXPECT_FALSE(contains(r.out, "default")) << "an internal network has no uplink, so no default route" << r;
  EXPECT_TRUE(contains(r.out, "172.30.6.0/24 dev eth0")) << r;
  EXPECT_TRUE(contains(r.out, "nameserver 172.30.6.1")) << r;
  // No published ports on an internal network.
  EXPECT_TRUE(EngineError(hutch({"run", "--rm", "--network", "sealed", "-p", "80", "bb", "true"}, slow()), {"internal"}));
}

TEST_F(BridgeTest, NetworkBridgeIsTheDefaultNetworkMadeOnFirstUse) {
  Result before = hutch({"network", "ls", "-q"});
  auto names = lines(before.out);
  EXPECT_EQ(std::find(names.begin(), names.end(), "hutch"), names.end()) << before;
  Result r = hutch({"run", "--rm", "--network", "bridge", "bb", "sh", "-c", "ip -4 -o addr show dev eth0; ip route"}, slow());
  ASSERT_OK(r);
  EXPECT_TRUE(contains(r.out, "inet 10.88.0.")) << r;
  EXPECT_TRUE(contains(r.out, "/24")) << r;
  EXPECT_TRUE(contains(r.out, "default via 10.88.0.1")) << r;
  Result after = hutch({"network", "ls", "-q"});
  names = lines(after.out);
  EXPECT_NE(std::find(names.begin(), names.end(), "hutch"), names.end()) << after;
  Result f = hutch({"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Driver}}", "hutch"});
  EXPECT_OK(f);
  EXPECT_EQ(trim(f.out), "10.88.0.0/24 10.88.0.1 bridge") << f;
  // --network hutch is the same network.
  Result again = hutch({"run", "--rm", "--network", "hutch", "bb", "ip", "-4", "-o", "addr", "show", "dev", "eth0"}, slow());
  EXPECT_OK(again);
  EXPECT_TRUE(contains(again.out, "inet 10.88.0.")) << again;
}

TEST_F(BridgeTest, UnknownNetworkIsRefused) {
  Result r = hutch({"run", "--rm", "--network", "nosuchnet", "bb", "true"}, slow());
  EXPECT_TRUE(EngineError(r, {"nosuchnet"}));
  EXPECT_EQ(lines(hutch({"ps", "-a", "-q"}).out).size(), 0u);
  EXPECT_TRUE(EngineError(hutch({"run", "--rm", "--network-alias", "x", "bb", "true"}, slow()), {"network-alias"}));
}

TEST_F(BridgeTest, TwoNetworksGiveEth0AndEth1) {
  create_net("first", {"--subnet", "172.30.11.0/24"});
  create_net("second", {"--subnet", "172.30.12.0/24"});
  Result r = hutch({"run", "--rm", "--network", "first", "--network", "second", "bb", "sh", "-c",
                    "ip -4 -o addr; echo ---; ip route; echo ---; cat /proc/net/dev"},
                   slow());
  ASSERT_OK(r);
  EXPECT_TRUE(contains(r.out, "eth0    inet 172.30.11.") || contains(r.out, "eth0 inet 172.30.11.") ||
              (contains(r.out, "eth0") && contains(r.out, "inet 172.30.11.")))
      << r;
  EXPECT_TRUE(contains(r.out, "inet 172.30.12.")) << r;
  EXPECT_TRUE(contains(r.out, "default via 172.30.11.1 dev eth0")) << "the default route is the first network's" << r;
  EXPECT_FALSE(contains(r.out, "default via 172.30.12.1")) << "one default route" << r;
  auto after = r.out.substr(r.out.rfind("---"));
  EXPECT_EQ(net_devices(after), (std::vector<std::string>{"eth0", "eth1", "lo"})) << r;
}

// ---- names -----------------------------------------------------------------------------------------

// The check: two containers on appnet reach each other by name, a third on another
// network cannot, and a container started later is found by name by one already running.
TEST_F(BridgeTest, NamesResolveOnTheNetworkOnly) {
  create_net("appnet");
  create_net("othernet");
  run_web("web", {"--network", "appnet", "--network-alias", "frontend"}, "hello-from-web");
  run_idle("client", {"--network", "appnet"});
  run_idle("outsider", {"--network", "othernet"});
  std::string web_ip = address_on("appnet", "web");
  ASSERT_EQ(web_ip.rfind("10.89.0.", 0), 0u) << "web's address on appnet: " << web_ip;

  Result last;
  EXPECT_TRUE(resolves("client", "web", web_ip, &last)) << last;
  EXPECT_TRUE(fetch("client", "http://web/", "hello-from-web", &last)) << last;
  EXPECT_TRUE(resolves("client", "frontend", web_ip, &last)) << "the --network-alias" << last;
  EXPECT_TRUE(fetch("client", "http://frontend/", "hello-from-web", &last)) << last;
  // Names are case-insensitive in DNS.
  EXPECT_TRUE(resolves("client", "WEB", web_ip, &last)) << last;
  // web finds client too.
  std::string client_ip = address_on("appnet", "client");
  EXPECT_TRUE(resolves("web", "client", client_ip, &last)) << last;

  // The outsider's name server does not know appnet's names (and does not ask upstream).
  EXPECT_TRUE(NotFound("outsider", "web"));
  EXPECT_TRUE(NotFound("outsider", "frontend"));
  EXPECT_TRUE(NotFound("outsider", "client"));
  EXPECT_TRUE(NotFound("client", "outsider")) << "nor the other way round";

  // A container started later is found by one already running.
  run_web("late", {"--network", "appnet"}, "hello-from-late");
  std::string late_ip = address_on("appnet", "late");
  EXPECT_FALSE(late_ip.empty());
  EXPECT_TRUE(resolves("client", "late", late_ip, &last))
      << last << "client's neighbours (the gateway's MAC it knows):" << exec("client", {"ip", "neigh"});
  EXPECT_TRUE(fetch("client", "http://late/", "hello-from-late", &last)) << last;
  EXPECT_TRUE(NotFound("outsider", "late"));

  // network inspect lists the containers with their addresses.
  auto j = nlohmann::json::parse(hutch({"network", "inspect", "appnet"}).out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1);
  std::set<std::string> names, addrs;
  for (const auto& [id, c] : j[0]["Containers"].items()) {
    EXPECT_TRUE(is_hex(id, 64)) << id;
    names.insert(c.value("Name", ""));
    addrs.insert(c.value("IPv4Address", ""));
  }
  EXPECT_EQ(names, (std::set<std::string>{"web", "client", "late"})) << j.dump(2);
  EXPECT_EQ(addrs, (std::set<std::string>{web_ip + "/24", client_ip + "/24", late_ip + "/24"})) << j.dump(2);

  // A removed container's name is gone.
  ASSERT_OK(hutch({"rm", "-f", "late"}, slow()));
  EXPECT_TRUE(poll_until([&] { return NotFound("client", "late"); }, 15s)) << exec("client", {"nslookup", "late"});
}

// Containers coming and going do not cut a running container off its network's gateway (its
// name server): after each start and each rm, the running one still gets its answers at once.
// (A bridge whose MAC address follows its ports would change the gateway's MAC under the
// running container's ARP cache.) Ten rounds: each new container's veth has a random MAC.
TEST_F(BridgeTest, ContainersComingAndGoingKeepTheGatewayReachable) {
  create_net("busy");
  run_idle("steady", {"--network", "busy"});
  std::string steady_ip = address_on("busy", "steady");
  Result last;
  ASSERT_TRUE(resolves("steady", "steady", steady_ip, &last)) << last;
  for (int i = 0; i < 10; ++i) {
    std::string name = "visitor" + std::to_string(i);
    run_idle(name, {"--network", "busy"});
    std::string ip = address_on("busy", name);
    ASSERT_TRUE(resolves("steady", name, ip, &last, 5s))
        << "round " << i << ": the running container could not ask its name server right after " << name
        << " started" << last << exec("steady", {"ip", "neigh"});
    ASSERT_OK(hutch({"rm", "-f", name}, slow()));
    ASSERT_TRUE(resolves("steady", "steady", steady_ip, &last, 5s))
        << "round " << i << ": the running container could not ask its name server right after " << name
        << " was removed" << last << exec("steady", {"ip", "neigh"});
  }
}

// A container on two networks finds the containers of each of them by name.
TEST_F(BridgeTest, NamesResolveOnEveryNetworkOfTheContainer) {
  create_net("neta", {"--subnet", "172.30.21.0/24"});
  create_net("netb", {"--subnet", "172.30.22.0/24"});
  run_web("ona", {"--network", "neta"}, "from-a");
  run_web("onb", {"--network", "netb"}, "from-b");
  run_idle("both", {"--network", "neta", "--network", "netb"});
  Result last;
  EXPECT_TRUE(resolves("both", "ona", address_on("neta", "ona"), &last)) << last;
  EXPECT_TRUE(resolves("both", "onb", address_on("netb", "onb"), &last))
      << "a container on two networks must find the names of its second network too" << last
      << exec("both", {"cat", "/etc/resolv.conf"});
  EXPECT_TRUE(resolves("ona", "both", address_on("neta", "both"), &last)) << last;
  EXPECT_TRUE(resolves("onb", "both", address_on("netb", "both"), &last)) << last;
  EXPECT_TRUE(NotFound("ona", "onb"));
}

// ---- connect / disconnect ------------------------------------------------------------------------

TEST_F(BridgeTest, ConnectAndDisconnectARunningContainer) {
  create_net("home", {"--subnet", "172.30.31.0/24"});
  create_net("away", {"--subnet", "172.30.32.0/24"});
  run_idle("roamer", {"--network", "home"});
  run_web("resident", {"--network", "away"}, "resident-here");
  Result dev = exec("roamer", {"cat", "/proc/net/dev"});
  EXPECT_EQ(net_devices(dev.out), (std::vector<std::string>{"eth0", "lo"})) << dev;
  EXPECT_TRUE(NotFound("resident", "roamer"));

  Result c = hutch({"network", "connect", "--alias", "wanderer", "away", "roamer"}, slow());
  ASSERT_OK(c);
  dev = exec("roamer", {"cat", "/proc/net/dev"});
  EXPECT_EQ(net_devices(dev.out), (std::vector<std::string>{"eth0", "eth1", "lo"})) << "eth1 appears" << dev;
  Result a = exec("roamer", {"ip", "-4", "-o", "addr", "show", "dev", "eth1"});
  EXPECT_TRUE(contains(a.out, "inet 172.30.32.")) << a;
  std::string roamer_ip = address_on("away", "roamer");
  EXPECT_EQ(roamer_ip.rfind("172.30.32.", 0), 0u) << roamer_ip;
  Result r = hutch({"inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "roamer"});
  EXPECT_TRUE(contains(r.out, "away")) << r;

  // The names of the network it joined: the resident finds it by name and alias ...
  Result last;
  EXPECT_TRUE(resolves("resident", "roamer", roamer_ip, &last)) << last;
  EXPECT_TRUE(resolves("resident", "wanderer", roamer_ip, &last)) << last;
  // ... and the roamer reaches the resident by address, and by name.
  std::string resident_ip = address_on("away", "resident");
  EXPECT_TRUE(fetch("roamer", "http://" + resident_ip + "/", "resident-here", &last)) << last;
  EXPECT_TRUE(resolves("roamer", "resident", resident_ip, &last, 15s))
      << "after network connect, the container must find the names of the new network" << last
      << exec("roamer", {"cat", "/etc/resolv.conf"});

  EXPECT_TRUE(OneLineError(hutch({"network", "connect", "away", "roamer"}), {"already"}));

  Result d = hutch({"network", "disconnect", "away", "roamer"}, slow());
  ASSERT_OK(d);
  dev = exec("roamer", {"cat", "/proc/net/dev"});
  EXPECT_EQ(net_devices(dev.out), (std::vector<std::string>{"eth0", "lo"})) << "eth1 disappears" << dev;
  EXPECT_TRUE(address_on("away", "roamer").empty());
  // The network goes on for those still on it: the resident's name server answers, and forgets roamer.
  Result own;
  EXPECT_TRUE(resolves("resident", "resident", resident_ip, &own, 10s))
      << "the name server of a network must keep answering its containers after another one disconnects" << own;
  EXPECT_TRUE(poll_until([&] { return NotFound("resident", "roamer"); }, 10s)) << exec("resident", {"nslookup", "roamer"});
  EXPECT_TRUE(OneLineError(hutch({"network", "disconnect", "away", "roamer"}), {"not on"}));
}

TEST_F(BridgeTest, ConnectAStoppedContainerTakesEffectAtStart) {
  create_net("one", {"--subnet", "172.30.41.0/24"});
  create_net("two", {"--subnet", "172.30.42.0/24"});
  ASSERT_OK(hutch({"create", "--name", "later", "--network", "one", "bb", "cat", "/proc/net/dev"}, slow()));
  ASSERT_OK(hutch({"network", "connect", "two", "later"}));
  Result s = hutch({"start", "-a", "later"}, slow());
  ASSERT_OK(s);
  EXPECT_EQ(net_devices(s.out), (std::vector<std::string>{"eth0", "eth1", "lo"})) << s;
  // Containers not on a user network cannot join one.
  ASSERT_OK(hutch({"create", "--name", "nonet", "--network", "none", "bb", "true"}, slow()));
  EXPECT_TRUE(OneLineError(hutch({"network", "connect", "two", "nonet"}), {"nonet"}));
  EXPECT_TRUE(OneLineError(hutch({"network", "connect", "nosuchnet", "later"}), {"nosuchnet"}));
}

// ---- published ports -----------------------------------------------------------------------------

TEST_F(BridgeTest, PublishedPortsReachTheContainer) {
  create_net("pubnet");
  int fixed = free_port();
  ASSERT_GT(fixed, 0);
  run_web("server", {"--network", "pubnet", "-p", std::to_string(fixed) + ":80", "-p", "80"}, "published-hello");

  Result port = hutch({"port", "server"});
  ASSERT_OK(port);
  auto ls = lines(port.out);
  ASSERT_EQ(ls.size(), 2u) << port;
  int chosen = -1;
  bool fixed_listed = false;
  for (const auto& l : ls) {
    ASSERT_EQ(l.rfind("80/tcp -> ", 0), 0u) << port;
    std::string hp = l.substr(l.rfind(':') + 1);
    if (hp == std::to_string(fixed)) fixed_listed = true;
    else chosen = std::atoi(hp.c_str());
  }
  EXPECT_TRUE(fixed_listed) << port;
  ASSERT_GT(chosen, 0) << "-p 80 gets a free host port" << port;

  for (int p : {fixed, chosen}) {
    std::string got, why;
    bool ok = poll_until(
        [&] {
          got = http_get_local(p, &why);
          return contains(got, "published-hello");
        },
        30s);
    EXPECT_TRUE(ok) << "GET http://127.0.0.1:" << p << "/ gave \"" << got << "\" (" << why << ")";
  }
  EXPECT_EQ(helpers("hutch-portfwd").size(), 1u) << "one forwarder for the container's ports";

  ASSERT_OK(hutch({"rm", "-f", "server"}, slow()));
  EXPECT_TRUE(helpers_become("hutch-portfwd", 0)) << "the forwarder ends with its container";
  std::string why;
  EXPECT_TRUE(poll_until([&] { return http_get_local(fixed, &why).empty(); }, 10s)) << "the host port is closed";
}

// ---- the uplink's host loopback ---------------------------------------------------------------------

TEST_F(BridgeTest, HostLoopbackOnlyWhenAllowed) {
  LoopbackServer server("loopback-reached");
  ASSERT_GT(server.port(), 0);
  std::string url = "http://10.0.2.2:" + std::to_string(server.port()) + "/";
  create_net("uplinked");

  // Without the setting: 10.0.2.2 does not reach the host's 127.0.0.1.
  Result denied = hutch({"run", "--rm", "--network", "uplinked", "bb", "timeout", "15", "wget", "-qO-", url}, slow());
  EXPECT_NE(denied.code, 0) << denied;
  EXPECT_FALSE(contains(denied.out, "loopback-reached")) << denied;
  EXPECT_EQ(server.accepted(), 0) << "the test's listener on 127.0.0.1 got a connection";
  // (The holder of the network ended with its last container: the next one starts a new one
  // with the new setting.)
  ASSERT_TRUE(helpers_become("hutch-bridge", 0)) << "the network's holder did not end";

  std::string conf = path("hutch.conf");
  write_file(conf, "[plugins.bridge]\nallow_host_loopback = true\n");
  Options o = slow();
  o.env["HUTCH_CONFIG"] = conf;
  Result allowed;
  bool ok = poll_until(
      [&] {
        allowed = hutch({"run", "--rm", "--network", "uplinked", "bb", "timeout", "15", "wget", "-qO-", url}, o);
        return allowed.code == 0;
      },
      30s, 1s);
  EXPECT_TRUE(ok) << allowed;
  EXPECT_TRUE(contains(allowed.out, "loopback-reached")) << allowed;
  EXPECT_GE(server.accepted(), 1);

  // A bad value of the setting is an error naming it.
  write_file(conf, "[plugins.bridge]\nallow_host_loopback = \"yes\"\n");
  EXPECT_TRUE(EngineError(hutch({"run", "--rm", "--network", "uplinked", "bb", "true"}, o), {"allow_host_loopback"}));
}

// ---- helpers ---------------------------------------------------------------------------------------

TEST_F(BridgeTest, OneHolderPerNetworkEndingWithItsLastContainer) {
  create_net("netone");
  create_net("nettwo");
  EXPECT_TRUE(helpers("hutch-bridge").empty()) << "a network without containers has no holder";
  run_idle("a1", {"--network", "netone"});
  run_idle("a2", {"--network", "netone"});
  EXPECT_TRUE(helpers_become("hutch-bridge", 1)) << "one holder for netone's two containers";
  run_idle("b1", {"--network", "nettwo", "-p", "80"});
  EXPECT_TRUE(helpers_become("hutch-bridge", 2)) << "one holder per network in use";
  EXPECT_TRUE(helpers_become("hutch-portfwd", 1)) << "a forwarder for the container with ports only";

  ASSERT_OK(hutch({"rm", "-f", "a1"}, slow()));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(helpers("hutch-bridge").size(), 2u) << "netone still has a2";
  Result last;
  EXPECT_TRUE(resolves("a2", "a2", address_on("netone", "a2"), &last, 10s)) << "netone still serves a2" << last;

  ASSERT_OK(hutch({"rm", "-f", "a2"}, slow()));
  EXPECT_TRUE(helpers_become("hutch-bridge", 1)) << "netone's holder ends with its last container";
  ASSERT_OK(hutch({"stop", "-t", "1", "b1"}, slow()));
  EXPECT_TRUE(helpers_become("hutch-bridge", 0)) << "a stopped container holds no network";
  EXPECT_TRUE(helpers_become("hutch-portfwd", 0));
  ASSERT_OK(hutch({"rm", "b1"}));
  auto left = strays_after_settling();
  EXPECT_TRUE(left.empty()) << "hutch processes still running: " << ::testing::PrintToString(left);
  // The networks stay until removed, and work again.
  Result again = hutch({"run", "--rm", "--network", "netone", "bb", "ip", "-4", "-o", "addr", "show", "dev", "eth0"}, slow());
  EXPECT_OK(again);
  EXPECT_TRUE(contains(again.out, "inet 10.89.0.")) << again;
  EXPECT_TRUE(helpers_become("hutch-bridge", 0));
}

TEST_F(BridgeTest, HolderEndsWhenItsContainerIsKilled) {
  create_net("fragile");
  std::mt19937 rng(std::random_device{}());
  std::string secs = std::to_string(700000 + rng() % 200000);
  run_d({"--name", "victim", "--network", "fragile", "bb", "sleep", secs});
  ASSERT_TRUE(helpers_become("hutch-bridge", 1));
  pid_t target = -1;
  poll_until([&] { return (target = find_process({"sleep", secs})) > 0; }, 30s, 100ms);
  ASSERT_GT(target, 0);
  ASSERT_EQ(kill(target, SIGKILL), 0);
  EXPECT_TRUE(helpers_become("hutch-bridge", 0, 15s)) << "the holder ends when its only container died";
  // (The container's monitor records the end a moment later.)
  Result rm;
  EXPECT_TRUE(poll_until([&] { return (rm = hutch({"rm", "victim"}, slow())).code == 0; }, 30s)) << rm;
  auto left = strays_after_settling();
  EXPECT_TRUE(left.empty()) << "hutch processes still running: " << ::testing::PrintToString(left);
}

}  // namespace
}  // namespace hit
