#include <cstdio>

#include "container_options.hpp"

namespace hutch::cli {
namespace {

class RunCommand final : public Command {
 public:
  std::string name() const override { return "run"; }
  std::string summary() const override { return "Run a command in a new container"; }
  std::string usage() const override { return "IMAGE [COMMAND [ARG...]]"; }
  bool needs_user_namespace() const override { return true; }
  bool stops_at_first_positional() const override { return true; }
  void add_options(po::options_description& o) override {
    add_container_options(o, opts_);
    o.add_options()("detach,d", po::bool_switch(&opts_.detach), "run in the background and print the container's ID")(
        "sig-proxy", po::value<bool>()->notifier([this](bool v) { opts_.sig_proxy = v; }),
        "forward signals to the container (default true; not with -t)");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch run\" needs an image");
    opts_.image = a[0];
    opts_.command.assign(a.begin() + 1, a.end());
  }
  bool uses_short_h() const override { return true; }
  int run(CommandContext& ctx) override {
    std::string id;
    int code = ctx.engine().run(opts_, &id);
    if (opts_.detach) std::printf("%s\n", id.c_str());
    return code;
  }

 private:
  RunOptions opts_;
};

}  // namespace
std::unique_ptr<Command> make_run_command() { return std::make_unique<RunCommand>(); }
}  // namespace hutch::cli
