// docker's default seccomp profile (moby's profiles/seccomp/default.json, as of docker 25:
// io_uring refused, the syscalls of Linux 5.17 to 6.7 allowed), in docker's profile format.
// Built here rather than read from a file, so hutch needs no other engine installed.
#include <string>
#include <vector>

#include "hutch/seccomp.hpp"

namespace hutch {
using nlohmann::json;

namespace {

// Allowed for everyone: what a process needs that cannot reach outside its namespaces.
const char* const kAllowedSyscalls[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset", "chdir",
    "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
    "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
    "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue",
    "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
    "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname",
    "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit", "ipc", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr",
    "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
    "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
    "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr",
    "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
    "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
    "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename",
    "renameat", "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
    "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid", "setsockopt",
    "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
    "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
    "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork",
    "vmsplice", "wait4", "waitid", "waitpid", "write", "writev"};

// The namespace flags of clone(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
constexpr unsigned long long kCloneNamespaceFlags = 0x7E020000;  // 2114060288
constexpr int kEnosys = 38;

json allow(std::vector<std::string> names) { return {{"names", std::move(names)}, {"action", "SCMP_ACT_ALLOW"}}; }

json with_caps(json rule, const char* key, std::vector<std::string> caps) {
  rule[key]["caps"] = std::move(caps);
  return rule;
}

json allow_with_cap(std::vector<std::string> names, const char* cap) {
  return with_caps(allow(std::move(names)), "includes", {cap});
}

json allow_on(std::vector<std::string> names, std::vector<std::string> arches) {
  json rule = allow(std::move(names));
  rule["includes"]["arches"] = std::move(arches);
  return rule;
}

json arg(unsigned index, unsigned long long value, const char* op, unsigned long long value_two = 0) {
  json a = {{"index", index}, {"value", value}, {"op", op}};
  if (value_two) a["valueTwo"] = value_two;
  return a;
}

json build_default_profile() {
  json syscalls = json::array();
  syscalls.push_back(allow({std::begin(kAllowedSyscalls), std::end(kAllowedSyscalls)}));
  // Allowed since 4.8, where ptrace can no longer be used to get around seccomp.
  json tracing = allow({"process_vm_readv", "process_vm_writev", "ptrace"});
  tracing["includes"]["minKernel"] = "4.8";
  syscalls.push_back(tracing);
  // Any socket but AF_VSOCK (40), which reaches the host.
  json socket = allow({"socket"});
  socket["args"] = json::array({arg(0, 40, "SCMP_CMP_NE")});
  syscalls.push_back(socket);
  // personality(2) only for the Linux personalities (PER_LINUX, PER_LINUX32, UNAME26 of
  // each) and the query (0xffffffff).
  for (unsigned long long persona : {0ull, 8ull, 131072ull, 131080ull, 4294967295ull}) {
    json p = allow({"personality"});
    p["args"] = json::array({arg(0, persona, "SCMP_CMP_EQ")});
    syscalls.push_back(p);
  }
  syscalls.push_back(allow_on({"sync_file_range2", "swapcontext"}, {"ppc64le"}));
  syscalls.push_back(allow_on({"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                               "cacheflush", "set_tls"},
                              {"arm", "arm64"}));
  syscalls.push_back(allow_on({"arch_prctl"}, {"amd64", "x32"}));
  syscalls.push_back(allow_on({"modify_ldt"}, {"amd64", "x32", "x86"}));
  syscalls.push_back(allow_on({"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"}, {"s390", "s390x"}));
  syscalls.push_back(allow_on({"riscv_flush_icache"}, {"riscv64"}));

  syscalls.push_back(allow_with_cap({"open_by_handle_at"}, "CAP_DAC_READ_SEARCH"));
  syscalls.push_back(allow_with_cap({"bpf",          "clone",         "clone3",        "fanotify_init",
                                     "fsconfig",     "fsmount",       "fsopen",        "fspick",
                                     "lookup_dcookie", "mount",       "mount_setattr", "move_mount",
                                     "open_tree",    "perf_event_open", "quotactl",    "quotactl_fd",
                                     "setdomainname", "sethostname",  "setns",         "syslog",
                                     "umount",       "umount2",       "unshare"},
                                    "CAP_SYS_ADMIN"));
  // Without CAP_SYS_ADMIN: clone(2) only when it makes no namespace (its flags are the
  // first argument, the second on s390)...
  json clone = with_caps(allow({"clone"}), "excludes", {"CAP_SYS_ADMIN"});
  clone["args"] = json::array({arg(0, kCloneNamespaceFlags, "SCMP_CMP_MASKED_EQ")});
  clone["excludes"]["arches"] = {"s390", "s390x"};
  syscalls.push_back(clone);
  json clone_s390 = with_caps(allow({"clone"}), "excludes", {"CAP_SYS_ADMIN"});
  clone_s390["args"] = json::array({arg(1, kCloneNamespaceFlags, "SCMP_CMP_MASKED_EQ")});
  clone_s390["comment"] = "s390 parameter ordering for clone is different";
  clone_s390["includes"]["arches"] = {"s390", "s390x"};
  syscalls.push_back(clone_s390);
  // ...and clone3(2), whose flags a filter cannot see, says ENOSYS, so that libc falls back to clone.
  json clone3 = with_caps({{"names", std::vector<std::string>{"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", kEnosys}},
                          "excludes", {"CAP_SYS_ADMIN"});
  syscalls.push_back(clone3);

  syscalls.push_back(allow_with_cap({"reboot"}, "CAP_SYS_BOOT"));
  syscalls.push_back(allow_with_cap({"chroot"}, "CAP_SYS_CHROOT"));
  syscalls.push_back(allow_with_cap({"delete_module", "init_module", "finit_module"}, "CAP_SYS_MODULE"));
  syscalls.push_back(allow_with_cap({"acct"}, "CAP_SYS_PACCT"));
  syscalls.push_back(allow_with_cap(
      {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}, "CAP_SYS_PTRACE"));
  syscalls.push_back(allow_with_cap({"iopl", "ioperm"}, "CAP_SYS_RAWIO"));
  syscalls.push_back(
      allow_with_cap({"settimeofday", "stime", "clock_settime", "clock_settime64"}, "CAP_SYS_TIME"));
  syscalls.push_back(allow_with_cap({"vhangup"}, "CAP_SYS_TTY_CONFIG"));
  syscalls.push_back(
      allow_with_cap({"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}, "CAP_SYS_NICE"));
  syscalls.push_back(allow_with_cap({"syslog"}, "CAP_SYSLOG"));
  syscalls.push_back(allow_with_cap({"bpf"}, "CAP_BPF"));
  syscalls.push_back(allow_with_cap({"perf_event_open"}, "CAP_PERFMON"));

  auto arch = [](const char* main, std::vector<std::string> subs) {
    return json{{"architecture", main}, {"subArchitectures", subs.empty() ? json(nullptr) : json(subs)}};
  };
  json arch_map = json::array({
      arch("SCMP_ARCH_X86_64", {"SCMP_ARCH_X86", "SCMP_ARCH_X32"}),
      arch("SCMP_ARCH_AARCH64", {"SCMP_ARCH_ARM"}),
      arch("SCMP_ARCH_MIPS64", {"SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"}),
      arch("SCMP_ARCH_MIPS64N32", {"SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"}),
      arch("SCMP_ARCH_MIPSEL64", {"SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"}),
      arch("SCMP_ARCH_MIPSEL64N32", {"SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"}),
      arch("SCMP_ARCH_S390X", {"SCMP_ARCH_S390"}),
      arch("SCMP_ARCH_RISCV64", {}),
  });
  return {{"defaultAction", "SCMP_ACT_ERRNO"}, {"defaultErrnoRet", 1}, {"archMap", arch_map}, {"syscalls", syscalls}};
}

}  // namespace

const json& default_seccomp_profile() {
  static const json profile = build_default_profile();
  return profile;
}

}  // namespace hutch
