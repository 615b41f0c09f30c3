// The container's side of the clone: mounts, pivot_root, identity, then exec; and the
// process of `exec`, which takes the same identity in a container set up already.
// Errors go back to the parent over the sync pipe as "E<message>" ("N" a command not
// found, "X" one that cannot be run, for exec); after the exec fifo is open, the
// container's stderr is the only channel left.
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "hutch/layer_tar.hpp"
#include "native_spec.hpp"
#include "seccomp_filter.hpp"

namespace hutch::runtime::native {

namespace {

int g_sync_fd = -1;

[[noreturn]] void fail(const std::string& what, int err) {
  std::string msg = "E" + what + (err ? std::string(": ") + strerror(err) : "");
  if (g_sync_fd >= 0) {
    ssize_t r = write(g_sync_fd, msg.data(), msg.size());
    (void)r;
  } else {
    std::string line = "hutch: " + msg.substr(1) + "\n";
    ssize_t r = write(2, line.data(), line.size());
    (void)r;
  }
  _exit(125);
}

struct MountFlags {
  unsigned long flags = 0;
  unsigned long propagation = 0;
  bool bind = false;
  bool recursive = false;
  std::string data;
};

MountFlags parse_options(const std::vector<std::string>& options) {
  MountFlags m;
  for (const auto& o : options) {
    if (o == "ro") m.flags |= MS_RDONLY;
    else if (o == "rw") m.flags &= ~static_cast<unsigned long>(MS_RDONLY);
    else if (o == "nosuid") m.flags |= MS_NOSUID;
    else if (o == "nodev") m.flags |= MS_NODEV;
    else if (o == "noexec") m.flags |= MS_NOEXEC;
    else if (o == "relatime") m.flags |= MS_RELATIME;
    else if (o == "strictatime") m.flags |= MS_STRICTATIME;
    else if (o == "noatime") m.flags |= MS_NOATIME;
    else if (o == "bind") m.bind = true;
    else if (o == "rbind") m.bind = m.recursive = true;
    else if (o == "private") m.propagation = MS_PRIVATE;
    else if (o == "rprivate") m.propagation = MS_PRIVATE | MS_REC;
    else if (o == "slave") m.propagation = MS_SLAVE;
    else if (o == "rslave") m.propagation = MS_SLAVE | MS_REC;
    else if (o == "shared" || o == "rshared") m.propagation = MS_SHARED | (o[0] == 'r' ? MS_REC : 0);
    else if (o == "exec" || o == "suid" || o == "dev" || o == "async" || o == "atime") continue;
    else m.data += (m.data.empty() ? "" : ",") + o;
  }
  return m;
}

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// The mount target beneath the rootfs, created as a directory or (for a file source) a file.
int open_target(int root_fd, const std::string& destination, bool as_file) {
  std::string rel = destination;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  auto slash = rel.rfind('/');
  std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash);
  std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
  int pfd = open_dir_beneath(root_fd, parent, true);
  if (pfd < 0) fail("cannot create the mount point " + destination, errno);
  if (base.empty()) return pfd;
  struct stat st;
  if (fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (as_file) {
      int f = openat(pfd, base.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (f < 0) fail("cannot create the mount point " + destination, errno);
      close(f);
    } else if (mkdirat(pfd, base.c_str(), 0755) != 0 && errno != EEXIST) {
      fail("cannot create the mount point " + destination, errno);
    }
  }
  close(pfd);
  struct open_how how {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
  if (fd < 0) fail("cannot open the mount point " + destination, errno);
  return static_cast<int>(fd);
}

// A bind remount keeps the flags the kernel locked (nosuid, nodev, noexec, ...) in a user namespace.
void remount_bind(const std::string& target, unsigned long flags, const std::string& what) {
  struct statvfs sv;
  unsigned long keep = 0;
  if (statvfs(target.c_str(), &sv) == 0) {
    if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) keep |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) keep |= MS_RELATIME;
  }
  if (mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | flags | keep, nullptr) != 0)
    fail("cannot remount " + what, errno);
}

void do_mount(int root_fd, const MountSpec& m, bool own_netns) {
  MountFlags f = parse_options(m.options);
  bool is_bind = f.bind || m.type == "bind";
  bool as_file = false;
  if (is_bind) {
    struct stat st;
    if (stat(m.source.c_str(), &st) != 0) fail("cannot bind-mount " + m.source + " on " + m.destination, errno);
    as_file = !S_ISDIR(st.st_mode);
  }
  int target_fd = open_target(root_fd, m.destination, as_file);
  std::string target = fd_path(target_fd);
  if (is_bind) {
    if (mount(m.source.c_str(), target.c_str(), nullptr, MS_BIND | (f.recursive ? MS_REC : 0), nullptr) != 0)
      fail("cannot bind-mount " + m.source + " on " + m.destination, errno);
    close(target_fd);
    // Reopen: the path now reaches the mount, not the directory under it.
    target_fd = open_target(root_fd, m.destination, as_file);
    target = fd_path(target_fd);
    unsigned long extra = f.flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
    if (extra) remount_bind(target, extra, m.destination);
  } else {
    const char* data = f.data.empty() ? nullptr : f.data.c_str();
    int r = mount(m.source.c_str(), target.c_str(), m.type.c_str(), f.flags, data);
    if (r != 0 && m.type == "devpts" && errno == EINVAL) {
      // gid=5 (tty) is not mapped in a single-ID namespace: mount without it, as crun does.
      std::string d;
      std::stringstream ss(f.data);
      std::string item;
      while (std::getline(ss, item, ','))
        if (item.rfind("gid=", 0) != 0) d += (d.empty() ? "" : ",") + item;
      r = mount(m.source.c_str(), target.c_str(), m.type.c_str(), f.flags, d.c_str());
    }
    if (r != 0 && m.type == "sysfs" && (errno == EPERM || errno == EACCES) && !own_netns) {
      // sysfs can only be mounted by the owner of the network namespace: bind the host's, read-only.
      if (mount("/sys", target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        fail("cannot bind-mount /sys on " + m.destination, errno);
      close(target_fd);
      target_fd = open_target(root_fd, m.destination, false);
      target = fd_path(target_fd);
      remount_bind(target, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, m.destination);
      r = 0;
    }
    if (r != 0 && m.type == "mqueue" && (errno == EPERM || errno == EACCES)) r = 0;  // optional, as in crun
    if (r != 0) fail("cannot mount " + m.type + " on " + m.destination, errno);
    if (f.propagation) {
      // The fd still names the directory under the new mount: reopen it to reach the mount.
      close(target_fd);
      target_fd = open_target(root_fd, m.destination, false);
      target = fd_path(target_fd);
    }
  }
  if (f.propagation && mount(nullptr, target.c_str(), nullptr, f.propagation, nullptr) != 0)
    fail("cannot set the propagation of " + m.destination, errno);
  close(target_fd);
}

// /dev as docker makes it: the standard devices bind-mounted from the host, and symlinks.
void populate_dev(int root_fd) {
  static const char* devices[] = {"null", "zero", "full", "random", "urandom", "tty"};
  for (const char* d : devices) {
    std::string host = std::string("/dev/") + d;
    struct stat st;
    if (stat(host.c_str(), &st) != 0) continue;
    int fd = open_target(root_fd, "/dev/" + std::string(d), true);
    if (mount(host.c_str(), fd_path(fd).c_str(), nullptr, MS_BIND, nullptr) != 0)
      fail("cannot bind-mount " + host, errno);
    close(fd);
  }
  int dev = open_dir_beneath(root_fd, "dev", false);
  if (dev < 0) return;
  static const char* links[][2] = {{"fd", "/proc/self/fd"},     {"stdin", "/proc/self/fd/0"},
                                   {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
                                   {"ptmx", "pts/ptmx"},          {"core", "/proc/kcore"}};
  for (auto& l : links) symlinkat(l[1], dev, l[0]);
  close(dev);
}

void bring_up_loopback() {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail("cannot open a socket to bring up lo", errno);
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) fail("cannot read the flags of lo", errno);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) fail("cannot bring up lo", errno);
  close(s);
}

void mask_paths(const std::vector<std::string>& masked, const std::vector<std::string>& readonly) {
  for (const auto& p : masked) {
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    int r = S_ISDIR(st.st_mode) ? mount("tmpfs", p.c_str(), "tmpfs", MS_RDONLY, "size=0k")
                                : mount("/dev/null", p.c_str(), nullptr, MS_BIND, nullptr);
    if (r != 0 && errno != ENOENT) fail("cannot mask " + p, errno);
  }
  for (const auto& p : readonly) {
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    if (mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) fail("cannot bind " + p, errno);
    remount_bind(p, MS_RDONLY, p);
  }
}

void set_capabilities(const NativeSpec& s) {
  for (int c = 0; c <= CAP_LAST_CAP; ++c) {
    bool keep = false;
    for (int b : s.cap_bounding) keep |= (b == c);
    if (!keep && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
      fail("cannot drop capability " + std::to_string(c) + " from the bounding set", errno);
  }
}

void set_process_caps(const NativeSpec& s) {
  cap_t caps = cap_init();
  if (!s.cap_effective.empty())
    cap_set_flag(caps, CAP_EFFECTIVE, static_cast<int>(s.cap_effective.size()), s.cap_effective.data(), CAP_SET);
  if (!s.cap_permitted.empty())
    cap_set_flag(caps, CAP_PERMITTED, static_cast<int>(s.cap_permitted.size()), s.cap_permitted.data(), CAP_SET);
  if (!s.cap_inheritable.empty())
    cap_set_flag(caps, CAP_INHERITABLE, static_cast<int>(s.cap_inheritable.size()), s.cap_inheritable.data(), CAP_SET);
  if (cap_set_proc(caps) != 0) fail("cannot set the process capabilities", errno);
  cap_free(caps);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (int c : s.cap_ambient)
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0 && errno != EINVAL && errno != EPERM)
      fail("cannot raise ambient capability " + std::to_string(c), errno);
}

std::string env_value(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& e : env)
    if (e.compare(0, key.size() + 1, key + "=") == 0) return e.substr(key.size() + 1);
  return "";
}

// The command could not be run: for exec, its caller hears why over the sync pipe (kind 'N'
// not found, 'X' not executable) and fails; a container's init, started already, says it on
// its stderr and exits with the code docker gives (127, 126).
[[noreturn]] void exec_failed(char kind, const std::string& what, int code) {
  std::string msg = (g_sync_fd >= 0 ? std::string(1, kind) : std::string("hutch: ")) + what + (g_sync_fd >= 0 ? "" : "\n");
  ssize_t r = write(g_sync_fd >= 0 ? g_sync_fd : 2, msg.data(), msg.size());
  (void)r;
  _exit(code);
}

// The process's environment: the spec's, with HOME from the container's /etc/passwd (or "/")
// when the spec has none, as runc and crun do. Read as root, in the container's root.
std::vector<std::string> process_env(const NativeSpec& s) {
  std::vector<std::string> env = s.env;
  for (const auto& e : env)
    if (e.rfind("HOME=", 0) == 0) return env;
  std::string home = "/", passwd;
  int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
  char buf[4096];
  for (ssize_t n; fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0;) passwd.append(buf, static_cast<size_t>(n));
  if (fd >= 0) close(fd);
  std::istringstream lines(passwd);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> f;  // name:password:uid:gid:gecos:home:shell
    std::istringstream fields(line);
    for (std::string x; std::getline(fields, x, ':');) f.push_back(x);
    if (f.size() >= 6 && f[2] == std::to_string(s.uid)) {
      if (!f[5].empty()) home = f[5];
      break;
    }
  }
  env.push_back("HOME=" + home);
  return env;
}

// Like execvpe, with the container's PATH; the exit code says not found (127) or not executable (126).
[[noreturn]] void exec_process(const NativeSpec& s, const std::vector<std::string>& env) {
  std::vector<char*> argv, envp;
  for (const auto& a : s.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string& cmd = s.args[0];
  int err = ENOENT;
  if (cmd.find('/') != std::string::npos) {
    execve(cmd.c_str(), argv.data(), envp.data());
    err = errno;
  } else {
    std::string path = env_value(s.env, "PATH");
    if (path.empty()) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    std::stringstream ss(path);
    std::string dir;
    bool denied = false;
    while (std::getline(ss, dir, ':')) {
      std::string cand = (dir.empty() ? "." : dir) + "/" + cmd;
      execve(cand.c_str(), argv.data(), envp.data());
      if (errno == EACCES || errno == ENOEXEC) denied = true, err = errno;
      else if (errno != ENOENT && errno != ENOTDIR) err = errno;
    }
    if (!denied && err == ENOENT) exec_failed('N', "executable file `" + cmd + "` not found in $PATH: No such file or directory", 127);
  }
  bool missing = err == ENOENT || err == ENOTDIR;
  exec_failed(missing ? 'N' : 'X', "cannot execute `" + cmd + "`: " + strerror(err), missing ? 127 : 126);
}

// The container's terminal, made in its own /dev/pts: the slave becomes our stdio and
// controlling terminal, the master goes to whoever listens on the console socket.
void make_terminal(const NativeSpec& s, int console_fd) {
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) fail("cannot open /dev/ptmx in the container", errno);
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) != 0) fail("cannot unlock the terminal", errno);
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0) fail("cannot open the terminal's slave", errno);
  if (fchown(slave, s.uid, s.gid) != 0) {
  }  // an unmapped owner keeps root's; the user can still use it through the open fd
  char byte = 0;
  struct iovec iov {&byte, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &master, sizeof master);
  if (sendmsg(console_fd, &msg, 0) != 1) fail("cannot send the terminal over the console socket", errno);
  close(master);
  close(console_fd);
  if (setsid() < 0) fail("setsid", errno);
  for (int fd = 0; fd < 3; ++fd)
    if (dup2(slave, fd) < 0) fail("cannot make the terminal our stdio", errno);
  if (ioctl(0, TIOCSCTTY, 0) != 0) fail("cannot make the terminal our controlling terminal", errno);
  if (slave > 2) close(slave);
}

// The process's own settings, in the order the kernel allows them: rlimits, its terminal, the
// seccomp filter (with noNewPrivileges it waits for the exec), the bounding set, groups, gid,
// uid, capabilities, no_new_privs, and last the working directory, which must exist by now.
void become_process(const NativeSpec& s, int console_fd) {
  for (const auto& r : s.rlimits) {
    struct rlimit rl {static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)};
    if (setrlimit(r.resource, &rl) != 0) fail("cannot set rlimit " + std::to_string(r.resource), errno);
  }
  if (s.has_oom_score_adj) {
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    std::string v = std::to_string(s.oom_score_adj);
    if (fd < 0 || write(fd, v.data(), v.size()) < 0) fail("cannot set oom_score_adj", errno);
    close(fd);
  }
  if (s.terminal) make_terminal(s, console_fd);

  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before the capabilities go.
  if (s.seccomp_filter && !s.no_new_privileges && !s.seccomp_filter->load()) fail("cannot load the seccomp filter", errno);
  set_capabilities(s);
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) fail("cannot keep capabilities", errno);
  if (setgroups(s.additional_gids.size(), s.additional_gids.data()) != 0 && !(errno == EPERM && s.additional_gids.empty()))
    fail("cannot set the supplementary groups", errno);
  auto unmapped = [](const char* kind, unsigned long id) {
    fail(std::string("cannot run as ") + kind + " " + std::to_string(id) +
             ": it is not mapped in the user namespace (without subordinate ranges only 0 is); "
             "\"hutch info\" says how to add ranges",
         0);
  };
  if (setresgid(s.gid, s.gid, s.gid) != 0) {
    if (errno == EINVAL) unmapped("gid", s.gid);
    fail("cannot set gid " + std::to_string(s.gid), errno);
  }
  if (setresuid(s.uid, s.uid, s.uid) != 0) {
    if (errno == EINVAL) unmapped("uid", s.uid);
    fail("cannot set uid " + std::to_string(s.uid), errno);
  }
  // Changing uid made us undumpable, which hides /proc/self/fd (the exec fifo) from us.
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  set_process_caps(s);
  if (s.no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("cannot set no_new_privs", errno);
  if (chdir(s.cwd.c_str()) != 0) fail("cannot change to the working directory " + s.cwd, errno);
}

// Signals unblocked, the seccomp filter of a process with noNewPrivileges, then the exec.
[[noreturn]] void exec_as_process(const NativeSpec& s, const std::vector<std::string>& env) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (s.seccomp_filter && s.no_new_privileges && !s.seccomp_filter->load()) fail("cannot load the seccomp filter", errno);
  exec_process(s, env);
}

}  // namespace

void container_main(const NativeSpec& s, int sync_fd, int map_wait_fd, int fifo_fd, int console_fd) {
  g_sync_fd = sync_fd;
  if (map_wait_fd >= 0) {
    char c = 0;
    if (read(map_wait_fd, &c, 1) != 1 || c != 'M') _exit(125);
    close(map_wait_fd);
    if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) fail("cannot become root in the new user namespace", errno);
  }
  for (const auto& n : s.namespaces) {
    if (n.path.empty()) continue;
    int fd = open(n.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, 0) != 0) fail("cannot join the " + n.type + " namespace " + n.path, errno);
    close(fd);
  }
  bool own_netns = false;
  for (const auto& n : s.namespaces) own_netns |= (n.type == "network" && n.path.empty());

  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail("cannot make / private", errno);
  std::string root = s.root.string();
  if (mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    fail("cannot bind-mount the root filesystem " + root, errno);
  int root_fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) fail("cannot open the root filesystem " + root, errno);

  bool dev_is_tmpfs = false;
  for (const auto& m : s.mounts) {
    do_mount(root_fd, m, own_netns);
    if (m.destination == "/dev" && m.type == "tmpfs") dev_is_tmpfs = true;
  }
  if (dev_is_tmpfs) populate_dev(root_fd);

  if (fchdir(root_fd) != 0) fail("cannot enter the root filesystem", errno);
  if (syscall(SYS_pivot_root, ".", ".") != 0) fail("pivot_root", errno);
  if (umount2(".", MNT_DETACH) != 0) fail("cannot detach the old root", errno);
  if (chdir("/") != 0) fail("chdir /", errno);
  close(root_fd);

  mask_paths(s.masked_paths, s.readonly_paths);
  if (s.root_readonly) remount_bind("/", MS_RDONLY, "the root filesystem read-only");
  if (s.has_namespace("uts") && !s.hostname.empty() && sethostname(s.hostname.c_str(), s.hostname.size()) != 0)
    fail("cannot set the hostname", errno);
  if (own_netns) bring_up_loopback();
  // The working directory, made when missing (as docker does for -w; not for exec).
  {
    int root_now = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    std::string rel = s.cwd;
    while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
    int cwd_fd = open_dir_beneath(root_now, rel, true);
    if (cwd_fd < 0) fail("cannot create the working directory " + s.cwd, errno);
    close(cwd_fd);
    close(root_now);
  }

  std::vector<std::string> env = process_env(s);
  become_process(s, console_fd);

  // Ready: tell the parent, then wait for `start` to open the other end of the fifo.
  std::string fifo = fd_path(fifo_fd);
  if (write(sync_fd, "R", 1) != 1) _exit(125);
  close(sync_fd);
  g_sync_fd = -1;
  int wfd = open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  if (wfd < 0) fail("cannot open the exec fifo", errno);
  if (write(wfd, "0", 1) != 1) fail("cannot write the exec fifo", errno);
  close(wfd);
  close(fifo_fd);

  exec_as_process(s, env);
}

void exec_main(const NativeSpec& s, int sync_fd, int console_fd) {
  g_sync_fd = sync_fd;  // until the exec, which closes it: the caller reads EOF, and knows
  std::vector<std::string> env = process_env(s);
  become_process(s, console_fd);
  exec_as_process(s, env);
}

}  // namespace hutch::runtime::native
