// history: an image's layers and how each was made, newest first, as docker history shows them.
#include <iostream>

#include "../command.hpp"

namespace hutch::cli {
namespace {

class HistoryCommand final : public Command {
 public:
  std::string name() const override { return "history"; }
  std::string summary() const override { return "Show how an image's layers were made"; }
  std::string usage() const override { return "IMAGE"; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description& o) override {
    o.add_options()("no-trunc", po::bool_switch(&no_trunc_), "do not shorten the output")(
        "quiet,q", po::bool_switch(&quiet_), "print only the image ID");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 1) usage_error("\"hutch history\" takes one image");
    image_ = a[0];
  }
  int run(CommandContext& ctx) override {
    Engine& e = ctx.engine();
    nlohmann::json info = e.inspect_image(image_);
    ImageRecord img = *e.store().find_image(image_);
    // The sizes of the image's layers, bottom first, for the history entries that made a layer.
    std::vector<std::uint64_t> sizes;
    auto layers = e.store().layers();
    for (const auto& chain : img.layers)
      for (const auto& l : layers)
        if (l.id == chain) sizes.push_back(l.size);
    std::vector<std::vector<std::string>> rows;
    if (!quiet_) rows.push_back({"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"});
    auto history = info.value("History", nlohmann::json::array());
    size_t layer = 0;
    std::vector<std::vector<std::string>> entries;
    for (const auto& h : history) {
      bool empty = h.value("empty_layer", false);
      std::uint64_t size = 0;
      if (!empty && layer < sizes.size()) size = sizes[layer++];
      std::string by = h.value("created_by", "");
      if (!no_trunc_ && by.size() > 45) by = by.substr(0, 42) + "...";
      entries.push_back({"<missing>", h.contains("created") ? human_ago(h.value("created", "")) : "",
                         by, human_size(size), h.value("comment", "")});
    }
    if (!entries.empty()) entries.back()[0] = no_trunc_ ? "sha256:" + img.id : img.id.substr(0, 12);
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
      if (quiet_) rows.push_back({(*it)[0]});
      else rows.push_back(*it);
    }
    print_table(rows);
    return 0;
  }

 private:
  std::string image_;
  bool no_trunc_ = false, quiet_ = false;
};

}  // namespace
std::unique_ptr<Command> make_history_command() { return std::make_unique<HistoryCommand>(); }
}  // namespace hutch::cli
