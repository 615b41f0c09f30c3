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
        "read-only", po::bool_switch(&opts_.read_only), "mount the root filesystem read-only")(
        "read-only-tmpfs", po::value<bool>()->implicit_value(true)->notifier([this](bool v) { opts_.read_only_tmpfs = v; }),
        "with --read-only, tmpfs on /tmp, /var/tmp and /run (default true)")(
        "volume,v", po::value(&opts_.volumes)->composing(), "bind HOST-DIR:DIR[:ro], or a named volume NAME:DIR[:ro]")(
        "mount", po::value(&opts_.mounts)->composing(), "type=bind|volume|tmpfs,source=...,target=...[,readonly]")(
        "tmpfs", po::value(&opts_.tmpfs)->composing(), "a tmpfs on DIR[:size=64m,mode=1777,...]")(
        "device", po::value(&opts_.devices)->composing(), "pass a host device HOST[:CONTAINER[:rwm]]")(
        "shm-size", po::value(&opts_.shm_size), "size of /dev/shm (default 64m)")(
        "cap-add", po::value(&opts_.cap_add)->composing(), "add a capability (or ALL)")(
        "cap-drop", po::value(&opts_.cap_drop)->composing(), "drop a capability (or ALL)")(
        "privileged", po::bool_switch(&opts_.privileged), "every capability, no seccomp, nothing masked")(
        "security-opt", po::value(&opts_.security_opts)->composing(),
        "no-new-privileges, seccomp=unconfined|PROFILE.json, mask=PATHS, unmask=PATHS")(
        "ulimit", po::value(&opts_.ulimits)->composing(), "a resource limit NAME=SOFT[:HARD] (nofile=1024)")(
        "group-add", po::value(&opts_.group_add)->composing(), "an additional group (name or number)")(
        "userns", po::value(&opts_.userns), "host (hutch's namespace) or keep-id[:uid=U,gid=G]")(
        "uidmap", po::value(&opts_.uidmap)->composing(), "a user namespace uid map CONTAINER:HOST:SIZE")(
        "gidmap", po::value(&opts_.gidmap)->composing(), "a user namespace gid map CONTAINER:HOST:SIZE")(
        "pid", po::value(&opts_.pid), "PID namespace: private or host")(
        "ipc", po::value(&opts_.ipc), "IPC namespace: private or host")(
        "uts", po::value(&opts_.uts), "UTS namespace: private or host")(
        "init", po::bool_switch(&opts_.init), "run an init as PID 1 that forwards signals and reaps zombies")(
        "env-host", po::bool_switch(&opts_.env_host), "pass your whole environment in")(
        "stop-signal", po::value(&opts_.stop_signal), "the signal that stops the container (default SIGTERM)")(
        "add-host", po::value(&opts_.add_hosts)->composing(), "add NAME:IP to /etc/hosts")(
        "dns", po::value(&opts_.dns)->composing(), "a nameserver for /etc/resolv.conf")(
        "dns-search", po::value(&opts_.dns_search)->composing(), "a search domain for /etc/resolv.conf")(
        "dns-option", po::value(&opts_.dns_options)->composing(), "an option for /etc/resolv.conf")(
        "oom-score-adj", po::value<int>()->notifier([this](int v) { opts_.oom_score_adj = v; }), "the OOM killer's score adjustment")(
        "memory,m", po::value(&opts_.memory), "memory limit (e.g. 512m)")(
        "memory-swap", po::value(&opts_.memory_swap), "memory plus swap limit (-1: unlimited swap)")(
        "cpus", po::value(&opts_.cpus), "number of CPUs (e.g. 1.5)")(
        "cpu-shares,c", po::value(&opts_.cpu_shares), "relative CPU weight (default 1024)")(
        "cpuset-cpus", po::value(&opts_.cpuset_cpus), "CPUs to run on (0-1, 0,2)")(
        "pids-limit", po::value(&opts_.pids_limit), "most processes at once (-1: unlimited)");
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
