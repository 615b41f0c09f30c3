// A foreground container: its signals forwarded, its terminal relayed, its exit awaited.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <termios.h>

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

// A pseudo-terminal for `run -t`: the container gets the slave, hutch relays the master.
// While it lives, the caller's own terminal (if stdin is one) is in raw mode.
class PseudoTerminal {
 public:
  PseudoTerminal();
  ~PseudoTerminal();
  PseudoTerminal(const PseudoTerminal&) = delete;
  PseudoTerminal& operator=(const PseudoTerminal&) = delete;
  int master() const { return master_; }
  int slave() const { return slave_; }
  void close_slave();
  void copy_window_size();
  void make_caller_raw();

 private:
  int master_ = -1;
  int slave_ = -1;
  bool restore_ = false;
  struct termios saved_ {};
};

// Waits for `pid`, forwarding signals to it; with a terminal, relays it to stdout (and
// stdin to it when `relay_stdin`). Returns the exit code (128+N for signal N).
int wait_foreground(pid_t pid, const sigset_t& signals, PseudoTerminal* terminal, bool relay_stdin);

}  // namespace hutch
