// Containers that outlive the command that started them: run -d, the monitor, logs, exec,
// stop, kill, restart policies, healthchecks, attach, wait, and what is left when all ends.
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <set>
#include <thread>

#include "harness.hpp"
#include "skip.hpp"

namespace hit {
namespace {

class MonitorTest : public ImageTest {
 protected:
  void TearDown() override {
    // Whatever a failed test left running.
    Result q = hutch({"ps", "-a", "-q"});
    for (const auto& id : lines(q.out)) hutch({"rm", "-f", id});
    ImageTest::TearDown();
  }
  // run -d ... ; the container's full ID.
  std::string run_d(std::vector<std::string> args) {
    args.insert(args.begin(), {"run", "-d"});
    Result r = hutch(args);
    EXPECT_OK(r);
    auto ls = lines(r.out);
    EXPECT_EQ(ls.size(), 1u) << r;
    if (ls.size() != 1) return "";
    EXPECT_TRUE(is_hex(ls[0], 64)) << r;
    return ls[0];
  }
  nlohmann::json inspect(const std::string& name) {
    Result r = hutch({"inspect", name});
    EXPECT_OK(r);
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_array() && !j.empty()) return j[0];
    return j;
  }
  std::string field(const std::string& name, const std::string& tmpl) {
    Result r = hutch({"inspect", "-f", tmpl, name});
    EXPECT_OK(r);
    return trim(r.out);
  }
  // Polls `ps -a` until the container's STATUS contains `needle`.
  bool wait_status(const std::string& name, const std::string& needle, std::chrono::milliseconds timeout,
                   std::string* last = nullptr) {
    auto until = std::chrono::steady_clock::now() + timeout;
    std::string status;
    while (std::chrono::steady_clock::now() < until) {
      Result r = hutch({"ps", "-a"});
      for (const auto& l : lines(r.out))
        if (contains(l, name)) status = l;
      if (contains(status, needle)) return true;
      std::this_thread::sleep_for(200ms);
    }
    if (last) *last = status;
    return false;
  }
  std::vector<std::string> ps_names(bool all) {
    Result r = hutch(all ? std::vector<std::string>{"ps", "-a"} : std::vector<std::string>{"ps"});
    std::vector<std::string> out;
    auto ls = lines(r.out);
    for (std::size_t i = 1; i < ls.size(); ++i) {
      auto cols = split_ws(ls[i]);
      if (!cols.empty()) out.push_back(cols.back());
    }
    return out;
  }
};

const char* kLoop = "while true; do sleep 0.1; done";

TEST_F(MonitorTest, RunDetachedOutlivesTheCommand) {
  std::string id = run_d({"--name", "web", "bb", "sh", "-c", std::string("echo started; ") + kLoop});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(ps_names(false), std::vector<std::string>{"web"});
  std::string st;
  EXPECT_TRUE(wait_status("web", "Up ", 10s, &st)) << st;
  auto j = inspect("web");
  EXPECT_EQ(j["State"]["Status"], "running");
  EXPECT_EQ(j["State"]["Running"], true);
  EXPECT_GT(j["State"]["Pid"].get<int>(), 0);
  EXPECT_EQ(j["Id"], id);
  // Its monitor is a process of its own, not the finished `run -d`.
  EXPECT_GT(j["State"]["ConmonPid"].get<int>(), 0);
  EXPECT_EQ(kill(j["State"]["ConmonPid"].get<int>(), 0), 0);
  Result logs = hutch({"logs", "web"});
  EXPECT_OK(logs);
  EXPECT_EQ(logs.out, "started\n");
  ASSERT_OK(hutch({"rm", "-f", "web"}));
  EXPECT_TRUE(ps_names(true).empty());
}

TEST_F(MonitorTest, DuplicateNameIsRefused) {
  run_d({"--name", "dup", "bb", "sh", "-c", kLoop});
  Result r = hutch({"run", "-d", "--name", "dup", "bb", "true"});
  EXPECT_TRUE(OneLineError(r, {"dup", "already in use"}));
  Result c = hutch({"create", "--name", "dup", "bb", "true"});
  EXPECT_TRUE(OneLineError(c, {"dup", "already in use"}));
}

TEST_F(MonitorTest, LogsFollowStreamsAndEndsWithTheContainer) {
  run_d({"--name", "talker", "bb", "sh", "-c",
         "i=0; while [ $i -lt 15 ]; do echo line$i; echo err$i >&2; i=$((i+1)); sleep 0.1; done"});
  Options o;
  o.timeout = 60s;
  Proc f(cmd({"logs", "-f", "talker"}), o);
  EXPECT_TRUE(f.wait_for_stdout("line3\n", 20s)) << "logs -f streams while the container writes";
  Result r = f.wait();
  EXPECT_OK(r);
  EXPECT_FALSE(r.timed_out) << "logs -f ends when the container stops";
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 15u) << r;
  for (int i = 0; i < 15; ++i) EXPECT_EQ(out[i], "line" + std::to_string(i));
  EXPECT_EQ(lines(r.err).size(), 15u) << "stderr stays stderr" << r;
  // --tail counts the lines of both streams together, as docker and podman do: the last two are
  // line14 (on stdout) and err14 (on stderr), in the order the monitor read them.
  Result tail = hutch({"logs", "--tail", "2", "talker"});
  EXPECT_EQ(tail.out, "line14\n") << tail;
  EXPECT_EQ(tail.err, "err14\n") << tail;
  Result ts = hutch({"logs", "-t", "--tail", "1", "talker"});
  auto tl = lines(ts.out + ts.err);
  ASSERT_EQ(tl.size(), 1u) << ts;
  EXPECT_TRUE(contains(tl[0], "T")) << ts;
  EXPECT_TRUE(contains(tl[0], " line14") || contains(tl[0], " err14")) << ts;
  Result until = hutch({"logs", "--until", "2000-01-01T00:00:00Z", "talker"});
  EXPECT_EQ(until.out, "") << until;
  Result since = hutch({"logs", "--since", "1h", "talker"});
  EXPECT_EQ(lines(since.out).size(), 15u) << since;
  // The k8s-file log podman writes.
  std::string logpath = field("talker", "{{.LogPath}}");
  Result cat = hutch({"unshare", "cat", logpath});
  auto ll = lines(cat.out);
  ASSERT_FALSE(ll.empty()) << cat;
  auto cols = split_ws(ll[0]);
  ASSERT_GE(cols.size(), 4u);
  EXPECT_TRUE(cols[1] == "stdout" || cols[1] == "stderr") << ll[0];
  EXPECT_EQ(cols[2], "F") << ll[0];
}

TEST_F(MonitorTest, ExecJoinsTheContainer) {
  run_d({"--name", "box", "--hostname", "inner", "bb", "sh", "-c", std::string("echo x > /marker; ") + kLoop});
  std::string st;
  ASSERT_TRUE(wait_status("box", "Up ", 10s, &st)) << st;
  Result h = hutch({"exec", "box", "hostname"});
  EXPECT_OK(h);
  EXPECT_EQ(h.out, "inner\n");
  for (int i = 0; i < 50 && hutch({"exec", "box", "cat", "/marker"}).out != "x\n"; ++i) std::this_thread::sleep_for(100ms);
  Result m = hutch({"exec", "box", "cat", "/marker"});
  EXPECT_EQ(m.out, "x\n") << "exec sees the container's filesystem" << m;
  Result pid1 = hutch({"exec", "box", "cat", "/proc/1/cmdline"});
  EXPECT_TRUE(contains(pid1.out, "sh")) << "exec is in the container's PID namespace" << pid1;
  Result u = hutch({"exec", "-u", "1234:99", "box", "id"});
  if (suite().mode == Mode::kNoRange) {
    // A single-ID namespace holds only the caller (uid 0): the error says so, as run -u's does.
    EXPECT_TRUE(EngineError(u, {"not mapped", "hutch info"}));
  } else {
    EXPECT_OK(u);
    EXPECT_TRUE(contains(u.out, "uid=1234")) << u;
    EXPECT_TRUE(contains(u.out, "gid=99")) << u;
  }
  Result e = hutch({"exec", "-e", "FOO=bar", "-w", "/tmp", "box", "sh", "-c", "echo $FOO; pwd"});
  EXPECT_EQ(e.out, "bar\n/tmp\n") << e;
  EXPECT_CODE(hutch({"exec", "box", "sh", "-c", "exit 7"}), 7);
  Result nf = hutch({"exec", "box", "nosuchcmd"});
  EXPECT_CODE(nf, 127);
  Result in = hutch({"exec", "-i", "box", "cat"}, Options{std::string("piped\n")});
  EXPECT_EQ(in.out, "piped\n") << in;
  ASSERT_OK(hutch({"stop", "-t", "0", "box"}));
  EXPECT_TRUE(EngineError(hutch({"exec", "box", "true"}), {"not running"}));
}

TEST_F(MonitorTest, StopHonoursTheStopSignalAndTheTimeout) {
  // Traps its stop signal: stop returns quickly with the trap's code.
  run_d({"--name", "polite", "--stop-signal", "SIGUSR1", "bb", "sh", "-c",
         std::string("trap 'exit 42' USR1; echo ready; ") + kLoop});
  Options o;
  o.timeout = 30s;
  Proc f(cmd({"logs", "-f", "polite"}), o);
  ASSERT_TRUE(f.wait_for_stdout("ready\n", 20s));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_OK(hutch({"stop", "polite"}));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 5s);
  EXPECT_EQ(field("polite", "{{.State.ExitCode}}"), "42");
  EXPECT_EQ(field("polite", "{{.State.Status}}"), "exited");
  // Ignores SIGTERM: killed after -t seconds.
  run_d({"--name", "stubborn", "bb", "sh", "-c", std::string("trap '' TERM; ") + kLoop});
  std::this_thread::sleep_for(300ms);
  t0 = std::chrono::steady_clock::now();
  ASSERT_OK(hutch({"stop", "-t", "2", "stubborn"}));
  took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 1900ms);
  EXPECT_LT(took, 10s);
  EXPECT_EQ(field("stubborn", "{{.State.ExitCode}}"), "137");
  // Stopping a stopped container is fine.
  EXPECT_OK(hutch({"stop", "stubborn"}));
  ASSERT_OK(hutch({"rm", "polite", "stubborn"}));
}

TEST_F(MonitorTest, NothingOfOursIsLeftAfterwards) {
  run_d({"--name", "a", "bb", "sh", "-c", kLoop});
  run_d({"--name", "b", "--rm", "bb", "sh", "-c", kLoop});
  ASSERT_OK(hutch({"stop", "-t", "1", "a", "b"}));
  ASSERT_OK(hutch({"rm", "a"}));
  EXPECT_TRUE(ps_names(true).empty()) << "--rm removed b when it stopped";
  std::vector<std::string> left;
  for (int i = 0; i < 50; ++i) {
    left = stray_hutch_processes();
    if (left.empty()) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(left.empty()) << "hutch processes still running: " << ::testing::PrintToString(left);
}

TEST_F(MonitorTest, HealthcheckGoesFromStartingToHealthyToUnhealthy) {
  // Healthy while /tmp/ok exists; the container removes it after a while.
  run_d({"--name", "doc", "--health-cmd", "test -e /tmp/ok", "--health-interval", "1s", "--health-retries", "2",
         "bb", "sh", "-c", std::string("touch /tmp/ok; sleep 4; rm /tmp/ok; ") + kLoop});
  Result ps = hutch({"ps"});
  EXPECT_TRUE(contains(ps.out, "(health: starting)")) << ps;
  std::string st;
  EXPECT_TRUE(wait_status("doc", "(healthy)", 15s, &st)) << st;
  EXPECT_EQ(field("doc", "{{.State.Health.Status}}"), "healthy");
  EXPECT_TRUE(wait_status("doc", "(unhealthy)", 20s, &st)) << st;
  auto j = inspect("doc");
  EXPECT_EQ(j["State"]["Health"]["Status"], "unhealthy");
  EXPECT_GE(j["State"]["Health"]["FailingStreak"].get<int>(), 2);
  ASSERT_FALSE(j["State"]["Health"]["Log"].empty());
  EXPECT_NE(j["State"]["Health"]["Log"].back()["ExitCode"], 0);
  // Run by hand, as podman's `healthcheck run`.
  Result hc = hutch({"healthcheck", "run", "doc"});
  EXPECT_CODE(hc, 1);
  EXPECT_EQ(trim(hc.out), "unhealthy");
}

TEST_F(MonitorTest, HealthOnFailureKillEndsIt) {
  run_d({"--name", "sick", "--health-cmd", "false", "--health-interval", "500ms", "--health-retries", "1",
         "--health-on-failure", "kill", "bb", "sh", "-c", kLoop});
  std::string st;
  EXPECT_TRUE(wait_status("sick", "Exited (137)", 20s, &st)) << st;
  EXPECT_EQ(field("sick", "{{.State.Health.Status}}"), "unhealthy");
}

TEST_F(MonitorTest, LogDriversAndRotation) {
  run_d({"--name", "j", "--log-driver", "json-file", "bb", "sh", "-c", "echo one; echo two >&2"});
  hutch({"wait", "j"});
  Result l = hutch({"logs", "j"});
  EXPECT_EQ(l.out, "one\n") << l;
  EXPECT_EQ(l.err, "two\n") << l;
  Result raw = hutch({"unshare", "cat", field("j", "{{.LogPath}}")});
  auto first = nlohmann::json::parse(lines(raw.out).at(0), nullptr, false);
  ASSERT_TRUE(first.is_object()) << raw;
  EXPECT_EQ(first["log"], "one\n");
  EXPECT_EQ(first["stream"], "stdout");
  EXPECT_TRUE(first.contains("time"));
  run_d({"--name", "quiet", "--log-driver", "none", "bb", "echo", "lost"});
  hutch({"wait", "quiet"});
  EXPECT_TRUE(EngineError(hutch({"logs", "quiet"}), {"log-driver none"}));
  // 2000 lines of 100 bytes, 8 KiB files, 3 kept: the newest lines are there, in order.
  run_d({"--name", "big", "--log-opt", "max-size=8k", "--log-opt", "max-file=3", "bb", "sh", "-c",
         "i=0; while [ $i -lt 2000 ]; do printf '%099d\\n' $i; i=$((i+1)); done"});
  hutch({"wait", "big"});
  Result b = hutch({"logs", "big"});
  auto bl = lines(b.out);
  ASSERT_FALSE(bl.empty());
  EXPECT_LT(bl.size(), 2000u) << "old files were rotated away";
  EXPECT_EQ(std::stoi(bl.back()), 1999);
  for (std::size_t i = 1; i < bl.size(); ++i) EXPECT_EQ(std::stoi(bl[i]), std::stoi(bl[i - 1]) + 1) << "line " << i;
  EXPECT_OK(hutch({"run", "--rm", "--log-driver", "passthrough", "bb", "echo", "direct"}));
  EXPECT_TRUE(OneLineError(hutch({"run", "-d", "--log-driver", "passthrough", "bb", "true"}), {"passthrough", "-d"}));
  EXPECT_TRUE(OneLineError(hutch({"run", "--log-driver", "syslog", "bb", "true"}), {"syslog"}));
}

TEST_F(MonitorTest, RestartOnFailureThreeTimesThenStops) {
  run_d({"--name", "flaky", "--restart", "on-failure:3", "bb", "sh", "-c", "echo try; exit 3"});
  std::string st;
  ASSERT_TRUE(wait_status("flaky", "Exited (3)", 30s, &st)) << st;
  // Give a (wrong) fourth restart the time to show.
  std::this_thread::sleep_for(2s);
  auto j = inspect("flaky");
  EXPECT_EQ(j["RestartCount"], 3);
  EXPECT_EQ(j["State"]["Status"], "exited");
  Result logs = hutch({"logs", "flaky"});
  EXPECT_EQ(logs.out, "try\ntry\ntry\ntry\n") << "the first run and three restarts" << logs;
}

TEST_F(MonitorTest, RestartAlwaysSurvivesAKill) {
  run_d({"--name", "phoenix", "--restart", "always", "bb", "sh", "-c", kLoop});
  std::string st;
  ASSERT_TRUE(wait_status("phoenix", "Up ", 10s, &st)) << st;
  int pid = inspect("phoenix")["State"]["Pid"].get<int>();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int again = 0;
  for (int i = 0; i < 100; ++i) {
    auto j = inspect("phoenix");
    if (j["State"]["Status"] == "running" && j["State"]["Pid"].get<int>() != pid) {
      again = j["State"]["Pid"].get<int>();
      EXPECT_EQ(j["RestartCount"], 1);
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(again, 0) << "the container was not restarted after kill -9";
  // A stop is final, whatever the policy.
  ASSERT_OK(hutch({"stop", "-t", "1", "phoenix"}));
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(field("phoenix", "{{.State.Status}}"), "exited");
}

TEST_F(MonitorTest, KilledMonitorShowsTheTrueState) {
  run_d({"--name", "orphan", "bb", "sh", "-c", kLoop});
  std::string st;
  ASSERT_TRUE(wait_status("orphan", "Up ", 10s, &st)) << st;
  auto j = inspect("orphan");
  int monitor = j["State"]["ConmonPid"].get<int>();
  int pid = j["State"]["Pid"].get<int>();
  ASSERT_GT(monitor, 0);
  ASSERT_EQ(kill(monitor, SIGKILL), 0);
  std::this_thread::sleep_for(300ms);
  // The container itself still runs: ps says so, not a stale or a made-up state.
  if (kill(pid, 0) == 0) {
    EXPECT_EQ(field("orphan", "{{.State.Status}}"), "running");
  } else {
    EXPECT_EQ(field("orphan", "{{.State.Status}}"), "exited");
  }
  EXPECT_TRUE(OneLineError(hutch({"rm", "orphan"}), {"orphan"})) << "a running container needs rm -f";
  ASSERT_OK(hutch({"rm", "-f", "orphan"}));
  EXPECT_TRUE(ps_names(true).empty());
  for (int i = 0; i < 30 && kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(100ms);
  EXPECT_NE(kill(pid, 0), 0) << "rm -f left the container's process running";
}

TEST_F(MonitorTest, CreateStartAttachWait) {
  Result c = hutch({"create", "--name", "later", "bb", "sh", "-c", "echo hello; sleep 1; echo bye; exit 5"});
  ASSERT_OK(c);
  EXPECT_TRUE(is_hex(trim(c.out), 64)) << c;
  EXPECT_EQ(field("later", "{{.State.Status}}"), "created");
  Result ps = hutch({"ps", "-a"});
  EXPECT_TRUE(contains(ps.out, "Created")) << ps;
  Result a = hutch({"start", "-a", "later"});
  EXPECT_CODE(a, 5);
  EXPECT_EQ(a.out, "hello\nbye\n");
  // Started again, detached; wait returns its code.
  ASSERT_OK(hutch({"start", "later"}));
  Result w = hutch({"wait", "later"});
  EXPECT_OK(w);
  EXPECT_EQ(trim(w.out), "5");
  // attach to a running one sees what it writes from then on.
  run_d({"--name", "chatty", "bb", "sh", "-c", "sleep 1; echo one; sleep 1; echo two"});
  Result at = hutch({"attach", "chatty"});
  EXPECT_OK(at);
  EXPECT_TRUE(contains(at.out, "two\n")) << at;
  EXPECT_TRUE(EngineError(hutch({"attach", "chatty"}), {"start it first"}));
}

TEST_F(MonitorTest, KillSendsTheSignal) {
  run_d({"--name", "k", "bb", "sh", "-c", std::string("trap 'exit 11' HUP; ") + kLoop});
  std::this_thread::sleep_for(500ms);
  ASSERT_OK(hutch({"kill", "-s", "HUP", "k"}));
  Result w = hutch({"wait", "k"});
  EXPECT_EQ(trim(w.out), "11") << w;
  EXPECT_TRUE(EngineError(hutch({"kill", "k"}), {"not running"}));
}

TEST_F(MonitorTest, RenameAndTop) {
  run_d({"--name", "old", "bb", "sh", "-c", kLoop});
  ASSERT_OK(hutch({"rename", "old", "new"}));
  EXPECT_EQ(ps_names(false), std::vector<std::string>{"new"});
  Result top = hutch({"top", "new"});
  EXPECT_OK(top);
  EXPECT_TRUE(contains(top.out, "PID")) << top;
  EXPECT_TRUE(contains(top.out, kLoop)) << top;
  EXPECT_TRUE(contains(top.out, "sleep")) << top;
}

TEST_F(MonitorTest, PauseUnpauseAndStats) {
  run_d({"--name", "p", "bb", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done"});
  std::string st;
  ASSERT_TRUE(wait_status("p", "Up ", 10s, &st)) << st;
  ASSERT_OK(hutch({"pause", "p"}));
  EXPECT_TRUE(wait_status("p", "(Paused)", 5s, &st)) << st;
  EXPECT_EQ(field("p", "{{.State.Status}}"), "paused");
  Result top = hutch({"top", "p", "-o", "pid,stat,args"});
  EXPECT_OK(top);
  for (const auto& l : lines(top.out))
    if (contains(l, "sh -c")) EXPECT_TRUE(contains(l, " T")) << "a paused process is stopped: " << l;
  ASSERT_OK(hutch({"unpause", "p"}));
  EXPECT_EQ(field("p", "{{.State.Status}}"), "running");
  EXPECT_TRUE(EngineError(hutch({"unpause", "p"}), {"not paused"}));
  Result stats = hutch({"stats", "--no-stream", "p"});
  EXPECT_OK(stats);
  auto ls = lines(stats.out);
  ASSERT_EQ(ls.size(), 2u) << stats;
  EXPECT_TRUE(contains(ls[0], "CPU %")) << stats;
  EXPECT_TRUE(contains(ls[0], "MEM USAGE / LIMIT")) << stats;
  EXPECT_TRUE(contains(ls[1], "p")) << stats;
  Result f = hutch({"stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "p"});
  EXPECT_OK(f);
  auto cols = split_ws(trim(f.out));
  ASSERT_EQ(cols.size(), 2u) << f;
  EXPECT_EQ(cols[0], "p");
  EXPECT_GE(std::stoi(cols[1]), 1);
}

TEST_F(MonitorTest, FiftyAtOnce) {
  std::vector<std::unique_ptr<Proc>> procs;
  Options o;
  o.timeout = 240s;
  for (int i = 0; i < 50; ++i)
    procs.push_back(std::make_unique<Proc>(cmd({"run", "-d", "--name", "c" + std::to_string(i), "bb", "sh", "-c", kLoop}), o));
  for (auto& p : procs) EXPECT_OK(p->wait());
  auto names = ps_names(false);
  EXPECT_EQ(names.size(), 50u);
  std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), 50u);
  std::vector<std::string> stop = {"stop", "-t", "0"}, rm = {"rm"};
  for (int i = 0; i < 50; ++i) stop.push_back("c" + std::to_string(i)), rm.push_back("c" + std::to_string(i));
  Options lo;
  lo.timeout = 240s;
  EXPECT_OK(hutch(stop, lo));
  EXPECT_OK(hutch(rm, lo));
  EXPECT_TRUE(ps_names(true).empty());
}

TEST_F(MonitorTest, ForegroundRunStillReturnsTheExitCode) {
  EXPECT_CODE(hutch({"run", "--rm", "bb", "sh", "-c", "echo out; echo err >&2; exit 4"}), 4);
  Result r = hutch({"run", "--rm", "bb", "sh", "-c", "echo out; echo err >&2"});
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  Result in = hutch({"run", "--rm", "-i", "bb", "cat"}, Options{std::string("through stdin\n")});
  EXPECT_EQ(in.out, "through stdin\n");
  Result nf = hutch({"run", "--rm", "bb", "nosuchcmd"});
  EXPECT_CODE(nf, 127);
  EXPECT_TRUE(ps_names(true).empty());
}

// A real terminal: tmux runs `hutch run -it`, types into it, resizes it, detaches and attaches.
class TerminalTest : public MonitorTest {
 protected:
  void SetUp() override {
    MonitorTest::SetUp();
    tmux_ = std::make_unique<Tmux>(path("tmux.sock"));
  }
  Result tmux(std::vector<std::string> args) const { return tmux_->run(std::move(args)); }
  static std::string shell_line(const std::vector<std::string>& argv) { return Tmux::shell_line(argv); }
  bool pane_shows(const std::string& session, const std::string& needle, std::string* pane) {
    return tmux_->pane_shows(session, needle, pane);
  }
  void TearDown() override {
    tmux_.reset();
    MonitorTest::TearDown();
  }
  std::unique_ptr<Tmux> tmux_;
};

TEST_F(TerminalTest, InteractiveShellResizeDetachAttach) {
  if (!Tmux::available()) {
    HUTCH_SKIP_OUTSIDE_CI("tmux is not installed (scripts/install-deps.sh installs it)");
  }
  std::string line = shell_line(cmd({"run", "-it", "--name", "tty", "bb", "sh"}));
  ASSERT_EQ(tmux({"new-session", "-d", "-s", "one", "-x", "100", "-y", "30", line}).code, 0);
  std::string pane;
  tmux({"send-keys", "-t", "one", "echo in-the-$((6*7))-box", "Enter"});
  ASSERT_TRUE(pane_shows("one", "in-the-42-box", &pane)) << pane;
  tmux({"send-keys", "-t", "one", "tty; stty size", "Enter"});
  ASSERT_TRUE(pane_shows("one", "30 100", &pane)) << "the container's terminal has the window's size" << pane;
  EXPECT_TRUE(contains(pane, "/dev/pts/0")) << pane;
  ASSERT_EQ(tmux({"resize-window", "-t", "one", "-x", "120", "-y", "40"}).code, 0);
  std::this_thread::sleep_for(300ms);
  tmux({"send-keys", "-t", "one", "stty size", "Enter"});
  EXPECT_TRUE(pane_shows("one", "40 120", &pane)) << "SIGWINCH reaches the container" << pane;
  // ctrl-p ctrl-q: the client goes, the container stays.
  tmux({"send-keys", "-t", "one", "C-p", "C-q"});
  bool gone = false;
  for (int i = 0; i < 50 && !gone; ++i) {
    gone = tmux({"has-session", "-t", "one"}).code != 0;
    if (!gone) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(gone) << "hutch run -it did not end on ctrl-p ctrl-q";
  EXPECT_EQ(field("tty", "{{.State.Status}}"), "running");
  // attach again, in another terminal.
  ASSERT_EQ(tmux({"new-session", "-d", "-s", "two", "-x", "90", "-y", "25", shell_line(cmd({"attach", "tty"}))}).code, 0);
  std::this_thread::sleep_for(300ms);
  tmux({"send-keys", "-t", "two", "echo back-$((40+2)); stty size", "Enter"});
  EXPECT_TRUE(pane_shows("two", "back-42", &pane)) << pane;
  EXPECT_TRUE(pane_shows("two", "25 90", &pane)) << pane;
  tmux({"send-keys", "-t", "two", "exit 3", "Enter"});
  Result w = hutch({"wait", "tty"});
  EXPECT_EQ(trim(w.out), "3") << w;
}

}  // namespace
}  // namespace hit
