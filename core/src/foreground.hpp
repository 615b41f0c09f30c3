// A foreground container: its signals forwarded, its terminal relayed, its exit awaited.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <termios.h>

#include <filesystem>

namespace hutch {

// Blocks the signals a foreground run forwards (and SIGCHLD); restores the mask when done.
class SignalForwarding {
 public:
  SignalForwarding();
  ~SignalForwarding();
  SignalForwarding(const SignalForwarding&) = delete;
  SignalForwarding& operator=(const SignalForwarding&) = delete;
  const sigset_t& set() const { return set_; }

 private:
  sigset_t set_, old_;
};

// Where the runtime sends the master of the container's terminal (OCI console socket).
class ConsoleSocket {
 public:
  explicit ConsoleSocket(const std::filesystem::path& path);
  ~ConsoleSocket();
  ConsoleSocket(const ConsoleSocket&) = delete;
  ConsoleSocket& operator=(const ConsoleSocket&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // The master fd the runtime sent (waits at most `timeout_ms`).
  int receive_master(int timeout_ms);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// The container's terminal, seen from hutch: the master, relayed to the caller's stdio.
// While it lives, the caller's own terminal (if stdin is one) may be in raw mode.
class Terminal {
 public:
  explicit Terminal(int master);
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;
  int master() const { return master_; }
  void copy_window_size();
  void make_caller_raw();

 private:
  int master_ = -1;
  bool restore_ = false;
  struct termios saved_ {};
};

// Waits for `pid`, forwarding signals to it; with a terminal, relays it to stdout (and
// stdin to it when `relay_stdin`). Returns the exit code (128+N for signal N).
int wait_foreground(pid_t pid, const sigset_t& signals, Terminal* terminal, bool relay_stdin);

}  // namespace hutch
