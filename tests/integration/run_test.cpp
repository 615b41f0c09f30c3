// hutch run: exit codes, stdio, environment, user, workdir, hostname, entrypoint.
#include <regex>
#include <set>

#include "harness.hpp"

namespace hit {
namespace {

class RunTest : public ImageTest {
 protected:
  // hutch run --rm [opts...] bb CMD...
  Result run_bb(const std::vector<std::string>& opts, const std::vector<std::string>& command, Options o = {}) {
    std::vector<std::string> a = {"run", "--rm"};
    a.insert(a.end(), opts.begin(), opts.end());
    a.push_back("bb");
    a.insert(a.end(), command.begin(), command.end());
    return hutch(a, std::move(o));
  }
};

std::set<std::string> env_lines(const std::string& out) {
  auto ls = lines(out);
  return {ls.begin(), ls.end()};
}

const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

TEST_F(RunTest, EchoAndExitZero) {
  Result r = run_bb({}, {"echo", "hello", "world"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "hello world\n") << r;
  EXPECT_EQ(r.err, "") << r;
}

TEST_F(RunTest, StdoutAndStderrStaySeparate) {
  Result r = run_bb({}, {"sh", "-c", "echo to-out; echo to-err >&2; echo more-out"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "to-out\nmore-out\n") << r;
  EXPECT_EQ(r.err, "to-err\n") << r;
}

TEST_F(RunTest, LargeOutputArrivesWhole) {
  Result r = run_bb({}, {"seq", "1", "200000"});
  ASSERT_OK(r);
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 200000u) << "lines lost";
  EXPECT_EQ(ls.front(), "1");
  EXPECT_EQ(ls.back(), "200000");
}

TEST_F(RunTest, ExitCodeOfTheContainer) {
  EXPECT_CODE(run_bb({}, {"sh", "-c", "exit 3"}), 3);
  EXPECT_CODE(run_bb({}, {"false"}), 1);
  EXPECT_CODE(run_bb({}, {"sh", "-c", "exit 255"}), 255);
}

TEST_F(RunTest, MissingCommandIs127) {
  Result r = run_bb({}, {"/bin/no-such-command"});
  EXPECT_CODE(r, 127);
  EXPECT_FALSE(trim(r.err).empty()) << "say why" << r;
  EXPECT_CODE(run_bb({}, {"no-such-command-on-path"}), 127);
}

TEST_F(RunTest, NotExecutableIs126) {
  Result r = run_bb({}, {"/bin/notexec"});
  EXPECT_CODE(r, 126);
  EXPECT_FALSE(contains(r.out, "must not run")) << r;
  EXPECT_CODE(run_bb({}, {"/tmp"}), 126) << "a directory cannot be executed";
}

TEST_F(RunTest, NoCommandAnywhereIsAnEngineError) {
  // The imported image has neither Cmd nor Entrypoint.
  EXPECT_TRUE(EngineError(hutch({"run", "--rm", "bb"})));
}

TEST_F(RunTest, UnknownImage) {
  EXPECT_TRUE(EngineError(hutch({"run", "--rm", "nosuchimage", "true"})));
  EXPECT_EQ(hutch({"ps", "-a", "-q"}).out, "");
}

TEST_F(RunTest, ImageByIdAndFullName) {
  EXPECT_EQ(run_bb({}, {"true"}).code, 0);
  Result a = hutch({"run", "--rm", id_.substr(0, 12), "echo", "by-id"});
  EXPECT_OK(a);
  EXPECT_EQ(a.out, "by-id\n");
  Result b = hutch({"run", "--rm", "localhost/bb:latest", "echo", "by-name"});
  EXPECT_OK(b);
  EXPECT_EQ(b.out, "by-name\n");
}

TEST_F(RunTest, DefaultUserIsRoot) {
  Result r = run_bb({}, {"sh", "-c", "id -u; id -g"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "0\n0\n") << r;
}

TEST_F(RunTest, DefaultEnvironment) {
  Result r = run_bb({}, {"sh", "-c", "env; echo hostname=$(hostname)"});
  ASSERT_OK(r);
  auto env = env_lines(r.out);
  EXPECT_TRUE(env.count(kDefaultPath)) << r;
  EXPECT_TRUE(env.count("HOME=/root")) << "HOME comes from /etc/passwd" << r;
  std::string host;
  for (const auto& l : env)
    if (l.rfind("hostname=", 0) == 0) host = l.substr(9);
  EXPECT_TRUE(env.count("HOSTNAME=" + host)) << r;
}

TEST_F(RunTest, HostEnvironmentDoesNotLeak) {
  Options o;
  o.env["HUTCH_IT_LEAK_CHECK"] = "leaked";
  Result r = run_bb({}, {"env"}, o);
  ASSERT_OK(r);
  EXPECT_FALSE(contains(r.out, "HUTCH_IT_LEAK_CHECK")) << r;
  EXPECT_FALSE(contains(r.out, "_HUTCH_")) << "hutch's private variables must not reach the container" << r;
}

TEST_F(RunTest, EnvOptions) {
  Result r = run_bb({"-e", "FOO=bar", "-e", "EQ=a=b=c", "-e", "SPACE=two words", "-e", "HOME=/custom"}, {"env"});
  ASSERT_OK(r);
  auto env = env_lines(r.out);
  EXPECT_TRUE(env.count("FOO=bar")) << r;
  EXPECT_TRUE(env.count("EQ=a=b=c")) << r;
  EXPECT_TRUE(env.count("SPACE=two words")) << r;
  EXPECT_TRUE(env.count("HOME=/custom")) << "-e overrides the defaults" << r;
  EXPECT_FALSE(env.count("HOME=/root")) << r;
  EXPECT_TRUE(env.count(kDefaultPath)) << r;
}

TEST_F(RunTest, EnvFile) {
  write_file(path("one.env"), "# a comment\nFROMFILE=one\n\nSPACED=a b c\n");
  write_file(path("two.env"), "SECOND=2\n");
  Result r = run_bb({"--env-file", path("one.env"), "--env-file", path("two.env")}, {"env"});
  ASSERT_OK(r);
  auto env = env_lines(r.out);
  EXPECT_TRUE(env.count("FROMFILE=one")) << r;
  EXPECT_TRUE(env.count("SPACED=a b c")) << r;
  EXPECT_TRUE(env.count("SECOND=2")) << r;
  EXPECT_FALSE(contains(r.out, "comment")) << r;
}

TEST_F(RunTest, MissingEnvFileIsAnError) {
  EXPECT_TRUE(OneLineError(run_bb({"--env-file", path("nope.env")}, {"true"})));
}

TEST_F(RunTest, WorkdirIsCreated) {
  Result r = run_bb({"-w", "/new/deeper/dir"}, {"sh", "-c", "pwd; test -d /new/deeper/dir && echo isdir"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "/new/deeper/dir\nisdir\n") << r;
  Result e = run_bb({"-w", "/tmp"}, {"pwd"});
  EXPECT_OK(e);
  EXPECT_EQ(e.out, "/tmp\n") << e;
}

TEST_F(RunTest, DefaultWorkdirIsRoot) {
  Result r = run_bb({}, {"pwd"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "/\n") << r;
}

TEST_F(RunTest, UserRootByName) {
  Result r = run_bb({"-u", "root"}, {"sh", "-c", "id -u; id -g; echo $HOME"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "0\n0\n/root\n") << r;
  Result z = run_bb({"-u", "0:0"}, {"id", "-u"});
  EXPECT_OK(z);
  EXPECT_EQ(z.out, "0\n") << z;
}

// In single-ID mode only uid/gid 0 exist in the namespace: any other user cannot be set up.
TEST_F(RunTest, UserByName) {
  Result r = run_bb({"-u", "app"}, {"sh", "-c", "id -u; id -g; echo $HOME"});
  if (suite().mode == Mode::kNoRange) {
    EXPECT_TRUE(EngineError(r)) << "uid 1000 is not mapped in single-ID mode: exit 125 with an Error: line";
  } else {
    EXPECT_OK(r);
    EXPECT_EQ(r.out, "1000\n1000\n/home/app\n") << r;
  }
}

TEST_F(RunTest, UserByNumbers) {
  Result r = run_bb({"-u", "1234:1234"}, {"sh", "-c", "id -u; id -g; echo $HOME"});
  if (suite().mode == Mode::kNoRange) {
    EXPECT_TRUE(EngineError(r)) << "uid 1234 is not mapped in single-ID mode: exit 125 with an Error: line";
  } else {
    EXPECT_OK(r);
    EXPECT_EQ(r.out, "1234\n1234\n/\n") << "a uid not in /etc/passwd gets HOME=/" << r;
  }
}

TEST_F(RunTest, UnknownUserNameIsAnError) {
  Result r = run_bb({"-u", "nosuchuser"}, {"true"});
  EXPECT_NE(r.code, 0) << r;
  EXPECT_TRUE(icontains(r.err, "nosuchuser")) << r;
}

TEST_F(RunTest, Hostname) {
  Result r = run_bb({"--hostname", "box.example"}, {"sh", "-c", "hostname; echo $HOSTNAME"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "box.example\nbox.example\n") << r;
}

TEST_F(RunTest, DefaultHostnameIsTheContainerIdPrefix) {
  Result r = hutch({"run", "bb", "hostname"});  // kept, to read its ID
  ASSERT_OK(r);
  std::string host = trim(r.out);
  ASSERT_TRUE(is_hex(host, 12)) << r;
  Result ps = hutch({"ps", "-a", "-q"});
  ASSERT_OK(ps);
  auto ids = lines(ps.out);
  ASSERT_EQ(ids.size(), 1u) << ps;
  EXPECT_EQ(ids[0].substr(0, 12), host) << ps;
}

TEST_F(RunTest, Entrypoint) {
  Result r = run_bb({"--entrypoint", "echo"}, {"from", "entrypoint"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "from entrypoint\n") << r;
  Result s = run_bb({"--entrypoint", "/bin/sh"}, {"-c", "echo via-sh; exit 5"});
  EXPECT_CODE(s, 5);
  EXPECT_EQ(s.out, "via-sh\n") << s;
  Result alone = run_bb({"--entrypoint", "pwd"}, {});
  EXPECT_OK(alone);
  EXPECT_EQ(alone.out, "/\n") << alone;
}

TEST_F(RunTest, StdinWithInteractive) {
  Options o;
  o.input = "hi\n";
  Result r = run_bb({"-i"}, {"cat"}, o);
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "hi\n") << r;
}

TEST_F(RunTest, LargeStdinWithInteractive) {
  Options o;
  o.input = std::string(3 << 20, 'x');
  Result r = run_bb({"-i"}, {"wc", "-c"}, o);
  EXPECT_OK(r);
  EXPECT_EQ(trim(r.out), std::to_string(3 << 20)) << r;
}

TEST_F(RunTest, NoStdinWithoutInteractive) {
  Options o;
  o.input = "this must not reach the container\n";
  o.timeout = 60s;
  Result r = run_bb({}, {"cat"}, o);
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "") << "stdin is /dev/null without -i" << r;
}

TEST_F(RunTest, TtyGivesATerminal) {
  Result r = run_bb({"-t"}, {"sh", "-c", "if [ -t 1 ]; then echo tty-yes; else echo tty-no; fi"});
  EXPECT_OK(r);
  EXPECT_TRUE(contains(r.out, "tty-yes")) << r;
  Result n = run_bb({}, {"sh", "-c", "if [ -t 1 ]; then echo tty-yes; else echo tty-no; fi"});
  EXPECT_OK(n);
  EXPECT_EQ(n.out, "tty-no\n") << n;
}

TEST_F(RunTest, PidOneIsTheCommand) {
  Result r = run_bb({}, {"ps", "-o", "pid,comm"});
  ASSERT_OK(r);
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 2u) << "the header and one process: no host process is visible" << r;
  EXPECT_EQ(split_ws(ls[1]), (std::vector<std::string>{"1", "ps"})) << r;
  Result sh = run_bb({}, {"sh", "-c", "echo $$"});
  EXPECT_OK(sh);
  EXPECT_EQ(sh.out, "1\n") << sh;
}

TEST_F(RunTest, ContainerRootfsIsWritableAndPrivate) {
  Result a = hutch({"run", "--name", "first", "bb", "sh", "-c", "echo data > /tmp/f && cat /tmp/f"});
  EXPECT_OK(a);
  EXPECT_EQ(a.out, "data\n") << a;
  Result b = run_bb({}, {"sh", "-c", "test -e /tmp/f && echo leaked || echo clean"});
  EXPECT_OK(b);
  EXPECT_EQ(b.out, "clean\n") << "each container gets its own copy of the image" << b;
}

TEST_F(RunTest, ProcIsMountedForThePidNamespace) {
  Result r = run_bb({}, {"sh", "-c", "readlink /proc/self; ls /proc | grep -c '^[0-9]'"});
  ASSERT_OK(r);
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 2u) << r;
  int pid = std::atoi(ls[0].c_str());
  EXPECT_GT(pid, 1) << r;
  EXPECT_LT(pid, 10) << "a fresh PID namespace numbers from 1" << r;
  EXPECT_LT(std::atoi(ls[1].c_str()), 10) << "only the container's processes are in /proc" << r;
}

TEST_F(RunTest, HelpAndUsageErrors) {
  Result h = hutch({"run", "--help"});
  EXPECT_OK(h);
  EXPECT_TRUE(icontains(h.out, "usage")) << h;
  // A usage error: exit 125, an "Error: " line (a --help hint may follow).
  EXPECT_TRUE(EngineError(hutch({"run", "--no-such-flag", "bb", "true"}), {"no-such-flag"}));
  EXPECT_TRUE(EngineError(hutch({"run"})));
  EXPECT_EQ(hutch({"ps", "-a", "-q"}).out, "");
}

}  // namespace
}  // namespace hit
