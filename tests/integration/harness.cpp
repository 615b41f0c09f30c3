#include "harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "rootfs_script.hpp"

extern char** environ;

namespace hit {

namespace {

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

void set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string quote(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t\n'\"\\$`*?[]{}()<>|&;~#") == std::string::npos) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string clip(const std::string& s, size_t max = 4000) {
  if (s.size() <= max) return s;
  return s.substr(0, max / 2) + "\n[... " + std::to_string(s.size() - max) + " bytes cut ...]\n" +
         s.substr(s.size() - max / 2);
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Result& r) {
  os << "\n--- command: ";
  for (const auto& a : r.argv) os << quote(a) << ' ';
  os << "\n--- exit code: " << r.code;
  if (r.timed_out) os << " (TIMED OUT, killed by the test)";
  if (!r.spawn_error.empty()) os << " (could not start: " << r.spawn_error << ")";
  os << "\n--- stdout (" << r.out.size() << " bytes):\n" << clip(r.out) << "\n--- stderr (" << r.err.size()
     << " bytes):\n" << clip(r.err) << "\n---";
  return os;
}

// ---- Proc -----------------------------------------------------------------------------------

Proc::Proc(std::vector<std::string> argv, Options opts) : opts_(std::move(opts)) {
  res_.argv = argv;
  start_ = Clock::now();

  // Everything the child needs is built before fork.
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : opts_.env) {
    if (v) env[k] = *v;
    else env.erase(k);
  }
  std::vector<std::string> env_strs;
  for (const auto& [k, v] : env) env_strs.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strs) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::string cwd = opts_.cwd.empty() ? std::string("/tmp") : opts_.cwd;

  int in_p[2] = {-1, -1}, out_p[2], err_p[2], exec_p[2];
  if (opts_.input && pipe2(in_p, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0 || pipe2(exec_p, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe");

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + strerror(errno));
  if (pid_ == 0) {
    setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    int in_fd = opts_.input ? in_p[0] : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_fd < 0 || dup2(in_fd, 0) < 0 || dup2(out_p[1], 1) < 0 || dup2(err_p[1], 2) < 0) {
      int e = errno;
      (void)!::write(exec_p[1], &e, sizeof e);
      _exit(127);
    }
    // Nothing but 0, 1, 2 crosses exec (the exec-error pipe is close-on-exec).
    if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) != 0) {
      for (int fd = 3; fd < 4096; ++fd)
        if (fd != exec_p[1]) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    if (chdir(cwd.c_str()) != 0) {
      int e = errno;
      (void)!::write(exec_p[1], &e, sizeof e);
      _exit(127);
    }
    execvpe(args[0], args.data(), envp.data());
    int e = errno;
    (void)!::write(exec_p[1], &e, sizeof e);
    _exit(127);
  }
  if (in_p[0] >= 0) ::close(in_p[0]);
  ::close(out_p[1]);
  ::close(err_p[1]);
  ::close(exec_p[1]);
  int e = 0;
  ssize_t n;
  do {
    n = ::read(exec_p[0], &e, sizeof e);
  } while (n < 0 && errno == EINTR);
  ::close(exec_p[0]);
  in_fd_ = in_p[1];
  out_fd_ = out_p[0];
  err_fd_ = err_p[0];
  if (n == static_cast<ssize_t>(sizeof e)) {
    res_.spawn_error = std::string("exec ") + argv[0] + ": " + strerror(e);
  }
  if (in_fd_ >= 0) set_nonblock(in_fd_);
  set_nonblock(out_fd_);
  set_nonblock(err_fd_);
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
}

Proc::~Proc() {
  if (!exited_ && pid_ > 0) {
    kill_all();
    int st;
    while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    exited_ = true;
  }
  close_fd(in_fd_);
  close_fd(out_fd_);
  close_fd(err_fd_);
  close_fd(pidfd_);
}

void Proc::kill_all() {
  if (exited_ || pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
}

void Proc::signal(int sig) {
  if (!exited_ && pid_ > 0) ::kill(pid_, sig);
}

bool Proc::pump(int max_wait_ms) {
  if (done_) return false;
  pollfd fds[4];
  int n = 0;
  int i_in = -1, i_out = -1, i_err = -1;
  if (in_fd_ >= 0) {
    i_in = n;
    fds[n++] = {in_fd_, POLLOUT, 0};
  }
  if (out_fd_ >= 0) {
    i_out = n;
    fds[n++] = {out_fd_, POLLIN, 0};
  }
  if (err_fd_ >= 0) {
    i_err = n;
    fds[n++] = {err_fd_, POLLIN, 0};
  }
  if (!exited_ && pidfd_ >= 0) fds[n++] = {pidfd_, POLLIN, 0};
  // Without a pidfd, exit is noticed by polling waitpid: keep the wait short.
  int wait_ms = (pidfd_ < 0 && !exited_) ? std::min(max_wait_ms, 10) : max_wait_ms;
  if (exited_) wait_ms = std::min(wait_ms, 20);
  int pr = n > 0 ? ::poll(fds, n, wait_ms) : 0;
  if (pr < 0 && errno != EINTR) throw std::runtime_error("poll");

  auto drain = [](int& fd, std::string& into) {
    char buf[65536];
    for (;;) {
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r > 0) {
        into.append(buf, static_cast<size_t>(r));
        continue;
      }
      if (r == 0) close_fd(fd);
      else if (errno == EINTR) continue;
      else if (errno != EAGAIN) close_fd(fd);
      return;
    }
  };
  if (pr > 0) {
    if (i_out >= 0 && fds[i_out].revents) drain(out_fd_, res_.out);
    if (i_err >= 0 && fds[i_err].revents) drain(err_fd_, res_.err);
    if (i_in >= 0 && fds[i_in].revents) {
      if (fds[i_in].revents & (POLLERR | POLLHUP)) {
        close_fd(in_fd_);
      } else {
        const std::string& data = *opts_.input;
        while (in_off_ < data.size()) {
          ssize_t w = ::write(in_fd_, data.data() + in_off_, std::min<size_t>(data.size() - in_off_, 65536));
          if (w > 0) {
            in_off_ += static_cast<size_t>(w);
            continue;
          }
          if (w < 0 && errno == EINTR) continue;
          if (w < 0 && errno == EAGAIN) break;
          close_fd(in_fd_);  // EPIPE and the like: the reader is gone
          break;
        }
        if (in_fd_ >= 0 && in_off_ >= data.size()) close_fd(in_fd_);
      }
    }
  }
  if (!exited_) {
    int st = 0;
    pid_t w = waitpid(pid_, &st, WNOHANG);
    if (w == pid_) {
      exited_ = true;
      exit_time_ = Clock::now();
      if (WIFEXITED(st)) res_.code = WEXITSTATUS(st);
      else if (WIFSIGNALED(st)) res_.code = 128 + WTERMSIG(st);
      close_fd(pidfd_);
    }
  }
  if (exited_) {
    close_fd(in_fd_);
    // A process left behind that inherited our pipes must not hold us: 500 ms of grace.
    if ((out_fd_ < 0 && err_fd_ < 0) || Clock::now() - exit_time_ > 500ms) {
      if (out_fd_ >= 0) drain(out_fd_, res_.out);
      if (err_fd_ >= 0) drain(err_fd_, res_.err);
      close_fd(out_fd_);
      close_fd(err_fd_);
      done_ = true;
    }
  }
  return !done_;
}

bool Proc::wait_for_stdout(const std::string& needle, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (res_.out.find(needle) == std::string::npos) {
    if (done_ || Clock::now() >= deadline) return false;
    pump(std::max(1, std::min(50, ms_left(deadline))));
  }
  return true;
}

Result Proc::wait() {
  auto deadline = start_ + opts_.timeout;
  while (!done_) {
    if (Clock::now() >= deadline && !exited_) {
      res_.timed_out = true;
      kill_all();
      int st;
      while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
      exited_ = true;
      exit_time_ = Clock::now() - 1s;  // drain what is there, then stop
      res_.code = -1;
      close_fd(pidfd_);
    }
    pump(std::max(1, std::min(50, ms_left(deadline))));
  }
  if (!res_.spawn_error.empty() && res_.code == -1) res_.code = 127;
  return res_;
}

Result run(std::vector<std::string> argv, Options opts) {
  Proc p(std::move(argv), std::move(opts));
  return p.wait();
}

bool Tmux::available() { return hit::run({"tmux", "-V"}).code == 0; }

Result Tmux::run(std::vector<std::string> args) const {
  args.insert(args.begin(), {"tmux", "-S", socket_, "-f", "/dev/null"});
  return hit::run(args);
}

bool Tmux::pane_shows(const std::string& session, const std::string& needle, std::string* pane, int tries) const {
  for (int i = 0; i < tries; ++i) {
    Result r = run({"capture-pane", "-p", "-t", session});
    *pane = r.out;
    if (contains(r.out, needle)) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

std::string Tmux::shell_line(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + ("'" + a + "'");
  return s;
}

// ---- helpers --------------------------------------------------------------------------------

std::vector<std::string> raw_lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    out.push_back(l);
  }
  return out;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (!trim(l).empty()) out.push_back(l);
  }
  return out;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool icontains(const std::string& hay, const std::string& needle) {
  return lower(hay).find(lower(needle)) != std::string::npos;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

bool is_hex(const std::string& s, size_t len) {
  if (s.size() != len) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::vector<std::string> split_columns(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  size_t i = 0;
  std::string l = trim(line);
  while (i < l.size()) {
    if (l[i] == ' ' && i + 1 < l.size() && l[i + 1] == ' ') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      while (i < l.size() && l[i] == ' ') ++i;
      continue;
    }
    if (l[i] == '\t') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      ++i;
      continue;
    }
    cur += l[i++];
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string sha256_file(const std::string& path) {
  Result r = run({"sha256sum", path});
  auto w = split_ws(r.out);
  if (r.code != 0 || w.empty() || !is_hex(w[0], 64)) return "";
  return "sha256:" + w[0];
}

namespace {

std::vector<Range> parse_subid(const std::string& file, const std::string& user, uid_t uid) {
  std::vector<Range> out;
  std::istringstream in(read_file(file));
  std::string l;
  while (std::getline(in, l)) {
    l = trim(l);
    if (l.empty() || l[0] == '#') continue;
    std::vector<std::string> f;
    std::string part;
    std::istringstream ls(l);
    while (std::getline(ls, part, ':')) f.push_back(part);
    if (f.size() != 3) continue;
    if (f[0] != user && f[0] != std::to_string(uid)) continue;
    try {
      Range r{std::stoul(f[1]), std::stoul(f[2])};
      bool dup = std::any_of(out.begin(), out.end(), [&](const Range& o) { return o.start == r.start && o.count == r.count; });
      if (!dup && r.count > 0) out.push_back(r);
    } catch (...) {
    }
  }
  return out;
}

std::vector<std::pair<pid_t, std::string>> hutch_like_processes(const std::string& bin);

Suite* g_suite = nullptr;
std::once_flag g_once;

std::string find_in_path(const std::string& name) {
  const char* p = getenv("PATH");
  std::istringstream in(p ? p : "/usr/local/bin:/usr/bin:/bin");
  std::string d;
  while (std::getline(in, d, ':')) {
    std::string c = (d.empty() ? "." : d) + "/" + name;
    if (access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

void build_suite(Suite& s) {
  ::signal(SIGPIPE, SIG_IGN);
  s.uid = getuid();
  s.gid = getgid();
  if (passwd* pw = getpwuid(s.uid)) s.user = pw->pw_name;
  s.subuid = parse_subid("/etc/subuid", s.user, s.uid);
  s.subgid = parse_subid("/etc/subgid", s.user, s.uid);

  const char* bin = getenv("HUTCH_BIN");
  std::string b = bin && *bin ? bin : find_in_path("hutch");
  if (b.empty()) {
    s.error = "HUTCH_BIN is not set and no `hutch` is on PATH";
    return;
  }
  std::error_code ec;
  fs::path canon = fs::canonical(b, ec);
  if (ec || access(canon.c_str(), X_OK) != 0) {
    s.error = "HUTCH_BIN=" + b + " is not an executable file";
    return;
  }
  s.hutch = canon.string();
  // Processes of hutch that were there before the suite began are not the suite's doing.
  for (const auto& [pid, desc] : hutch_like_processes(s.hutch)) {
    s.foreign_pids.insert(pid);
    fprintf(stderr, "note: ignoring a process of hutch that predates the suite: %s\n", desc.c_str());
  }

  Mode detected = s.uid == 0 ? Mode::kRoot : (!s.subuid.empty() && !s.subgid.empty() ? Mode::kRanged : Mode::kNoRange);
  const char* m = getenv("HUTCH_TEST_MODE");
  std::string want = m && *m ? m : "";
  static const std::map<std::string, Mode> names = {{"root", Mode::kRoot}, {"ranged", Mode::kRanged}, {"norange", Mode::kNoRange}};
  std::string detected_name;
  for (const auto& [k, v] : names)
    if (v == detected) detected_name = k;
  if (!want.empty()) {
    auto it = names.find(want);
    if (it == names.end()) {
      s.error = "HUTCH_TEST_MODE=" + want + " is none of root, ranged, norange";
      return;
    }
    if (it->second != detected) {
      s.error = "HUTCH_TEST_MODE=" + want + " but this process (uid " + std::to_string(s.uid) + ", user " + s.user +
                ", " + std::to_string(s.subuid.size()) + " /etc/subuid and " + std::to_string(s.subgid.size()) +
                " /etc/subgid ranges) is in mode " + detected_name;
      return;
    }
  }
  s.mode = detected;
  s.mode_name = detected_name;

  if (const char* f = getenv("HUTCH_TEST_FIXTURE_PLUGINS"); f && *f) {
    fs::path fc = fs::canonical(f, ec);
    if (!ec) s.fixtures = fc.string();
  }

  char tmpl[] = "/tmp/hutch-it-suite-XXXXXX";
  if (!mkdtemp(tmpl)) {
    s.error = std::string("mkdtemp: ") + strerror(errno);
    return;
  }
  s.dir = tmpl;
  s.tar = s.dir + "/busybox.tar";
  Options ro;
  ro.cwd = s.dir;
  Result r = run({"/bin/sh", "-c", kRootfsScript, "make-busybox-rootfs", s.tar}, ro);
  if (r.code != 0) {
    std::ostringstream os;
    os << "building the busybox rootfs (scripts/make-busybox-rootfs.sh) failed:" << r;
    s.error = os.str();
    return;
  }
  s.tar_sha256 = sha256_file(s.tar);
  if (s.tar_sha256.empty()) {
    s.error = "sha256sum of " + s.tar + " failed";
    return;
  }
  s.busybox_size = fs::file_size(getenv("BUSYBOX") && *getenv("BUSYBOX") ? getenv("BUSYBOX") : "/bin/busybox", ec);
  auto compress = [&](const std::string& tool_cmd, const std::string& out) -> std::string {
    Result c = run({"/bin/sh", "-c", tool_cmd + " <\"$1\" >\"$2\"", "compress", s.tar, out});
    return c.code == 0 ? out : std::string();
  };
  s.tar_gz = compress("gzip -n -c", s.dir + "/busybox.tar.gz");
  s.tar_xz = compress("xz -T1 -c", s.dir + "/busybox.tar.xz");
  s.tar_zst = compress("zstd -q -c", s.dir + "/busybox.tar.zst");
}

}  // namespace

const Suite& suite() {
  std::call_once(g_once, [] {
    g_suite = new Suite;
    try {
      build_suite(*g_suite);
    } catch (const std::exception& e) {
      g_suite->error = std::string("suite setup: ") + e.what();
    }
  });
  return *g_suite;
}

void suite_cleanup() {
  if (g_suite && !g_suite->dir.empty()) {
    std::error_code ec;
    fs::remove_all(g_suite->dir, ec);
  }
}

namespace {
class CleanupEnv : public ::testing::Environment {
 public:
  void TearDown() override { suite_cleanup(); }
};
[[maybe_unused]] auto* g_env = ::testing::AddGlobalTestEnvironment(new CleanupEnv);
}  // namespace

std::vector<std::vector<unsigned long>> parse_id_map(const std::string& text) {
  std::vector<std::vector<unsigned long>> out;
  for (const auto& l : lines(text)) {
    std::vector<unsigned long> row;
    for (const auto& w : split_ws(l)) {
      try {
        row.push_back(std::stoul(w));
      } catch (...) {
        row.push_back(~0UL);
      }
    }
    out.push_back(row);
  }
  return out;
}

std::vector<std::vector<unsigned long>> expected_id_map(bool gid) {
  const Suite& s = suite();
  switch (s.mode) {
    case Mode::kRoot:
      return {{0, 0, 4294967295UL}};
    case Mode::kNoRange:
      return {{0, gid ? s.gid : s.uid, 1}};
    case Mode::kRanged: {
      std::vector<std::vector<unsigned long>> out = {{0, gid ? s.gid : s.uid, 1}};
      unsigned long inner = 1;
      for (const auto& r : gid ? s.subgid : s.subuid) {
        out.push_back({inner, r.start, r.count});
        inner += r.count;
      }
      return out;
    }
  }
  return {};
}

std::string ns_link(const std::string& ns) {
  std::error_code ec;
  return fs::read_symlink("/proc/self/ns/" + ns, ec).string();
}

std::vector<std::string> net_devices(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& l : lines(text)) {
    auto colon = l.find(':');
    if (colon == std::string::npos || l.find('|') != std::string::npos) continue;
    // "  eth0: 123 4 0 ..." : 16 counters after the name
    auto counters = split_ws(l.substr(colon + 1));
    if (counters.size() != 16 ||
        !std::all_of(counters.begin(), counters.end(),
                     [](const std::string& w) { return std::all_of(w.begin(), w.end(), ::isdigit); }))
      continue;
    out.push_back(trim(l.substr(0, colon)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
struct ProcInfo {
  pid_t pid;
  std::vector<std::string> argv;
  std::string comm, exe;
};

std::vector<ProcInfo> our_processes() {
  std::vector<ProcInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == getpid()) continue;
    std::string status = read_file("/proc/" + name + "/status");
    auto pos = status.find("\nUid:");
    if (pos == std::string::npos) continue;
    auto w = split_ws(status.substr(pos + 5, status.find('\n', pos + 1) - pos - 5));
    if (w.empty() || w[0] != std::to_string(getuid())) continue;
    if (status.find("State:\tZ") != std::string::npos) continue;
    ProcInfo p{pid, {}, trim(read_file("/proc/" + name + "/comm")), {}};
    std::string cmdline = read_file("/proc/" + name + "/cmdline");
    std::string cur;
    for (char c : cmdline) {
      if (c == '\0') {
        p.argv.push_back(cur);
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) p.argv.push_back(cur);
    std::error_code ec2;
    p.exe = fs::read_symlink("/proc/" + name + "/exe", ec2).string();
    out.push_back(std::move(p));
  }
  return out;
}
}  // namespace

namespace {
std::vector<std::pair<pid_t, std::string>> hutch_like_processes(const std::string& bin) {
  std::vector<std::pair<pid_t, std::string>> out;
  for (const auto& p : our_processes()) {
    std::string cmd;
    for (const auto& a : p.argv) cmd += a + " ";
    bool pause = contains(cmd, "hutch-pause") || contains(p.comm, "hutch-pause");
    bool ours = !bin.empty() && (p.exe == bin || p.exe == bin + " (deleted)");
    if (pause || ours) out.push_back({p.pid, std::to_string(p.pid) + " [" + p.comm + "] " + cmd + "(exe " + p.exe + ")"});
  }
  return out;
}
}  // namespace

std::vector<std::string> stray_hutch_processes() {
  const Suite& s = suite();
  std::vector<std::string> out;
  for (const auto& [pid, desc] : hutch_like_processes(s.hutch))
    if (!s.foreign_pids.count(pid)) out.push_back(desc);
  return out;
}

std::vector<pid_t> processes_with_comm(const std::string& comm) {
  std::vector<pid_t> out;
  for (const auto& p : our_processes())
    if (p.comm == comm) out.push_back(p.pid);
  return out;
}

pid_t find_process(const std::vector<std::string>& argv) {
  for (const auto& p : our_processes())
    if (p.argv == argv) return p.pid;
  return -1;
}

::testing::AssertionResult OneLineError(const Result& r, const std::vector<std::string>& needles) {
  auto ls = lines(r.err);
  if (r.code != 125) return ::testing::AssertionFailure() << "expected exit code 125" << r;
  if (ls.size() != 1) return ::testing::AssertionFailure() << "expected exactly one stderr line, got " << ls.size() << r;
  if (ls[0].rfind("Error: ", 0) != 0) return ::testing::AssertionFailure() << "stderr line must start with \"Error: \"" << r;
  for (const auto& n : needles)
    if (!icontains(ls[0], n)) return ::testing::AssertionFailure() << "the error line does not mention \"" << n << "\"" << r;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult EngineError(const Result& r, const std::vector<std::string>& needles) {
  if (r.code != 125) return ::testing::AssertionFailure() << "expected exit code 125" << r;
  auto ls = lines(r.err);
  if (std::none_of(ls.begin(), ls.end(), [](const std::string& l) { return l.rfind("Error: ", 0) == 0; }))
    return ::testing::AssertionFailure() << "no stderr line starts with \"Error: \"" << r;
  for (const auto& n : needles)
    if (!icontains(r.err, n)) return ::testing::AssertionFailure() << "stderr does not mention \"" << n << "\"" << r;
  return ::testing::AssertionSuccess();
}

// ---- fixture --------------------------------------------------------------------------------

void HutchTest::SetUp() {
  const Suite& s = suite();
  ASSERT_TRUE(s.error.empty()) << s.error;
  char tmpl[] = "/tmp/hutch-it-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr) << strerror(errno);
  dir_ = tmpl;
  root_ = dir_ + "/root";
  run_ = dir_ + "/run";
  if (warm_up_) {
    // `unshare` surely enters the user namespace, so a once-per-runroot warning is given here.
    Result u = hutch({"unshare", "true"});
    ASSERT_OK(u) << "(warm-up `unshare true` on a fresh runroot)";
    Result r = hutch({"images", "-q"});
    ASSERT_OK(r) << "(warm-up `images -q` on an empty store)";
    ASSERT_EQ(trim(r.out), "") << "a fresh store lists images" << r;
  }
}

namespace {
// Waits (up to ~3 s) until no process of hutch of ours is left, so that nothing writes into a
// folder being removed.
void settle() {
  for (int i = 0; i < 30 && !stray_hutch_processes().empty(); ++i) std::this_thread::sleep_for(100ms);
}
// remove_all, retried for a while: a process of hutch may still be ending.
bool remove_tree(const std::string& dir) {
  for (int i = 0; i < 20; ++i) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (!fs::exists(dir, ec)) return true;
    std::this_thread::sleep_for(150ms);
  }
  return false;
}
}  // namespace

void HutchTest::TearDown() {
  if (dir_.empty()) return;
  std::error_code ec;
  // Files may belong to subordinate IDs: remove them from inside the namespace first.
  std::vector<std::string> victims;
  for (const auto& e : fs::directory_iterator(dir_, ec))
    if (e.path().filename() != "run") victims.push_back(e.path().string());
  if (!victims.empty() && fs::exists(root_)) {
    std::vector<std::string> a = {"unshare", "rm", "-rf"};
    a.insert(a.end(), victims.begin(), victims.end());
    Options o;
    o.timeout = 60s;
    run(cmd(a), o);
  }
  settle();
  if (remove_tree(dir_)) return;
  // Last resort: a throwaway store elsewhere, and rm from its namespace.
  char tmpl[] = "/tmp/hutch-it-clean-XXXXXX";
  if (mkdtemp(tmpl)) {
    std::string t = tmpl;
    Options o;
    o.timeout = 60s;
    run({suite().hutch, "--root", t + "/root", "--runroot", t + "/run", "unshare", "rm", "-rf", dir_}, o);
    settle();
    remove_tree(t);
  }
  if (!remove_tree(dir_)) ADD_FAILURE() << "could not remove the test's folder " << dir_;
}

std::vector<std::string> HutchTest::cmd(const std::vector<std::string>& args) const {
  std::vector<std::string> a = {suite().hutch, "--root", root_, "--runroot", run_};
  a.insert(a.end(), args.begin(), args.end());
  return a;
}

Result HutchTest::hutch(const std::vector<std::string>& args, Options opts) const {
  if (opts.cwd.empty()) opts.cwd = dir_;
  return run(cmd(args), std::move(opts));
}

Result HutchTest::hutch_raw(const std::vector<std::string>& args, Options opts) const {
  if (opts.cwd.empty()) opts.cwd = dir_;
  std::vector<std::string> a = {suite().hutch};
  a.insert(a.end(), args.begin(), args.end());
  return run(a, std::move(opts));
}

std::string HutchTest::import_busybox(const std::string& name, const std::string& tarball) {
  Result r = hutch({"import", tarball.empty() ? suite().tar : tarball, name});
  std::string out = trim(r.out);
  if (r.code != 0 || out.rfind("sha256:", 0) != 0 || !is_hex(out.substr(7), 64)) {
    ADD_FAILURE() << "import of the busybox tarball as " << name << " failed (want exit 0 and stdout sha256:<64 hex>)" << r;
    return "";
  }
  return out.substr(7);
}

nlohmann::json HutchTest::inspect_one(const std::string& image) {
  Result r = hutch({"inspect", image});
  if (r.code != 0) {
    ADD_FAILURE() << "inspect " << image << " failed" << r;
    return nullptr;
  }
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_array() || j.size() != 1) {
    ADD_FAILURE() << "inspect " << image << " must print a JSON array of one object" << r;
    return nullptr;
  }
  return j[0];
}

std::vector<std::string> HutchTest::blob_files() const {
  std::vector<std::string> out;
  std::error_code ec;
  fs::path blobs = fs::path(root_) / "blobs";
  if (!fs::exists(blobs, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(blobs, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!it->is_directory(ec)) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace hit
