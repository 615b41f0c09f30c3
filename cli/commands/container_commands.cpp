// The container lifecycle commands: create, start, stop, kill, restart, wait, attach, exec,
// logs, rename, top, pause, unpause, port, healthcheck run, container prune.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <iostream>

#include "../go_template.hpp"
#include "container_options.hpp"

namespace hutch::cli {
namespace {

// Runs `each` for every named container: prints the name as docker does, an error per name
// that fails, and 125 if any did.
int for_each_container(const std::vector<std::string>& names, const std::function<void(const std::string&)>& each,
                       bool print_names = true) {
  int rc = 0;
  for (const auto& n : names) {
    try {
      each(n);
      if (print_names) std::cout << n << "\n" << std::flush;
    } catch (const Error& e) {
      std::cout.flush();
      std::cerr << "Error: " << e.full_message() << "\n";
      rc = 125;
    }
  }
  return rc;
}

int signal_number(const std::string& name) {
  std::string n = name;
  for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!n.empty() && n.find_first_not_of("0123456789") == std::string::npos) {
    int v = std::stoi(n);
    if (v > 0 && v < 65) return v;
  } else {
    if (n.rfind("SIG", 0) == 0) n = n.substr(3);
    static const std::pair<const char*, int> names[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},   {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},
        {"BUS", SIGBUS},   {"FPE", SIGFPE},   {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
        {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
        {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}, {"URG", SIGURG},   {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
        {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO}, {"PWR", SIGPWR}, {"SYS", SIGSYS}};
    for (const auto& [s, v] : names)
      if (n == s) return v;
  }
  usage_error("\"" + name + "\" is not a signal (a name such as SIGHUP or HUP, or a number)");
}

class CreateCommand final : public Command {
 public:
  std::string name() const override { return "create"; }
  std::string summary() const override { return "Create a container without starting it"; }
  std::string usage() const override { return "IMAGE [COMMAND [ARG...]]"; }
  bool needs_user_namespace() const override { return true; }
  bool stops_at_first_positional() const override { return true; }
  bool uses_short_h() const override { return true; }
  void add_options(po::options_description& o) override { add_container_options(o, opts_); }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch create\" needs an image");
    opts_.image = a[0];
    opts_.command.assign(a.begin() + 1, a.end());
  }
  int run(CommandContext& ctx) override {
    ContainerRecord rec = ctx.engine().create_container(opts_);
    std::printf("%s\n", rec.id.c_str());
    return 0;
  }

 private:
  RunOptions opts_;
};

class StartCommand final : public Command {
 public:
  std::string name() const override { return "start"; }
  std::string summary() const override { return "Start one or more stopped containers"; }
  std::string usage() const override { return "CONTAINER [CONTAINER...]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("attach,a", po::bool_switch(&opts_.attach), "attach to its output and return its exit code")(
        "interactive,i", po::bool_switch(&opts_.interactive), "attach its standard input too")(
        "detach-keys", po::value(&opts_.detach_keys), "the keys that detach (default ctrl-p,ctrl-q)")(
        "sig-proxy", po::value<bool>(&opts_.sig_proxy), "forward signals to the container (with -a; default true)");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch start\" needs at least one container");
    names_ = a;
  }
  int run(CommandContext& ctx) override {
    if (opts_.interactive) opts_.attach = true;
    if (opts_.attach) {
      if (names_.size() != 1) usage_error("\"hutch start -a\" attaches to one container");
      return ctx.engine().start_container(names_[0], opts_);
    }
    return for_each_container(names_, [&](const std::string& n) { ctx.engine().start_container(n, opts_); });
  }

 private:
  StartOptions opts_;
  std::vector<std::string> names_;
};

// stop and restart: the same arguments, the same -t.
class TimedCommand final : public Command {
 public:
  using Action = void (Engine::*)(const std::string&, std::optional<int>);
  TimedCommand(std::string name, std::string summary, Action action)
      : name_(std::move(name)), summary_(std::move(summary)), action_(action) {}
  std::string name() const override { return name_; }
  std::string summary() const override { return summary_; }
  std::string usage() const override { return "CONTAINER [CONTAINER...]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("time,t", po::value<int>()->notifier([this](int v) { timeout_ = v; }),
                    "seconds to wait before SIGKILL (default: the container's --stop-timeout, 10)");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch " + name_ + "\" needs at least one container");
    names_ = a;
  }
  int run(CommandContext& ctx) override {
    return for_each_container(names_, [&](const std::string& n) { (ctx.engine().*action_)(n, timeout_); });
  }

 private:
  std::string name_, summary_;
  Action action_;
  std::optional<int> timeout_;
  std::vector<std::string> names_;
};

class KillCommand final : public Command {
 public:
  std::string name() const override { return "kill"; }
  std::string summary() const override { return "Send a signal to containers (default SIGKILL)"; }
  std::string usage() const override { return "CONTAINER [CONTAINER...]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("signal,s", po::value(&signal_)->default_value("KILL"), "the signal to send");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch kill\" needs at least one container");
    names_ = a;
  }
  int run(CommandContext& ctx) override {
    int sig = signal_number(signal_);
    return for_each_container(names_, [&](const std::string& n) { ctx.engine().kill_container(n, sig); });
  }

 private:
  std::string signal_;
  std::vector<std::string> names_;
};

class WaitCommand final : public Command {
 public:
  std::string name() const override { return "wait"; }
  std::string summary() const override { return "Wait until containers stop, and print their exit codes"; }
  std::string usage() const override { return "CONTAINER [CONTAINER...]"; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch wait\" needs at least one container");
    names_ = a;
  }
  int run(CommandContext& ctx) override {
    return for_each_container(
        names_, [&](const std::string& n) { std::cout << ctx.engine().wait_container(n) << "\n" << std::flush; }, false);
  }

 private:
  std::vector<std::string> names_;
};

class AttachCommand final : public Command {
 public:
  std::string name() const override { return "attach"; }
  std::string summary() const override { return "Attach to a running container's input and output"; }
  std::string usage() const override { return "CONTAINER"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("no-stdin", po::bool_switch(&no_stdin_), "do not attach standard input")(
        "detach-keys", po::value(&opts_.detach_keys), "the keys that detach (default ctrl-p,ctrl-q)")(
        "sig-proxy", po::value<bool>(&opts_.sig_proxy), "forward signals to the container (default true)");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 1) usage_error("\"hutch attach\" needs one container");
    name_ = a[0];
  }
  int run(CommandContext& ctx) override {
    opts_.stdin_open = !no_stdin_;
    return ctx.engine().attach_container(name_, opts_);
  }

 private:
  AttachOptions opts_;
  bool no_stdin_ = false;
  std::string name_;
};

class ExecCommand final : public Command {
 public:
  std::string name() const override { return "exec"; }
  std::string summary() const override { return "Run a command in a running container"; }
  std::string usage() const override { return "CONTAINER COMMAND [ARG...]"; }
  bool needs_user_namespace() const override { return true; }
  bool stops_at_first_positional() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("interactive,i", po::bool_switch(&opts_.interactive), "keep standard input open")(
        "tty,t", po::bool_switch(&opts_.tty), "a terminal for the command")(
        "detach,d", po::bool_switch(&opts_.detach), "run it in the background")(
        "env,e", po::value(&opts_.env)->composing(), "set an environment variable (K=V, or K to take yours)")(
        "env-file", po::value(&opts_.env_files)->composing(), "read environment variables from a file")(
        "user,u", po::value(&opts_.user), "user NAME|UID[:GROUP|GID] to run as")(
        "workdir,w", po::value(&opts_.workdir), "working directory inside the container")(
        "privileged", po::bool_switch(&opts_.privileged), "every capability the container may have")(
        "detach-keys", po::value(&opts_.detach_keys), "accepted for docker's sake");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() < 2) usage_error("\"hutch exec\" needs a container and a command");
    name_ = a[0];
    opts_.command.assign(a.begin() + 1, a.end());
  }
  int run(CommandContext& ctx) override { return ctx.engine().exec_container(name_, opts_); }

 private:
  ExecOptions opts_;
  std::string name_;
};

class LogsCommand final : public Command {
 public:
  std::string name() const override { return "logs"; }
  std::string summary() const override { return "Show a container's output"; }
  std::string usage() const override { return "CONTAINER"; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description& o) override {
    o.add_options()("follow,f", po::bool_switch(&opts_.follow), "keep printing until the container stops")(
        "tail,n", po::value(&tail_), "only the last N lines (or \"all\")")(
        "since", po::value(&opts_.since), "only after a time: 2024-01-02T15:04:05Z, a unix time, or 10m (ago)")(
        "until", po::value(&opts_.until), "only before a time (same forms)")(
        "timestamps,t", po::bool_switch(&opts_.timestamps), "show each line's time");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 1) usage_error("\"hutch logs\" needs one container");
    name_ = a[0];
  }
  int run(CommandContext& ctx) override {
    if (!tail_.empty() && tail_ != "all" && tail_ != "-1") {
      if (tail_.find_first_not_of("0123456789") != std::string::npos)
        usage_error("--tail \"" + tail_ + "\": expected a number of lines or \"all\"");
      opts_.tail = std::stoul(tail_);
    }
    ctx.engine().container_logs(name_, opts_);
    return 0;
  }

 private:
  LogsOptions opts_;
  std::string tail_;
  std::string name_;
};

class RenameCommand final : public Command {
 public:
  std::string name() const override { return "rename"; }
  std::string summary() const override { return "Rename a container"; }
  std::string usage() const override { return "CONTAINER NEW_NAME"; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 2) usage_error("\"hutch rename\" needs a container and its new name");
    from_ = a[0];
    to_ = a[1];
  }
  int run(CommandContext& ctx) override {
    ctx.engine().rename_container(from_, to_);
    return 0;
  }

 private:
  std::string from_, to_;
};

class TopCommand final : public Command {
 public:
  std::string name() const override { return "top"; }
  std::string summary() const override { return "Show a container's processes (ps options, default -ef)"; }
  std::string usage() const override { return "CONTAINER [ps OPTIONS]"; }
  bool needs_user_namespace() const override { return true; }
  bool stops_at_first_positional() const override { return true; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch top\" needs a container");
    name_ = a[0];
    args_.assign(a.begin() + 1, a.end());
  }
  int run(CommandContext& ctx) override {
    auto rows = ctx.engine().container_top(name_, args_);
    print_table(rows);
    return 0;
  }

 private:
  std::string name_;
  std::vector<std::string> args_;
};

class PauseCommand final : public Command {
 public:
  explicit PauseCommand(bool pause) : pause_(pause) {}
  std::string name() const override { return pause_ ? "pause" : "unpause"; }
  std::string summary() const override {
    return pause_ ? "Freeze every process of containers" : "Thaw paused containers";
  }
  std::string usage() const override { return "CONTAINER [CONTAINER...]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch " + name() + "\" needs at least one container");
    names_ = a;
  }
  int run(CommandContext& ctx) override {
    return for_each_container(names_, [&](const std::string& n) { ctx.engine().pause_container(n, pause_); });
  }

 private:
  bool pause_;
  std::vector<std::string> names_;
};

class PortCommand final : public Command {
 public:
  std::string name() const override { return "port"; }
  std::string summary() const override { return "List a container's published ports"; }
  std::string usage() const override { return "CONTAINER [PRIVATE_PORT[/PROTO]]"; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty() || a.size() > 2) usage_error("\"hutch port\" needs a container (and optionally a port)");
    name_ = a[0];
    if (a.size() == 2) port_ = a[1];
  }
  int run(CommandContext& ctx) override {
    auto j = ctx.engine().inspect_container(name_);
    if (!j) throw Error(Errc::kNotFound, "no such container: " + name_ + " (see \"hutch ps -a\")");
    const auto& ports = (*j)["NetworkSettings"]["Ports"];
    bool any = false;
    for (const auto& [key, bindings] : ports.items()) {
      if (!port_.empty() && key != port_ && key != port_ + "/tcp") continue;
      for (const auto& b : bindings) {
        std::string ip = b.value("HostIp", "0.0.0.0");
        if (ip.find(':') != std::string::npos) ip = "[" + ip + "]";  // docker's [::1]:8080
        std::string host = ip + ":" + b.value("HostPort", "");
        if (port_.empty()) std::cout << key << " -> " << host << "\n";
        else std::cout << host << "\n";
        any = true;
      }
    }
    if (!port_.empty() && !any)
      throw Error(Errc::kNotFound, "no public port " + port_ + " published for container " + name_);
    return 0;
  }

 private:
  std::string name_, port_;
};

class HealthcheckRunCommand final : public Command {
 public:
  std::string name() const override { return "healthcheck run"; }
  std::string summary() const override { return "Run a container's healthcheck now"; }
  std::string usage() const override { return "CONTAINER"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 1) usage_error("\"hutch healthcheck run\" needs one container");
    name_ = a[0];
  }
  int run(CommandContext& ctx) override {
    bool healthy = ctx.engine().run_healthcheck(name_);
    std::cout << (healthy ? "healthy" : "unhealthy") << "\n";
    return healthy ? 0 : 1;
  }

 private:
  std::string name_;
};

class ContainerPruneCommand final : public Command {
 public:
  std::string name() const override { return "container prune"; }
  std::string summary() const override { return "Remove every stopped container"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("force,f", po::bool_switch(&force_), "do not ask");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch container prune\" takes no arguments");
  }
  int run(CommandContext& ctx) override {
    if (!force_ && !confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "))
      return 0;
    PruneReport r = ctx.engine().prune_containers();
    if (!r.containers.empty()) {
      std::cout << "Deleted Containers:\n";
      for (const auto& id : r.containers) std::cout << id << "\n";
      std::cout << "\n";
    }
    std::cout << "Total reclaimed space: " << compact_size(r.reclaimed) << "\n";
    return 0;
  }

 private:
  bool force_ = false;
};

// docker's units for stats: "1.5MiB", "12.3kB".
std::string binary_size(std::uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.4g%s", v, units[u]);
  return buf;
}

class StatsCommand final : public Command {
 public:
  std::string name() const override { return "stats"; }
  std::string summary() const override { return "Show containers' CPU, memory, network and disk use"; }
  std::string usage() const override { return "[CONTAINER...]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("no-stream", po::bool_switch(&no_stream_), "one sample, then exit")(
        "all,a", po::bool_switch(&all_), "accepted (stopped containers have nothing to show)")(
        "no-trunc", po::bool_switch(&no_trunc_), "do not truncate IDs")(
        "format", po::value(&format_), "a Go template ({{.Name}} {{.CPUPerc}} {{.MemUsage}}), table TEMPLATE, or json");
  }
  void set_arguments(const std::vector<std::string>& a) override { names_ = a; }
  int run(CommandContext& ctx) override {
    for (;;) {
      auto stats = ctx.engine().container_stats(names_, no_stream_ ? 1000 : 2000);
      std::vector<nlohmann::ordered_json> rows;
      for (const auto& s : stats) {
        char cpu[32], mem[32];
        std::snprintf(cpu, sizeof cpu, "%.2f%%", s.cpu_percent);
        std::snprintf(mem, sizeof mem, "%.2f%%",
                      s.memory_limit ? 100.0 * static_cast<double>(s.memory) / static_cast<double>(s.memory_limit) : 0.0);
        rows.push_back({{"ID", no_trunc_ ? s.id : s.id.substr(0, 12)},
                        {"Name", s.name},
                        {"CPUPerc", cpu},
                        {"MemUsage", binary_size(s.memory) + " / " + binary_size(s.memory_limit)},
                        {"MemPerc", mem},
                        {"NetIO", compact_size(s.net_rx) + " / " + compact_size(s.net_tx)},
                        {"BlockIO", compact_size(s.block_read) + " / " + compact_size(s.block_write)},
                        {"PIDs", std::to_string(s.pids)}});
      }
      static const std::map<std::string, std::string> headers = {
          {"ID", "CONTAINER ID"}, {"Name", "NAME"},   {"CPUPerc", "CPU %"},    {"MemUsage", "MEM USAGE / LIMIT"},
          {"MemPerc", "MEM %"},   {"NetIO", "NET I/O"}, {"BlockIO", "BLOCK I/O"}, {"PIDs", "PIDS"}};
      std::string f = format_.empty() ? "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
                                      : format_ == "json" ? "{{json .}}" : format_;
      if (!no_stream_) std::cout << "\033[2J\033[H";
      std::cout << GoTemplate(f, headers).render(rows) << std::flush;
      if (no_stream_) return 0;
    }
  }

 private:
  bool no_stream_ = false, all_ = false, no_trunc_ = false;
  std::string format_;
  std::vector<std::string> names_;
};

}  // namespace

std::unique_ptr<Command> make_stats_command() { return std::make_unique<StatsCommand>(); }
std::unique_ptr<Command> make_create_command() { return std::make_unique<CreateCommand>(); }
std::unique_ptr<Command> make_start_command() { return std::make_unique<StartCommand>(); }
std::unique_ptr<Command> make_stop_command() {
  return std::make_unique<TimedCommand>("stop", "Stop containers: the stop signal, then SIGKILL after a timeout",
                                        &Engine::stop_container);
}
std::unique_ptr<Command> make_restart_command() {
  return std::make_unique<TimedCommand>("restart", "Stop and start containers again", &Engine::restart_container);
}
std::unique_ptr<Command> make_kill_command() { return std::make_unique<KillCommand>(); }
std::unique_ptr<Command> make_wait_command() { return std::make_unique<WaitCommand>(); }
std::unique_ptr<Command> make_attach_command() { return std::make_unique<AttachCommand>(); }
std::unique_ptr<Command> make_exec_command() { return std::make_unique<ExecCommand>(); }
std::unique_ptr<Command> make_logs_command() { return std::make_unique<LogsCommand>(); }
std::unique_ptr<Command> make_rename_command() { return std::make_unique<RenameCommand>(); }
std::unique_ptr<Command> make_top_command() { return std::make_unique<TopCommand>(); }
std::unique_ptr<Command> make_pause_command() { return std::make_unique<PauseCommand>(true); }
std::unique_ptr<Command> make_unpause_command() { return std::make_unique<PauseCommand>(false); }
std::unique_ptr<Command> make_port_command() { return std::make_unique<PortCommand>(); }
std::unique_ptr<Command> make_healthcheck_run_command() { return std::make_unique<HealthcheckRunCommand>(); }
std::unique_ptr<Command> make_container_prune_command() { return std::make_unique<ContainerPruneCommand>(); }

}  // namespace hutch::cli
