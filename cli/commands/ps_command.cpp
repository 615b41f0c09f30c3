#include "../command.hpp"

namespace hutch::cli {
namespace {

class PsCommand final : public Command {
 public:
  std::string name() const override { return "ps"; }
  std::string summary() const override { return "List containers"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description& o) override {
    o.add_options()("all,a", po::bool_switch(&all_), "all containers, not only running ones")(
        "quiet,q", po::bool_switch(&quiet_), "print only container IDs")(
        "no-trunc", po::bool_switch(&no_trunc_), "do not truncate IDs and commands");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch ps\" takes no arguments");
  }
  int run(CommandContext& ctx) override {
    auto all = ctx.engine().list_containers();
    std::vector<std::vector<std::string>> rows;
    if (!quiet_) rows.push_back({"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"});
    for (const auto& c : all) {
      if (!all_ && c.state.status != "running") continue;
      std::string id = no_trunc_ ? c.id : c.id.substr(0, 12);
      if (quiet_) {
        rows.push_back({id});
        continue;
      }
      std::string cmd;
      for (const auto& a : c.command) cmd += (cmd.empty() ? "" : " ") + a;
      if (!no_trunc_ && cmd.size() > 20) cmd = cmd.substr(0, 17) + "...";
      std::string up = human_ago(c.state.started_at);
      if (up.size() > 4 && up.compare(up.size() - 4, 4, " ago") == 0) up.resize(up.size() - 4);
      std::string status = c.state.status == "running"  ? "Up " + up
                           : c.state.status == "exited" ? "Exited (" + std::to_string(c.state.exit_code) + ") " + human_ago(c.state.finished_at)
                                                  : "Created";
      rows.push_back({id, c.image_name, "\"" + cmd + "\"", human_ago(c.created), status, c.name});
    }
    print_table(rows);
    return 0;
  }

 private:
  bool all_ = false, quiet_ = false, no_trunc_ = false;
};

}  // namespace
std::unique_ptr<Command> make_ps_command() { return std::make_unique<PsCommand>(); }
}  // namespace hutch::cli
