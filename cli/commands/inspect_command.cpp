#include <iostream>

#include "../command.hpp"
#include "../go_template.hpp"

namespace hutch::cli {
namespace {

class InspectCommand final : public Command {
 public:
  std::string name() const override { return "inspect"; }
  std::string summary() const override { return "Show the details of containers or images as JSON"; }
  std::string usage() const override { return "CONTAINER|IMAGE [...]"; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description& o) override {
    o.add_options()("type", po::value(&type_)->default_value(""), "what to inspect: container or image (default: a container of that name, else an image)")(
        "format,f", po::value(&format_), "a Go template ({{.Id}}, {{.State.Status}}, {{json .Config}}) or json");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch inspect\" needs at least one container or image");
    names_ = a;
    // Parsed here: a bad template is a usage error before anything is looked up.
    if (!format_.empty() && format_ != "json") template_.emplace(format_);
  }
  int run(CommandContext& ctx) override {
    if (!type_.empty() && type_ != "image" && type_ != "container") usage_error("--type " + type_ + ": container or image");
    nlohmann::json out = nlohmann::json::array();
    for (const auto& n : names_) {
      if (type_ != "image")
        if (auto c = ctx.engine().inspect_container(n)) {
          out.push_back(*c);
          continue;
        }
      if (type_ == "container") throw Error(Errc::kNotFound, "no such container: " + n + " (see \"hutch ps -a\")");
      out.push_back(ctx.engine().inspect_image(n));
    }
    if (template_) {
      std::vector<nlohmann::ordered_json> values;
      for (const auto& v : out) values.push_back(nlohmann::ordered_json(v));
      std::cout << template_->render(values) << std::flush;
      return 0;
    }
    std::cout << out.dump(4) << std::endl;
    return 0;
  }

 private:
  std::string type_, format_;
  std::vector<std::string> names_;
  std::optional<FormatOption> template_;
};

}  // namespace
std::unique_ptr<Command> make_inspect_command() { return std::make_unique<InspectCommand>(); }
}  // namespace hutch::cli
