#include "hutch/userns.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "hutch/paths.hpp"
#include "hutch/store.hpp"

#ifdef HUTCH_HAVE_LIBSUBID
#include <dlfcn.h>
#include <shadow/subid.h>
#endif

extern char** environ;

namespace hutch {
namespace fs = std::filesystem;

const char* userns_mode_name(UsernsMode mode) {
  switch (mode) {
    case UsernsMode::kRealRoot: return "real root (no user namespace)";
    case UsernsMode::kFullRange: return "subordinate ranges";
    case UsernsMode::kSingleId: return "single ID";
  }
  return "?";
}

std::vector<IdRange> parse_subid_file(const std::string& content, const std::string& user, uid_t uid) {
  std::vector<IdRange> out;
  std::istringstream in(content);
  std::string line;
  const std::string uid_text = std::to_string(uid);
  while (std::getline(in, line)) {
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    line = line.substr(first);
    auto c1 = line.find(':');
    if (c1 == std::string::npos) continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    std::string owner = line.substr(0, c1);
    if (owner != user && owner != uid_text) continue;
    try {
      size_t used1 = 0, used2 = 0;
      std::string s = line.substr(c1 + 1, c2 - c1 - 1);
      std::string n = line.substr(c2 + 1);
      while (!n.empty() && (n.back() == ' ' || n.back() == '\t' || n.back() == '\r')) n.pop_back();
      if (s.empty() || n.empty() || s[0] == '-' || n[0] == '-') continue;
      unsigned long start = std::stoul(s, &used1);
      unsigned long count = std::stoul(n, &used2);
      if (used1 != s.size() || used2 != n.size() || count == 0) continue;
      out.push_back({start, count});
    } catch (const std::exception&) {
      continue;  // a malformed line is skipped, as shadow's tools do
    }
  }
  return out;
}

unsigned long count_id_map(const std::string& map_text) {
  std::istringstream in(map_text);
  unsigned long inside, outside, count, total = 0;
  while (in >> inside >> outside >> count) total += count;
  return total;
}

namespace {

std::vector<IdRange> ranges_for(bool uids, const std::string& user, uid_t uid, std::string& source) {
#ifdef HUTCH_HAVE_LIBSUBID
  // libsubid also serves the LDAP/SSSD sources that /etc/nsswitch.conf names for subid. It is
  // opened here, when a namespace is made, not linked: it pulls in eight libraries (PAM,
  // SELinux, audit, ...) that every other command would load for nothing.
  using GetRanges = int (*)(const char*, struct subid_range**);
  static void* lib = [] {
    void* h = dlopen("libsubid.so.4", RTLD_NOW | RTLD_LOCAL);
    return h ? h : dlopen("libsubid.so", RTLD_NOW | RTLD_LOCAL);
  }();
  auto get = lib ? reinterpret_cast<GetRanges>(dlsym(lib, uids ? "subid_get_uid_ranges" : "subid_get_gid_ranges")) : nullptr;
  struct subid_range* r = nullptr;
  int n = get ? get(user.c_str(), &r) : -1;
  if (n > 0) {
    std::vector<IdRange> out;
    for (int i = 0; i < n; ++i) out.push_back({r[i].start, r[i].count});
    std::free(r);
    source = "libsubid";
    return out;
  }
  std::free(r);
#endif
  const char* file = uids ? "/etc/subuid" : "/etc/subgid";
  source = "/etc/subuid and /etc/subgid";
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error&) {
    return {};
  }
  return parse_subid_file(text, user, uid);
}

struct PidFile {
  pid_t pid = 0;
  unsigned long long start_time = 0;
  int mode = 0;
};

std::optional<PidFile> read_live_pid_file(const fs::path& file) {
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error&) {
    return std::nullopt;
  }
  PidFile pf;
  std::istringstream in(text);
  if (!(in >> pf.pid >> pf.start_time >> pf.mode) || pf.pid <= 0) return std::nullopt;
  if (process_start_time(pf.pid) != pf.start_time) return std::nullopt;  // gone, or pid reused
  return pf;
}

void write_proc_file(pid_t pid, const char* name, const std::string& content) {
  write_file_in_place("/proc/" + std::to_string(pid) + "/" + name, content);
}

std::string run_helper(const std::vector<std::string>& argv) {
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) != 0) throw_errno("pipe");
  pid_t pid = fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    dup2(errpipe[1], 2);
    dup2(errpipe[1], 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    dprintf(2, "cannot execute %s: %s", args[0], strerror(errno));
    _exit(127);
  }
  ::close(errpipe[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(errpipe[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out.append(buf, n);
  ::close(errpipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out.empty() ? "exited with status " + std::to_string(WEXITSTATUS(status)) : out;
  }
  return "";
}

void write_id_maps(pid_t pid, const UsernsPlan& plan) {
  if (plan.mode == UsernsMode::kSingleId) {
    write_proc_file(pid, "setgroups", "deny");
    write_proc_file(pid, "uid_map", "0 " + std::to_string(plan.uid) + " 1\n");
    write_proc_file(pid, "gid_map", "0 " + std::to_string(plan.gid) + " 1\n");
    return;
  }
  auto map_args = [&](const std::string& helper, unsigned long id, const std::vector<IdRange>& ranges) {
    std::vector<std::string> a{helper, std::to_string(pid), "0", std::to_string(id), "1"};
    unsigned long inside = 1;
    for (const auto& r : ranges) {
      a.push_back(std::to_string(inside));
      a.push_back(std::to_string(r.start));
      a.push_back(std::to_string(r.count));
      inside += r.count;
    }
    return a;
  };
  if (auto err = run_helper(map_args(plan.newuidmap, plan.uid, plan.uid_ranges)); !err.empty())
    throw Error(Errc::kPermission, "newuidmap failed for " + plan.user + ": " + err +
                                       "; check the ranges in /etc/subuid (hutch info lists them) and that " +
                                       plan.newuidmap + " is setuid root (reinstall the uidmap package)");
  if (auto err = run_helper(map_args(plan.newgidmap, plan.gid, plan.gid_ranges)); !err.empty())
    throw Error(Errc::kPermission, "newgidmap failed for " + plan.user + ": " + err +
                                       "; check the ranges in /etc/subgid (hutch info lists them) and that " +
                                       plan.newgidmap + " is setuid root (reinstall the uidmap package)");
}

// Forks the holder of a new namespace and returns its pid once it is mapped and re-executed.
pid_t create_namespace(const UsernsPlan& plan, const fs::path& lock_path) {
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) throw_errno("pipe");
  pid_t mid = fork();
  if (mid < 0) throw_errno("fork");
  if (mid == 0) {
    // The middle child forks the holder and exits, so the holder is nobody's zombie.
    pid_t holder = fork();
    if (holder != 0) _exit(holder < 0 ? 1 : 0);
    ::close(to_child[1]);
    ::close(from_child[0]);
    setsid();
    char ok = unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0 ? 'u' : 'e';
    int err = errno;
    pid_t self = getpid();
    if (::write(from_child[1], &self, sizeof self) < 0 || ::write(from_child[1], &ok, 1) < 0 ||
        ::write(from_child[1], &err, sizeof err) < 0)
      _exit(1);
    if (ok != 'u') _exit(1);
    char go = 0;
    if (::read(to_child[0], &go, 1) != 1 || go != 'g') _exit(1);
    // Mapped: now re-execute as the pause process.
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    if (chdir("/") != 0) _exit(1);
    setenv(kEnvPause, lock_path.c_str(), 1);
    char arg0[] = "hutch-pause";
    char* argv[] = {arg0, nullptr};
    execve("/proc/self/exe", argv, environ);
    _exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  int st = 0;
  while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
  }
  pid_t holder = 0;
  char ok = 0;
  int err = 0;
  bool read_ok = ::read(from_child[0], &holder, sizeof holder) == sizeof holder &&
                 ::read(from_child[0], &ok, 1) == 1 && ::read(from_child[0], &err, sizeof err) == sizeof err;
  ::close(from_child[0]);
  if (!read_ok) {
    ::close(to_child[1]);
    throw Error(Errc::kSystem, "the user namespace helper process died before it started");
  }
  if (ok != 'u') {
    ::close(to_child[1]);
    throw Error(Errc::kPermission,
                std::string("cannot create a user namespace: ") + strerror(err) +
                    "; unprivileged user namespaces must be allowed (sysctl user.max_user_namespaces > 0, "
                    "kernel.unprivileged_userns_clone=1, and no AppArmor restriction "
                    "kernel.apparmor_restrict_unprivileged_userns)");
  }
  try {
    write_id_maps(holder, plan);
  } catch (...) {
    ::kill(holder, SIGKILL);
    ::close(to_child[1]);
    throw;
  }
  char go = 'g';
  ssize_t w = ::write(to_child[1], &go, 1);
  ::close(to_child[1]);
  if (w != 1) throw Error(Errc::kSystem, "the user namespace helper process died");
  return holder;
}

void join_namespace(pid_t pid) {
  std::string base = "/proc/" + std::to_string(pid) + "/ns/";
  int userfd = ::open((base + "user").c_str(), O_RDONLY | O_CLOEXEC);
  int mntfd = ::open((base + "mnt").c_str(), O_RDONLY | O_CLOEXEC);
  if (userfd < 0 || mntfd < 0) {
    int e = errno;
    if (userfd >= 0) ::close(userfd);
    if (mntfd >= 0) ::close(mntfd);
    throw system_error("cannot open the namespaces of hutch's pause process " + std::to_string(pid), e);
  }
  char cwd_buf[4096];
  const char* cwd = getcwd(cwd_buf, sizeof cwd_buf);
  if (setns(userfd, CLONE_NEWUSER) != 0) {
    int e = errno;
    ::close(userfd);
    ::close(mntfd);
    throw system_error("cannot join hutch's user namespace (pid " + std::to_string(pid) + ")", e);
  }
  if (setns(mntfd, CLONE_NEWNS) != 0) {
    int e = errno;
    ::close(userfd);
    ::close(mntfd);
    throw system_error("cannot join hutch's mount namespace (pid " + std::to_string(pid) + ")", e);
  }
  ::close(userfd);
  ::close(mntfd);
  if (!cwd || chdir(cwd) != 0) {
    if (chdir("/") != 0) {
    }
  }
}

}  // namespace

UsernsPlan plan_user_namespace() {
  UsernsPlan plan;
  plan.uid = getuid();
  plan.gid = getgid();
  if (plan.uid == 0) {
    plan.mode = UsernsMode::kRealRoot;
    plan.user = "root";
    return plan;
  }
  struct passwd pw, *res = nullptr;
  char buf[4096];
  if (getpwuid_r(plan.uid, &pw, buf, sizeof buf, &res) == 0 && res) plan.user = res->pw_name;
  else plan.user = std::to_string(plan.uid);
  plan.newuidmap = find_program("newuidmap").string();
  plan.newgidmap = find_program("newgidmap").string();
  std::string src;
  plan.uid_ranges = ranges_for(true, plan.user, plan.uid, src);
  plan.gid_ranges = ranges_for(false, plan.user, plan.uid, plan.ranges_source);
  std::string range_hint = "add ranges with \"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " +
                           plan.user + "\" (as root)";
  if (plan.uid_ranges.empty() || plan.gid_ranges.empty()) {
    plan.mode = UsernsMode::kSingleId;
    plan.single_id_reason = std::string("no ") + (plan.uid_ranges.empty() ? "subordinate uid range in /etc/subuid" : "subordinate gid range in /etc/subgid") +
                            " for \"" + plan.user + "\"; " + range_hint;
  } else if (plan.newuidmap.empty() || plan.newgidmap.empty()) {
    plan.mode = UsernsMode::kSingleId;
    plan.single_id_reason = "newuidmap/newgidmap not found; install them with \"apt-get install uidmap\"";
  } else {
    plan.mode = UsernsMode::kFullRange;
  }
  return plan;
}

bool inside_hutch_namespace() {
  const char* host_uid = std::getenv(kEnvHostUid);
  if (!host_uid || getuid() != 0) return false;
  std::string map;
  try {
    map = read_file("/proc/self/uid_map");
  } catch (const Error&) {
    return false;
  }
  std::istringstream in(map);
  unsigned long inside = 1, outside = 0;
  in >> inside >> outside;
  return inside == 0 && std::to_string(outside) == host_uid && outside != 0;
}

RootlessInfo UsernsSession::current() {
  RootlessInfo info;
  if (!inside_hutch_namespace()) {
    info.mode = UsernsMode::kRealRoot;
    info.host_uid = getuid();
    info.host_gid = getgid();
    info.uid_count = info.gid_count = 4294967295UL;
    return info;
  }
  info.host_uid = static_cast<uid_t>(std::stoul(std::getenv(kEnvHostUid)));
  const char* g = std::getenv(kEnvHostGid);
  info.host_gid = g ? static_cast<gid_t>(std::stoul(g)) : 0;
  info.uid_count = count_id_map(read_file("/proc/self/uid_map"));
  info.gid_count = count_id_map(read_file("/proc/self/gid_map"));
  info.mode = info.uid_count > 1 ? UsernsMode::kFullRange : UsernsMode::kSingleId;
  return info;
}

UsernsSession UsernsSession::enter(const fs::path& run_root, const Logger& logger) {
  UsernsSession s;
  if (getuid() == 0 || inside_hutch_namespace()) {
    s.info_ = current();
    return s;
  }
  // Joining needs no plan (the ranges, NSS lookups, the helpers in PATH): only making the
  // namespace does. The holder's pid file says which mode it was made in.
  // The caller's IDs, read before the join: inside, getuid() is 0.
  const uid_t host_uid = getuid();
  const gid_t host_gid = getgid();
  ensure_private_dir(run_root, host_uid);
  const fs::path lock_path = run_root / "userns.lock";
  const fs::path pid_path = run_root / "userns.pid";
  s.member_ = FileLock(lock_path, FileLock::Mode::kShared);
  auto pf = read_live_pid_file(pid_path);
  if (!pf) {
    FileLock create(run_root / "userns.create.lock", FileLock::Mode::kExclusive);
    pf = read_live_pid_file(pid_path);
    if (!pf) {
      UsernsPlan plan = plan_user_namespace();
      pid_t holder = create_namespace(plan, lock_path);
      PidFile created{holder, process_start_time(holder), static_cast<int>(plan.mode)};
      write_file_atomic(pid_path, std::to_string(created.pid) + " " + std::to_string(created.start_time) + " " +
                                      std::to_string(created.mode) + "\n");
      pf = created;
      s.created_ = true;
    }
  }
  join_namespace(pf->pid);
  setenv(kEnvHostUid, std::to_string(host_uid).c_str(), 1);
  setenv(kEnvHostGid, std::to_string(host_gid).c_str(), 1);
  setenv(kEnvUsernsMode, pf->mode == static_cast<int>(UsernsMode::kSingleId) ? "single" : "full", 1);
  s.info_ = current();
  return s;
}

void warn_single_id_once(const fs::path& run_root, const Logger& logger) {
  if (getuid() == 0 || inside_hutch_namespace()) return;
  ensure_private_dir(run_root, getuid());
  // Said once: until the run root is cleared (a reboot), not on every command.
  fs::path marker = run_root / "single-id-warned";
  std::error_code ec;
  if (fs::exists(marker, ec)) return;
  // A live namespace knows its mode: no need to plan one (the fast path of every command).
  if (auto pf = read_live_pid_file(run_root / "userns.pid"); pf && pf->mode != static_cast<int>(UsernsMode::kSingleId))
    return;
  UsernsPlan plan = plan_user_namespace();
  if (plan.mode != UsernsMode::kSingleId) return;
  logger.warn("running with a single-ID user namespace (only your own uid and gid are mapped; "
              "image files are owned by you): " + plan.single_id_reason);
  try {
    write_file_atomic(marker, plan.single_id_reason + "\n");
  } catch (const Error&) {
  }
}

int pause_process_main(const char* lock_path) {
  prctl(PR_SET_NAME, "hutch-pause", 0, 0, 0);
  for (int fd = 3; fd < 1024; ++fd) ::close(fd);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  int fd = ::open(lock_path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return 1;
  // Granted only when no hutch process holds the shared lock: nothing of ours is inside.
  while (flock(fd, LOCK_EX) != 0)
    if (errno != EINTR) return 1;
  fs::path pid_path = fs::path(lock_path).parent_path() / "userns.pid";
  auto pf = read_live_pid_file(pid_path);
  if (pf && pf->pid == getpid()) ::unlink(pid_path.c_str());
  return 0;
}

}  // namespace hutch
