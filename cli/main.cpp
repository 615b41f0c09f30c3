// hutch: parse the global options and the command, enter the user namespace, run.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "build_config_cli.hpp"
#include "command.hpp"

namespace hutch::cli {
namespace {

void print_main_help(const std::vector<std::unique_ptr<Command>>& commands, std::ostream& os) {
  os << "Usage: hutch [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARG...]\n\n"
        "A rootless, daemonless container engine.\n\nCommands:\n";
  std::vector<const Command*> sorted;
  size_t width = 0;
  for (const auto& c : commands) {
    sorted.push_back(c.get());
    width = std::max(width, c->name().size());
  }
  std::sort(sorted.begin(), sorted.end(), [](const Command* a, const Command* b) { return a->name() < b->name(); });
  for (const Command* c : sorted) {
    std::string n = c->name();
    os << "  " << n << std::string(width + 2 - n.size(), ' ') << c->summary() << "\n";
  }
  os << "\nGlobal options:\n"
        "  --root DIR               the store (default $XDG_DATA_HOME/hutch)\n"
        "  --runroot DIR            runtime state (default $XDG_RUNTIME_DIR/hutch, else /tmp/hutch-run-UID)\n"
        "  --storage-driver NAME    storage plugin: overlay, fuse-overlayfs, vfs (default auto)\n"
        "  --network NAME           default network plugin (none, host)\n"
        "  --runtime NAME           OCI runtime: native (built in), crun, runc, or a path\n"
        "  --log-level LEVEL        debug, info, warn, error\n"
        "  -h, --help               this help\n"
        "  -v, --version            the version\n\n"
        "Run 'hutch COMMAND --help' for a command's options.\n";
}

bool takes_value(const po::options_description& desc, const std::string& token) {
  if (token.find('=') != std::string::npos) return false;  // --env=K=V: the value is attached
  const po::option_description* d = nullptr;
  if (token.rfind("--", 0) == 0) {
    d = desc.find_nothrow(token.substr(2), false, false, false);
  } else {
    if (token.size() > 2) return false;  // -eK=V, -it: attached value or grouped switches
    d = desc.find_nothrow(token, false, false, false);
    if (!d) d = desc.find_nothrow(token.substr(1), false, false, false);
  }
  return d && d->semantic()->max_tokens() > 0;
}

int main_impl(int argc, char** argv) {
  auto commands = make_all_commands();
  std::vector<std::string> args(argv + 1, argv + argc);

  // Global options: everything before the command's name.
  GlobalOptions g;
  size_t i = 0;
  auto value_of = [&](const std::string& flag) -> std::string {
    auto eq = args[i].find('=');
    if (eq != std::string::npos) return args[i].substr(eq + 1);
    if (i + 1 >= args.size()) usage_error("flag " + flag + " needs a value");
    return args[++i];
  };
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string flag = a.substr(0, a.find('='));
    if (a == "-h" || a == "--help") {
      print_main_help(commands, std::cout);
      return 0;
    }
    if (a == "-v" || a == "--version") {
      std::cout << "hutch version " << kVersion << "\n";
      return 0;
    }
    if (flag == "--root") g.root = value_of(flag);
    else if (flag == "--runroot") g.runroot = value_of(flag);
    else if (flag == "--storage-driver") g.storage_driver = value_of(flag);
    else if (flag == "--network") g.network = value_of(flag);
    else if (flag == "--runtime") g.runtime = value_of(flag);
    else if (flag == "--log-level") g.log_level = value_of(flag);
    else if (!a.empty() && a[0] == '-') usage_error("unknown global flag: " + a + "\nSee 'hutch --help'.");
    else break;
  }
  if (i >= args.size()) {
    print_main_help(commands, std::cerr);
    usage_error("missing command");
  }
  std::string name = args[i++];
  Command* cmd = nullptr;
  auto find = [&](const std::string& n) -> Command* {
    for (auto& c : commands) {
      if (c->name() == n) return c.get();
      for (const auto& a : c->aliases())
        if (a == n) return c.get();
    }
    return nullptr;
  };
  // A group and its verb: "system df", "image prune".
  bool is_group = std::any_of(commands.begin(), commands.end(),
                              [&](const auto& c) { return c->name().rfind(name + " ", 0) == 0; });
  if (is_group && i < args.size() && (cmd = find(name + " " + args[i]))) {
    name += " " + args[i++];
  } else if ((name == "container" || name == "image") && i < args.size()) {
    // docker's management commands: "container ls" is ps, "image rm" is rmi, "container
    // logs" is logs, and so on.
    std::string verb = args[i];
    bool image = name == "image";
    if (verb == "ls" || verb == "list") verb = image ? "images" : "ps";
    else if (verb == "rm" && image) verb = "rmi";
    if ((cmd = find(verb))) {
      name = verb;
      ++i;
    }
  } else {
    cmd = find(name);
  }
  if (!cmd && is_group) {
    std::string verbs;
    for (const auto& c : commands)
      if (c->name().rfind(name + " ", 0) == 0) verbs += "\n  " + c->name() + "\t" + c->summary();
    usage_error((i < args.size() ? "unknown command \"" + name + " " + args[i] + "\"" : "\"hutch " + name + "\" needs a command") +
                "; the commands are:" + verbs);
  }
  if (!cmd) usage_error("unknown command \"" + name + "\" for \"hutch\"\nSee 'hutch --help'.");

  // The command's options, then its positional arguments.
  po::options_description desc("Options");
  desc.add_options()(cmd->uses_short_h() ? "help" : "help,h", "this help");
  cmd->add_options(desc);
  std::vector<std::string> opts, positional;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      positional.insert(positional.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.size() > 1 && a[0] == '-') {
      opts.push_back(a);
      if (takes_value(desc, a) && i + 1 < args.size()) opts.push_back(args[++i]);
      continue;
    }
    if (cmd->stops_at_first_positional()) {
      positional.insert(positional.end(), args.begin() + static_cast<long>(i), args.end());
      break;
    }
    positional.push_back(a);
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(opts).options(desc).style(po::command_line_style::unix_style).run(), vm);
    if (vm.count("help")) {
      std::cout << "Usage: hutch " << cmd->name() << " [OPTIONS] " << cmd->usage() << "\n\n"
                << cmd->summary() << "\n\n"
                << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    usage_error(std::string(e.what()) + "\nSee 'hutch " + cmd->name() + " --help'.");
  }
  try {
    cmd->set_arguments(positional);
  } catch (Error& e) {
    if (e.code() == Errc::kUsage) usage_error(std::string(e.what()) + "\nSee 'hutch " + cmd->name() + " --help'.");
    throw;
  }

  // Configuration: files, then flags on top.
  uid_t host_uid = getuid();
  if (const char* h = std::getenv(kEnvHostUid); h && inside_hutch_namespace()) host_uid = static_cast<uid_t>(std::stoul(h));
  Config config = load_config(host_uid);
  if (g.root) config.root = *g.root;
  if (g.runroot) config.runroot = *g.runroot;
  if (g.storage_driver) config.storage_driver = {*g.storage_driver, "--storage-driver"};
  if (g.network) config.network = {*g.network, "--network"};
  if (g.runtime) config.runtime = {*g.runtime, "--runtime"};
  if (g.log_level && !parse_log_level(*g.log_level, config.log_level))
    usage_error("--log-level \"" + *g.log_level + "\" is not one of debug, info, warn, error");
  for (auto* p : {&config.root, &config.runroot})
    if (*p && !p->value().is_absolute()) *p = std::filesystem::absolute(p->value());
  static Logger logger(config.log_level);
  EnginePaths paths = resolve_paths(config, host_uid);

  if (!cmd->reports_only()) warn_single_id_once(paths.run_root, logger);
  std::optional<UsernsSession> session;
  RootlessInfo rootless;
  if (cmd->needs_user_namespace()) {
    session = UsernsSession::enter(paths.run_root, logger);
    rootless = session->info();
  } else {
    rootless = UsernsSession::current();
    if (rootless.mode == UsernsMode::kRealRoot && getuid() != 0) {
      // Outside the namespace: report what it would be.
      UsernsPlan plan = plan_user_namespace();
      rootless.mode = plan.mode;
      rootless.host_uid = plan.uid;
      rootless.host_gid = plan.gid;
    }
  }
  if (getuid() == 0 && !inside_hutch_namespace()) make_dirs(paths.run_root, 0700);
  CommandContext ctx(config, paths, rootless, logger, session ? &*session : nullptr);
  return cmd->run(ctx);
}

}  // namespace
}  // namespace hutch::cli

int main(int argc, char** argv) {
  if (const char* lock = std::getenv(hutch::kEnvPause)) return hutch::pause_process_main(lock);
  try {
    return hutch::cli::main_impl(argc, argv);
  } catch (const hutch::Error& e) {
    std::string msg = e.full_message();
    std::cerr << "Error: " << msg << "\n";
    switch (e.code()) {
      case hutch::Errc::kNotExecutable: return 126;
      case hutch::Errc::kCommandNotFound: return 127;
      default: return 125;
    }
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 125;
  }
}
