// The user namespace (per mode), the container's other namespaces, unshare, networking,
// the single-ID warning and the pause process.
#include <signal.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <thread>

#include "harness.hpp"

namespace hit {
namespace {

std::string show_map(const std::vector<std::vector<unsigned long>>& m) {
  std::string s;
  for (const auto& row : m) {
    for (auto v : row) s += std::to_string(v) + " ";
    s += "\n";
  }
  return s;
}

class NsTest : public ImageTest {};

TEST_F(NsTest, ContainerIdMapsFollowTheMode) {
  Result r = hutch({"run", "--rm", "bb", "sh", "-c", "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map"});
  ASSERT_OK(r);
  auto sep = r.out.find("--\n");
  ASSERT_NE(sep, std::string::npos) << r;
  auto uid_map = parse_id_map(r.out.substr(0, sep));
  auto gid_map = parse_id_map(r.out.substr(sep + 3));
  EXPECT_EQ(uid_map, expected_id_map(false)) << "mode " << suite().mode_name << "; expected uid_map:\n"
                                             << show_map(expected_id_map(false)) << r;
  EXPECT_EQ(gid_map, expected_id_map(true)) << "mode " << suite().mode_name << "; expected gid_map:\n"
                                            << show_map(expected_id_map(true)) << r;
}

TEST_F(NsTest, UnshareIdMapsFollowTheMode) {
  Result r = hutch({"unshare", "cat", "/proc/self/uid_map"});
  ASSERT_OK(r);
  EXPECT_EQ(parse_id_map(r.out), expected_id_map(false)) << "expected:\n" << show_map(expected_id_map(false)) << r;
  Result g = hutch({"unshare", "cat", "/proc/self/gid_map"});
  ASSERT_OK(g);
  EXPECT_EQ(parse_id_map(g.out), expected_id_map(true)) << "expected:\n" << show_map(expected_id_map(true)) << g;
}

TEST_F(NsTest, UnshareIsRoot) {
  Result r = hutch({"unshare", "id", "-u"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "0\n") << r;
  Result g = hutch({"unshare", "id", "-g"});
  EXPECT_OK(g);
  EXPECT_EQ(g.out, "0\n") << g;
}

TEST_F(NsTest, UnshareExitCodeAndStdio) {
  Result r = hutch({"unshare", "sh", "-c", "echo out; echo err >&2; exit 7"});
  EXPECT_CODE(r, 7);
  EXPECT_EQ(r.out, "out\n") << r;
  EXPECT_EQ(r.err, "err\n") << r;
  EXPECT_CODE(hutch({"unshare", "/nonexistent/command"}), 127);
}

TEST_F(NsTest, UnshareRunsTheShellByDefault) {
  Options o;
  o.env["SHELL"] = "/bin/sh";
  o.input = "id -u\necho from-default-shell\nexit 4\n";
  Result r = hutch({"unshare"}, o);
  EXPECT_CODE(r, 4);
  EXPECT_TRUE(contains(r.out, "0\nfrom-default-shell\n")) << r;
}

TEST_F(NsTest, UnshareCanRemoveImageFiles) {
  // The store's files may belong to subordinate IDs; inside the namespace they are removable.
  std::string victim = dir_ + "/copy";
  Result cp = hutch({"unshare", "cp", "-a", root_, victim});
  ASSERT_OK(cp);
  Result rm = hutch({"unshare", "rm", "-rf", victim});
  EXPECT_OK(rm);
  EXPECT_FALSE(fs::exists(victim));
}

TEST_F(NsTest, ContainerHasItsOwnNamespaces) {
  Result r = hutch({"run", "--rm", "--network", "none", "bb", "sh", "-c",
                    "for n in pid uts ipc mnt cgroup net user; do echo $n $(readlink /proc/self/ns/$n); done"});
  ASSERT_OK(r);
  std::map<std::string, std::string> got;
  for (const auto& l : lines(r.out)) {
    auto w = split_ws(l);
    if (w.size() == 2) got[w[0]] = w[1];
  }
  ASSERT_EQ(got.size(), 7u) << r;
  for (const char* ns : {"pid", "uts", "ipc", "mnt", "cgroup", "net"}) {
    EXPECT_TRUE(std::regex_match(got[ns], std::regex(std::string(ns) + ":\\[[0-9]+\\]"))) << got[ns];
    EXPECT_NE(got[ns], ns_link(ns)) << "the container must have its own " << ns << " namespace" << r;
  }
  if (suite().mode == Mode::kRoot)
    EXPECT_EQ(got["user"], ns_link("user")) << "as real root no user namespace is made" << r;
  else
    EXPECT_NE(got["user"], ns_link("user")) << "rootless: the container is in hutch's user namespace" << r;
}

TEST_F(NsTest, HostnameStaysInside) {
  char before[256] = {0};
  gethostname(before, sizeof before - 1);
  Result r = hutch({"run", "--rm", "--hostname", "inner-name", "bb", "hostname"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "inner-name\n");
  char after[256] = {0};
  gethostname(after, sizeof after - 1);
  EXPECT_STREQ(before, after);
}

TEST_F(NsTest, UserNamespaceIsSharedByConcurrentCommands) {
  Options o;
  o.timeout = 90s;
  Proc c(cmd({"run", "--rm", "bb", "sh", "-c",
              "trap 'exit 0' TERM; readlink /proc/self/ns/user; echo ready; while true; do sleep 0.1; done"}),
         o);
  ASSERT_TRUE(c.wait_for_stdout("ready\n", 60s)) << "the long-running container did not start" << c.wait();
  std::string in_container = lines(c.out_so_far()).at(0);

  Result u = hutch({"unshare", "readlink", "/proc/self/ns/user"});
  Result other = hutch({"run", "--rm", "bb", "readlink", "/proc/self/ns/user"});
  c.signal(SIGTERM);
  Result cr = c.wait();
  EXPECT_OK(cr);
  ASSERT_OK(u);
  ASSERT_OK(other);
  EXPECT_EQ(trim(u.out), in_container) << "hutch unshare is not in the running container's user namespace" << u << cr;
  EXPECT_EQ(trim(other.out), in_container) << "two containers of one user are in different user namespaces" << other;
  if (suite().mode == Mode::kRoot)
    EXPECT_EQ(in_container, ns_link("user"));
  else
    EXPECT_NE(in_container, ns_link("user"));
}

TEST_F(NsTest, NoPauseProcessStaysBehind) {
  ASSERT_OK(hutch({"run", "--rm", "bb", "true"}));
  ASSERT_OK(hutch({"unshare", "true"}));
  {
    Options o;
    o.timeout = 60s;
    Proc c(cmd({"run", "--rm", "bb", "sh", "-c", "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"}), o);
    ASSERT_TRUE(c.wait_for_stdout("ready\n", 45s)) << c.wait();
    c.signal(SIGTERM);
    EXPECT_OK(c.wait());
  }
  std::vector<std::string> left;
  for (int i = 0; i < 30; ++i) {  // up to 3 s
    left = stray_hutch_processes();
    if (left.empty()) break;
    std::this_thread::sleep_for(100ms);
  }
  std::string all;
  for (const auto& l : left) all += "  " + l + "\n";
  EXPECT_TRUE(left.empty()) << "processes of hutch still alive 3 s after every command ended:\n" << all;
}

TEST_F(NsTest, NetworkNoneHasOnlyLoopbackUp) {
  Result r = hutch({"run", "--rm", "--network", "none", "bb", "cat", "/proc/net/dev"});
  ASSERT_OK(r);
  EXPECT_EQ(net_devices(r.out), std::vector<std::string>{"lo"}) << r;
  Result l = hutch({"run", "--rm", "--network", "none", "bb", "ip", "link", "show", "lo"});
  ASSERT_OK(l);
  EXPECT_TRUE(std::regex_search(l.out, std::regex("<[^>]*\\bUP\\b[^>]*>"))) << "lo must be up" << l;
}

TEST_F(NsTest, NetworkHostSeesTheHostInterfaces) {
  Result r = hutch({"run", "--rm", "--network", "host", "bb", "sh", "-c", "cat /proc/net/dev; readlink /proc/self/ns/net"});
  ASSERT_OK(r);
  auto host = net_devices(read_file("/proc/net/dev"));
  ASSERT_FALSE(host.empty());
  EXPECT_EQ(net_devices(r.out), host) << r;
  EXPECT_TRUE(contains(r.out, ns_link("net"))) << "--network host shares the host's network namespace" << r;
}

// Single-ID mode says so exactly once per fresh runroot; other modes say nothing.
using WarningTest = FreshTest;

TEST_F(WarningTest, SingleIdWarningOnceOnFirstCommand) {
  Result first = hutch({"images", "-q"});
  ASSERT_OK(first);
  EXPECT_EQ(first.out, "");
  Result second = hutch({"images", "-q"});
  ASSERT_OK(second);
  if (suite().mode == Mode::kNoRange) {
    auto ls = lines(first.err);
    ASSERT_EQ(ls.size(), 1u) << "exactly one warning line on the first command" << first;
    EXPECT_TRUE(icontains(ls[0], "warning:")) << first;
    EXPECT_TRUE(icontains(ls[0], "single-ID") || icontains(ls[0], "single ID")) << first;
    EXPECT_EQ(second.err, "") << "the warning is given once per runroot" << second;
    // And images still import and run, as the caller's own uid.
    std::string id = import_busybox("bb");
    ASSERT_FALSE(id.empty());
    Result r = hutch({"run", "--rm", "bb", "sh", "-c", "id -u; cat /proc/self/uid_map"});
    ASSERT_OK(r);
    auto rl = lines(r.out);
    ASSERT_EQ(rl.size(), 2u) << r;
    EXPECT_EQ(rl[0], "0");
    EXPECT_EQ(split_ws(rl[1]), (std::vector<std::string>{"0", std::to_string(getuid()), "1"})) << r;
    EXPECT_EQ(r.err, "") << r;
  } else {
    EXPECT_EQ(first.err, "") << "mode " << suite().mode_name << " has nothing to warn about" << first;
    EXPECT_EQ(second.err, "") << second;
  }
}

}  // namespace
}  // namespace hit
