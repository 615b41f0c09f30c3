// What every runtime must do with core's spec, run against each runtime plugin.
// Needs to create namespaces: run as root, or inside `hutch unshare`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "conformance_util.hpp"
#include "hutch/oci_spec.hpp"
#include "hutch/runtime.hpp"

using namespace hutch;
using namespace hutch::conformance;
namespace fs = std::filesystem;

namespace {

class RuntimeConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    rt_ = loader().create<RuntimeBackend>(GetParam(), context_in(scratch_.path(), GetParam()));
    rootfs_ = scratch_.path() / "bundle" / "rootfs";
    fs::create_directories(rootfs_ / "bin");
    for (const char* d : {"proc", "sys", "dev", "tmp", "etc"}) fs::create_directories(rootfs_ / d);
    fs::copy_file("/bin/busybox", rootfs_ / "bin/busybox");
    for (const char* applet : {"sh", "cat", "sleep", "hostname", "id"}) fs::create_symlink("busybox", rootfs_ / "bin" / applet);
  }
  pid_t create(const std::vector<std::string>& args, const std::string& id) {
    SpecInputs in;
    in.rootfs = rootfs_;
    in.args = args;
    in.env = merge_env({}, {"FOO=bar"}, "conformance", "/", false);
    in.hostname = "conformance";
    in.network.new_netns = true;
    fs::path bundle = scratch_.path() / "bundle";
    std::ofstream(bundle / "config.json") << generate_spec(in).dump();
    return rt_->create(id, bundle, RuntimeIo{});
  }
  int wait_for(pid_t pid) {
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  Scratch scratch_;
  fs::path rootfs_;
  std::unique_ptr<RuntimeBackend> rt_;
};

TEST_P(RuntimeConformance, CreateStartStateAndExitCode) {
  pid_t pid = create({"/bin/sh", "-c", "echo $FOO $(hostname) $$ > /tmp/out; exit 7"}, "c1");
  ASSERT_GT(pid, 0);
  auto st = rt_->state("c1");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, "created");
  EXPECT_EQ(st->pid, pid);
  EXPECT_FALSE(fs::exists(rootfs_ / "tmp/out"));  // not before start
  rt_->start("c1");
  EXPECT_EQ(wait_for(pid), 7);
  std::ifstream in(rootfs_ / "tmp/out");
  std::string foo, host, self;
  in >> foo >> host >> self;
  EXPECT_EQ(foo, "bar");
  EXPECT_EQ(host, "conformance");
  EXPECT_EQ(self, "1");  // PID 1 of its own PID namespace
  EXPECT_EQ(rt_->state("c1")->status, "stopped");
  rt_->remove("c1");
  EXPECT_FALSE(rt_->state("c1"));
}

TEST_P(RuntimeConformance, KillReachesTheProcess) {
  pid_t pid = create({"sleep", "30"}, "c2");
  rt_->start("c2");
  rt_->kill("c2", SIGKILL);
  EXPECT_EQ(wait_for(pid), 128 + SIGKILL);
  rt_->remove("c2");
}

TEST_P(RuntimeConformance, MissingCommandExits127) {
  pid_t pid = create({"no-such-command"}, "c3");
  rt_->start("c3");
  EXPECT_EQ(wait_for(pid), 127);
  rt_->remove("c3");
}

TEST_P(RuntimeConformance, BadSpecIsAClearError) {
  fs::path bundle = scratch_.path() / "bundle";
  std::ofstream(bundle / "config.json") << R"({"process": {"args": []}, "root": {"path": "rootfs"}})";
  try {
    rt_->create("c4", bundle, RuntimeIo{});
    ADD_FAILURE() << "an empty process.args was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("args"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(rt_->state("c4"));
}

INSTANTIATE_TEST_SUITE_P(Plugins, RuntimeConformance, ::testing::Values("native"));

}  // namespace
