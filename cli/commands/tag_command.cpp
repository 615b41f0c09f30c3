#include "../command.hpp"

namespace hutch::cli {
namespace {

class TagCommand final : public Command {
 public:
  std::string name() const override { return "tag"; }
  std::string summary() const override { return "Give an image another name"; }
  std::string usage() const override { return "SOURCE_IMAGE TARGET_IMAGE[:TAG]..."; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() < 2) usage_error("\"hutch tag\" needs a source image and at least one new name");
    args_ = a;
  }
  int run(CommandContext& ctx) override {
    for (size_t i = 1; i < args_.size(); ++i) ctx.engine().tag_image(args_[0], args_[i]);
    return 0;
  }

 private:
  std::vector<std::string> args_;
};

}  // namespace
std::unique_ptr<Command> make_tag_command() { return std::make_unique<TagCommand>(); }
}  // namespace hutch::cli
