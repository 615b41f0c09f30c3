#include "hutch/seccomp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <tuple>
#include <set>

#include "hutch/error.hpp"
#include "test_support.hpp"

using namespace hutch;
using nlohmann::json;

namespace {

// docker's default capabilities (core/src/oci_spec.cpp).
const std::vector<std::string> kDefaultCaps = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",     "CAP_FOWNER",           "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",     "CAP_SETFCAP",          "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"};

bool has_name(const json& rule, const std::string& name) {
  const auto& n = rule["names"];
  return std::find(n.begin(), n.end(), name) != n.end();
}

// The rules of an OCI seccomp object that name `name`.
std::vector<json> rules_for(const json& oci, const std::string& name) {
  std::vector<json> out;
  for (const auto& r : oci["syscalls"])
    if (has_name(r, name)) out.push_back(r);
  return out;
}

bool unconditionally_allowed(const json& oci, const std::string& name) {
  for (const auto& r : rules_for(oci, name))
    if (r["action"] == "SCMP_ACT_ALLOW" && !r.contains("args")) return true;
  return false;
}

std::string error_of(const json& profile, const std::string& source = "seccomp profile /tmp/p.json") {
  try {
    seccomp_for_spec(profile, kDefaultCaps, source);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << profile.dump();
  return "";
}

TEST(Seccomp, DefaultProfileIsDockersFormat) {
  const json& p = default_seccomp_profile();
  EXPECT_EQ(p["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(p["defaultErrnoRet"], 1);
  ASSERT_TRUE(p["archMap"].is_array());
  ASSERT_TRUE(p["syscalls"].is_array());
  std::set<std::string> allowed;
  for (const auto& n : p["syscalls"][0]["names"]) allowed.insert(n.get<std::string>());
  EXPECT_EQ(allowed.size(), p["syscalls"][0]["names"].size()) << "a name is listed twice";
  EXPECT_GT(allowed.size(), 350u);
  // What the native runtime does after it loaded the filter, and a shell's everyday calls.
  for (const char* n : {"setresuid", "setresgid", "setgroups", "capset", "capget", "prctl", "open", "openat", "write",
                        "close", "rt_sigprocmask", "execve", "execveat", "exit_group", "chdir", "mkdir", "wait4"})
    EXPECT_TRUE(allowed.count(n)) << n;
  for (const char* n : {"mount", "umount2", "unshare", "setns", "ptrace", "init_module", "reboot", "io_uring_setup",
                        "kexec_load", "keyctl", "add_key", "clone", "clone3", "personality", "socket"})
    EXPECT_FALSE(allowed.count(n)) << n << " must not be allowed for everyone";
}

TEST(Seccomp, DefaultProfileConverts) {
  json oci = seccomp_for_spec(default_seccomp_profile(), kDefaultCaps);
  EXPECT_EQ(oci["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(oci["defaultErrnoRet"], 1);
  EXPECT_TRUE(unconditionally_allowed(oci, "execve"));
  EXPECT_TRUE(unconditionally_allowed(oci, "chroot"));  // CAP_SYS_CHROOT is a default capability
  for (const auto& r : oci["syscalls"]) {
    EXPECT_FALSE(r.contains("includes")) << r.dump();
    EXPECT_FALSE(r.contains("excludes")) << r.dump();
    EXPECT_FALSE(r["names"].empty());
  }
  // Five personality(2) values, each its own rule.
  EXPECT_EQ(rules_for(oci, "personality").size(), 5u);
  auto socket = rules_for(oci, "socket");
  ASSERT_EQ(socket.size(), 1u);
  EXPECT_EQ(socket[0]["args"], json::parse(R"([{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}])"));
}

TEST(Seccomp, MountOnlyWithSysAdmin) {
  json without = seccomp_for_spec(default_seccomp_profile(), kDefaultCaps);
  for (const char* n : {"mount", "umount2", "unshare", "setns", "bpf", "perf_event_open"})
    EXPECT_TRUE(rules_for(without, n).empty()) << n;
  auto caps = kDefaultCaps;
  caps.push_back("CAP_SYS_ADMIN");
  json with = seccomp_for_spec(default_seccomp_profile(), caps);
  for (const char* n : {"mount", "umount2", "unshare", "setns", "clone", "clone3"})
    EXPECT_TRUE(unconditionally_allowed(with, n)) << n;
  // With CAP_SYS_ADMIN neither the clone argument rule nor clone3's ENOSYS remain.
  for (const auto& r : rules_for(with, "clone")) EXPECT_FALSE(r.contains("args")) << r.dump();
  for (const auto& r : rules_for(with, "clone3")) EXPECT_EQ(r["action"], "SCMP_ACT_ALLOW");
  // Capabilities may be named without CAP_.
  EXPECT_TRUE(unconditionally_allowed(seccomp_for_spec(default_seccomp_profile(), {"SYS_PTRACE"}), "ptrace"));
}

TEST(Seccomp, CapabilityRules) {
  json none = seccomp_for_spec(default_seccomp_profile(), {});
  // ptrace is allowed for everyone since Linux 4.8 (a minKernel rule), kcmp only with CAP_SYS_PTRACE.
  EXPECT_TRUE(unconditionally_allowed(none, "ptrace"));
  struct Case {
    const char* cap;
    const char* syscall;
  } cases[] = {{"CAP_SYS_PTRACE", "kcmp"},       {"CAP_SYS_MODULE", "init_module"},
               {"CAP_SYS_TIME", "settimeofday"}, {"CAP_SYS_BOOT", "reboot"},
               {"CAP_SYS_NICE", "mbind"},        {"CAP_SYS_RAWIO", "iopl"},
               {"CAP_SYSLOG", "syslog"},         {"CAP_BPF", "bpf"},
               {"CAP_PERFMON", "perf_event_open"}, {"CAP_SYS_CHROOT", "chroot"},
               {"CAP_DAC_READ_SEARCH", "open_by_handle_at"}, {"CAP_SYS_PACCT", "acct"}};
  for (const auto& c : cases) {
    EXPECT_FALSE(unconditionally_allowed(none, c.syscall)) << c.syscall;
    EXPECT_TRUE(unconditionally_allowed(seccomp_for_spec(default_seccomp_profile(), {c.cap}), c.syscall))
        << c.cap << " " << c.syscall;
  }
}

TEST(Seccomp, CloneArgumentRule) {
  json oci = seccomp_for_spec(default_seccomp_profile(), kDefaultCaps);
  auto clone = rules_for(oci, "clone");
  ASSERT_EQ(clone.size(), 1u);  // the s390 variant is for s390 only
  EXPECT_EQ(clone[0]["action"], "SCMP_ACT_ALLOW");
  ASSERT_EQ(clone[0]["args"].size(), 1u);
  const json& a = clone[0]["args"][0];
#if defined(__s390x__)
  EXPECT_EQ(a["index"], 1);
#else
  EXPECT_EQ(a["index"], 0);
#endif
  EXPECT_EQ(a["op"], "SCMP_CMP_MASKED_EQ");
  EXPECT_EQ(a["value"].get<unsigned long long>(), 0x7E020000ull);  // the CLONE_NEW* flags
  EXPECT_FALSE(a.contains("valueTwo"));                             // masked with them, equal to 0
  auto clone3 = rules_for(oci, "clone3");
  ASSERT_EQ(clone3.size(), 1u);
  EXPECT_EQ(clone3[0]["action"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(clone3[0]["errnoRet"], 38);  // ENOSYS: libc falls back to clone
}

TEST(Seccomp, ArchitecturesOfThisHost) {
  json oci = seccomp_for_spec(default_seccomp_profile(), kDefaultCaps);
#if defined(__x86_64__) && !defined(__ILP32__)
  EXPECT_EQ(oci["architectures"], json({"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  EXPECT_FALSE(rules_for(oci, "arch_prctl").empty());
  EXPECT_FALSE(rules_for(oci, "modify_ldt").empty());
  EXPECT_TRUE(rules_for(oci, "set_tls").empty());
  EXPECT_TRUE(rules_for(oci, "s390_runtime_instr").empty());
#elif defined(__aarch64__)
  EXPECT_EQ(oci["architectures"], json({"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}));
  EXPECT_FALSE(rules_for(oci, "set_tls").empty());
  EXPECT_TRUE(rules_for(oci, "arch_prctl").empty());
#endif
  // An "architectures" list is taken as it is.
  json old = {{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", {"SCMP_ARCH_X86_64"}}, {"syscalls", json::array()}};
  EXPECT_EQ(seccomp_for_spec(old, {})["architectures"], json({"SCMP_ARCH_X86_64"}));
}

TEST(Seccomp, IncludesAndExcludes) {
  json p = json::parse(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
      {"names": ["a1"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "2.6"}},
      {"names": ["a2"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "999.0"}},
      {"names": ["a3"], "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": "2.6"}},
      {"names": ["a4"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_A", "CAP_B"]}},
      {"names": ["a5"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_Z", "CAP_B"]}},
      {"names": ["a6"], "action": "SCMP_ACT_ERRNO", "excludes": {"arches": ["amd64", "arm64", "ppc64le", "s390x", "riscv64"]}}
    ]})");
  json with_a = seccomp_for_spec(p, {"CAP_A"});
  std::set<std::string> kept;
  for (const auto& r : with_a["syscalls"]) kept.insert(r["names"][0].get<std::string>());
  EXPECT_EQ(kept, (std::set<std::string>{"a1", "a5"}));
  json with_ab = seccomp_for_spec(p, {"CAP_A", "CAP_B"});
  kept.clear();
  for (const auto& r : with_ab["syscalls"]) kept.insert(r["names"][0].get<std::string>());
  EXPECT_EQ(kept, (std::set<std::string>{"a1", "a4"}));
}

TEST(Seccomp, OldNameFieldWorks) {
  json p = json::parse(R"({"defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO", "args": []}]})");
  json oci = seccomp_for_spec(p, {});
  ASSERT_EQ(oci["syscalls"].size(), 1u);
  EXPECT_EQ(oci["syscalls"][0]["names"], json({"mkdir"}));
  EXPECT_EQ(oci["syscalls"][0]["action"], "SCMP_ACT_ERRNO");
  EXPECT_FALSE(oci["syscalls"][0].contains("args"));
  // docker refuses both at once.
  p["syscalls"][0]["names"] = {"rmdir"};
  EXPECT_NE(error_of(p).find("\"name\" and \"names\""), std::string::npos);
}

TEST(Seccomp, BadProfilesNameTheField) {
  json p = json::parse(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["a"], "action": "SCMP_ACT_ERRNO"},
    {"names": ["b"], "action": "SCMP_ACT_ERRNO"},
    {"names": ["c"], "action": "SCMP_ACT_ERRNO"},
    {"names": ["d"], "action": "SCMP_ACT_FOO"}]})");
  std::string e = error_of(p);
  EXPECT_EQ(e.rfind("seccomp profile /tmp/p.json: syscalls[3].action: unknown action \"SCMP_ACT_FOO\"", 0), 0u) << e;

  p["syscalls"][3] = {{"action", "SCMP_ACT_ERRNO"}};
  e = error_of(p);
  EXPECT_NE(e.find("syscalls[3]"), std::string::npos) << e;
  EXPECT_NE(e.find("names"), std::string::npos) << e;

  p["syscalls"][3] = json::parse(R"({"names": ["d"], "action": "SCMP_ACT_ALLOW",
                                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                              {"index": 1, "value": 1, "op": "SCMP_CMP_ALMOST"}]})");
  e = error_of(p);
  EXPECT_NE(e.find("syscalls[3].args[1].op: unknown operator \"SCMP_CMP_ALMOST\""), std::string::npos) << e;

  p["syscalls"][3]["args"][1] = {{"index", 6}, {"value", 1}, {"op", "SCMP_CMP_EQ"}};
  e = error_of(p);
  EXPECT_NE(e.find("syscalls[3].args[1].index"), std::string::npos) << e;

  p["syscalls"][3] = json::parse(R"({"names": ["d"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "four"}})");
  e = error_of(p);
  EXPECT_NE(e.find("syscalls[3].includes.minKernel"), std::string::npos) << e;

  p["syscalls"][3] = json::parse(R"({"names": ["Not A Syscall"], "action": "SCMP_ACT_ERRNO"})");
  e = error_of(p);
  EXPECT_NE(e.find("syscalls[3].names[0]"), std::string::npos) << e;

  e = error_of(json::parse(R"({"defaultAction": "SCMP_ACT_NOPE"})"));
  EXPECT_NE(e.find("defaultAction: unknown action \"SCMP_ACT_NOPE\""), std::string::npos) << e;
  e = error_of(json::parse(R"({"syscalls": []})"));
  EXPECT_NE(e.find("defaultAction"), std::string::npos) << e;
  e = error_of(json::parse(R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]})"));
  EXPECT_NE(e.find("architectures[0]: unknown architecture \"SCMP_ARCH_Z80\""), std::string::npos) << e;
  e = error_of(json::parse(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["a"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]})"));
  EXPECT_NE(e.find("syscalls[0].errnoRet"), std::string::npos) << e;
}

TEST(Seccomp, ReadProfileFile) {
  test::TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.path() / name) << text;
    return (dir.path() / name).string();
  };
  std::string good = write("good.json", default_seccomp_profile().dump());
  EXPECT_EQ(read_seccomp_profile(good), default_seccomp_profile());

  std::string missing = (dir.path() / "missing.json").string();
  try {
    read_seccomp_profile(missing);
    ADD_FAILURE() << "a missing file was read";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  for (const auto& [name, text, needle] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"notjson.json", "{defaultAction: ", "not valid JSON"},
           {"array.json", "[1, 2]", "not a seccomp profile"},
           {"bad.json", R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "NOPE"}]})",
            "syscalls[0].action"}}) {
    std::string file = write(name, text);
    try {
      read_seccomp_profile(file);
      ADD_FAILURE() << name << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

// containers-common's profile (podman's), when installed: another real profile in the same format.
TEST(Seccomp, PodmansProfileConvertsWhenInstalled) {
  const char* file = "/usr/share/containers/seccomp.json";
  if (!std::ifstream(file)) HUTCH_SKIP_OUTSIDE_CI(file << " is not installed");
  json oci = seccomp_for_spec(read_seccomp_profile(file), kDefaultCaps, std::string("seccomp profile ") + file);
  EXPECT_TRUE(unconditionally_allowed(oci, "execve"));
}

}  // namespace
