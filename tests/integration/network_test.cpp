// The slirp network (the default), black-box through the binary: published ports (-p with a
// fixed port, a range, a free port, -P), the host's loopback through 10.0.2.2, UDP both ways,
// the container's network files and links, the errors, restarts, and that nothing is left
// (helpers, processes, bound ports) once containers are gone.
//
// Traffic goes only to the host's loopback and the containers' own namespaces: every host
// socket of these tests is on 127.0.0.1, and containers talk only to 10.0.2.2 (slirp's name for
// the host's loopback) or to their own slirp addresses.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "embedded_tools.hpp"
#include "harness.hpp"
#include "skip.hpp"

namespace hit {
namespace {

using Clock = std::chrono::steady_clock;

// ---- sockets on the host's loopback ------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(), fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

sockaddr_in addr4(const char* ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

// A socket (SOCK_STREAM or SOCK_DGRAM) bound to ip:port, not yet listening; !ok() with errno
// in *err when the bind fails. No SO_REUSEADDR: a port anybody holds shows as taken.
Fd bound(int type, const char* ip, std::uint16_t port, int* err = nullptr) {
  Fd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  if (!fd.ok()) {
    if (err) *err = errno;
    return fd;
  }
  sockaddr_in a = addr4(ip, port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (err) *err = errno;
    return Fd();
  }
  return fd;
}

std::uint16_t port_of_socket(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// Free for TCP and UDP on every address of the host.
bool port_free(std::uint16_t port) {
  return bound(SOCK_STREAM, "0.0.0.0", port).ok() && bound(SOCK_DGRAM, "0.0.0.0", port).ok();
}

// `n` consecutive ports free for TCP and UDP, below the kernel's ephemeral range (so that no
// outgoing connection takes one meanwhile).
std::uint16_t free_ports(int n = 1) {
  static std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 500; ++attempt) {
    auto base = static_cast<std::uint16_t>(20000 + rng() % 12000);
    bool all = true;
    for (int i = 0; i < n && all; ++i) all = port_free(static_cast<std::uint16_t>(base + i));
    if (all) return base;
  }
  ADD_FAILURE() << "found no " << n << " free consecutive ports in 20000-32000";
  return 0;
}

// One HTTP/1.0 GET of / on 127.0.0.1:port; the whole response, or "" when the connection
// fails or is closed without an answer.
std::string http_get_once(const char* ip, std::uint16_t port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.ok()) return "";
  sockaddr_in a = addr4(ip, port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) return "";
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, 2000) != 1) return "";
  int soerr = 0;
  socklen_t l = sizeof soerr;
  getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &l);
  if (soerr != 0) return "";
  std::string req = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return "";
  std::string got;
  auto until = Clock::now() + 3s;
  while (Clock::now() < until) {
    pollfd r{fd.get(), POLLIN, 0};
    if (::poll(&r, 1, 500) < 0) break;
    char buf[4096];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    else if (n == 0 || (errno != EAGAIN && errno != EINTR)) break;
  }
  return got;
}

// GETs until the answer contains `marker` (the server in the container may still be starting)
// or `patience` has passed; returns the last answer.
std::string http_get(std::uint16_t port, const std::string& marker, std::chrono::milliseconds patience = 15s,
                     const char* ip = "127.0.0.1") {
  auto until = Clock::now() + patience;
  std::string got;
  do {
    got = http_get_once(ip, port);
    if (contains(got, marker)) return got;
    std::this_thread::sleep_for(100ms);
  } while (Clock::now() < until);
  return got;
}

// A TCP service of the test on 127.0.0.1 (a free port): reads what a client sends up to a
// newline (or 2 s), answers "hello-from-host\n" and closes.
class HostTcpService {
 public:
  HostTcpService() {
    fd_ = bound(SOCK_STREAM, "127.0.0.1", 0);
    if (!fd_.ok() || ::listen(fd_.get(), 16) != 0) throw std::runtime_error("listen on 127.0.0.1");
    port_ = port_of_socket(fd_.get());
    thread_ = std::thread([this] { serve(); });
  }
  ~HostTcpService() {
    stop_ = true;
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  int connections() const { return connections_; }
  std::string received() {
    std::lock_guard lk(mu_);
    return received_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      Fd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.ok()) continue;
      ++connections_;
      std::string got;
      auto until = Clock::now() + 2s;
      while (Clock::now() < until && got.find('\n') == std::string::npos) {
        pollfd r{c.get(), POLLIN, 0};
        if (::poll(&r, 1, 200) != 1) continue;
        char buf[512];
        ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard lk(mu_);
        received_ += got;
      }
      const char reply[] = "hello-from-host\n";
      (void)!::send(c.get(), reply, sizeof reply - 1, MSG_NOSIGNAL);
    }
  }
  Fd fd_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::string received_;
  std::thread thread_;
};

// A minimal TFTP server on 127.0.0.1 (a free UDP port): answers a read request (RRQ) for NAME
// with one DATA block whose payload is "tftp-echo:NAME" - a UDP echo that busybox's tftp client
// can talk to.
class HostTftpEcho {
 public:
  HostTftpEcho() {
    fd_ = bound(SOCK_DGRAM, "127.0.0.1", 0);
    if (!fd_.ok()) throw std::runtime_error("bind udp 127.0.0.1");
    port_ = port_of_socket(fd_.get());
    thread_ = std::thread([this] { serve(); });
  }
  ~HostTftpEcho() {
    stop_ = true;
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  int requests() const { return requests_; }
  std::string names() {
    std::lock_guard lk(mu_);
    return names_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      unsigned char buf[1024];
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 4 || buf[0] != 0 || buf[1] != 1) continue;  // RRQ only; the ACK that follows is ignored
      std::string name(reinterpret_cast<char*>(buf + 2), strnlen(reinterpret_cast<char*>(buf + 2), static_cast<size_t>(n - 2)));
      ++requests_;
      {
        std::lock_guard lk(mu_);
        names_ += name + "\n";
      }
      std::string data = std::string("\0\3\0\1", 4) + "tftp-echo:" + name;
      ::sendto(fd_.get(), data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
  Fd fd_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::string names_;
  std::thread thread_;
};

// ---- the fixture -----------------------------------------------------------------------------

const char* kSleep = "while true; do sleep 0.2; done";

class NetworkTest : public ImageTest {
 protected:
  void SetUp() override {
    int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      std::string why = std::string("/dev/net/tun cannot be opened (") + strerror(errno) +
                        "): the slirp network cannot work here (scripts/test.sh makes it 0666)";
      HUTCH_SKIP_OUTSIDE_CI(why);
    }
    ::close(fd);
    ImageTest::SetUp();
    if (HasFatalFailure()) return;
    for (pid_t p : processes_with_comm("hutch-slirp")) foreign_helpers_.insert(p);
  }
  void TearDown() override {
    if (!root_.empty()) {
      Result q = hutch({"ps", "-a", "-q"});
      for (const auto& id : lines(q.out)) hutch({"rm", "-f", id});
    }
    ImageTest::TearDown();
  }

  // run -d ARGS...; the container's full ID ("" and a failure when it did not start).
  std::string run_d(std::vector<std::string> args) {
    args.insert(args.begin(), {"run", "-d"});
    Result r = hutch(args);
    EXPECT_OK(r);
    auto ls = lines(r.out);
    if (r.code != 0 || ls.size() != 1) return "";
    return ls[0];
  }
  // The command of a container that serves `marker` as / over HTTP on its port 80.
  static std::vector<std::string> web(const std::string& marker, int port = 80) {
    std::string p = std::to_string(port);
    return {"sh", "-c", "mkdir -p /www && echo " + marker + " > /www/index.html && exec httpd -f -p " + p + " -h /www"};
  }
  // `hutch port NAME PORT`: the host port of its one binding (0 and a failure otherwise).
  std::uint16_t host_port(const std::string& name, const std::string& port) {
    Result r = hutch({"port", name, port});
    EXPECT_OK(r);
    auto ls = lines(r.out);
    EXPECT_EQ(ls.size(), 1u) << r;
    if (ls.size() != 1 || ls[0].rfind("0.0.0.0:", 0) != 0) {
      ADD_FAILURE() << "want one line 0.0.0.0:PORT" << r;
      return 0;
    }
    return static_cast<std::uint16_t>(std::stoul(ls[0].substr(8)));
  }
  nlohmann::json network_settings(const std::string& name) {
    Result r = hutch({"inspect", "-f", "{{json .NetworkSettings}}", name});
    EXPECT_OK(r);
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  // The hutch-slirp helpers of ours that were not there when the test began.
  std::vector<pid_t> helpers() {
    std::vector<pid_t> out;
    for (pid_t p : processes_with_comm("hutch-slirp"))
      if (!foreign_helpers_.count(p)) out.push_back(p);
    return out;
  }
  // Waits up to `patience` for the helpers to number `n`.
  bool helpers_become(size_t n, std::chrono::milliseconds patience = 5s) {
    auto until = Clock::now() + patience;
    while (helpers().size() != n) {
      if (Clock::now() >= until) return false;
      std::this_thread::sleep_for(50ms);
    }
    return true;
  }
  // hutch run --rm [opts...] bb sh -c SCRIPT
  Result sh(const std::vector<std::string>& opts, const std::string& script, Options o = {}) {
    std::vector<std::string> a = {"run", "--rm"};
    a.insert(a.end(), opts.begin(), opts.end());
    a.insert(a.end(), {"bb", "sh", "-c", script});
    return hutch(a, std::move(o));
  }
  // A config file with `text`, for HUTCH_CONFIG.
  Options with_config(const std::string& text) {
    std::string f = path("hutch.conf");
    write_file(f, text);
    Options o;
    o.env["HUTCH_CONFIG"] = f;
    return o;
  }

  std::set<pid_t> foreign_helpers_;
};

std::string pids_text(const std::vector<pid_t>& pids) {
  std::string s;
  for (pid_t p : pids) s += std::to_string(p) + " ";
  return s;
}

// ---- published ports -------------------------------------------------------------------------

TEST_F(NetworkTest, FixedPublishedPortReachesTheContainer) {
  std::uint16_t port = free_ports();
  ASSERT_NE(port, 0);
  std::string p = std::to_string(port);
  // No --network: slirp is the default.
  auto cmd = web("served-fixed");
  std::vector<std::string> a = {"--name", "web", "-p", p + ":80", "bb"};
  a.insert(a.end(), cmd.begin(), cmd.end());
  ASSERT_NE(run_d(a), "");
  EXPECT_TRUE(contains(http_get(port, "served-fixed"), "served-fixed")) << "GET http://127.0.0.1:" << p << "/";

  Result all = hutch({"port", "web"});
  EXPECT_OK(all);
  EXPECT_EQ(lines(all.out), std::vector<std::string>{"80/tcp -> 0.0.0.0:" + p}) << all;
  EXPECT_EQ(host_port("web", "80"), port);
  EXPECT_EQ(host_port("web", "80/tcp"), port);
  Result ps = hutch({"ps"});
  EXPECT_TRUE(contains(ps.out, "0.0.0.0:" + p + "->80/tcp")) << ps;

  auto ns = network_settings("web");
  ASSERT_TRUE(ns.is_object()) << ns;
  EXPECT_EQ(ns["Ports"]["80/tcp"], nlohmann::json::parse(R"([{"HostIp":"0.0.0.0","HostPort":")" + p + R"("}])")) << ns;
  EXPECT_EQ(ns["IPAddress"], "10.0.2.100") << ns;
  EXPECT_EQ(ns["Gateway"], "10.0.2.2") << ns;
  ASSERT_TRUE(ns["Networks"].contains("slirp")) << ns;
  EXPECT_EQ(ns["Networks"]["slirp"]["IPAddress"], "10.0.2.100") << ns;
  EXPECT_EQ(ns["Networks"]["slirp"]["Gateway"], "10.0.2.2") << ns;
  Result mode = hutch({"inspect", "-f", "{{.HostConfig.NetworkMode}}", "web"});
  EXPECT_EQ(trim(mode.out), "slirp") << mode;

  // A second container cannot have the same host port.
  Result again = hutch({"run", "-d", "-p", p + ":80", "bb", "sleep", "30"});
  EXPECT_TRUE(EngineError(again, {"already in use", p}));
}

TEST_F(NetworkTest, FreePublishedPortIsReadBackWithPort) {
  auto cmd = web("served-free");
  std::vector<std::string> a = {"--name", "free", "-p", "80", "bb"};
  a.insert(a.end(), cmd.begin(), cmd.end());
  ASSERT_NE(run_d(a), "");
  std::uint16_t port = host_port("free", "80");
  ASSERT_NE(port, 0);
  EXPECT_TRUE(contains(http_get(port, "served-free"), "served-free")) << "GET http://127.0.0.1:" << port << "/";
  auto ns = network_settings("free");
  EXPECT_EQ(ns["Ports"]["80/tcp"][0]["HostPort"], std::to_string(port)) << ns;
}

TEST_F(NetworkTest, PublishAllPublishesTheExposedPorts) {
  Result imp = hutch({"import", "-c", "EXPOSE 80", suite().tar, "bbx"});
  ASSERT_OK(imp);
  auto cmd = web("served-all");
  std::vector<std::string> a = {"--name", "all", "-P", "bbx"};
  a.insert(a.end(), cmd.begin(), cmd.end());
  ASSERT_NE(run_d(a), "");
  std::uint16_t port = host_port("all", "80");
  ASSERT_NE(port, 0);
  EXPECT_TRUE(contains(http_get(port, "served-all"), "served-all")) << "GET http://127.0.0.1:" << port << "/";
  Result all = hutch({"port", "all"});
  EXPECT_EQ(lines(all.out).size(), 1u) << "only the one EXPOSEd port" << all;
}

TEST_F(NetworkTest, PortRangeMapsPortByPort) {
  std::uint16_t base = free_ports(3);
  ASSERT_NE(base, 0);
  std::string range = std::to_string(base) + "-" + std::to_string(base + 2);
  ASSERT_NE(run_d({"--name", "ranged", "-p", range + ":80-82", "bb", "sh", "-c",
                   "for p in 80 81 82; do mkdir -p /w$p; echo port-$p > /w$p/index.html; httpd -p $p -h /w$p; done; " +
                       std::string(kSleep)}),
            "");
  for (int i = 0; i < 3; ++i) {
    std::string want = "port-" + std::to_string(80 + i);
    EXPECT_TRUE(contains(http_get(static_cast<std::uint16_t>(base + i), want), want)) << "host port " << base + i;
  }
  Result all = hutch({"port", "ranged"});
  EXPECT_OK(all);
  std::vector<std::string> want;
  for (int i = 0; i < 3; ++i)
    want.push_back(std::to_string(80 + i) + "/tcp -> 0.0.0.0:" + std::to_string(base + i));
  auto got = lines(all.out);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want) << all;
}

TEST_F(NetworkTest, HostAddressOfAPublishedPort) {
  std::uint16_t port = free_ports();
  ASSERT_NE(port, 0);
  std::string p = std::to_string(port);
  auto cmd = web("served-local");
  std::vector<std::string> a = {"--name", "local", "-p", "127.0.0.1:" + p + ":80", "bb"};
  a.insert(a.end(), cmd.begin(), cmd.end());
  ASSERT_NE(run_d(a), "");
  EXPECT_TRUE(contains(http_get(port, "served-local"), "served-local"));
  Result all = hutch({"port", "local"});
  EXPECT_EQ(lines(all.out), std::vector<std::string>{"80/tcp -> 127.0.0.1:" + p}) << all;
  Result ps = hutch({"ps"});
  EXPECT_TRUE(contains(ps.out, "127.0.0.1:" + p + "->80/tcp")) << ps;
}

// ---- the host's loopback through 10.0.2.2 ---------------------------------------------------------

TEST_F(NetworkTest, HostLoopbackIsReachedOnlyWhenAllowed) {
  HostTcpService svc;
  std::string p = std::to_string(svc.port());
  std::string client = "echo ping-from-container | nc -w 5 10.0.2.2 " + p;
  Result ok = sh({"--network", "slirp:allow_host_loopback=true"}, client);
  EXPECT_OK(ok);
  EXPECT_EQ(ok.out, "hello-from-host\n") << ok;
  EXPECT_EQ(svc.connections(), 1);
  EXPECT_TRUE(contains(svc.received(), "ping-from-container")) << svc.received();

  // podman's spelling, and the name /etc/hosts gives the host.
  Result podman = sh({"--network", "slirp4netns:allow_host_loopback=true"},
                     "echo by-name | nc -w 5 host.containers.internal " + p);
  EXPECT_OK(podman);
  EXPECT_EQ(podman.out, "hello-from-host\n") << podman;
  EXPECT_EQ(svc.connections(), 2);

  // Without the option (the default, and said explicitly) nothing reaches the host's loopback.
  for (const auto& net : std::vector<std::string>{"", "slirp:allow_host_loopback=false"}) {
    std::vector<std::string> opts;
    if (!net.empty()) opts = {"--network", net};
    Result no = sh(opts, client);
    EXPECT_NE(no.code, 0) << "the client must fail: 10.0.2.2 is not the host's loopback without allow_host_loopback" << no;
    EXPECT_FALSE(contains(no.out, "hello-from-host")) << no;
  }
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(svc.connections(), 2) << "the host's loopback service was reached without allow_host_loopback";
}

// ---- UDP ---------------------------------------------------------------------------------------

TEST_F(NetworkTest, UdpFromTheContainerToTheHost) {
  HostTftpEcho tftp;
  std::string p = std::to_string(tftp.port());
  Result r = sh({"--network", "slirp:allow_host_loopback=true"},
                "tftp -g -r hello.txt -l /tmp/got 10.0.2.2 " + p + " && cat /tmp/got");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "tftp-echo:hello.txt") << r;
  EXPECT_GE(tftp.requests(), 1);
  EXPECT_TRUE(contains(tftp.names(), "hello.txt")) << tftp.names();

  // Not to the host's loopback without allow_host_loopback.
  int before = tftp.requests();
  Result no = sh({}, "timeout 5 tftp -g -r denied.txt -l /tmp/got 10.0.2.2 " + p + " && cat /tmp/got");
  EXPECT_NE(no.code, 0) << no;
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(tftp.requests(), before) << tftp.names();
}

// The host sends datagrams to a published UDP port (from 127.0.0.1, as a local client does);
// the container's UDP server (tools/udp_echo.c) answers each; the answer must come back.
class NetworkUdpTest : public NetworkTest {
 protected:
  void round_trip(const std::vector<std::string>& net) {
    std::string tools = path("tools");
    fs::create_directories(tools);
    write_udp_echo(tools);
    std::uint16_t port = free_ports();
    ASSERT_NE(port, 0);
    std::string p = std::to_string(port);
    std::vector<std::string> a = {"--name", "udp", "-v", tools + ":/tools:ro", "-p", p + ":7777/udp"};
    a.insert(a.end(), net.begin(), net.end());
    a.insert(a.end(), {"bb", "/tools/udp-echo", "7777"});
    ASSERT_NE(run_d(a), "");
    Result all = hutch({"port", "udp"});
    EXPECT_EQ(lines(all.out), std::vector<std::string>{"7777/udp -> 0.0.0.0:" + p}) << all;

    Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(s.ok());
    sockaddr_in to = addr4("127.0.0.1", port);
    std::string got;
    auto until = Clock::now() + 10s;
    for (int i = 0; Clock::now() < until && got.empty(); ++i) {
      std::string msg = "datagram-" + std::to_string(i);
      ::sendto(s.get(), msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
      pollfd pf{s.get(), POLLIN, 0};
      if (::poll(&pf, 1, 300) == 1) {
        char buf[256];
        ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
        if (n > 0 && std::string(buf, static_cast<size_t>(n)) == "echo:" + msg) got = msg;
      }
    }
    // The container's log says whether the datagrams arrived ("got N bytes from ...").
    EXPECT_FALSE(got.empty()) << "no echo came back from the container's UDP port 7777 through 127.0.0.1:" << p
                              << hutch({"logs", "udp"});
  }
};

// The default network (no allow_host_loopback): a local client must get its answers too, as it
// does over TCP.
TEST_F(NetworkUdpTest, FromTheHostToAPublishedPort) { round_trip({}); }

TEST_F(NetworkUdpTest, FromTheHostToAPublishedPortWithHostLoopback) {
  round_trip({"--network", "slirp:allow_host_loopback=true"});
}

// ---- inside the container ---------------------------------------------------------------------

TEST_F(NetworkTest, ResolvConfAndHosts) {
  Result r = sh({"--name", "files", "--hostname", "hh"}, "cat /etc/resolv.conf; echo ---; cat /etc/hosts");
  ASSERT_OK(r);
  auto all = lines(r.out);
  auto sep = std::find(all.begin(), all.end(), "---");
  ASSERT_NE(sep, all.end()) << r;
  std::vector<std::string> resolv(all.begin(), sep);
  std::vector<std::vector<std::string>> hosts;
  for (auto it = sep + 1; it != all.end(); ++it) hosts.push_back(split_ws(*it));
  EXPECT_EQ(resolv, (std::vector<std::string>{"nameserver 10.0.2.3", "nameserver fd00::3"})) << r;
  auto has = [&](const std::vector<std::string>& words) { return std::find(hosts.begin(), hosts.end(), words) != hosts.end(); };
  EXPECT_TRUE(has({"10.0.2.100", "hh", "files"})) << r;
  EXPECT_TRUE(has({"10.0.2.2", "host.containers.internal", "host.docker.internal"})) << r;
  EXPECT_TRUE(has({"127.0.0.1", "localhost", "localhost.localdomain"})) << r;
  EXPECT_FALSE(contains(r.out, "127.0.1.1")) << "the placeholder line is replaced by the container's address" << r;

  Result v4 = sh({"--network", "slirp:enable_ipv6=false"}, "cat /etc/resolv.conf");
  ASSERT_OK(v4);
  EXPECT_EQ(lines(v4.out), std::vector<std::string>{"nameserver 10.0.2.3"}) << v4;
}

TEST_F(NetworkTest, LinksAddressesAndRoutes) {
  Result r = sh({}, "cat /sys/class/net/eth0/mtu; ip -4 addr show eth0; ip -6 addr show eth0; ip -4 route; ip -6 route");
  ASSERT_OK(r);
  auto ls = lines(r.out);
  ASSERT_FALSE(ls.empty()) << r;
  EXPECT_EQ(ls[0], "65520") << "the default MTU" << r;
  EXPECT_TRUE(contains(r.out, "inet 10.0.2.100/24")) << r;
  EXPECT_TRUE(contains(r.out, "inet6 fd00::100/64")) << r;
  EXPECT_TRUE(contains(r.out, "default via 10.0.2.2 dev eth0")) << r;
  EXPECT_TRUE(contains(r.out, "default via fd00::2 dev eth0")) << r;
  Result lo = sh({}, "cat /sys/class/net/lo/operstate; ip -4 addr show lo");
  EXPECT_TRUE(contains(lo.out, "inet 127.0.0.1/8")) << "loopback is up" << lo;
}

TEST_F(NetworkTest, MtuFromTheOption) {
  Result a = sh({"--network", "slirp:mtu=1500"}, "cat /sys/class/net/eth0/mtu");
  EXPECT_OK(a);
  EXPECT_EQ(a.out, "1500\n") << a;
  Result b = sh({"--network", "slirp4netns:mtu=1400,enable_ipv6=false"}, "cat /sys/class/net/eth0/mtu");
  EXPECT_OK(b);
  EXPECT_EQ(b.out, "1400\n") << b;
}

// [plugins.slirp] mtu = N in the config file; --network slirp:mtu= still wins.
TEST_F(NetworkTest, MtuFromTheConfig) {
  Result c = sh({}, "cat /sys/class/net/eth0/mtu", with_config("[plugins.slirp]\nmtu = 9000\n"));
  EXPECT_OK(c);
  EXPECT_EQ(c.out, "9000\n") << c;
  Result d = sh({"--network", "slirp:mtu=1600"}, "cat /sys/class/net/eth0/mtu", with_config("[plugins.slirp]\nmtu = 9000\n"));
  EXPECT_OK(d);
  EXPECT_EQ(d.out, "1600\n") << "the option wins over the config" << d;
}

TEST_F(NetworkTest, Ipv6CanBeTurnedOff) {
  std::string script = "ip -6 addr show eth0; ip -6 route; cat /etc/resolv.conf";
  Result off = sh({"--network", "slirp:enable_ipv6=false"}, script);
  ASSERT_OK(off);
  EXPECT_FALSE(contains(off.out, "fd00::")) << off;
  Result conf = sh({}, script, with_config("[plugins.slirp]\nenable_ipv6 = false\n"));
  ASSERT_OK(conf);
  EXPECT_FALSE(contains(conf.out, "fd00::")) << conf;
  ASSERT_NE(run_d({"--name", "v4only", "--network", "slirp:enable_ipv6=false", "bb", "sh", "-c", kSleep}), "");
  auto ns = network_settings("v4only");
  EXPECT_EQ(ns["GlobalIPv6Address"], "") << ns;
  EXPECT_EQ(ns["IPAddress"], "10.0.2.100") << ns;
}

TEST_F(NetworkTest, Ping6ReachesTheGateway) {
  Result r = sh({}, "ping6 -c 1 -W 5 fd00::2");
  EXPECT_OK(r);
  EXPECT_TRUE(contains(r.out, "1 packets received")) << r;
}

// ---- errors ------------------------------------------------------------------------------------

TEST_F(NetworkTest, PortInUseIsRefused) {
  std::uint16_t port = free_ports();
  ASSERT_NE(port, 0);
  std::string p = std::to_string(port);
  Fd tcp = bound(SOCK_STREAM, "0.0.0.0", port);
  ASSERT_TRUE(tcp.ok());
  ASSERT_EQ(::listen(tcp.get(), 1), 0);
  Result r = hutch({"run", "-d", "--name", "clash", "-p", p + ":80", "bb", "sleep", "30"});
  EXPECT_TRUE(EngineError(r, {"already in use", p}));
  Result fg = hutch({"run", "--rm", "-p", p + ":80", "bb", "true"});
  EXPECT_TRUE(EngineError(fg, {"already in use", p}));

  Fd udp = bound(SOCK_DGRAM, "0.0.0.0", port);
  ASSERT_TRUE(udp.ok());
  Result u = hutch({"run", "--rm", "-p", p + ":53/udp", "bb", "true"});
  EXPECT_TRUE(EngineError(u, {"already in use", p}));

  Result ps = hutch({"ps", "-q"});
  EXPECT_EQ(ps.out, "") << "nothing runs after the refusals" << ps;
  EXPECT_TRUE(helpers_become(0)) << "hutch-slirp left: " << pids_text(helpers());
}

int unprivileged_port_start() {
  std::string s = trim(read_file("/proc/sys/net/ipv4/ip_unprivileged_port_start"));
  return s.empty() ? 1024 : std::stoi(s);
}

// A port below net.ipv4.ip_unprivileged_port_start: as a user, refused naming the sysctl. As
// root the refusal does not apply (root may bind any port): there the test checks instead that
// such a port is published and works.
TEST_F(NetworkTest, PrivilegedPort) {
  int start = unprivileged_port_start();
  if (start <= 1) HUTCH_SKIP_OUTSIDE_CI("net.ipv4.ip_unprivileged_port_start is " + std::to_string(start) + ": no port is privileged");
  if (suite().mode != Mode::kRoot) {
    std::string low = std::to_string(start > 80 ? 80 : start - 1);
    Result r = hutch({"run", "--rm", "-p", low + ":80", "bb", "true"});
    EXPECT_TRUE(EngineError(r, {"net.ipv4.ip_unprivileged_port_start", low}));
    EXPECT_TRUE(helpers_become(0)) << "hutch-slirp left: " << pids_text(helpers());
    return;
  }
  std::uint16_t low = 0;
  for (int p = std::min(start - 1, 1023); p > 0 && low == 0; --p)
    if (port_free(static_cast<std::uint16_t>(p))) low = static_cast<std::uint16_t>(p);
  ASSERT_NE(low, 0) << "no free port below " << start;
  auto cmd = web("served-low");
  std::vector<std::string> a = {"--name", "low", "-p", std::to_string(low) + ":80", "bb"};
  a.insert(a.end(), cmd.begin(), cmd.end());
  ASSERT_NE(run_d(a), "");
  EXPECT_TRUE(contains(http_get(low, "served-low"), "served-low")) << "root publishes port " << low;
}

TEST_F(NetworkTest, PublishWithNetworkNoneIsRefused) {
  Result r = hutch({"run", "--rm", "--network", "none", "-p", "8080:80", "bb", "true"});
  EXPECT_TRUE(OneLineError(r, {"none", "publish"}));
  ASSERT_OK(hutch({"import", "-c", "EXPOSE 80", suite().tar, "bbx"}));
  Result all = hutch({"run", "--rm", "--network", "none", "-P", "bbx", "true"});
  EXPECT_TRUE(OneLineError(all, {"none", "publish"}));
  Result ps = hutch({"ps", "-a", "-q"});
  EXPECT_EQ(ps.out, "") << ps;
}

TEST_F(NetworkTest, PublishWithNetworkHostWarnsAndIgnores) {
  std::uint16_t port = free_ports();
  std::string p = std::to_string(port);
  Result r = hutch({"run", "--rm", "--network", "host", "-p", p + ":80", "bb", "echo", "ran"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "ran\n") << r;
  EXPECT_TRUE(icontains(r.err, "warn")) << r;
  EXPECT_TRUE(icontains(r.err, "host")) << r;
  EXPECT_TRUE(port_free(port)) << "nothing was published";
  EXPECT_TRUE(helpers().empty()) << pids_text(helpers());
}

TEST_F(NetworkTest, BadPublishValuesAreUsageErrors) {
  for (const std::string v : {"abc", "70000:80", "8080:0", "8080:80/sctp", "1000-1002:80-81", "300-200:80", "1.2.3:80:80",
                              "a:b:c:d", "[::1:80:80", "8080:"}) {
    Result r = hutch({"run", "--rm", "-p", v, "bb", "true"});
    EXPECT_TRUE(OneLineError(r, {v})) << "-p " << v;
  }
  Result ps = hutch({"ps", "-a", "-q"});
  EXPECT_EQ(ps.out, "") << ps;
}

TEST_F(NetworkTest, BadNetworkOptionsAreUsageErrors) {
  EXPECT_TRUE(OneLineError(hutch({"run", "--rm", "--network", "slirp:mtu=99", "bb", "true"}), {"mtu", "99"}));
  EXPECT_TRUE(OneLineError(hutch({"run", "--rm", "--network", "slirp:mtu=lots", "bb", "true"}), {"mtu", "lots"}));
  EXPECT_TRUE(OneLineError(hutch({"run", "--rm", "--network", "slirp:nosuch=1", "bb", "true"}), {"nosuch"}));
  EXPECT_TRUE(OneLineError(hutch({"run", "--rm", "--network", "slirp:allow_host_loopback=maybe", "bb", "true"}),
                           {"allow_host_loopback", "maybe"}));
  Result conf = hutch({"run", "--rm", "bb", "true"}, with_config("[plugins.slirp]\nmtu = 10\n"));
  EXPECT_CODE(conf, 125);
  EXPECT_TRUE(icontains(conf.err, "mtu")) << conf;
  Result ps = hutch({"ps", "-a", "-q"});
  EXPECT_EQ(ps.out, "") << "a refused network leaves no container" << ps;
}

// The engine refuses options on a user network ("options are for the slirp backend only"); the
// none and host backends take none either, so they must be refused there too, not ignored.
TEST_F(NetworkTest, OptionsOfNetworksWithoutOptionsAreRefused) {
  EXPECT_TRUE(OneLineError(hutch({"run", "--rm", "--network", "none:mtu=1500", "bb", "true"}), {"slirp"}));
  EXPECT_TRUE(OneLineError(hutch({"run", "--rm", "--network", "host:allow_host_loopback=true", "bb", "true"}), {"slirp"}));
}

// ---- helpers and leaks -------------------------------------------------------------------------

TEST_F(NetworkTest, OneHelperPerRunningContainer) {
  ASSERT_NE(run_d({"--name", "one", "-p", "80", "bb", "sh", "-c", kSleep}), "");
  ASSERT_TRUE(helpers_become(1)) << pids_text(helpers());
  pid_t helper = helpers()[0];
  // A fork of the monitor: the same binary, its parent the monitor.
  Result monitor = hutch({"inspect", "-f", "{{.State.ConmonPid}}", "one"});
  std::string status = read_file("/proc/" + std::to_string(helper) + "/status");
  EXPECT_TRUE(contains(status, "\nPPid:\t" + trim(monitor.out) + "\n")) << status << monitor;
  ASSERT_NE(run_d({"--name", "two", "bb", "sh", "-c", kSleep}), "");
  EXPECT_TRUE(helpers_become(2)) << pids_text(helpers());
  ASSERT_OK(hutch({"stop", "-t", "0", "one"}));
  EXPECT_TRUE(helpers_become(1)) << "the helper ends with its container: " << pids_text(helpers());
  auto left = helpers();
  EXPECT_EQ(std::count(left.begin(), left.end(), helper), 0) << "the stopped container's helper is the one gone";
  // A container that ends by itself takes its helper along.
  ASSERT_NE(run_d({"--name", "brief", "bb", "sleep", "1"}), "");
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(helpers_become(1)) << pids_text(helpers());
  ASSERT_OK(hutch({"rm", "-f", "one", "two", "brief"}));
  EXPECT_TRUE(helpers_become(0)) << pids_text(helpers());
  // A foreground --rm run too.
  ASSERT_OK(hutch({"run", "--rm", "-p", "80", "bb", "true"}));
  EXPECT_TRUE(helpers_become(0, 2s)) << pids_text(helpers());
}

TEST_F(NetworkTest, TwentyContainersWithPortsLeaveNothing) {
  const int n = 20;
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    names.push_back("leak" + std::to_string(i));
    ASSERT_NE(run_d({"--name", names.back(), "-p", "80", "-p", "53/udp", "bb", "sh", "-c", kSleep}), "") << names.back();
  }
  std::vector<std::uint16_t> tcp, udp;
  for (const auto& name : names) {
    tcp.push_back(host_port(name, "80"));
    udp.push_back(host_port(name, "53/udp"));
  }
  std::set<std::uint16_t> distinct(tcp.begin(), tcp.end());
  EXPECT_EQ(distinct.size(), static_cast<size_t>(n)) << "every container has a port of its own";
  for (auto p : tcp) EXPECT_FALSE(bound(SOCK_STREAM, "0.0.0.0", p).ok()) << "TCP port " << p << " is not held while its container runs";
  EXPECT_TRUE(helpers_become(n)) << "want one hutch-slirp per container: " << pids_text(helpers());

  std::vector<std::string> rm = {"rm", "-f"};
  rm.insert(rm.end(), names.begin(), names.end());
  Options o;
  o.timeout = 180s;
  Result r = hutch(rm, o);
  EXPECT_OK(r);
  EXPECT_EQ(hutch({"ps", "-a", "-q"}).out, "");
  EXPECT_TRUE(helpers_become(0, 3s)) << "hutch-slirp left after rm -f: " << pids_text(helpers());
  std::vector<std::string> stray;
  for (int i = 0; i < 30; ++i) {
    stray = stray_hutch_processes();
    if (stray.empty()) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(stray.empty()) << "processes of hutch left: " << ::testing::PrintToString(stray);
  for (auto p : tcp) EXPECT_TRUE(bound(SOCK_STREAM, "0.0.0.0", p).ok()) << "TCP port " << p << " is still held";
  for (auto p : udp) EXPECT_TRUE(bound(SOCK_DGRAM, "0.0.0.0", p).ok()) << "UDP port " << p << " is still held";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_, ec))
    EXPECT_NE(e.path().filename().string().rfind("slirp-", 0), 0u) << "helper pid file left: " << e.path();
}

// ---- restarts -----------------------------------------------------------------------------------

TEST_F(NetworkTest, RestartKeepsThePublishedPort) {
  std::uint16_t port = free_ports();
  ASSERT_NE(port, 0);
  std::string p = std::to_string(port);
  auto cmd = web("served-restart");
  std::vector<std::string> a = {"--name", "rs", "-p", p + ":80", "bb"};
  a.insert(a.end(), cmd.begin(), cmd.end());
  ASSERT_NE(run_d(a), "");
  ASSERT_TRUE(contains(http_get(port, "served-restart"), "served-restart"));
  Result rs = hutch({"restart", "-t", "1", "rs"});
  ASSERT_OK(rs);
  EXPECT_TRUE(contains(http_get(port, "served-restart"), "served-restart")) << "after hutch restart";
  EXPECT_EQ(host_port("rs", "80"), port);
  EXPECT_TRUE(helpers_become(1)) << "one helper after the restart: " << pids_text(helpers());
}

TEST_F(NetworkTest, OnFailureRestartKeepsThePublishedPort) {
  std::uint16_t port = free_ports();
  ASSERT_NE(port, 0);
  std::string p = std::to_string(port);
  auto cmd = web("served-again");
  std::vector<std::string> a = {"--name", "phoenix", "--restart", "on-failure:1", "-p", p + ":80", "bb"};
  a.insert(a.end(), cmd.begin(), cmd.end());
  ASSERT_NE(run_d(a), "");
  ASSERT_TRUE(contains(http_get(port, "served-again"), "served-again"));
  Result pid = hutch({"inspect", "-f", "{{.State.Pid}}", "phoenix"});
  int first = std::stoi(trim(pid.out));
  ASSERT_GT(first, 0);
  ASSERT_EQ(kill(first, SIGKILL), 0);  // exit 137: a failure
  bool again = false;
  for (int i = 0; i < 100 && !again; ++i) {
    Result st = hutch({"inspect", "-f", "{{.State.Status}} {{.State.Pid}} {{.RestartCount}}", "phoenix"});
    auto w = split_ws(st.out);
    again = w.size() == 3 && w[0] == "running" && w[1] != std::to_string(first) && w[2] == "1";
    if (!again) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(again) << "the container was not restarted";
  EXPECT_TRUE(contains(http_get(port, "served-again"), "served-again")) << "after the on-failure restart";
  EXPECT_TRUE(helpers_become(1)) << "one helper after the restart: " << pids_text(helpers());
}

}  // namespace
}  // namespace hit
