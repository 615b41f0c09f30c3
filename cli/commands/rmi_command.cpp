#include <iostream>

#include "../command.hpp"

namespace hutch::cli {
namespace {

class RmiCommand final : public Command {
 public:
  std::string name() const override { return "rmi"; }
  std::string summary() const override { return "Remove images (a name untags; an ID or the last name deletes)"; }
  std::string usage() const override { return "IMAGE [IMAGE...]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("force,f", po::bool_switch(&force_), "remove all names, and the stopped containers using it");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch rmi\" needs at least one image");
    images_ = a;
  }
  int run(CommandContext& ctx) override {
    int rc = 0;
    for (const auto& img : images_) {
      try {
        for (const auto& line : ctx.engine().remove_image(img, force_)) std::cout << line << "\n";
      } catch (const Error& e) {
        std::cout.flush();
        std::cerr << "Error: " << e.full_message() << "\n";
        rc = e.code() == Errc::kNotFound ? 1 : 2;
      }
    }
    std::cout.flush();
    // As podman: 1 when an image was not found, 2 when one is in use; 125 for engine errors.
    return rc == 0 ? 0 : 125;
  }

 private:
  bool force_ = false;
  std::vector<std::string> images_;
};

}  // namespace
std::unique_ptr<Command> make_rmi_command() { return std::make_unique<RmiCommand>(); }
}  // namespace hutch::cli
