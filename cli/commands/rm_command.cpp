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
    for (const auto& n : names_) {
      try {
        ctx.engine().remove_container(n, force_, volumes_);
        std::cout << n << "\n";
      } catch (const Error& e) {
        std::cout.flush();
        std::cerr << "Error: " << e.full_message() << "\n";
        rc = 125;
      }
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
