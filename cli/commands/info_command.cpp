#include <sys/utsname.h>

#include <iostream>

#include "build_config_cli.hpp"
#include "../command.hpp"
#include "hutch/host_check.hpp"

namespace hutch::cli {
namespace {

class InfoCommand final : public Command {
 public:
  std::string name() const override { return "info"; }
  std::string summary() const override { return "Show the engine's setup: plugins, paths, user namespace, host checks"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return false; }
  bool reports_only() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("format,f", po::value(&format_), "json for machine-readable output");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch info\" takes no arguments");
  }
  int run(CommandContext& ctx) override {
    using nlohmann::json;
    Engine& e = ctx.engine();
    UsernsPlan plan = plan_user_namespace();
    if (inside_hutch_namespace()) {
      plan.mode = ctx.rootless().mode;
    }
    struct utsname u;
    uname(&u);
    json j;
    j["version"] = {{"version", kVersion}, {"git_commit", kGitRevision}, {"build_tag", kBuildTag},
                    {"plugin_abi", kAbiVersion}};
    j["host"] = {{"kernel", u.release}, {"arch", u.machine}, {"hostname", u.nodename}};
    j["store"] = {{"root", e.paths().store_root.string()},
                  {"runroot", e.paths().run_root.string()},
                  {"runroot_why", e.paths().run_root_why},
                  {"filesystem", filesystem_type(e.paths().store_root)}};
    json ns = {{"mode", userns_mode_name(ctx.rootless().mode)}, {"uid", plan.uid}, {"gid", plan.gid}};
    if (!plan.single_id_reason.empty()) ns["why"] = plan.single_id_reason;
    json uidmap = json::array({{{"container", 0}, {"host", plan.uid}, {"size", 1}}});
    unsigned long inside = 1;
    for (const auto& r : plan.uid_ranges) {
      if (plan.mode != UsernsMode::kFullRange) break;
      uidmap.push_back({{"container", inside}, {"host", r.start}, {"size", r.count}});
      inside += r.count;
    }
    if (plan.mode != UsernsMode::kRealRoot) ns["uidmap"] = uidmap;
    j["userns"] = ns;
    json plugins = json::array();
    for (const auto& b : e.describe_backends())
      plugins.push_back({{"family", b.family},
                         {"name", b.name},
                         {"path", b.plugin.path.string()},
                         {"version", b.plugin.version},
                         {"reason", b.why},
                         {"description", b.description}});
    j["plugins"] = plugins;
    // Which network backends work here, and why not (the slirp default falls back to none).
    json networks = json::array();
    for (const auto& f : e.loader().discover(NetworkBackend::kFamily)) {
      try {
        NetworkCapabilities caps = e.network(f.name).capabilities();
        networks.push_back({{"name", f.name}, {"works", caps.unavailable.empty()}, {"why_not", caps.unavailable},
                            {"port_publishing", caps.port_publishing}, {"user_networks", caps.user_networks},
                            {"description", caps.description}});
      } catch (const Error& err) {
        networks.push_back({{"name", f.name}, {"works", false}, {"why_not", err.what()}, {"port_publishing", false},
                            {"user_networks", false}, {"description", ""}});
      }
    }
    j["network_backends"] = networks;
    json available = json::array();
    for (const auto& f : e.loader().discover()) available.push_back({{"family", f.family}, {"name", f.name}, {"path", f.path.string()}});
    j["available_plugins"] = available;
    json search = json::array();
    for (const auto& p : e.loader().search_path()) search.push_back(p.string());
    j["plugin_search_path"] = search;
    json config_files = json::array();
    for (const auto& f : ctx.config().files_read) config_files.push_back(f.string());
    j["config_files"] = config_files;
    json checks = json::array();
    for (const auto& c : check_host(plan, e.paths().store_root, e.paths().run_root, e.config().cgroup_parent))
      checks.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}, {"fix", c.fix}});
    j["host_checks"] = checks;
    if (format_ == "json" || format_ == "{{json .}}") {
      std::cout << j.dump(2) << std::endl;
      return 0;
    }
    if (!format_.empty()) usage_error("--format " + format_ + ": only json is supported");
    std::string out;
    out += "version: " + std::string(kVersion) + " (" + kGitRevision + ", plugin ABI " + std::to_string(kAbiVersion) + ")\n";
    out += "host:\n  kernel: " + std::string(u.release) + "\n  arch: " + u.machine + "\n";
    out += "store:\n  root: " + e.paths().store_root.string() + " (" + filesystem_type(e.paths().store_root) + ")\n";
    out += "  runroot: " + e.paths().run_root.string() + " (" + e.paths().run_root_why + ")\n";
    out += "config files: ";
    if (ctx.config().files_read.empty()) out += "none (defaults)";
    for (size_t i = 0; i < ctx.config().files_read.size(); ++i) out += (i ? ", " : "") + ctx.config().files_read[i].string();
    out += "\nuser namespace:\n  mode: " + std::string(userns_mode_name(ctx.rootless().mode)) + "\n";
    if (!plan.single_id_reason.empty()) out += "  why: " + plan.single_id_reason + "\n";
    if (plan.mode != UsernsMode::kRealRoot) {
      out += "  uid map:";
      for (const auto& m : uidmap)
        out += " " + std::to_string(m["container"].get<unsigned long>()) + ":" + std::to_string(m["host"].get<unsigned long>()) + ":" +
               std::to_string(m["size"].get<unsigned long>());
      out += "\n";
    }
    out += "plugins (in use):\n";
    for (const auto& p : plugins) {
      out += "  " + p["family"].get<std::string>() + ": " + p["name"].get<std::string>();
      if (!p["version"].get<std::string>().empty()) out += " " + p["version"].get<std::string>();
      if (!p["path"].get<std::string>().empty()) out += " (" + p["path"].get<std::string>() + ")";
      out += "\n    why: " + p["reason"].get<std::string>() + "\n";
      if (!p["description"].get<std::string>().empty()) out += "    what: " + p["description"].get<std::string>() + "\n";
    }
    out += "network backends:\n";
    for (const auto& n : networks) {
      out += "  " + n["name"].get<std::string>() + ": " + (n["works"].get<bool>() ? "works" : "does not work: " + n["why_not"].get<std::string>());
      if (n["port_publishing"].get<bool>()) out += "; publishes ports";
      if (n["user_networks"].get<bool>()) out += "; user networks";
      out += "\n";
    }
    out += "plugins (available):";
    for (const auto& a : available) out += " " + a["family"].get<std::string>() + "/" + a["name"].get<std::string>();
    out += "\nplugin search path:";
    for (const auto& p : search) out += " " + p.get<std::string>();
    out += "\nhost checks:\n";
    for (const auto& c : checks) {
      out += std::string("  [") + (c["ok"].get<bool>() ? "ok" : "!!") + "] " + c["name"].get<std::string>() + ": " +
             c["detail"].get<std::string>() + "\n";
      if (!c["fix"].get<std::string>().empty()) out += "       fix: " + c["fix"].get<std::string>() + "\n";
    }
    std::cout << out << std::flush;
    return 0;
  }

 private:
  std::string format_;
};

class VersionCommand final : public Command {
 public:
  std::string name() const override { return "version"; }
  std::string summary() const override { return "Show the version"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return false; }
  bool reports_only() const override { return true; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch version\" takes no arguments");
  }
  int run(CommandContext&) override {
    struct utsname u;
    uname(&u);
    std::cout << "hutch version " << kVersion << "\n"
              << "Git commit:   " << kGitRevision << "\n"
              << "Plugin ABI:   " << kAbiVersion << "\n"
              << "Built with:   " << kBuildTag << "\n"
              << "OS/Arch:      linux/" << u.machine << std::endl;
    return 0;
  }
};

}  // namespace
std::unique_ptr<Command> make_info_command() { return std::make_unique<InfoCommand>(); }
std::unique_ptr<Command> make_version_command() { return std::make_unique<VersionCommand>(); }
}  // namespace hutch::cli
