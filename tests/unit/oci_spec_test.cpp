#include <gtest/gtest.h>

#include <fstream>

#include "hutch/error.hpp"
#include "hutch/oci_spec.hpp"
#include "test_support.hpp"

using namespace hutch;
namespace fs = std::filesystem;

namespace {

class ImageUsers : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp_.path() / "etc");
    std::ofstream(tmp_.path() / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n"
                                                 "app:x:1000:1000:app:/home/app:/bin/sh\n"
                                                 "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    std::ofstream(tmp_.path() / "etc/group") << "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\nstaff:x:50:app\n";
  }
  test::TempDir tmp_;
};

TEST_F(ImageUsers, ResolvesNamesIdsAndGroups) {
  auto root = resolve_user(tmp_.path(), "");
  EXPECT_EQ(root.uid, 0u);
  EXPECT_EQ(root.home, "/root");
  auto app = resolve_user(tmp_.path(), "app");
  EXPECT_EQ(app.uid, 1000u);
  EXPECT_EQ(app.gid, 1000u);
  EXPECT_EQ(app.home, "/home/app");
  EXPECT_EQ(app.additional_gids, (std::vector<gid_t>{10, 50}));
  auto byid = resolve_user(tmp_.path(), "1000");
  EXPECT_EQ(byid.uid, 1000u);
  auto both = resolve_user(tmp_.path(), "1234:1234");
  EXPECT_EQ(both.uid, 1234u);
  EXPECT_EQ(both.gid, 1234u);
  auto named_group = resolve_user(tmp_.path(), "app:wheel");
  EXPECT_EQ(named_group.gid, 10u);
  EXPECT_THROW(resolve_user(tmp_.path(), "ghost"), Error);
  EXPECT_THROW(resolve_user(tmp_.path(), "app:ghosts"), Error);
}

TEST_F(ImageUsers, PasswdSymlinkCannotLeadOutside) {
  fs::remove(tmp_.path() / "etc/passwd");
  fs::create_symlink("/etc/passwd", tmp_.path() / "etc/passwd");  // resolved beneath the rootfs: missing
  EXPECT_THROW(resolve_user(tmp_.path(), "root"), Error);
  EXPECT_EQ(resolve_user(tmp_.path(), "0").uid, 0u);
}

TEST(Env, ImageThenDefaultsThenUser) {
  setenv("HUTCH_TEST_FROM_HOST", "host-value", 1);
  auto env = merge_env({"PATH=/custom", "A=image"}, {"A=user", "B=2", "HUTCH_TEST_FROM_HOST", "UNSET_VAR_XYZ"},
                       "myhost", "/root", false);
  auto has = [&](const std::string& kv) { return std::find(env.begin(), env.end(), kv) != env.end(); };
  EXPECT_TRUE(has("PATH=/custom"));
  EXPECT_TRUE(has("A=user"));
  EXPECT_TRUE(has("B=2"));
  EXPECT_TRUE(has("HOSTNAME=myhost"));
  EXPECT_TRUE(has("HOME=/root"));
  EXPECT_TRUE(has("HUTCH_TEST_FROM_HOST=host-value"));
  for (const auto& e : env) EXPECT_NE(e.rfind("UNSET_VAR_XYZ", 0), 0u);
  auto dflt = merge_env({}, {}, "h", "/", true);
  EXPECT_NE(std::find(dflt.begin(), dflt.end(), std::string("PATH=") + kDefaultPath), dflt.end());
  EXPECT_NE(std::find(dflt.begin(), dflt.end(), "TERM=xterm"), dflt.end());
}

TEST(Env, EnvFile) {
  test::TempDir tmp;
  std::ofstream(tmp.path() / "e") << "# comment\n\nA=1\n  B=two words\r\nC\n";
  auto v = read_env_file(tmp.path() / "e");
  EXPECT_EQ(v, (std::vector<std::string>{"A=1", "B=two words", "C"}));
  std::ofstream(tmp.path() / "bad") << "=novalue\n";
  EXPECT_THROW(read_env_file(tmp.path() / "bad"), Error);
}

TEST(Spec, CarriesTheRunOptions) {
  SpecInputs in;
  in.rootfs = "/r";
  in.args = {"sh", "-c", "true"};
  in.env = {"A=1"};
  in.cwd = "/work";
  in.user.uid = 1000;
  in.user.gid = 1000;
  in.hostname = "box";
  in.network.new_netns = false;
  in.file_binds = {{"/etc/hosts", "/b/hosts"}};
  auto s = generate_spec(in);
  EXPECT_EQ(s["process"]["args"], nlohmann::json({"sh", "-c", "true"}));
  EXPECT_EQ(s["process"]["cwd"], "/work");
  EXPECT_EQ(s["process"]["user"]["uid"], 1000);
  EXPECT_TRUE(s["process"]["capabilities"]["effective"].empty());  // a non-root user has none
  EXPECT_FALSE(s["process"]["capabilities"]["bounding"].empty());
  EXPECT_EQ(s["hostname"], "box");
  EXPECT_EQ(s["root"]["path"], "/r");
  std::set<std::string> ns;
  for (const auto& n : s["linux"]["namespaces"]) ns.insert(n["type"]);
  EXPECT_EQ(ns, (std::set<std::string>{"pid", "ipc", "uts", "mount", "cgroup"}));  // host network: none of its own
  in.network.new_netns = true;
  ns.clear();
  auto with_netns = generate_spec(in);
  for (const auto& n : with_netns["linux"]["namespaces"]) ns.insert(n["type"]);
  EXPECT_TRUE(ns.count("network"));
  bool hosts = false;
  for (const auto& m : s["mounts"]) hosts |= m["destination"] == "/etc/hosts" && m["source"] == "/b/hosts";
  EXPECT_TRUE(hosts);
}

}  // namespace
