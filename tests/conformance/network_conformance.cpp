// What every network backend must do, run against each network plugin.
//
// A backend that gives the container a network namespace of its own (plan().new_netns) is
// attached to a stand-in for a container's init: a child of the suite in a new network
// namespace (unshare(CLONE_NEWNET), which needs root: CI runs this suite as root). The others
// are attached to the suite's own process.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "conformance_util.hpp"
#include "hutch/error.hpp"
#include "hutch/network.hpp"
#include "skip.hpp"

using namespace hutch;
using namespace hutch::conformance;
using namespace std::chrono_literals;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A child in a network namespace of its own, sleeping until it is killed.
class NetnsChild {
 public:
  NetnsChild() {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      ::close(p[0]);
      char c = unshare(CLONE_NEWNET) == 0 ? 'R' : 'E';
      (void)!::write(p[1], &c, 1);
      ::close(p[1]);
      for (;;) pause();
    }
    ::close(p[1]);
    char c = 0;
    if (pid_ > 0 && ::read(p[0], &c, 1) == 1 && c == 'R') ready_ = true;
    ::close(p[0]);
  }
  ~NetnsChild() { end(); }
  void end() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }
  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  // The devices of its namespace, as /proc/PID/net/dev names them.
  std::vector<std::string> devices() const {
    std::vector<std::string> out;
    std::istringstream in(slurp("/proc/" + std::to_string(pid_) + "/net/dev"));
    for (std::string l; std::getline(in, l);) {
      auto colon = l.find(':');
      if (colon == std::string::npos || l.find('|') != std::string::npos) continue;
      std::string name = l.substr(0, colon);
      name.erase(0, name.find_first_not_of(' '));
      out.push_back(name);
    }
    return out;
  }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

// The live (not zombie) children of this process other than `except`: a backend's helpers.
std::vector<pid_t> live_children(pid_t except = -1) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = slurp("/proc/" + name + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (ppid == getpid() && state != 'Z' && pid != except) out.push_back(pid);
  }
  return out;
}

bool children_become(size_t n, pid_t except, std::chrono::milliseconds patience = 5s) {
  auto until = std::chrono::steady_clock::now() + patience;
  while (live_children(except).size() != n) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

bool tcp_port_free(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

class NetworkConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    net_ = loader().create<NetworkBackend>(GetParam(), context_in(scratch_.path(), GetParam()));
    caps_ = net_->capabilities();
  }
  bool needs_netns(const NetworkRequest& req) { return net_->plan(req).new_netns; }

  Scratch scratch_;
  std::unique_ptr<NetworkBackend> net_;
  NetworkCapabilities caps_;
};

// What a test needs before it attaches anything: the backend works here, and (for a backend with
// its own namespace) the child is in a new network namespace.
#define NEEDS_ATTACH(req, child)                                                                        \
  do {                                                                                                 \
    if (!caps_.unavailable.empty()) HUTCH_SKIP_OUTSIDE_CI(GetParam() + " cannot work here: " + caps_.unavailable); \
    if (needs_netns(req) && !(child).ready())                                                          \
      HUTCH_SKIP_OUTSIDE_CI("cannot make a network namespace (unshare(CLONE_NEWNET) needs root)");    \
  } while (0)

TEST_P(NetworkConformance, ListsItsOwnNetwork) {
  auto nets = net_->list_networks();
  ASSERT_FALSE(nets.empty());
  bool mine = false;
  for (const auto& n : nets) mine |= n.name == GetParam();
  EXPECT_TRUE(mine);
}

TEST_P(NetworkConformance, PlanMatchesCapabilities) {
  auto plan = net_->plan({"0123456789ab", GetParam()});
  EXPECT_EQ(caps_.isolated, plan.new_netns);
  if (!plan.new_netns) EXPECT_FALSE(plan.loopback_up);
  EXPECT_FALSE(caps_.description.empty());
}

TEST_P(NetworkConformance, AttachAndDetachAreBalanced) {
  NetworkRequest req{"0123456789ab", GetParam()};
  NetnsChild child;
  NEEDS_ATTACH(req, child);
  pid_t pid = needs_netns(req) ? child.pid() : getpid();
  auto before = live_children(child.pid()).size();
  NetworkAttachment a;
  EXPECT_NO_THROW(a = net_->attach(req, pid));
  if (caps_.connectivity && caps_.isolated) {
    // The container's side of the connection is in its namespace, under the name the endpoint says.
    ASSERT_FALSE(a.endpoints.empty());
    auto devs = child.devices();
    EXPECT_NE(std::find(devs.begin(), devs.end(), a.endpoints.front().interface), devs.end())
        << "no " << a.endpoints.front().interface << " in the namespace of " << child.pid() << ": "
        << slurp("/proc/" + std::to_string(child.pid()) + "/net/dev");
  }
  EXPECT_NO_THROW(net_->detach(req));
  EXPECT_TRUE(children_become(before, child.pid())) << "a helper of the backend outlives detach";
  EXPECT_NO_THROW(net_->detach(req)) << "a second detach finds nothing to undo";
}

TEST_P(NetworkConformance, DetachAfterTheContainerIsGone) {
  NetworkRequest req{"0123456789ac", GetParam()};
  NetnsChild child;
  NEEDS_ATTACH(req, child);
  if (!needs_netns(req)) return;  // the host's namespace never goes away
  auto before = live_children(child.pid()).size();
  ASSERT_NO_THROW(net_->attach(req, child.pid()));
  pid_t gone = child.pid();
  child.end();
  // A helper serves the container's process only: it ends with it, detach or not.
  EXPECT_TRUE(children_become(before, gone)) << "a helper outlives the container's process";
  EXPECT_NO_THROW(net_->detach(req));
  EXPECT_TRUE(children_become(before, gone));
}

TEST_P(NetworkConformance, PublishedPortsAreBoundUntilDetach) {
  if (!caps_.port_publishing) return;  // nothing to publish
  NetworkRequest req{"0123456789ad", GetParam()};
  req.ports.push_back(PortMapping{"", 0, 80, "tcp"});
  req.ports.push_back(PortMapping{"127.0.0.1", 0, 53, "udp"});
  NetnsChild child;
  NEEDS_ATTACH(req, child);
  pid_t pid = needs_netns(req) ? child.pid() : getpid();
  NetworkAttachment a;
  ASSERT_NO_THROW(a = net_->attach(req, pid));
  ASSERT_EQ(a.ports.size(), 2u);
  EXPECT_NE(a.ports[0].host_port, 0) << "a free port is chosen for host_port 0";
  EXPECT_NE(a.ports[1].host_port, 0);
  EXPECT_EQ(a.ports[0].container_port, 80);
  EXPECT_EQ(a.ports[1].protocol, "udp");
  EXPECT_EQ(a.ports[1].host_ip, "127.0.0.1");
  EXPECT_FALSE(tcp_port_free(a.ports[0].host_port)) << "port " << a.ports[0].host_port << " is not held";

  // The same port for another container: refused, naming the port.
  NetworkRequest clash{"0123456789ae", GetParam()};
  clash.ports.push_back(PortMapping{"", a.ports[0].host_port, 80, "tcp"});
  NetnsChild other;
  try {
    net_->attach(clash, needs_netns(clash) ? other.pid() : getpid());
    ADD_FAILURE() << "a port in use was published again";
    net_->detach(clash);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already in use"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::to_string(a.ports[0].host_port)), std::string::npos) << e.what();
  }
  net_->detach(req);
  EXPECT_TRUE(tcp_port_free(a.ports[0].host_port)) << "port " << a.ports[0].host_port << " is still held after detach";
}

TEST_P(NetworkConformance, BadOptionsAreRefusedByPlan) {
  NetworkRequest req{"0123456789af", GetParam()};
  req.options["no_such_option"] = "1";
  if (GetParam() != "slirp") return;  // only slirp takes options
  EXPECT_THROW(net_->plan(req), Error);
  req.options = {{"mtu", "99"}};
  EXPECT_THROW(net_->plan(req), Error);
  req.options = {{"mtu", "1500"}, {"allow_host_loopback", "true"}, {"enable_ipv6", "false"}};
  EXPECT_NO_THROW(net_->plan(req));
}

// [plugins.slirp] as the config loader gives it: TOML integers are signed JSON numbers.
TEST(SlirpConfig, TakesTheConfigFilesKeys) {
  Scratch scratch;
  PluginContext ctx = context_in(scratch.path(), "slirp");
  ctx.config = nlohmann::json::object({{"mtu", 9000}, {"allow_host_loopback", true}, {"enable_ipv6", false}});
  EXPECT_NO_THROW(loader().create<NetworkBackend>("slirp", ctx));
  ctx.config = nlohmann::json::object({{"mtu", 10}});
  EXPECT_THROW(loader().create<NetworkBackend>("slirp", ctx), Error);
  ctx.config = nlohmann::json::object({{"nosuch", 1}});
  EXPECT_THROW(loader().create<NetworkBackend>("slirp", ctx), Error);
}

INSTANTIATE_TEST_SUITE_P(Plugins, NetworkConformance, ::testing::Values("none", "host", "slirp"));

}  // namespace
