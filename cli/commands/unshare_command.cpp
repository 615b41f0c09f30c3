#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "../command.hpp"

namespace hutch::cli {
namespace {

class UnshareCommand final : public Command {
 public:
  std::string name() const override { return "unshare"; }
  std::string summary() const override { return "Run a command in hutch's user namespace (uid 0 there)"; }
  std::string usage() const override { return "[COMMAND [ARG...]]"; }
  bool needs_user_namespace() const override { return true; }
  bool stops_at_first_positional() const override { return true; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override { argv_ = a; }
  int run(CommandContext& ctx) override {
    if (argv_.empty()) {
      const char* shell = std::getenv("SHELL");
      argv_.push_back(shell && *shell ? shell : "/bin/sh");
    }
    setenv("HUTCH_ROOT", ctx.paths().store_root.c_str(), 1);
    setenv("HUTCH_RUNROOT", ctx.paths().run_root.c_str(), 1);
    // The command keeps our membership of the namespace: the pause process waits for it.
    if (ctx.session() && ctx.session()->membership_fd() >= 0) {
      int fd = ctx.session()->membership_fd();
      fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) & ~FD_CLOEXEC);
    }
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    int e = errno;
    std::cerr << "Error: cannot run " << argv_[0] << ": " << std::strerror(e) << "\n";
    return e == ENOENT ? 127 : 126;
  }

 private:
  std::vector<std::string> argv_;
};

}  // namespace
std::unique_ptr<Command> make_unshare_command() { return std::make_unique<UnshareCommand>(); }
}  // namespace hutch::cli
