#include <iostream>

#include "../command.hpp"

namespace hutch::cli {
namespace {

class RmCommand final : public Command {
 public:
  std::string name() const override { return "rm"; }
  std::string summary() const override { return "Remove containers"; }
  std::string usage() const override { return "CONTAINER [CONTAINER...]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("force,f", po::bool_switch(&force_), "kill and remove running containers too")(
        "volumes,v", po::bool_switch(&volumes_), "remove its anonymous volumes too");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch rm\" needs at least one container");
    names_ = a;
  }
  int run(CommandContext& ctx) override {
    int rc = 0;
    auto errors = ctx.engine().remove_containers(names_, force_, volumes_);
    for (std::size_t i = 0; i < names_.size(); ++i) {
      if (errors[i].empty()) {
        std::cout << names_[i] << "\n";
        continue;
      }
      std::cout.flush();
      std::cerr << "Error: " << errors[i].substr(1) << "\n";
      rc = 125;
    }
    std::cout.flush();
    return rc;
  }

 private:
  bool force_ = false, volumes_ = false;
  std::vector<std::string> names_;
};

}  // namespace
std::unique_ptr<Command> make_rm_command() { return std::make_unique<RmCommand>(); }
}  // namespace hutch::cli
