// Black-box harness: runs the real `hutch` binary as a subprocess, one fresh store per test.
//
// Environment read by the suite:
//   HUTCH_BIN                   the hutch binary (default: `hutch` found on PATH)
//   HUTCH_TEST_MODE             root | ranged | norange (default: guessed from uid and /etc/subuid;
//                               when set, it is checked against the host and a mismatch fails)
//   HUTCH_TEST_FIXTURE_PLUGINS  folder of the fixture plugins (libhutch-storage-badabi.so, ...)
//   BUSYBOX                     static busybox to build the image from (default /bin/busybox)
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace hit {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

enum class Mode { kRoot, kRanged, kNoRange };

struct Range {
  unsigned long start = 0;
  unsigned long count = 0;
};

// What one finished process gave.
struct Result {
  std::vector<std::string> argv;
  int code = -1;           // exit code, or 128+N when killed by signal N
  std::string out;         // stdout
  std::string err;         // stderr
  bool timed_out = false;  // killed by the harness
  std::string spawn_error; // exec failed
};
std::ostream& operator<<(std::ostream& os, const Result& r);

struct Options {
  std::optional<std::string> input;                          // stdin bytes; nullopt: /dev/null
  std::map<std::string, std::optional<std::string>> env;     // set (value) or unset (nullopt)
  std::chrono::milliseconds timeout = 60s;
  std::string cwd;                                           // empty: the test's temp dir or /tmp
};

// A started process; stdout/stderr are collected while waiting. The destructor kills
// its process group if it still runs.
class Proc {
 public:
  Proc(std::vector<std::string> argv, Options opts);
  ~Proc();
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;

  pid_t pid() const { return pid_; }
  // Collects output until stdout contains `needle` (true), the process ends or the time passes.
  bool wait_for_stdout(const std::string& needle, std::chrono::milliseconds timeout);
  void signal(int sig);
  // Waits for the end (or the timeout of Options, from start), returns everything.
  Result wait();
  const std::string& out_so_far() const { return res_.out; }

 private:
  // One round of I/O; returns false once the process has ended and its pipes are drained.
  bool pump(int max_wait_ms);
  void kill_all();

  Result res_;
  Options opts_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int in_fd_ = -1, out_fd_ = -1, err_fd_ = -1;
  size_t in_off_ = 0;
  bool exited_ = false;
  bool done_ = false;
  std::chrono::steady_clock::time_point start_, exit_time_;
};

Result run(std::vector<std::string> argv, Options opts = {});

// ---- the suite's shared facts -------------------------------------------------------------
struct Suite {
  std::string error;           // non-empty: the suite cannot run, every test fails with it
  std::string hutch;           // absolute path of the binary
  Mode mode = Mode::kRoot;
  std::string mode_name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;            // login name of the caller
  std::vector<Range> subuid;   // the caller's ranges (ranged mode)
  std::vector<Range> subgid;
  std::string fixtures;        // canonical HUTCH_TEST_FIXTURE_PLUGINS, may be empty
  std::string dir;             // the suite's temp dir
  std::string tar;             // busybox rootfs, plain tar
  std::string tar_sha256;      // "sha256:<hex>" of it: the layer's diff ID
  std::string tar_gz, tar_xz, tar_zst;
  std::uintmax_t busybox_size = 0;
  std::set<pid_t> foreign_pids;  // processes of hutch already running when the suite began
};
const Suite& suite();  // built on first use
void suite_cleanup();

// ---- small helpers -------------------------------------------------------------------------
std::vector<std::string> lines(const std::string& text);  // non-empty lines, '\r' stripped
std::vector<std::string> raw_lines(const std::string& text);  // every line, empty ones too, '\r' stripped
std::string trim(const std::string& s);
std::string lower(std::string s);
bool icontains(const std::string& hay, const std::string& needle);
bool contains(const std::string& hay, const std::string& needle);
bool is_hex(const std::string& s, size_t len);
// A full ID as printed by `images -q --no-trunc` or `rmi`'s Deleted line: <64 hex> or sha256:<64 hex>.
inline std::string strip_sha(const std::string& s) { return s.rfind("sha256:", 0) == 0 ? s.substr(7) : s; }
std::vector<std::string> split_ws(const std::string& s);
std::vector<std::string> split_columns(const std::string& line);  // split at runs of >= 2 spaces
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);
std::string sha256_file(const std::string& path);  // "sha256:<hex>" via sha256sum
// The ID map lines expected in /proc/self/{uid,gid}_map inside hutch's namespace for the mode.
std::vector<std::vector<unsigned long>> expected_id_map(bool gid);
std::vector<std::vector<unsigned long>> parse_id_map(const std::string& text);
std::string ns_link(const std::string& ns);  // readlink /proc/self/ns/<ns> of the test itself
std::vector<std::string> net_devices(const std::string& proc_net_dev_text);
// pids of processes of our uid (other than us) that look like hutch's: cmdline mentions
// hutch-pause, or the executable is the hutch binary.
std::vector<std::string> stray_hutch_processes();
// pids of the processes of our uid (other than us) whose comm is `comm` (hutch-slirp, ...).
std::vector<pid_t> processes_with_comm(const std::string& comm);
// pid of a process of our uid whose argv is exactly `argv`, or -1.
pid_t find_process(const std::vector<std::string>& argv);

// Checks that `r` failed as bad input: exit 125, exactly one stderr line, starting
// with "Error: ", containing every needle (case-insensitive).
::testing::AssertionResult OneLineError(const Result& r, const std::vector<std::string>& needles = {});
// Exit 125, a stderr line starting with "Error: ", stderr containing every needle (case-insensitive).
::testing::AssertionResult EngineError(const Result& r, const std::vector<std::string>& needles = {});

#define EXPECT_CODE(res, expected) EXPECT_EQ((res).code, (expected)) << (res)
#define ASSERT_CODE(res, expected) ASSERT_EQ((res).code, (expected)) << (res)
#define ASSERT_OK(res) ASSERT_CODE(res, 0)
#define EXPECT_OK(res) EXPECT_CODE(res, 0)

// A tmux server of the test's own: real terminals for `run -it`, attach, progress displays.
class Tmux {
 public:
  explicit Tmux(std::string socket) : socket_(std::move(socket)) {}
  ~Tmux() { run({"kill-server"}); }
  Tmux(const Tmux&) = delete;
  Tmux& operator=(const Tmux&) = delete;
  static bool available();
  // tmux -S SOCKET -f /dev/null ARGS...
  Result run(std::vector<std::string> args) const;
  // Waits (up to `tries` tenths of a second) until the pane of `session` shows `needle`; its text in *pane.
  bool pane_shows(const std::string& session, const std::string& needle, std::string* pane, int tries = 100) const;
  // argv as one shell line (each word single-quoted), for new-session.
  static std::string shell_line(const std::vector<std::string>& argv);

 private:
  std::string socket_;
};

// ---- the fixture -----------------------------------------------------------------------------
// A fresh temp dir D per test, hutch run with --root D/root --runroot D/run. SetUp runs
// `unshare true` and `images -q` so that the first-command warning of single-ID mode is out of
// the way; FreshTest skips that.
class HutchTest : public ::testing::Test {
 protected:
  explicit HutchTest(bool warm_up = true) : warm_up_(warm_up) {}
  void SetUp() override;
  void TearDown() override;

  // hutch --root ROOT --runroot RUN ARGS...
  std::vector<std::string> cmd(const std::vector<std::string>& args) const;
  Result hutch(const std::vector<std::string>& args, Options opts = {}) const;
  // hutch ARGS... with no --root/--runroot added
  Result hutch_raw(const std::vector<std::string>& args, Options opts = {}) const;
  // Imports the busybox tarball (plain tar) as NAME, returns the 64-hex ID (fails the test on error).
  std::string import_busybox(const std::string& name = "bb", const std::string& tarball = "");
  nlohmann::json inspect_one(const std::string& image);
  std::string path(const std::string& rel) const { return dir_ + "/" + rel; }
  // regular files (non-directories) under ROOT/blobs
  std::vector<std::string> blob_files() const;

  std::string dir_, root_, run_;
  bool warm_up_;
};

// A HutchTest whose store holds the busybox image as "bb" (its ID in id_).
class ImageTest : public HutchTest {
 protected:
  void SetUp() override {
    HutchTest::SetUp();
    if (HasFatalFailure()) return;
    id_ = import_busybox("bb");
    ASSERT_FALSE(id_.empty());
  }
  std::string id_;
};

class FreshTest : public HutchTest {
 protected:
  FreshTest() : HutchTest(false) {}
};

}  // namespace hit
