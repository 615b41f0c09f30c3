#include "../command.hpp"

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
    o.add_options()("rm", po::bool_switch(&opts_.remove), "remove the container when it exits")(
        "interactive,i", po::bool_switch(&opts_.interactive), "keep standard input open")(
        "tty,t", po::bool_switch(&opts_.tty), "use the caller's terminal (TERM is set)")(
        "env,e", po::value(&opts_.env)->composing(), "set an environment variable (K=V, or K to take yours)")(
        "env-file", po::value(&opts_.env_files)->composing(), "read environment variables from a file")(
        "workdir,w", po::value(&opts_.workdir), "working directory inside the container (made if missing)")(
        "user,u", po::value(&opts_.user), "user NAME|UID[:GROUP|GID] to run as")(
        "hostname,h", po::value(&opts_.hostname), "the container's hostname")(
        "entrypoint", po::value<std::string>()->notifier([this](const std::string& v) { opts_.entrypoint = v; }), "override the image's entrypoint (a string or a JSON array)")(
        "network,net", po::value(&opts_.network), "network backend: none, host")(
        "name", po::value(&opts_.name), "a name for the container")(
        "read-only", po::bool_switch(&opts_.read_only), "mount the root filesystem read-only");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch run\" needs an image");
    opts_.image = a[0];
    opts_.command.assign(a.begin() + 1, a.end());
  }
  bool uses_short_h() const override { return true; }
  int run(CommandContext& ctx) override { return ctx.engine().run(opts_); }

 private:
  RunOptions opts_;
};

}  // namespace
std::unique_ptr<Command> make_run_command() { return std::make_unique<RunCommand>(); }
}  // namespace hutch::cli
