// hutch-init: the container's PID 1 with `run --init`, as tini or catatonit. It starts the
// command, forwards every signal it gets to it, reaps every zombie (orphans are reparented
// to PID 1), and exits with the command's status (128+N when a signal N ended it).
// Statically linked: it is bind-mounted into images that may have no C library at all.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

void say(const char* what, int err) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "hutch-init: %s%s%s\n", what, err ? ": " : "", err ? strerror(err) : "");
  if (n > 0) {
    ssize_t w = write(2, buf, static_cast<size_t>(n));
    (void)w;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int first = 1;
  if (first < argc && strcmp(argv[first], "--") == 0) ++first;
  if (first >= argc) {
    say("usage: hutch-init [--] COMMAND [ARG...]", 0);
    return 125;
  }
  // Not PID 1 (say, --pid host): become the subreaper of what we start instead.
  if (getpid() != 1) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);

  pid_t child = fork();
  if (child < 0) {
    say("cannot fork", errno);
    return 125;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    // Its own process group, in the foreground of the terminal if there is one: job
    // control and Ctrl-C then reach it as they would without us.
    setpgid(0, 0);
    if (isatty(0)) {
      signal(SIGTTOU, SIG_IGN);
      tcsetpgrp(0, getpid());
      signal(SIGTTOU, SIG_DFL);
    }
    execvp(argv[first], argv + first);
    int e = errno;
    char what[300];
    snprintf(what, sizeof what, "cannot execute %s", argv[first]);
    say(what, e);
    _exit(e == ENOENT ? 127 : 126);
  }

  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) {
      if (errno == EINTR) continue;
      say("sigwaitinfo", errno);
      return 125;
    }
    if (sig != SIGCHLD) {
      // The terminal's job-control stops are not ours to forward.
      if (sig == SIGTTIN || sig == SIGTTOU) continue;
      kill(child, sig);
      continue;
    }
    for (;;) {
      int status = 0;
      pid_t p = waitpid(-1, &status, WNOHANG);
      if (p <= 0) break;
      if (p == child) {
        // The rest of the container's processes end with it: PID 1 leaving kills them.
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      }
    }
  }
}
