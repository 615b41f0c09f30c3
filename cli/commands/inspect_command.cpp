#include <iostream>

#include "../command.hpp"

namespace hutch::cli {
namespace {

class InspectCommand final : public Command {
 public:
  std::string name() const override { return "inspect"; }
  std::string summary() const override { return "Show the details of images as JSON"; }
  std::string usage() const override { return "IMAGE [IMAGE...]"; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description& o) override {
    o.add_options()("type", po::value(&type_)->default_value("image"), "what to inspect (image)");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch inspect\" needs at least one image");
    names_ = a;
  }
  int run(CommandContext& ctx) override {
    if (type_ != "image") usage_error("--type " + type_ + ": only images can be inspected so far");
    nlohmann::json out = nlohmann::json::array();
    for (const auto& n : names_) out.push_back(ctx.engine().inspect_image(n));
    std::cout << out.dump(4) << std::endl;
    return 0;
  }

 private:
  std::string type_;
  std::vector<std::string> names_;
};

}  // namespace
std::unique_ptr<Command> make_inspect_command() { return std::make_unique<InspectCommand>(); }
}  // namespace hutch::cli
