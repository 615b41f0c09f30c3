// The user's view of the three runtimes: `hutch --runtime R run --rm bb ...` for R = native,
// crun and runc, with one set of expectations. A test one runtime fails is that runtime's
// bug: privileges, isolation, mounts, process settings, --init, ID maps and resource limits
// must not depend on the runtime chosen.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <sstream>
#include <thread>

#include "harness.hpp"

namespace hit {
namespace {

constexpr const char* kDefaultCapEff = "00000000a80425fb";  // docker's default set

class RuntimeTest : public ImageTest, public ::testing::WithParamInterface<std::string> {
 protected:
  // hutch --runtime R ARGS...
  Result rt(const std::vector<std::string>& args, Options o = {}) {
    std::vector<std::string> a = {"--runtime", GetParam()};
    a.insert(a.end(), args.begin(), args.end());
    return hutch(a, std::move(o));
  }
  // hutch --runtime R run --rm OPTS... bb CMD...
  Result run_bb(const std::vector<std::string>& opts, const std::vector<std::string>& command, Options o = {}) {
    std::vector<std::string> a = {"run", "--rm"};
    a.insert(a.end(), opts.begin(), opts.end());
    a.push_back("bb");
    a.insert(a.end(), command.begin(), command.end());
    return rt(a, std::move(o));
  }
  Result sh(const std::vector<std::string>& opts, const std::string& script, Options o = {}) {
    return run_bb(opts, {"sh", "-c", script}, std::move(o));
  }
  bool norange() const { return suite().mode == Mode::kNoRange; }
  bool root() const { return suite().mode == Mode::kRoot; }
};

std::string status_field(const std::string& text, const std::string& key) {
  for (const auto& l : lines(text))
    if (l.rfind(key + ":", 0) == 0) return trim(l.substr(key.size() + 1));
  return "";
}

std::set<std::string> words(const std::string& s) {
  auto w = split_ws(s);
  return {w.begin(), w.end()};
}

// The bounding set of this test process: what "every capability" can be for its containers.
std::string own_cap_bnd() { return status_field(read_file("/proc/self/status"), "CapBnd"); }

// The mask of every capability this kernel knows (what root has in a new user namespace).
std::string every_capability() {
  int last = std::stoi(trim(read_file("/proc/sys/kernel/cap_last_cap")));
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (1ull << (last + 1)) - 1);
  return buf;
}

// pid of a process (of any user) whose argv is exactly `argv`, or -1.
pid_t find_any_process(const std::vector<std::string>& argv) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_file("/proc/" + name + "/cmdline");
    std::vector<std::string> args;
    std::string cur;
    for (char c : cmdline) {
      if (c == '\0') {
        args.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (args == argv) return static_cast<pid_t>(std::stol(name));
  }
  return -1;
}

// ---- exit codes -----------------------------------------------------------------------------------

TEST_P(RuntimeTest, ExitCodes) {
  EXPECT_CODE(run_bb({}, {"true"}), 0);
  EXPECT_CODE(sh({}, "exit 3"), 3);
  Result missing = run_bb({}, {"no-such-command"});
  EXPECT_CODE(missing, 127);
  EXPECT_TRUE(icontains(missing.err, "no-such-command")) << "say which command" << missing;
  EXPECT_CODE(run_bb({}, {"/bin/notexec"}), 126);
  EXPECT_CODE(run_bb({}, {"/tmp"}), 126) << "a directory cannot be executed";
}

// SIGKILL from inside reaches the command only when it is not PID 1 (the kernel shields the
// init of a PID namespace): with --init it is, and the init reports 128+9.
TEST_P(RuntimeTest, KillMinus9OfItself) {
  Result init = sh({"--init"}, "kill -9 $$; echo survived");
  EXPECT_CODE(init, 137);
  EXPECT_EQ(init.out, "") << init;
  Result pid1 = sh({}, "kill -9 $$; echo survived");
  EXPECT_CODE(pid1, 0);
  EXPECT_EQ(pid1.out, "survived\n") << "PID 1 of a PID namespace ignores signals from inside" << pid1;
}

// ---- capabilities and privileges -------------------------------------------------------------------

TEST_P(RuntimeTest, DefaultCapabilities) {
  Result r = run_bb({}, {"cat", "/proc/self/status"});
  ASSERT_OK(r);
  EXPECT_EQ(status_field(r.out, "CapEff"), kDefaultCapEff) << r;
  EXPECT_EQ(status_field(r.out, "CapBnd"), kDefaultCapEff) << r;
}

TEST_P(RuntimeTest, CapAddAndCapDrop) {
  Result r = run_bb({"--cap-add", "SYS_ADMIN", "--cap-add", "cap_net_admin", "--cap-drop", "CHOWN"},
                    {"grep", "CapEff", "/proc/self/status"});
  ASSERT_OK(r);
  EXPECT_EQ(status_field(r.out, "CapEff"), "00000000a82435fa") << "+SYS_ADMIN(21) +NET_ADMIN(12) -CHOWN(0)" << r;
  Result none = run_bb({"--cap-drop", "ALL"}, {"grep", "CapEff", "/proc/self/status"});
  ASSERT_OK(none);
  EXPECT_EQ(status_field(none.out, "CapEff"), "0000000000000000") << none;
  Result one = run_bb({"--cap-drop", "all", "--cap-add", "NET_BIND_SERVICE"}, {"grep", "CapEff", "/proc/self/status"});
  ASSERT_OK(one);
  EXPECT_EQ(status_field(one.out, "CapEff"), "0000000000000400") << one;
  EXPECT_TRUE(OneLineError(run_bb({"--cap-add", "NO_SUCH_CAP"}, {"true"}), {"NO_SUCH_CAP"}));
}

// With CAP_SYS_ADMIN and no filter in the way, a mount works; the default set cannot.
TEST_P(RuntimeTest, CapSysAdminAllowsAMount) {
  Result r = sh({"--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined"},
                "mkdir /tmp/m && mount -t tmpfs none /tmp/m && grep -c ' /tmp/m tmpfs' /proc/mounts");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "1\n") << r;
}

TEST_P(RuntimeTest, Privileged) {
  Result r = run_bb({"--privileged"}, {"cat", "/proc/self/status"});
  ASSERT_OK(r);
  // Every capability there is for this caller: its own bounding set (in hutch's user
  // namespace, rootless, that is all of them).
  std::string expected = root() ? own_cap_bnd() : every_capability();
  EXPECT_EQ(status_field(r.out, "CapEff"), expected) << r;
  EXPECT_EQ(status_field(r.out, "Seccomp"), "0") << "no filter with --privileged" << r;
}

TEST_P(RuntimeTest, NoNewPrivileges) {
  Result def = run_bb({}, {"grep", "NoNewPrivs", "/proc/self/status"});
  ASSERT_OK(def);
  EXPECT_EQ(status_field(def.out, "NoNewPrivs"), "0") << def;
  Result r = run_bb({"--security-opt", "no-new-privileges"}, {"grep", "NoNewPrivs", "/proc/self/status"});
  ASSERT_OK(r);
  EXPECT_EQ(status_field(r.out, "NoNewPrivs"), "1") << r;
  Result t = run_bb({"--security-opt", "no-new-privileges=true"}, {"grep", "NoNewPrivs", "/proc/self/status"});
  EXPECT_EQ(status_field(t.out, "NoNewPrivs"), "1") << t;
}

TEST_P(RuntimeTest, DefaultSeccompProfile) {
  Result r = sh({}, "grep Seccomp: /proc/self/status; unshare -U true && echo unshare-allowed; mkdir /tmp/d && echo mkdir-ok");
  EXPECT_OK(r);
  EXPECT_EQ(status_field(r.out, "Seccomp"), "2") << r;
  EXPECT_FALSE(contains(r.out, "unshare-allowed")) << "the default profile denies unshare(CLONE_NEWUSER)" << r;
  EXPECT_TRUE(contains(r.err, "Operation not permitted")) << r;
  EXPECT_TRUE(contains(r.out, "mkdir-ok")) << r;
}

TEST_P(RuntimeTest, SeccompUnconfined) {
  Result r = sh({"--security-opt", "seccomp=unconfined"},
                "grep Seccomp: /proc/self/status; unshare -U true && echo unshare-allowed");
  EXPECT_OK(r);
  EXPECT_EQ(status_field(r.out, "Seccomp"), "0") << r;
  EXPECT_TRUE(contains(r.out, "unshare-allowed")) << r;
}

TEST_P(RuntimeTest, SeccompProfileFile) {
  std::string profile = path("mkdir-denied.json");
  write_file(profile, R"({
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
  ]
}
)");
  Result r = sh({"--security-opt", "seccomp=" + profile}, "mkdir /tmp/denied && echo made; touch /tmp/f && echo touched");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "touched\n") << r;
  EXPECT_TRUE(contains(r.err, "Operation not permitted")) << r;

  write_file(path("broken.json"), "{ not json");
  EXPECT_TRUE(EngineError(run_bb({"--security-opt", "seccomp=" + path("broken.json")}, {"true"}), {"broken.json"}));
  EXPECT_TRUE(EngineError(run_bb({"--security-opt", "seccomp=" + path("missing.json")}, {"true"}), {"missing.json"}));
}

// ---- user, groups, process -------------------------------------------------------------------------

TEST_P(RuntimeTest, UserByNumbers) {
  Result r = sh({"--user", "1000:1000"}, "id -u; id -g; grep CapEff /proc/self/status");
  if (norange()) {
    EXPECT_TRUE(EngineError(r)) << "uid 1000 is not mapped in single-ID mode";
    return;
  }
  ASSERT_OK(r);
  auto l = lines(r.out);
  ASSERT_EQ(l.size(), 3u) << r;
  EXPECT_EQ(l[0], "1000");
  EXPECT_EQ(l[1], "1000");
  EXPECT_EQ(status_field(l[2], "CapEff"), "0000000000000000") << "a non-root user has no capabilities in effect" << r;
}

TEST_P(RuntimeTest, UserByNameFromTheImage) {
  Result app = sh({"--user", "app"}, "id -u; id -g; echo $HOME");
  Result nobody = sh({"--user", "nobody:nogroup"}, "id -u; id -g");
  if (norange()) {
    EXPECT_TRUE(EngineError(app)) << app;
    EXPECT_TRUE(EngineError(nobody)) << nobody;
    return;
  }
  EXPECT_OK(app);
  EXPECT_EQ(app.out, "1000\n1000\n/home/app\n") << app;
  EXPECT_OK(nobody);
  EXPECT_EQ(nobody.out, "65534\n65534\n") << nobody;
}

TEST_P(RuntimeTest, GroupAdd) {
  Result r = sh({"--user", "1000:1000", "--group-add", "10", "--group-add", "nogroup"}, "id -G");
  if (norange()) {
    EXPECT_TRUE(EngineError(r)) << r;
    return;
  }
  EXPECT_OK(r);
  EXPECT_EQ(words(r.out), (std::set<std::string>{"1000", "10", "65534"})) << r;
  Result rootg = run_bb({"--group-add", "1000"}, {"id", "-G"});
  if (!norange()) {
    EXPECT_OK(rootg);
    EXPECT_EQ(words(rootg.out), (std::set<std::string>{"0", "1000"})) << rootg;
  }
}

TEST_P(RuntimeTest, WorkdirIsMadeWhenMissing) {
  Result r = sh({"-w", "/made/for/you"}, "pwd; test -d /made/for/you && echo isdir");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "/made/for/you\nisdir\n") << r;
}

TEST_P(RuntimeTest, EnvironmentFlags) {
  write_file(path("vars.env"), "# comment\nFROMFILE=one\nSPACED=a b c\n");
  Result r = run_bb({"-e", "FOO=bar", "-e", "EQ=a=b=c", "--env-file", path("vars.env")}, {"env"});
  ASSERT_OK(r);
  auto env = lines(r.out);
  std::set<std::string> got(env.begin(), env.end());
  for (const char* e : {"FOO=bar", "EQ=a=b=c", "FROMFILE=one", "SPACED=a b c", "HOME=/root"})
    EXPECT_TRUE(got.count(e)) << e << r;
}

TEST_P(RuntimeTest, EnvHost) {
  Options o;
  o.env["HUTCH_IT_FROM_HOST"] = "here";
  Result r = run_bb({"--env-host", "-e", "HUTCH_IT_OVERRIDE=flag"}, {"env"}, o);
  ASSERT_OK(r);
  auto env = lines(r.out);
  std::set<std::string> got(env.begin(), env.end());
  EXPECT_TRUE(got.count("HUTCH_IT_FROM_HOST=here")) << r;
  EXPECT_TRUE(got.count("HUTCH_IT_OVERRIDE=flag")) << r;
  EXPECT_FALSE(contains(r.out, "_HUTCH_")) << "hutch's private variables stay out even with --env-host" << r;
  Result without = run_bb({}, {"env"}, o);
  EXPECT_FALSE(contains(without.out, "HUTCH_IT_FROM_HOST")) << without;
}

TEST_P(RuntimeTest, HostnameAddHostAndDns) {
  Result r = sh({"--hostname", "box.example", "--add-host", "db.local:1.2.3.4", "--dns", "9.9.9.9"},
                "hostname; cat /etc/hostname; grep -w db.local /etc/hosts; grep nameserver /etc/resolv.conf");
  ASSERT_OK(r);
  auto l = lines(r.out);
  ASSERT_GE(l.size(), 4u) << r;
  EXPECT_EQ(l[0], "box.example");
  EXPECT_EQ(l[1], "box.example");
  EXPECT_EQ(split_ws(l[2]), (std::vector<std::string>{"1.2.3.4", "db.local"})) << r;
  EXPECT_EQ(l[3], "nameserver 9.9.9.9") << "--dns replaces the host's servers" << r;
  EXPECT_EQ(l.size(), 4u) << r;
}

TEST_P(RuntimeTest, Ulimit) {
  Result r = sh({"--ulimit", "nofile=100:100"}, "ulimit -n; ulimit -Hn");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "100\n100\n") << r;
  Result soft = sh({"--ulimit", "nofile=50:200"}, "ulimit -n; ulimit -Hn");
  EXPECT_EQ(soft.out, "50\n200\n") << soft;
}

// ---- filesystem ---------------------------------------------------------------------------------------

TEST_P(RuntimeTest, ReadOnlyRootfs) {
  Result r = sh({"--read-only"}, "touch /new && echo root-writable; touch /tmp/t && echo tmp-ok; "
                                 "touch /run/r && echo run-ok; touch /var/tmp/v && echo vartmp-ok");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "tmp-ok\nrun-ok\nvartmp-ok\n") << "--read-only-tmpfs is the default" << r;
  EXPECT_TRUE(contains(r.err, "Read-only file system")) << r;
  Result bare = sh({"--read-only", "--read-only-tmpfs=false"}, "touch /tmp/t && echo tmp-ok; echo done");
  EXPECT_EQ(bare.out, "done\n") << bare;
}

TEST_P(RuntimeTest, VolumesReadWriteAndReadOnly) {
  std::string rw = path("rw"), ro = path("ro");
  fs::create_directories(rw);
  fs::create_directories(ro);
  write_file(rw + "/in", "rw-in\n");
  write_file(ro + "/in", "ro-in\n");
  Result r = sh({"-v", rw + ":/data", "-v", ro + ":/ro:ro"},
                "cat /data/in; echo out > /data/out && echo rw-ok; cat /ro/in; echo x > /ro/out && echo ro-writable; true");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "rw-in\nrw-ok\nro-in\n") << r;
  EXPECT_TRUE(contains(r.err, "Read-only file system")) << r;
  EXPECT_EQ(read_file(rw + "/out"), "out\n");
  EXPECT_FALSE(fs::exists(ro + "/out"));
  struct stat st {};
  ASSERT_EQ(::stat((rw + "/out").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, suite().uid) << "container root writes as the caller";
}

TEST_P(RuntimeTest, MountFlagBindReadonly) {
  std::string src = path("src");
  fs::create_directories(src);
  write_file(src + "/f", "bound\n");
  Result r = sh({"--mount", "type=bind,source=" + src + ",target=/bound,readonly"},
                "cat /bound/f; touch /bound/g && echo writable; grep ' /bound ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "bound\nro\n") << r;
  EXPECT_FALSE(fs::exists(src + "/g"));
}

TEST_P(RuntimeTest, TmpfsFlag) {
  Result r = sh({"--tmpfs", "/scratch"}, "grep ' /scratch ' /proc/mounts | cut -d' ' -f3; echo hi > /scratch/f && cat /scratch/f");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "tmpfs\nhi\n") << r;
  Result sized = sh({"--tmpfs", "/scratch:size=1m"}, "df -k /scratch | tail -n 1 | awk '{print $2}'");
  EXPECT_EQ(sized.out, "1024\n") << sized;
}

TEST_P(RuntimeTest, ShmSize) {
  Result def = sh({}, "df -k /dev/shm | tail -n 1 | awk '{print $2}'");
  EXPECT_EQ(def.out, "65536\n") << "64m by default" << def;
  Result r = sh({"--shm-size", "1m"}, "df -k /dev/shm | tail -n 1 | awk '{print $2}'");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "1024\n") << r;
}

// keep-id: the caller's uid inside is the caller's uid outside, so a file the container
// writes to the caller's directory belongs to the caller. With ranges the other IDs come from
// them; without, keep-id maps only the caller. As real root it is refused (podman: rootless only)
// or means nothing (0 is 0); either way no other owner.
TEST_P(RuntimeTest, UsernsKeepIdOwnership) {
  std::string dir = path("keep");
  fs::create_directories(dir);
  Result r = sh({"--userns", "keep-id", "-v", dir + ":/data"}, "id -u; id -g; echo mine > /data/f && echo wrote");
  if (root()) {
    // As root the container's IDs are the caller's already: keep-id is refused, naming itself.
    EXPECT_TRUE(EngineError(r, {"keep-id", "root"})) << r;
    return;
  }
  if (suite().mode == Mode::kNoRange) {
    // Without a range there is no ID to put the caller's uid on: refused, saying why and how
    // to add a range; what a plain container writes is the caller's anyway.
    EXPECT_TRUE(EngineError(r, {"keep-id", "subordinate", "usermod"})) << r;
    Result plain = sh({"-v", dir + ":/data"}, "echo mine > /data/g && echo wrote");
    ASSERT_OK(plain);
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/g").c_str(), &st), 0) << plain;
    EXPECT_EQ(st.st_uid, suite().uid) << plain;
    return;
  }
  ASSERT_OK(r);
  EXPECT_EQ(r.out, std::to_string(suite().uid) + "\n" + std::to_string(suite().gid) + "\nwrote\n") << r;
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/f").c_str(), &st), 0) << r;
  EXPECT_EQ(st.st_uid, suite().uid) << r;
  EXPECT_EQ(st.st_gid, suite().gid) << r;
}

// ---- isolation -------------------------------------------------------------------------------------------

TEST_P(RuntimeTest, PsSeesOnlyTheContainer) {
  Result r = sh({}, "sleep 5 & ps; kill $!");
  ASSERT_OK(r);
  auto l = lines(r.out);
  ASSERT_GE(l.size(), 2u) << r;
  // Header, sh (PID 1), sleep, ps.
  EXPECT_LE(l.size(), 4u) << "ps sees processes that are not the container's" << r;
  EXPECT_FALSE(icontains(r.out, "hutch")) << r;
  bool pid1 = false;
  for (const auto& line : l) pid1 |= split_ws(line).size() > 0 && split_ws(line)[0] == "1";
  EXPECT_TRUE(pid1) << r;
}

TEST_P(RuntimeTest, PidHostSeesTheCaller) {
  std::string me = std::to_string(getpid());
  Result r = sh({"--pid", "host"}, "test -d /proc/" + me + " && echo sees-caller; echo $$");
  EXPECT_OK(r);
  auto l = lines(r.out);
  ASSERT_EQ(l.size(), 2u) << r;
  EXPECT_EQ(l[0], "sees-caller") << r;
  EXPECT_NE(l[1], "1") << r;
  Result own = sh({}, "test -d /proc/" + me + " && echo sees-caller; echo $$");
  EXPECT_EQ(own.out, "1\n") << own;
}

TEST_P(RuntimeTest, ProcSysIsReadOnly) {
  Result r = sh({}, "echo hacked > /proc/sys/kernel/hostname && echo wrote; hostname");
  EXPECT_OK(r);
  EXPECT_FALSE(contains(r.out, "wrote")) << r;
  EXPECT_FALSE(contains(r.out, "hacked")) << r;
  EXPECT_TRUE(contains(r.err, "Read-only file system")) << r;
}

TEST_P(RuntimeTest, CannotMount) {
  Result r = sh({}, "mkdir /tmp/m; mount -t tmpfs none /tmp/m && echo mounted; mount -o bind / /tmp/m && echo bound; echo done");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "done\n") << r;
  EXPECT_TRUE(icontains(r.err, "permission denied") || icontains(r.err, "not permitted")) << r;
}

TEST_P(RuntimeTest, CannotLoadKernelModules) {
  Result r = sh({}, "printf '\\177ELF' > /tmp/m.ko; head -c 4096 /dev/zero >> /tmp/m.ko; "
                    "insmod /tmp/m.ko && echo loaded; modprobe -q dummy && echo probed; true");
  EXPECT_OK(r);
  EXPECT_FALSE(contains(r.out, "loaded")) << r;
  EXPECT_FALSE(contains(r.out, "probed")) << r;
  // init_module is refused (EPERM: seccomp and no CAP_SYS_MODULE) before the kernel reads it.
  EXPECT_TRUE(contains(r.err, "Operation not permitted")) << r;
}

TEST_P(RuntimeTest, MaskedPathsAndDevices) {
  Result r = sh({}, "for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do "
                    "echo \"$f $(cat $f 2>/dev/null | wc -c)\"; done; "
                    "for d in null zero full random urandom tty; do test -c /dev/$d || echo no-$d; done; "
                    "test -d /dev/pts || echo no-pts");
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "/proc/kcore 0\n/proc/keys 0\n/proc/timer_list 0\n/proc/sched_debug 0\n") << r;
}

// "root" inside is the caller outside: ps on the host shows the caller's uid for the
// container's process.
TEST_P(RuntimeTest, RootInsideIsTheCallerOutside) {
  Proc p(cmd({"--runtime", GetParam(), "run", "--rm", "bb", "sleep", "7391"}), {});
  pid_t pid = -1;
  auto hutch_ended = [&] {  // a zombie until waited for
    std::string stat = read_file("/proc/" + std::to_string(p.pid()) + "/stat");
    auto rp = stat.rfind(')');
    return rp == std::string::npos || stat.compare(rp + 2, 1, "Z") == 0;
  };
  for (int i = 0; i < 200 && pid < 0 && !hutch_ended(); ++i) {
    pid = find_any_process({"sleep", "7391"});
    if (pid < 0) std::this_thread::sleep_for(50ms);
  }
  ASSERT_GT(pid, 0) << "the container's sleep never showed up on the host" << p.wait();
  Result ps = run({"ps", "-o", "uid=", "-p", std::to_string(pid)});
  EXPECT_OK(ps);
  EXPECT_EQ(trim(ps.out), std::to_string(suite().uid)) << ps;
  ::kill(pid, SIGKILL);
  Result r = p.wait();
  EXPECT_CODE(r, 137);
}

// ---- --init -------------------------------------------------------------------------------------------

// The inner shell leaves an orphan (sleep 0.2) that is reparented to PID 1; once it has
// ended, PID 1 must have reaped it, or it would stay a zombie.
TEST_P(RuntimeTest, InitIsPid1AndReapsZombies) {
  Result r = sh({"--init"}, "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$; "
                            "sh -c 'sleep 0.2 & echo $! > /tmp/orphan'; sleep 1; pid=$(cat /tmp/orphan); "
                            "if [ -e /proc/$pid ]; then echo \"orphan $pid: $(grep State /proc/$pid/status)\"; "
                            "else echo reaped; fi; grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l; exit 3");
  EXPECT_CODE(r, 3);
  auto l = lines(r.out);
  ASSERT_EQ(l.size(), 4u) << r;
  EXPECT_EQ(l[0].rfind("/run/hutch-init", 0), 0u) << "PID 1 is hutch-init" << r;
  EXPECT_NE(l[1], "1") << "the command is not PID 1" << r;
  EXPECT_EQ(l[2], "reaped") << r;
  EXPECT_EQ(trim(l[3]), "0") << "no zombie left" << r;
}

// ---- resource limits -------------------------------------------------------------------------------------

// Where hutch can enforce limits (here: as root; rootless on cgroup v1 it cannot), they are;
// elsewhere `run` warns, naming why, and runs anyway, or with require_limits fails.
TEST_P(RuntimeTest, PidsLimit) {
  Result r = sh({"--pids-limit", "10"}, "(for i in $(seq 1 30); do sleep 5 & done) 2>/tmp/err; echo \"loop $?\"; "
                                        "while read -r l; do echo \"$l\"; done < /tmp/err");
  EXPECT_OK(r);
  if (root()) {
    EXPECT_TRUE(contains(r.out, "fork")) << "30 processes started under --pids-limit 10" << r;
    EXPECT_FALSE(contains(r.out, "loop 0")) << r;
  } else {
    EXPECT_TRUE(icontains(r.err, "warn")) << r;
    EXPECT_TRUE(icontains(r.err, "pids")) << r;
    EXPECT_TRUE(contains(r.out, "loop 0")) << "not limited, but run" << r;
  }
}

TEST_P(RuntimeTest, MemoryLimit) {
  std::string name = "mem-" + GetParam();
  Result r = rt({"run", "--name", name, "--memory", "32m", "bb", "sh", "-c",
                 "head -c 104857600 /dev/zero | tail -n 1 > /dev/null; echo status $?"});
  if (root()) {
    EXPECT_TRUE(r.out == "status 137\n" || (r.out.empty() && r.code == 137)) << "100 MB under --memory 32m" << r;
    Result inspect = hutch({"inspect", name});
    EXPECT_OK(inspect);
    bool oom = false;
    try {
      auto j = nlohmann::json::parse(inspect.out);
      oom = j.at(0).at("State").at("OOMKilled").get<bool>();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "inspect " << name << ": no State.OOMKilled: " << e.what() << inspect;
    }
    EXPECT_TRUE(oom) << inspect;
  } else {
    EXPECT_OK(r);
    EXPECT_EQ(r.out, "status 0\n") << r;
    // The warning says what cannot be done, why, and what to do.
    EXPECT_TRUE(icontains(r.err, "warn")) << r;
    EXPECT_TRUE(icontains(r.err, "memory")) << r;
    EXPECT_TRUE(icontains(r.err, "cgroup")) << r;
    EXPECT_TRUE(icontains(r.err, "v1") || icontains(r.err, "hybrid")) << r;
  }
  hutch({"rm", "-f", name});
}

TEST_P(RuntimeTest, RequireLimitsRefusesWhatCannotBeEnforced) {
  std::string conf = path("limits.conf");
  write_file(conf, "[engine]\nrequire_limits = true\n");
  Options o;
  o.env["HUTCH_CONFIG"] = conf;
  Result r = run_bb({"--memory", "32m"}, {"echo", "ran"}, o);
  if (root()) {
    EXPECT_OK(r);
    EXPECT_EQ(r.out, "ran\n") << r;
  } else {
    EXPECT_TRUE(EngineError(r, {"memory"})) << r;
    EXPECT_EQ(r.out, "") << "the container must not run" << r;
  }
  Result plain = run_bb({}, {"echo", "ran"}, o);
  EXPECT_OK(plain);
  EXPECT_EQ(plain.out, "ran\n") << "no limits asked, nothing to refuse" << plain;
}

// ---- naming the runtime ------------------------------------------------------------------------------------

using RuntimeChoiceTest = ImageTest;

// --runtime takes a path to any program with runc's command line, and the container records
// the runtime it was made with.
TEST_F(RuntimeChoiceTest, APathToAnOciRuntime) {
  std::string runc = fs::exists("/usr/sbin/runc") ? "/usr/sbin/runc" : "/usr/bin/runc";
  ASSERT_TRUE(fs::exists(runc)) << "runc is a test dependency (scripts/install-deps.sh)";
  Result r = hutch({"--runtime", runc, "run", "--name", "bypath", "bb", "sh", "-c", "echo via $0; exit 4"});
  EXPECT_CODE(r, 4);
  EXPECT_EQ(r.out, "via sh\n") << r;
  Result inspect = hutch({"inspect", "bypath"});
  ASSERT_OK(inspect);
  auto j = nlohmann::json::parse(inspect.out);
  EXPECT_EQ(j[0]["HostConfig"]["Runtime"], runc) << inspect;
  EXPECT_EQ(j[0]["State"]["ExitCode"], 4) << inspect;
  EXPECT_OK(hutch({"rm", "bypath"}));
}

// A name that is neither a plugin nor a program says both, and leaves nothing behind.
TEST_F(RuntimeChoiceTest, AnUnknownRuntimeNamesTheChoices) {
  Result r = hutch({"--runtime", "/nonexistent/oci-runtime", "run", "--rm", "bb", "true"});
  EXPECT_TRUE(EngineError(r, {"/nonexistent/oci-runtime", "native", "No such file"})) << r;
  EXPECT_EQ(hutch({"ps", "-a", "-q"}).out, "");
}

// What --init and the mounts need in the container (/run/hutch-init, and /run for it) are not
// the container's changes: diff leaves them out, as docker's init layer does.
TEST_F(RuntimeChoiceTest, InitLeavesNothingInDiff) {
  ASSERT_OK(hutch({"run", "--name", "withinit", "--init", "bb", "sh", "-c", "mkdir /made"}));
  Result d = hutch({"diff", "withinit"});
  ASSERT_OK(d);
  EXPECT_EQ(d.out, "A /made\n") << d;
  EXPECT_OK(hutch({"rm", "withinit"}));
}

INSTANTIATE_TEST_SUITE_P(Runtimes, RuntimeTest, ::testing::Values("native", "crun", "runc"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace hit
