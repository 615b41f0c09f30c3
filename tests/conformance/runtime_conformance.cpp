// What every runtime must do with core's spec, run against each runtime plugin.
// Needs to create namespaces: run as root, or inside `hutch unshare`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "conformance_util.hpp"
#include "hutch/oci_spec.hpp"
#include "hutch/runtime.hpp"
#include "hutch/seccomp.hpp"

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
  nlohmann::json spec_for(const std::vector<std::string>& args) {
    SpecInputs in;
    in.rootfs = rootfs_;
    in.args = args;
    in.env = merge_env({}, {"FOO=bar"}, "conformance", "/", false);
    in.hostname = "conformance";
    in.network.new_netns = true;
    return generate_spec(in);
  }
  pid_t create_from(const nlohmann::json& spec, const std::string& id) {
    fs::path bundle = scratch_.path() / "bundle";
    std::ofstream(bundle / "config.json") << spec.dump();
    return rt_->create(id, bundle, RuntimeIo{});
  }
  pid_t create(const std::vector<std::string>& args, const std::string& id) { return create_from(spec_for(args), id); }
  // Runs `script` with sh in a container made from `spec`; returns its exit code, and what
  // it wrote to the container's /tmp/out in `out`.
  int run_script(nlohmann::json spec, const std::string& script, const std::string& id, std::string& out) {
    spec["process"]["args"] = {"/bin/sh", "-c", script};
    fs::remove(rootfs_ / "tmp/out");
    pid_t pid = create_from(spec, id);
    rt_->start(id);
    int code = wait_for(pid);
    rt_->remove(id);
    out = test::slurp(rootfs_ / "tmp/out");
    return code;
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

// A filter of our own: everything allowed but mkdir(2), which says EPERM; loaded before the
// capabilities go, and (with noNewPrivileges) just before the exec.
TEST_P(RuntimeConformance, SeccompFilterRefusesWhatItNames) {
  nlohmann::json spec = spec_for({"true"});
  spec["linux"]["seccomp"] = nlohmann::json::parse(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]})");
  const std::string script =
      "echo hello > /tmp/out; /bin/busybox mkdir /tmp/made 2>> /tmp/out; echo rc=$? >> /tmp/out; "
      "/bin/busybox grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status >> /tmp/out";
  for (bool no_new_privileges : {false, true}) {
    SCOPED_TRACE(no_new_privileges ? "with noNewPrivileges" : "without noNewPrivileges");
    spec["process"]["noNewPrivileges"] = no_new_privileges;
    std::string out;
    EXPECT_EQ(run_script(spec, script, "sc1", out), 0);
    EXPECT_NE(out.find("hello\n"), std::string::npos) << out;
    EXPECT_NE(out.find("Operation not permitted"), std::string::npos) << out;
    EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
    EXPECT_NE(out.find("Seccomp:\t2"), std::string::npos) << out;  // filter mode
    // No no_new_privs the spec did not ask for (libseccomp would set it by default).
    EXPECT_NE(out.find(no_new_privileges ? "NoNewPrivs:\t1" : "NoNewPrivs:\t0"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(rootfs_ / "tmp/made"));
  }
}

// docker's default profile for docker's default capabilities: a shell works, but making
// namespaces or mounting (CAP_SYS_ADMIN's syscalls) is refused by the filter.
TEST_P(RuntimeConformance, DefaultSeccompProfile) {
  nlohmann::json spec = spec_for({"true"});
  const std::string script =
      "echo hello > /tmp/out; /bin/busybox mkdir /tmp/made && echo made >> /tmp/out; "
      "/bin/busybox unshare -U true 2>> /tmp/out || echo unshare-refused >> /tmp/out; "
      "/bin/busybox mount -t tmpfs none /tmp/made 2>> /tmp/out || echo mount-refused >> /tmp/out; "
      "/bin/busybox grep '^Seccomp:' /proc/self/status >> /tmp/out";
  // Without a filter, unshare(CLONE_NEWUSER) works where user namespaces are enabled: no
  // capability is needed for it. So when it is refused below, the filter refused it.
  std::string out;
  EXPECT_EQ(run_script(spec, script, "sc2", out), 0);
  if (out.find("unshare-refused") != std::string::npos)
    std::cerr << "note: this kernel refuses user namespaces even without seccomp\n";
  fs::remove_all(rootfs_ / "tmp/made");

  auto caps = spec["process"]["capabilities"]["bounding"].get<std::vector<std::string>>();
  spec["linux"]["seccomp"] = seccomp_for_spec(default_seccomp_profile(), caps);
  EXPECT_EQ(run_script(spec, script, "sc3", out), 0);
  EXPECT_NE(out.find("hello\nmade\n"), std::string::npos) << out;
  EXPECT_NE(out.find("unshare-refused"), std::string::npos) << out;
  EXPECT_NE(out.find("mount-refused"), std::string::npos) << out;
  EXPECT_NE(out.find("Operation not permitted"), std::string::npos) << out;
  EXPECT_NE(out.find("Seccomp:\t2"), std::string::npos) << out;
  fs::remove_all(rootfs_ / "tmp/made");
}

TEST_P(RuntimeConformance, BadSeccompIsAClearError) {
  nlohmann::json spec = spec_for({"true"});
  spec["linux"]["seccomp"] = nlohmann::json::parse(R"({"defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}, {"names": ["rmdir"], "action": "SCMP_ACT_SOMETIMES"}]})");
  try {
    create_from(spec, "sc4");
    ADD_FAILURE() << "an unknown seccomp action was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("linux.seccomp.syscalls[1].action"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("SCMP_ACT_SOMETIMES"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(rt_->state("sc4"));
}

INSTANTIATE_TEST_SUITE_P(Plugins, RuntimeConformance, ::testing::Values("native"));

}  // namespace
