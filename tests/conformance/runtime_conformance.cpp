// What every runtime must do with core's spec, run against each runtime plugin: `native`, and
// `oci` driving crun and runc. One set of expectations for all three: a test that one of them
// fails is a bug (or a missing feature) of that runtime, never a reason to expect less.
// Needs to create namespaces: run as root, or inside `hutch unshare` (scripts/test.sh does both).
//
// Environment: HUTCH_CONFORMANCE_PLUGINS (plugin folder, see conformance_util.hpp),
// HUTCH_CONFORMANCE_INIT (the --init binary; default: the build tree's cli/hutch-init).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "conformance_util.hpp"
#include "hutch/cgroups.hpp"
#include "hutch/oci_spec.hpp"
#include "hutch/runtime.hpp"
#include "hutch/seccomp.hpp"

using namespace hutch;
using namespace hutch::conformance;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One runtime under test: the plugin to load and, for "oci", the program it drives.
struct RuntimeParam {
  const char* label;   // test-name suffix
  const char* plugin;  // plugin name
  const char* binary;  // the oci plugin's "binary" setting; empty for other plugins
};

std::ostream& operator<<(std::ostream& os, const RuntimeParam& p) { return os << p.label; }

// What one container gave.
struct Outcome {
  int code = -1;      // exit code, 128+N when killed by signal N; -1: not run
  std::string out;    // its stdout
  std::string err;    // its stderr
  std::string error;  // the runtime's error (create, start or exec threw)
  std::optional<Errc> error_code;  // its code, for exec
  bool timed_out = false;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << "\n--- exit " << o.code;
  if (o.timed_out) os << " (timed out, killed by the test)";
  if (!o.error.empty()) os << "\n--- runtime error: " << o.error;
  return os << "\n--- stdout:\n" << o.out << "\n--- stderr:\n" << o.err << "\n---";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

std::string squeeze(const std::string& s) {  // runs of blanks become one space, trimmed
  std::istringstream in(s);
  std::string w, out;
  while (in >> w) out += (out.empty() ? "" : " ") + w;
  return out;
}

// The value of "Key:" in /proc/self/status-style text.
std::string status_field(const std::string& text, const std::string& key) {
  for (const auto& l : lines_of(text))
    if (l.rfind(key + ":", 0) == 0) return squeeze(l.substr(key.size() + 1));
  return "";
}

std::string hex_caps(std::uint64_t mask) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(mask));
  return buf;
}

// The mask of /proc/self/status for capability names ("CAP_CHOWN", ...): all_capabilities()
// lists them by number, as capabilities(7) does.
std::uint64_t cap_mask(const std::vector<std::string>& names) {
  const std::vector<std::string>& by_number = all_capabilities();
  std::uint64_t m = 0;
  for (const auto& n : names)
    for (size_t i = 0; i < by_number.size(); ++i)
      if (by_number[i] == n) m |= 1ull << i;
  return m;
}

constexpr std::uint64_t kDockerDefaultCaps = 0x00000000a80425fbull;

// Whether this process's namespace maps every ID in [first, first+count).
bool ids_mapped(const char* map_file, unsigned long first, unsigned long count) {
  std::ifstream in(map_file);
  unsigned long inside, outside, size;
  while (in >> inside >> outside >> size)
    if (first >= inside && first + count <= inside + size) return true;
  return false;
}

fs::path init_binary() {
  const char* env = getenv("HUTCH_CONFORMANCE_INIT");
  return env && *env ? fs::path(env) : fs::path(HUTCH_BUILD_INIT_BINARY);
}

// The caller's side of the console-socket protocol, as core's ConsoleSocket: listens on a
// path, and takes the terminal master a runtime sends there with SCM_RIGHTS.
class ConsoleListener {
 public:
  explicit ConsoleListener(const fs::path& path) : path_(path) {
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 1) != 0)
      ADD_FAILURE() << "cannot listen on " << path << ": " << std::strerror(errno);
  }
  ~ConsoleListener() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  const fs::path& path() const { return path_; }

  // The master, or -1 when none came within `timeout_ms`.
  int receive_master(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return -1;
    int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return -1;
    char byte;
    struct iovec iov {&byte, 1};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    ::close(conn);
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (n < 0 || !c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

class RuntimeConformance : public ::testing::TestWithParam<RuntimeParam> {
 protected:
  void SetUp() override {
    // crun and runc leave the container's process to us once `create` has returned: it is
    // reparented to the nearest subreaper, as it is to `hutch run`.
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    // A user namespace of the container (UserNamespaceWithMaps) must be able to reach its root.
    fs::permissions(scratch_.path(), fs::perms(0755));
    PluginContext ctx = context_in(scratch_.path(), GetParam().plugin);
    if (*GetParam().binary) ctx.config["binary"] = GetParam().binary;
    try {
      rt_ = loader().create<RuntimeBackend>(GetParam().plugin, ctx);
    } catch (const Error& e) {
      FAIL() << "cannot load the runtime " << GetParam().label << ": " << e.what();
    }
    bundle_ = scratch_.path() / "bundle";
    rootfs_ = bundle_ / "rootfs";
    fs::create_directories(rootfs_ / "bin");
    fs::permissions(bundle_, fs::perms(0755));
    for (const char* d : {"proc", "sys", "dev", "tmp", "etc", "mnt", "root"}) fs::create_directories(rootfs_ / d);
    fs::permissions(rootfs_ / "tmp", fs::perms(01777));
    fs::copy_file("/bin/busybox", rootfs_ / "bin/busybox");
    // Every applet, as the integration suite's image has them.
    FILE* list = popen("/bin/busybox --list", "r");
    ASSERT_TRUE(list);
    char name[256];
    while (std::fgets(name, sizeof name, list)) {
      std::string a = name;
      while (!a.empty() && (a.back() == '\n' || a.back() == '\r')) a.pop_back();
      if (a.empty() || a == "busybox" || a.find('/') != std::string::npos) continue;
      std::error_code ec;
      fs::create_symlink("busybox", rootfs_ / "bin" / a, ec);
    }
    pclose(list);
    std::ofstream(rootfs_ / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
    std::ofstream(rootfs_ / "etc/group") << "root:x:0:\napp:x:1000:\n";
    std::ofstream(rootfs_ / "bin/notexec") << "#!/bin/sh\necho must not run\n";
    fs::permissions(rootfs_ / "bin/notexec", fs::perms(0644));
  }

  void TearDown() override {
    // A test that failed midway may leave a container behind: the runtime's, not ours, to end.
    if (rt_)
      for (const auto& id : ids_) {
        try {
          if (auto st = rt_->state(id); st && st->status != "stopped") rt_->kill(id, SIGKILL);
          rt_->remove(id);
        } catch (const Error&) {
        }
      }
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }

  // The spec inputs of a plain container running `args` as root: core's defaults.
  SpecInputs inputs(const std::vector<std::string>& args) {
    SpecInputs in;
    in.rootfs = rootfs_;
    in.args = args;
    in.env = merge_env({}, {"FOO=bar"}, "conformance", "/root", false);
    in.user.home = "/root";
    in.hostname = "conformance";
    in.network.new_netns = true;
    return in;
  }
  SpecInputs sh(const std::string& script) { return inputs({"/bin/sh", "-c", script}); }

  std::string new_id() {
    ids_.push_back("hc-" + std::to_string(getpid()) + "-" + std::to_string(ids_.size()));
    return ids_.back();
  }

  void write_spec(const SpecInputs& in, const std::function<void(json&)>& edit = {}) {
    json spec = generate_spec(in);
    if (edit) edit(spec);
    std::ofstream(bundle_ / "config.json") << spec.dump(1);
  }

  // Core's spec for `true` with `edit` applied must be refused by create, with an error that
  // contains `needle` and no container left behind.
  void expect_refused(const std::function<void(json&)>& edit, const std::string& needle, const std::string& what) {
    write_spec(inputs({"true"}), edit);
    std::string id = new_id();
    try {
      rt_->create(id, bundle_, RuntimeIo{});
      ADD_FAILURE() << what << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(rt_->state(id));
  }

  // Waits for `pid` (none when <= 0), collecting its output from the reading ends `out_fd`
  // and `err_fd` (closed here) into `o`; after `timeout`, calls `kill` and says so.
  void collect(Outcome& o, pid_t pid, int out_fd, int err_fd, std::chrono::seconds timeout,
               const std::function<void()>& kill) {
    // Collect output while it runs; after its end, whatever is left (a process it left
    // behind may hold the pipes: one second of grace).
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::chrono::steady_clock::time_point ended{};
    bool exited = pid <= 0;
    int fds[2] = {out_fd, err_fd};
    std::string* into[2] = {&o.out, &o.err};
    for (;;) {
      if (!exited) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
          exited = true;
          o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          ended = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() > deadline) {
          o.timed_out = true;
          kill();
          continue;
        }
      } else if (ended.time_since_epoch().count() == 0) {
        ended = std::chrono::steady_clock::now();
      }
      if (fds[0] < 0 && fds[1] < 0 && exited) break;
      if (exited && std::chrono::steady_clock::now() - ended > std::chrono::seconds(1)) break;
      pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
      int r = poll(p, 2, 20);
      for (int i = 0; r > 0 && i < 2; ++i) {
        if (fds[i] < 0 || !p[i].revents) continue;
        char buf[8192];
        ssize_t n = ::read(fds[i], buf, sizeof buf);
        if (n > 0) into[i]->append(buf, static_cast<size_t>(n));
        else if (n == 0 || errno != EINTR) {
          ::close(fds[i]);
          fds[i] = -1;
        }
      }
    }
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }

  // Creates, starts and waits for a container of `in`, its stdout and stderr on pipes.
  Outcome run(const SpecInputs& in, const std::function<void(json&)>& edit = {},
              std::chrono::seconds timeout = std::chrono::seconds(30)) {
    Outcome o;
    try {
      write_spec(in, edit);
    } catch (const Error& e) {
      o.error = std::string("generate_spec: ") + e.what();
      return o;
    }
    std::string id = new_id();
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      o.error = "pipe failed";
      return o;
    }
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    RuntimeIo io{devnull, out[1], err[1], {}};
    pid_t pid = 0;
    try {
      pid = rt_->create(id, bundle_, io);
    } catch (const Error& e) {
      o.error = std::string("create: ") + e.what();
    }
    ::close(devnull);
    ::close(out[1]);
    ::close(err[1]);
    if (pid > 0) {
      try {
        rt_->start(id);
      } catch (const Error& e) {
        o.error = std::string("start: ") + e.what();
      }
    }
    collect(o, pid, out[0], err[0], timeout, [&] {
      try {
        rt_->kill(id, SIGKILL);
      } catch (const Error&) {
      }
      ::kill(pid, SIGKILL);
    });
    if (pid > 0) {
      try {
        rt_->remove(id);
      } catch (const Error& e) {
        ADD_FAILURE() << "remove " << id << ": " << e.what();
      }
    }
    return o;
  }

  // A container of `in` (its init `sleep 1000` unless `in` says otherwise), started and
  // left running for exec. Its stdio is /dev/null.
  struct Running {
    std::string id;
    pid_t init = 0;
  };
  Running start_running(const SpecInputs& in, const std::function<void(json&)>& edit = {}) {
    write_spec(in, edit);
    Running r{new_id(), 0};
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    try {
      r.init = rt_->create(r.id, bundle_, RuntimeIo{devnull, devnull, devnull, {}});
      rt_->start(r.id);
    } catch (const Error& e) {
      ADD_FAILURE() << "cannot start the container to exec in: " << e.what();
    }
    ::close(devnull);
    return r;
  }
  SpecInputs sleeper() { return inputs({"sleep", "1000"}); }

  // Kills, reaps and removes it. What an OCI runtime's `exec --detach` left behind was
  // reparented to us, the subreaper, and must be reaped too: the init of a PID namespace
  // does not finish exiting while a zombie of its namespace is there.
  void end(const Running& r) {
    if (r.init <= 0) return;
    try {
      rt_->kill(r.id, SIGKILL);
    } catch (const Error& e) {
      ADD_FAILURE() << "kill " << r.id << ": " << e.what();
    }
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);;) {
      pid_t w = waitpid(-1, nullptr, WNOHANG);
      if (w == r.init || (w < 0 && errno == ECHILD)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the init of " << r.id << " did not end";
        break;
      }
      if (w <= 0) ::usleep(10000);
    }
    try {
      rt_->remove(r.id);
    } catch (const Error& e) {
      ADD_FAILURE() << "remove " << r.id << ": " << e.what();
    }
  }

  // Core's process object for `in`, running `args`: what `hutch exec` hands the runtime.
  json process_of(const SpecInputs& in, const std::vector<std::string>& args) {
    json p = generate_spec(in)["process"];
    p["args"] = args;
    return p;
  }

  // Runs `process` in the container and waits for it: its stdin is `input` through a pipe,
  // its stdout and stderr pipes. The caller (this test, a subreaper) reaps it.
  Outcome exec_in(const Running& r, const json& process, const std::string& input = "",
                  std::chrono::seconds timeout = std::chrono::seconds(30)) {
    Outcome o;
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      o.error = "pipe failed";
      return o;
    }
    if (!input.empty() && ::write(in[1], input.data(), input.size()) != static_cast<ssize_t>(input.size()))
      o.error = "cannot write the input";
    ::close(in[1]);
    pid_t pid = 0;
    try {
      pid = rt_->exec(r.id, process, RuntimeIo{in[0], out[1], err[1], {}});
    } catch (const Error& e) {
      o.error = std::string("exec: ") + e.what();
      o.error_code = e.code();
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    collect(o, pid, out[0], err[0], timeout, [&] { ::kill(pid, SIGKILL); });
    return o;
  }

  int wait_for(pid_t pid) {
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  Scratch scratch_;
  fs::path bundle_, rootfs_;
  std::unique_ptr<RuntimeBackend> rt_;
  std::vector<std::string> ids_;
};

#define ASSERT_RAN(o)                 \
  do {                                \
    ASSERT_TRUE((o).error.empty()) << (o); \
    ASSERT_FALSE((o).timed_out) << (o);    \
  } while (0)

// ---- lifecycle ------------------------------------------------------------------------------

TEST_P(RuntimeConformance, CreateStartStateAndExitCode) {
  SpecInputs in = sh("echo $FOO $(hostname) $$ > /tmp/out; exit 7");
  write_spec(in);
  std::string id = new_id();
  pid_t pid = rt_->create(id, bundle_, RuntimeIo{});
  ASSERT_GT(pid, 0);
  auto st = rt_->state(id);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, "created");
  EXPECT_EQ(st->pid, pid);
  EXPECT_FALSE(fs::exists(rootfs_ / "tmp/out"));  // not before start
  rt_->start(id);
  EXPECT_EQ(wait_for(pid), 7);
  std::ifstream out(rootfs_ / "tmp/out");
  std::string foo, host, self;
  out >> foo >> host >> self;
  EXPECT_EQ(foo, "bar");
  EXPECT_EQ(host, "conformance");
  EXPECT_EQ(self, "1");  // PID 1 of its own PID namespace
  EXPECT_EQ(rt_->state(id)->status, "stopped");
  rt_->remove(id);
  EXPECT_FALSE(rt_->state(id));
}

TEST_P(RuntimeConformance, ExitCodes) {
  Outcome zero = run(inputs({"true"}));
  ASSERT_RAN(zero);
  EXPECT_EQ(zero.code, 0) << zero;
  Outcome three = run(sh("exit 3"));
  EXPECT_EQ(three.code, 3) << three;
  Outcome max = run(sh("exit 255"));
  EXPECT_EQ(max.code, 255) << max;
}

TEST_P(RuntimeConformance, KillReachesTheProcess) {
  write_spec(inputs({"sleep", "30"}));
  std::string id = new_id();
  pid_t pid = rt_->create(id, bundle_, RuntimeIo{});
  rt_->start(id);
  EXPECT_EQ(rt_->state(id)->status, "running");
  rt_->kill(id, SIGKILL);
  EXPECT_EQ(wait_for(pid), 128 + SIGKILL);
  rt_->remove(id);
}

// PID 1 of a PID namespace ignores signals it has no handler for, SIGKILL aside: a SIGTERM
// ends a process that is not PID 1, here in the host's PID namespace.
TEST_P(RuntimeConformance, ASignalEndsTheProcessAs128PlusN) {
  SpecInputs in = inputs({"sleep", "30"});
  in.host_pid = true;
  write_spec(in);
  std::string id = new_id();
  pid_t pid = rt_->create(id, bundle_, RuntimeIo{});
  ASSERT_GT(pid, 0);
  rt_->start(id);
  rt_->kill(id, SIGTERM);
  EXPECT_EQ(wait_for(pid), 128 + SIGTERM);
  rt_->remove(id);
}

TEST_P(RuntimeConformance, MissingCommandExits127) {
  // A runtime may refuse at create (crun, runc: core maps their error to 127) or exit 127.
  Outcome o = run(inputs({"no-such-command"}));
  if (o.error.empty()) {
    EXPECT_EQ(o.code, 127) << o;
  } else {
    EXPECT_NE(o.error.find("no-such-command"), std::string::npos) << "the error names the command" << o;
  }
}

TEST_P(RuntimeConformance, NotExecutableExits126) {
  Outcome o = run(inputs({"/bin/notexec"}));
  if (o.error.empty()) {
    EXPECT_EQ(o.code, 126) << o;
  }
  EXPECT_EQ(o.out.find("must not run"), std::string::npos) << o;
}

TEST_P(RuntimeConformance, BadSpecIsAClearError) {
  // Core's spec for a container, with one thing wrong: no command.
  expect_refused([](json& spec) { spec["process"]["args"] = json::array(); }, "args", "an empty process.args");
}

TEST_P(RuntimeConformance, StdoutAndStderrAreTheGivenDescriptors) {
  Outcome o = run(sh("echo to-out; echo to-err >&2"));
  ASSERT_RAN(o);
  EXPECT_EQ(o.out, "to-out\n") << o;
  EXPECT_EQ(o.err, "to-err\n") << o;
}

// ---- process ----------------------------------------------------------------------------------

TEST_P(RuntimeConformance, EnvironmentIsExactlyTheSpecs) {
  setenv("HUTCH_CONFORMANCE_LEAK", "leaked", 1);
  SpecInputs in = inputs({"env"});
  in.env = merge_env({"IMAGE_VAR=from-image"}, {"FOO=bar", "EQ=a=b=c", "SPACE=two words"}, "conformance", "/root", false);
  Outcome o = run(in);
  unsetenv("HUTCH_CONFORMANCE_LEAK");
  ASSERT_RAN(o);
  auto got = lines_of(o.out);
  std::set<std::string> env(got.begin(), got.end());
  for (const auto& e : in.env) EXPECT_TRUE(env.count(e)) << e << " missing" << o;
  EXPECT_EQ(o.out.find("HUTCH_CONFORMANCE_LEAK"), std::string::npos) << "the caller's environment leaked" << o;
  EXPECT_EQ(o.out.find("_HUTCH"), std::string::npos) << o;
}

TEST_P(RuntimeConformance, WorkingDirectoryIsMadeWhenMissing) {
  SpecInputs in = sh("pwd; test -d /work/deeper/dir && echo isdir");
  in.cwd = "/work/deeper/dir";
  Outcome o = run(in);
  ASSERT_RAN(o);
  EXPECT_EQ(o.code, 0) << o;
  EXPECT_EQ(o.out, "/work/deeper/dir\nisdir\n") << o;
  SpecInputs tmp = inputs({"pwd"});
  tmp.cwd = "/tmp";
  Outcome t = run(tmp);
  EXPECT_EQ(t.out, "/tmp\n") << t;
}

TEST_P(RuntimeConformance, UserGroupAndAdditionalGroups) {
  if (!ids_mapped("/proc/self/uid_map", 1000, 1) || !ids_mapped("/proc/self/gid_map", 10, 1) ||
      !ids_mapped("/proc/self/gid_map", 1000, 1))
    HUTCH_SKIP_OUTSIDE_CI("uid 1000 and gids 10, 1000 are not mapped in this namespace (single-ID mode)");
  SpecInputs in = sh("id -u; id -g; id -G; grep CapEff /proc/self/status");
  in.user.uid = 1000;
  in.user.gid = 1000;
  in.user.additional_gids = {10, 20};
  Outcome o = run(in);
  ASSERT_RAN(o);
  EXPECT_EQ(o.code, 0) << o;
  auto l = lines_of(o.out);
  ASSERT_EQ(l.size(), 4u) << o;
  EXPECT_EQ(l[0], "1000") << o;
  EXPECT_EQ(l[1], "1000") << o;
  std::istringstream gs(l[2]);
  std::set<std::string> groups{std::istream_iterator<std::string>(gs), {}};
  EXPECT_EQ(groups, (std::set<std::string>{"10", "20", "1000"})) << o;
  EXPECT_EQ(status_field(l[3], "CapEff"), hex_caps(0)) << "a user other than root has no capabilities in effect" << o;
}

TEST_P(RuntimeConformance, Hostname) {
  Outcome o = run(sh("hostname; cat /proc/sys/kernel/hostname; cat /etc/hostname 2>/dev/null || true"));
  ASSERT_RAN(o);
  auto l = lines_of(o.out);
  ASSERT_GE(l.size(), 2u) << o;
  EXPECT_EQ(l[0], "conformance") << o;
  EXPECT_EQ(l[1], "conformance") << o;
}

TEST_P(RuntimeConformance, Rlimits) {
  SpecInputs in = sh("ulimit -n; ulimit -Hn");
  in.ulimits = {{"nofile", 100, 200}};
  Outcome o = run(in);
  ASSERT_RAN(o);
  EXPECT_EQ(o.out, "100\n200\n") << o;
}

// ---- privileges -------------------------------------------------------------------------------

TEST_P(RuntimeConformance, RootHasDockersDefaultCapabilities) {
  Outcome o = run(inputs({"cat", "/proc/self/status"}));
  ASSERT_RAN(o);
  EXPECT_EQ(status_field(o.out, "CapEff"), hex_caps(kDockerDefaultCaps)) << o;
  EXPECT_EQ(status_field(o.out, "CapPrm"), hex_caps(kDockerDefaultCaps)) << o;
  EXPECT_EQ(status_field(o.out, "CapBnd"), hex_caps(kDockerDefaultCaps)) << o;
  EXPECT_EQ(status_field(o.out, "CapInh"), hex_caps(0)) << o;
  EXPECT_EQ(status_field(o.out, "CapAmb"), hex_caps(0)) << o;
  EXPECT_EQ(cap_mask(default_capabilities()), kDockerDefaultCaps);
}

TEST_P(RuntimeConformance, CapAddAndCapDrop) {
  SpecInputs in = inputs({"cat", "/proc/self/status"});
  in.cap_add = {"SYS_ADMIN", "CAP_NET_ADMIN"};
  in.cap_drop = {"CHOWN"};
  Outcome o = run(in);
  ASSERT_RAN(o);
  std::uint64_t expected = (kDockerDefaultCaps | (1ull << 21) | (1ull << 12)) & ~1ull;
  EXPECT_EQ(status_field(o.out, "CapEff"), hex_caps(expected)) << o;
  EXPECT_EQ(status_field(o.out, "CapBnd"), hex_caps(expected)) << o;

  SpecInputs none = inputs({"cat", "/proc/self/status"});
  none.cap_drop = {"ALL"};
  Outcome n = run(none);
  ASSERT_RAN(n);
  EXPECT_EQ(status_field(n.out, "CapEff"), hex_caps(0)) << n;
  EXPECT_EQ(status_field(n.out, "CapBnd"), hex_caps(0)) << n;

  SpecInputs one = inputs({"cat", "/proc/self/status"});
  one.cap_drop = {"ALL"};
  one.cap_add = {"NET_BIND_SERVICE"};
  Outcome b = run(one);
  ASSERT_RAN(b);
  EXPECT_EQ(status_field(b.out, "CapEff"), hex_caps(1ull << 10)) << b;
}

TEST_P(RuntimeConformance, PrivilegedHasEveryCapability) {
  std::ifstream self("/proc/self/status");
  std::string mine((std::istreambuf_iterator<char>(self)), {});
  SpecInputs in = inputs({"cat", "/proc/self/status"});
  in.privileged = true;
  Outcome o = run(in);
  ASSERT_RAN(o);
  // Every capability the kernel has, which is our own bounding set (we run as root).
  EXPECT_EQ(status_field(o.out, "CapEff"), status_field(mine, "CapBnd")) << o;
  EXPECT_EQ(status_field(o.out, "CapBnd"), status_field(mine, "CapBnd")) << o;
}

TEST_P(RuntimeConformance, NoNewPrivileges) {
  Outcome def = run(inputs({"grep", "NoNewPrivs", "/proc/self/status"}));
  ASSERT_RAN(def);
  EXPECT_EQ(squeeze(def.out), "NoNewPrivs: 0") << "off unless asked, as docker" << def;
  SpecInputs in = inputs({"grep", "NoNewPrivs", "/proc/self/status"});
  in.no_new_privileges = true;
  Outcome o = run(in);
  ASSERT_RAN(o);
  EXPECT_EQ(squeeze(o.out), "NoNewPrivs: 1") << o;
}

// The default profile (docker's) denies, without CAP_SYS_ADMIN, the namespace calls: a user
// namespace needs no capability at all, so only seccomp stops `unshare -U`. A shell works.
TEST_P(RuntimeConformance, DefaultSeccompProfileDeniesUnshareWithEPERM) {
  const std::string script =
      "mkdir /tmp/made && echo made; unshare -U true && echo unshare-allowed; "
      "mount -t tmpfs none /tmp/made && echo mounted; grep '^Seccomp:' /proc/self/status";
  Outcome o = run(sh(script));
  ASSERT_RAN(o);
  EXPECT_EQ(squeeze(o.out), "made Seccomp: 2") << "unshare and mount refused, in filter mode" << o;
  EXPECT_NE(o.err.find("unshare: unshare(0x10000000): Operation not permitted"), std::string::npos) << o;
  // busybox says EPERM as "permission denied (are you root?)"
  EXPECT_NE(o.err.find("mount: permission denied"), std::string::npos) << o;

  // Without a filter, unshare(CLONE_NEWUSER) works where user namespaces are enabled: so when
  // it was refused above, the filter refused it.
  SpecInputs free = sh(script);
  free.seccomp_unconfined = true;
  Outcome u = run(free);
  ASSERT_RAN(u);
  EXPECT_NE(u.out.find("unshare-allowed"), std::string::npos) << "with seccomp=unconfined a user namespace is allowed" << u;
  EXPECT_NE(u.out.find("Seccomp:\t0"), std::string::npos) << u;
}

TEST_P(RuntimeConformance, CustomSeccompProfileMakesMkdirFailWithEPERM) {
  SpecInputs in = sh("mkdir /tmp/denied && echo made; touch /tmp/file && echo touched");
  in.seccomp_profile = json::parse(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
  })");
  Outcome o = run(in);
  ASSERT_RAN(o);
  EXPECT_EQ(o.out, "touched\n") << o;
  EXPECT_NE(o.err.find("Operation not permitted"), std::string::npos) << o;
  EXPECT_FALSE(fs::exists(rootfs_ / "tmp/denied"));
}

// A filter written straight into linux.seccomp, whatever core makes of docker's format:
// everything allowed but mkdir(2), which says EPERM; loaded before the capabilities go, and
// (with noNewPrivileges) just before the exec.
TEST_P(RuntimeConformance, SpecSeccompFilterIsLoaded) {
  for (bool no_new_privileges : {false, true}) {
    SCOPED_TRACE(no_new_privileges ? "with noNewPrivileges" : "without noNewPrivileges");
    SpecInputs in = sh("echo hello; mkdir /tmp/made; echo rc=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");
    in.seccomp_unconfined = true;
    in.no_new_privileges = no_new_privileges;
    Outcome o = run(in, [](json& spec) {
      spec["linux"]["seccomp"] = json::parse(R"({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
      })");
    });
    ASSERT_RAN(o);
    EXPECT_EQ(o.code, 0) << o;
    // No no_new_privs the spec did not ask for (libseccomp would set it by default).
    EXPECT_EQ(squeeze(o.out), std::string("hello rc=1 NoNewPrivs: ") + (no_new_privileges ? "1" : "0") + " Seccomp: 2")
        << o;
    EXPECT_NE(o.err.find("Operation not permitted"), std::string::npos) << o;
    EXPECT_FALSE(fs::exists(rootfs_ / "tmp/made"));
  }
}

TEST_P(RuntimeConformance, BadSeccompIsAClearError) {
  expect_refused(
      [](json& spec) {
        spec["linux"]["seccomp"] = json::parse(R"({"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}, {"names": ["rmdir"], "action": "SCMP_ACT_SOMETIMES"}]})");
      },
      "SCMP_ACT_SOMETIMES", "an unknown seccomp action");
}

// ---- isolation --------------------------------------------------------------------------------

TEST_P(RuntimeConformance, MaskedPathsAreEmptyOrUnreadable) {
  Outcome o = run(sh(
      "for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats; do "
      "echo \"$f $(cat $f 2>/dev/null | wc -c)\"; done; "
      "echo \"/sys/firmware $(ls -A /sys/firmware 2>/dev/null | wc -l)\""));
  ASSERT_RAN(o);
  auto l = lines_of(o.out);
  ASSERT_EQ(l.size(), 6u) << o;
  for (const auto& line : l) EXPECT_EQ(line.substr(line.rfind(' ')), " 0") << line << o;
}

TEST_P(RuntimeConformance, ProcSysIsReadOnly) {
  Outcome o = run(sh("echo changed > /proc/sys/kernel/hostname && echo wrote; hostname; "
                     "echo h > /proc/sysrq-trigger && echo sysrq"));
  ASSERT_RAN(o);
  auto l = lines_of(o.out);
  ASSERT_GE(l.size(), 1u) << o;
  EXPECT_EQ(l[0], "conformance") << "writing /proc/sys must fail" << o;
  EXPECT_EQ(o.out.find("wrote"), std::string::npos) << o;
  EXPECT_EQ(o.out.find("sysrq"), std::string::npos) << o;
}

TEST_P(RuntimeConformance, CannotSeeHostProcesses) {
  Outcome o = run(sh("ls -d /proc/[0-9]* | wc -l; test -e /proc/" + std::to_string(getpid()) + " && echo sees-host"));
  ASSERT_RAN(o);
  EXPECT_EQ(o.out.find("sees-host"), std::string::npos) << o;
  auto l = lines_of(o.out);
  ASSERT_GE(l.size(), 1u) << o;
  // sh, ls and wc (and the subshell of $(...)): a handful, never the host's.
  EXPECT_LE(std::stoi(l[0]), 5) << o;
}

TEST_P(RuntimeConformance, CannotLoadKernelModules) {
  // init_module needs CAP_SYS_MODULE (and the default seccomp profile denies it): EPERM
  // before the kernel looks at the module.
  // A kernel without module support says ENOSYS instead, when no seccomp filter is in the way.
  Outcome o = run(sh("printf '\\177ELF' > /tmp/fake.ko; head -c 4096 /dev/zero >> /tmp/fake.ko; "
                     "insmod /tmp/fake.ko && echo loaded"));
  ASSERT_RAN(o);
  EXPECT_EQ(o.out.find("loaded"), std::string::npos) << o;
  bool kernel_has_modules = fs::exists("/proc/modules");
  EXPECT_TRUE(o.err.find("not permitted") != std::string::npos ||
              (!kernel_has_modules && o.err.find("not support") != std::string::npos))
      << o;
}

TEST_P(RuntimeConformance, ReadOnlyRootfsKeepsATmpfsTmp) {
  SpecInputs in = sh("touch /new && echo root-writable; touch /tmp/ok && echo tmp-writable; "
                     "grep ' /tmp ' /proc/mounts | cut -d' ' -f3");
  in.read_only = true;
  Outcome o = run(in);
  ASSERT_RAN(o);
  EXPECT_EQ(o.out, "tmp-writable\ntmpfs\n") << o;
  EXPECT_NE(o.err.find("Read-only file system"), std::string::npos) << o;
  EXPECT_FALSE(fs::exists(rootfs_ / "new"));
  EXPECT_FALSE(fs::exists(rootfs_ / "tmp/ok")) << "/tmp of a read-only container is a tmpfs";
}

TEST_P(RuntimeConformance, BindMountsReadWriteAndReadOnly) {
  fs::path rw = scratch_.path() / "rw", ro = scratch_.path() / "ro", file = scratch_.path() / "single.conf";
  fs::create_directories(rw);
  fs::create_directories(ro);
  std::ofstream(rw / "in") << "rw-content\n";
  std::ofstream(ro / "in") << "ro-content\n";
  std::ofstream(file) << "single-file\n";
  SpecInputs in = sh("cat /data/in; echo written > /data/out && echo rw-ok; cat /ro/in; "
                     "echo x > /ro/out && echo ro-writable; cat /etc/single.conf");
  in.mounts = {{"/data", "bind", rw, {"rw"}}, {"/ro", "bind", ro, {"ro"}}, {"/etc/single.conf", "bind", file, {"ro"}}};
  Outcome o = run(in);
  ASSERT_RAN(o);
  EXPECT_EQ(o.out, "rw-content\nrw-ok\nro-content\nsingle-file\n") << o;
  EXPECT_NE(o.err.find("Read-only file system"), std::string::npos) << o;
  EXPECT_EQ(hutch::test::slurp(rw / "out"), "written\n") << "a write through a rw bind reaches the host directory";
  EXPECT_FALSE(fs::exists(ro / "out"));
  EXPECT_FALSE(fs::exists(rootfs_ / "data/in")) << "the bind mount must not have written into the rootfs";
}

TEST_P(RuntimeConformance, TmpfsMount) {
  SpecInputs in = sh("grep ' /scratch ' /proc/mounts | cut -d' ' -f3; df -k /scratch | tail -n 1 | awk '{print $2}'; "
                     "stat -c %a /scratch; echo hi > /scratch/f && cat /scratch/f");
  in.mounts = {{"/scratch", "tmpfs", "", {"size=1m", "mode=1777"}}};
  Outcome o = run(in);
  ASSERT_RAN(o);
  EXPECT_EQ(o.out, "tmpfs\n1024\n1777\nhi\n") << o;
  EXPECT_FALSE(fs::exists(rootfs_ / "scratch/f"));
}

TEST_P(RuntimeConformance, DevHasTheStandardDevices) {
  Outcome o = run(sh(
      "for d in null zero full random urandom tty; do test -c /dev/$d && echo $d; done; "
      "test -d /dev/pts && echo pts; test -e /dev/ptmx && echo ptmx; test -d /dev/shm && echo shm; "
      "test -L /dev/fd && echo fd; test -e /dev/stdout && echo stdout; "
      "head -c 16 /dev/zero | wc -c; head -c 16 /dev/urandom | wc -c; echo gone > /dev/null && echo null-ok"));
  ASSERT_RAN(o);
  EXPECT_EQ(o.out, "null\nzero\nfull\nrandom\nurandom\ntty\npts\nptmx\nshm\nfd\nstdout\n16\n16\nnull-ok\n") << o;
}

TEST_P(RuntimeConformance, ShmSize) {
  SpecInputs in = sh("df -k /dev/shm | tail -n 1 | awk '{print $2}'");
  in.shm_size = 1 << 20;
  Outcome o = run(in);
  ASSERT_RAN(o);
  EXPECT_EQ(o.out, "1024\n") << o;
}

// ---- --init -------------------------------------------------------------------------------------

TEST_P(RuntimeConformance, InitRunsAsPid1AndReapsOrphans) {
  fs::path init = init_binary();
  if (!fs::exists(init))
    HUTCH_SKIP_OUTSIDE_CI(init << " is not built yet (the hutch-init target of cli/); set HUTCH_CONFORMANCE_INIT");
  // The inner shell leaves an orphan (sleep 0.2), reparented to PID 1: once it has ended,
  // PID 1 must have reaped it, or it stays a zombie.
  SpecInputs in = sh("tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$; "
                     "sh -c 'sleep 0.2 & echo $! > /tmp/orphan'; sleep 1; pid=$(cat /tmp/orphan); "
                     "if [ -e /proc/$pid ]; then echo \"orphan $pid: $(grep State /proc/$pid/status)\"; else echo reaped; fi; "
                     "exit 3");
  in.init_binary = init;
  Outcome o = run(in);
  ASSERT_RAN(o);
  auto l = lines_of(o.out);
  ASSERT_EQ(l.size(), 3u) << o;
  EXPECT_EQ(l[0].rfind("/run/hutch-init ", 0), 0u) << "PID 1 is the init" << o;
  EXPECT_NE(l[1], "1") << "the command is not PID 1" << o;
  EXPECT_EQ(l[2], "reaped") << o;
  EXPECT_EQ(o.code, 3) << "the init exits with the command's code" << o;
}

// ---- user namespace -----------------------------------------------------------------------------

TEST_P(RuntimeConformance, UserNamespaceWithMaps) {
  if (!rt_->capabilities().user_namespace_in_spec) HUTCH_SKIP_OUTSIDE_CI("the runtime says it does not do user namespaces");
  if (!ids_mapped("/proc/self/uid_map", 1, 1000) || !ids_mapped("/proc/self/gid_map", 1, 1000))
    HUTCH_SKIP_OUTSIDE_CI("IDs 1-1000 are not mapped in this namespace (single-ID mode): no map to give the container");
  SpecInputs in = sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/mine; stat -c %u /tmp/mine");
  in.uid_mappings = {{0, 1, 1000}};
  in.gid_mappings = {{0, 1, 1000}};
  // Files of the rootfs belong to our root, unmapped in there: /tmp must be writable by others.
  Outcome o = run(in);
  ASSERT_RAN(o);
  auto l = lines_of(o.out);
  ASSERT_EQ(l.size(), 4u) << o;
  EXPECT_EQ(squeeze(l[0]), "0 1 1000") << o;
  EXPECT_EQ(squeeze(l[1]), "0 1 1000") << o;
  EXPECT_EQ(l[2], "0") << o;
  EXPECT_EQ(l[3], "0") << o;
  struct stat st {};
  ASSERT_EQ(::stat((rootfs_ / "tmp/mine").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1u) << "root of the container is ID 1 outside";
}

// ---- resource limits (where this caller can enforce them) ----------------------------------------

TEST_P(RuntimeConformance, PidsLimitStopsAForkBomb) {
  // The loop runs in a subshell: a shell that cannot fork gives up. What follows is builtins.
  SpecInputs in = sh("(for i in $(seq 1 30); do sleep 5 & done) 2>/tmp/err; echo \"loop $?\"; "
                     "while read -r l; do echo \"$l\"; done < /tmp/err");
  ResourceLimits l;
  l.pids_limit = 10;
  CgroupSupport cg = detect_cgroups(UsernsSession::current().mode == UsernsMode::kRealRoot);
  if (!cg.usable) {
    // Where limits cannot be enforced (rootless on v1/hybrid here), what a user sees is the
    // engine's warning, made of this reason and fix: they must say something.
    EXPECT_FALSE(cg.reason.empty());
    EXPECT_FALSE(cg.fix.empty());
    return;
  }
  in.resources = l;
  in.cgroups_path = container_cgroup_path(cg, "conformance-pids-" + std::to_string(getpid()));
  Outcome o = run(in);
  ASSERT_RAN(o);
  EXPECT_NE(o.out.find("fork"), std::string::npos) << "30 processes started under a pids limit of 10" << o;
  EXPECT_EQ(o.out.find("loop 0"), std::string::npos) << o;
}

TEST_P(RuntimeConformance, MemoryLimitKillsAnAllocation) {
  // tail keeps its last line, here all of the 100 MB, in memory.
  SpecInputs in = sh("head -c 104857600 /dev/zero | tail -n 1 > /dev/null; echo \"status $?\"");
  ResourceLimits l;
  l.memory = 32 << 20;
  l.memory_swap = 32 << 20;
  CgroupSupport cg = detect_cgroups(UsernsSession::current().mode == UsernsMode::kRealRoot);
  if (!cg.usable) {
    // Where limits cannot be enforced (rootless on v1/hybrid here), what a user sees is the
    // engine's warning, made of this reason and fix: they must say something.
    EXPECT_FALSE(cg.reason.empty());
    EXPECT_FALSE(cg.fix.empty());
    return;
  }
  in.resources = l;
  in.cgroups_path = container_cgroup_path(cg, "conformance-mem-" + std::to_string(getpid()));
  Outcome o = run(in);
  ASSERT_RAN(o);
  // The OOM killer ends tail (the pipeline's status is 137) or, should it choose it, PID 1.
  EXPECT_TRUE(o.out == "status 137\n" || (o.out.empty() && o.code == 137)) << "100 MB under a 32 MB limit" << o;
}

// ---- exec ------------------------------------------------------------------------------------------
// A process started in a running container, as `hutch exec` does: in the container's namespaces,
// root and cgroup, under its seccomp filter, with the identity of its own process object.

TEST_P(RuntimeConformance, ExecRunsInTheContainersNamespacesAndRoot) {
  std::ofstream(rootfs_ / "only-in-rootfs") << "rootfs-marker\n";
  SpecInputs in = sleeper();
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  const std::vector<std::string> kinds = {"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"};
  std::string script = "cat /proc/1/comm; hostname; cat /only-in-rootfs; pwd; echo $$; for n in";
  for (const auto& k : kinds) script += " " + k;
  script += "; do readlink /proc/self/ns/$n; done";
  Outcome o = exec_in(c, process_of(in, {"sh", "-c", script}));
  ASSERT_RAN(o);
  EXPECT_EQ(o.code, 0) << o;
  auto l = lines_of(o.out);
  ASSERT_EQ(l.size(), 5 + kinds.size()) << o;
  EXPECT_EQ(l[0], "sleep") << "PID 1 is the container's init" << o;
  EXPECT_EQ(l[1], "conformance") << o;
  EXPECT_EQ(l[2], "rootfs-marker") << "the container's root filesystem" << o;
  EXPECT_EQ(l[3], "/") << o;
  EXPECT_NE(l[4], "1") << o;
  for (size_t i = 0; i < kinds.size(); ++i) {
    std::string init_ns = fs::read_symlink("/proc/" + std::to_string(c.init) + "/ns/" + kinds[i]).string();
    EXPECT_EQ(l[5 + i], init_ns) << "the " << kinds[i] << " namespace of the init" << o;
  }
  auto st = rt_->state(c.id);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, "running") << "the container outlives the exec";
  end(c);
}

// With --pid host there is no PID namespace to join: the process is one of ours, in there.
TEST_P(RuntimeConformance, ExecInAContainerSharingOurPidNamespace) {
  SpecInputs in = sleeper();
  in.host_pid = true;
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  Outcome o = exec_in(c, process_of(in, {"sh", "-c", "test -e /proc/" + std::to_string(getpid()) + " && echo sees-us; hostname; exit 3"}));
  ASSERT_RAN(o);
  EXPECT_EQ(o.code, 3) << o;
  EXPECT_EQ(o.out, "sees-us\nconformance\n") << o;
  end(c);
}

TEST_P(RuntimeConformance, ExecStdioAndExitCode) {
  SpecInputs in = sleeper();
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  Outcome o = exec_in(c, process_of(in, {"sh", "-c", "read line; echo \"got $line\"; echo to-err >&2; exit 7"}), "hello\n");
  ASSERT_RAN(o);
  EXPECT_EQ(o.code, 7) << o;
  EXPECT_EQ(o.out, "got hello\n") << o;
  EXPECT_EQ(o.err, "to-err\n") << o;
  Outcome zero = exec_in(c, process_of(in, {"true"}));
  ASSERT_RAN(zero);
  EXPECT_EQ(zero.code, 0) << zero;
  end(c);
}

TEST_P(RuntimeConformance, ExecMissingCommandIs127AndNotExecutable126) {
  SpecInputs in = sleeper();
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  Outcome missing = exec_in(c, process_of(in, {"no-such-command"}));
  ASSERT_TRUE(missing.error_code) << "exec of a missing command must fail" << missing;
  EXPECT_EQ(*missing.error_code, Errc::kCommandNotFound) << missing;
  EXPECT_NE(missing.error.find("no-such-command"), std::string::npos) << "the error names the command" << missing;
  Outcome notexec = exec_in(c, process_of(in, {"/bin/notexec"}));
  ASSERT_TRUE(notexec.error_code) << "exec of a file that is not executable must fail" << notexec;
  EXPECT_EQ(*notexec.error_code, Errc::kNotExecutable) << notexec;
  EXPECT_EQ(notexec.out.find("must not run"), std::string::npos) << notexec;
  EXPECT_EQ(rt_->state(c.id)->status, "running") << "a failed exec leaves the container alone";
  end(c);
}

TEST_P(RuntimeConformance, ExecIntoAStoppedOrMissingContainerFails) {
  SpecInputs in = inputs({"true"});
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  EXPECT_EQ(wait_for(c.init), 0);
  Outcome stopped = exec_in(c, process_of(in, {"echo", "ran"}));
  EXPECT_FALSE(stopped.error.empty()) << "exec into a stopped container must fail" << stopped;
  EXPECT_EQ(stopped.out, "") << stopped;
  rt_->remove(c.id);
  Outcome missing = exec_in(Running{"hc-never-created-" + std::to_string(getpid()), 0}, process_of(in, {"echo", "ran"}));
  ASSERT_TRUE(missing.error_code) << "exec into a container that does not exist must fail" << missing;
  EXPECT_EQ(*missing.error_code, Errc::kNotFound) << missing;
  EXPECT_EQ(missing.out, "") << missing;
}

TEST_P(RuntimeConformance, ExecTakesTheUserEnvAndCwdOfItsProcess) {
  if (!ids_mapped("/proc/self/uid_map", 1000, 1) || !ids_mapped("/proc/self/gid_map", 10, 1) ||
      !ids_mapped("/proc/self/gid_map", 1000, 1))
    HUTCH_SKIP_OUTSIDE_CI("uid 1000 and gids 10, 1000 are not mapped in this namespace (single-ID mode)");
  SpecInputs in = sleeper();
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  SpecInputs as_app = in;
  as_app.user.uid = 1000;
  as_app.user.gid = 1000;
  as_app.user.additional_gids = {10};
  as_app.cwd = "/tmp";
  as_app.env = {"PATH=/bin", "FOO=from-exec"};
  Outcome o = exec_in(c, process_of(as_app, {"sh", "-c", "id -u; id -g; id -G; pwd; grep CapEff /proc/self/status; env | sort"}));
  ASSERT_RAN(o);
  EXPECT_EQ(o.code, 0) << o;
  auto l = lines_of(o.out);
  ASSERT_GE(l.size(), 5u) << o;
  EXPECT_EQ(l[0], "1000") << o;
  EXPECT_EQ(l[1], "1000") << o;
  std::istringstream gs(l[2]);
  std::set<std::string> groups{std::istream_iterator<std::string>(gs), {}};
  EXPECT_EQ(groups, (std::set<std::string>{"10", "1000"})) << o;
  EXPECT_EQ(l[3], "/tmp") << o;
  EXPECT_EQ(status_field(l[4], "CapEff"), hex_caps(0)) << "a user other than root has no capabilities in effect" << o;
  std::set<std::string> env(l.begin() + 5, l.end());
  env.erase("PWD=/tmp");  // the shell's own
  env.erase("SHLVL=1");
  // Exactly the process's environment, not the init's; without a HOME of its own, the user's
  // home in the container's /etc/passwd (runc's and crun's rule).
  EXPECT_EQ(env, (std::set<std::string>{"PATH=/bin", "FOO=from-exec", "HOME=/home/app"})) << o;
  end(c);
}

TEST_P(RuntimeConformance, ExecWithAMissingWorkingDirectoryFails) {
  SpecInputs in = sleeper();
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  SpecInputs elsewhere = in;
  elsewhere.cwd = "/no/such/dir";
  Outcome o = exec_in(c, process_of(elsewhere, {"echo", "ran"}));
  EXPECT_FALSE(o.error.empty()) << "docker refuses an exec whose working directory is missing" << o;
  EXPECT_NE(o.error.find("/no/such/dir"), std::string::npos) << "the error names the directory" << o;
  EXPECT_EQ(o.out, "") << o;
  EXPECT_FALSE(fs::exists(rootfs_ / "no")) << "exec does not make the working directory";
  end(c);
}

// rlimits: RLIMIT_CORE, and the hard limit of RLIMIT_NOFILE. Its soft limit is not checked:
// runc before 1.1.13 built with Go 1.19 or later (Debian 12's 1.1.5) sets it with prlimit(2)
// racing the Go runtime's own raise of it in `runc init`, and now and then the process gets the
// hard limit (opencontainers/runc#4195); create's Rlimits test checks it for every runtime.
TEST_P(RuntimeConformance, ExecTakesTheCapabilitiesAndRlimitsOfItsProcess) {
  SpecInputs in = sleeper();
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  SpecInputs narrow = in;
  narrow.cap_drop = {"ALL"};
  narrow.cap_add = {"NET_BIND_SERVICE"};
  narrow.ulimits = {{"core", 102400, 204800}, {"nofile", 100, 200}};
  Outcome o = exec_in(c, process_of(narrow, {"sh", "-c", "grep -E '^Cap(Eff|Bnd):' /proc/self/status; "
                                                         "grep -E '^Max (core file size|open files)' /proc/self/limits"}));
  ASSERT_RAN(o);
  auto l = lines_of(o.out);
  ASSERT_EQ(l.size(), 4u) << o;
  EXPECT_EQ(status_field(l[0], "CapEff"), hex_caps(1ull << 10)) << o;
  EXPECT_EQ(status_field(l[1], "CapBnd"), hex_caps(1ull << 10)) << o;
  EXPECT_EQ(squeeze(l[2]), "Max core file size 102400 204800 bytes") << o;
  std::istringstream nofile(l[3]);  // "Max open files  SOFT  HARD  files"
  std::vector<std::string> words{std::istream_iterator<std::string>(nofile), {}};
  ASSERT_GE(words.size(), 3u) << o;
  EXPECT_EQ(words[words.size() - 2], "200") << "the hard limit of open files" << o;
  // The init keeps its own.
  std::ifstream status("/proc/" + std::to_string(c.init) + "/status");
  std::string init_status((std::istreambuf_iterator<char>(status)), {});
  EXPECT_EQ(status_field(init_status, "CapEff"), hex_caps(kDockerDefaultCaps));
  end(c);
}

// The default profile (docker's) makes `unshare -U` fail, and only seccomp could: the exec'd
// process has it too. A container without a filter gives its exec'd processes none either.
TEST_P(RuntimeConformance, ExecIsUnderTheContainersSeccompFilter) {
  SpecInputs in = sleeper();
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  Outcome o = exec_in(c, process_of(in, {"sh", "-c", "unshare -U true && echo unshare-allowed; grep '^Seccomp:' /proc/self/status"}));
  ASSERT_RAN(o);
  EXPECT_EQ(squeeze(o.out), "Seccomp: 2") << o;
  EXPECT_NE(o.err.find("Operation not permitted"), std::string::npos) << o;
  end(c);

  SpecInputs free = sleeper();
  free.seccomp_unconfined = true;
  Running u = start_running(free);
  ASSERT_GT(u.init, 0);
  Outcome f = exec_in(u, process_of(free, {"grep", "^Seccomp:", "/proc/self/status"}));
  ASSERT_RAN(f);
  EXPECT_EQ(squeeze(f.out), "Seccomp: 0") << f;
  end(u);
}

// A filter written straight into linux.seccomp (mkdir says EPERM): the exec'd process gets it,
// with and without noNewPrivileges of its own.
TEST_P(RuntimeConformance, ExecGetsTheSpecsSeccompFilter) {
  SpecInputs in = sleeper();
  in.seccomp_unconfined = true;
  Running c = start_running(in, [](json& spec) {
    spec["linux"]["seccomp"] = json::parse(R"({
      "defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    })");
  });
  ASSERT_GT(c.init, 0);
  for (bool no_new_privileges : {false, true}) {
    SCOPED_TRACE(no_new_privileges ? "with noNewPrivileges" : "without noNewPrivileges");
    SpecInputs p = in;
    p.no_new_privileges = no_new_privileges;
    Outcome o = exec_in(c, process_of(p, {"sh", "-c", "mkdir /tmp/made; echo rc=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"}));
    ASSERT_RAN(o);
    EXPECT_EQ(squeeze(o.out), std::string("rc=1 NoNewPrivs: ") + (no_new_privileges ? "1" : "0") + " Seccomp: 2") << o;
    EXPECT_FALSE(fs::exists(rootfs_ / "tmp/made"));
  }
  end(c);
}

TEST_P(RuntimeConformance, ExecWithATerminal) {
  SpecInputs in = sleeper();
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  ConsoleListener console(scratch_.path() / "console.sock");
  SpecInputs tty = in;
  tty.terminal = true;
  json process = process_of(tty, {"sh", "-c", "tty; test -t 0 && test -t 1 && echo interactive; exec </dev/tty && echo controlling"});
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  pid_t pid = 0;
  try {
    pid = rt_->exec(c.id, process, RuntimeIo{devnull, devnull, devnull, console.path()});
  } catch (const Error& e) {
    ADD_FAILURE() << "exec with a terminal: " << e.what();
  }
  ::close(devnull);
  if (pid > 0) {
    int master = console.receive_master(10000);
    EXPECT_GE(master, 0) << "the runtime sent no terminal over the console socket";
    std::string out;
    // The slave's end closes when the process exits: then the master reads EIO.
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
         master >= 0 && std::chrono::steady_clock::now() < deadline;) {
      pollfd p{master, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    if (master >= 0) ::close(master);
    EXPECT_EQ(wait_for(pid), 0) << out;
    auto l = lines_of(out);
    ASSERT_EQ(l.size(), 3u) << out;
    EXPECT_EQ(l[0].rfind("/dev/pts/", 0), 0u) << "a terminal of the container's /dev/pts: " << out;
    EXPECT_EQ(l[1], "interactive\r") << out;
    EXPECT_EQ(l[2], "controlling\r") << out;
  }
  end(c);
}

// keep-id's shape: the container's own user namespace maps its uid 1000 to our 0 and its
// 0-999 to our 1-1000; its init runs as 1000. Exec joins that namespace first.
TEST_P(RuntimeConformance, ExecInAContainerWithItsOwnUserNamespace) {
  if (!rt_->capabilities().user_namespace_in_spec) HUTCH_SKIP_OUTSIDE_CI("the runtime says it does not do user namespaces");
  if (!ids_mapped("/proc/self/uid_map", 0, 1) || !ids_mapped("/proc/self/uid_map", 1, 1000) ||
      !ids_mapped("/proc/self/gid_map", 0, 1) || !ids_mapped("/proc/self/gid_map", 1, 1000))
    HUTCH_SKIP_OUTSIDE_CI("IDs 0-1000 are not mapped in this namespace (single-ID mode): no map to give the container");
  SpecInputs in = sleeper();
  in.uid_mappings = {{0, 1, 1000}, {1000, 0, 1}};
  in.gid_mappings = {{0, 1, 1000}, {1000, 0, 1}};
  in.user.uid = 1000;
  in.user.gid = 1000;
  Running c = start_running(in);
  ASSERT_GT(c.init, 0);
  Outcome o = exec_in(c, process_of(in, {"sh", "-c", "id -u; readlink /proc/self/ns/user; cat /proc/self/uid_map; touch /tmp/by-exec"}));
  ASSERT_RAN(o);
  EXPECT_EQ(o.code, 0) << o;
  auto l = lines_of(o.out);
  ASSERT_EQ(l.size(), 4u) << o;
  EXPECT_EQ(l[0], "1000") << o;
  EXPECT_EQ(l[1], fs::read_symlink("/proc/" + std::to_string(c.init) + "/ns/user").string()) << o;
  EXPECT_NE(l[1], fs::read_symlink("/proc/self/ns/user").string()) << "the container's own namespace, not ours" << o;
  EXPECT_EQ(squeeze(l[2]) + " " + squeeze(l[3]), "0 1 1000 1000 0 1") << o;
  struct stat st {};
  ASSERT_EQ(::stat((rootfs_ / "tmp/by-exec").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "the container's 1000 is our 0";

  SpecInputs as_root = in;
  as_root.user.uid = 0;
  as_root.user.gid = 0;
  Outcome r = exec_in(c, process_of(as_root, {"sh", "-c", "id -u; touch /tmp/by-root"}));
  ASSERT_RAN(r);
  EXPECT_EQ(r.out, "0\n") << r;
  ASSERT_EQ(::stat((rootfs_ / "tmp/by-root").c_str(), &st), 0) << r;
  EXPECT_EQ(st.st_uid, 1u) << "the container's root is our 1";
  end(c);
}

// The exec'd process is in the init's cgroup: the same line for every hierarchy in
// /proc/self/cgroup. With limits (where this caller can enforce them), in the limited one.
TEST_P(RuntimeConformance, ExecJoinsTheContainersCgroup) {
  auto check = [&](const SpecInputs& in) {
    Running c = start_running(in);
    ASSERT_GT(c.init, 0);
    Outcome o = exec_in(c, process_of(in, {"sh", "-c", "cat /proc/1/cgroup; echo --; cat /proc/self/cgroup"}));
    ASSERT_RAN(o);
    auto sep = o.out.find("--\n");
    ASSERT_NE(sep, std::string::npos) << o;
    EXPECT_EQ(o.out.substr(0, sep), o.out.substr(sep + 3)) << o;
    end(c);
  };
  check(sleeper());
  CgroupSupport cg = detect_cgroups(UsernsSession::current().mode == UsernsMode::kRealRoot);
  if (!cg.usable) {
    // Where limits cannot be enforced (rootless on v1/hybrid here), what a user sees is the
    // engine's warning, made of this reason and fix: they must say something.
    EXPECT_FALSE(cg.reason.empty());
    EXPECT_FALSE(cg.fix.empty());
    return;
  }
  SpecInputs limited = sleeper();
  limited.resources.pids_limit = 50;
  limited.cgroups_path = container_cgroup_path(cg, "conformance-exec-" + std::to_string(getpid()));
  check(limited);
}

std::string param_name(const ::testing::TestParamInfo<RuntimeParam>& info) { return info.param.label; }

INSTANTIATE_TEST_SUITE_P(Runtimes, RuntimeConformance,
                         ::testing::Values(RuntimeParam{"native", "native", ""}, RuntimeParam{"crun", "oci", "crun"},
                                           RuntimeParam{"runc", "oci", "runc"}),
                         param_name);

}  // namespace
