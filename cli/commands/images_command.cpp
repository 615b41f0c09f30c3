#include <algorithm>
#include <iostream>
#include <set>

#include "../command.hpp"
#include "../go_template.hpp"
#include "hutch/image_ref.hpp"

namespace hutch::cli {
namespace {

// docker images's row fields and their table headers: what --format names.
const std::map<std::string, std::string> kImagesHeaders = {
    {"Repository", "REPOSITORY"}, {"Tag", "TAG"},              {"Digest", "DIGEST"}, {"ID", "IMAGE ID"},
    {"CreatedAt", "CREATED AT"},  {"CreatedSince", "CREATED"}, {"Size", "SIZE"}};

class ImagesCommand final : public Command {
 public:
  std::string name() const override { return "images"; }
  std::string summary() const override { return "List images in the local store"; }
  std::string usage() const override { return "[REPOSITORY[:TAG]]"; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description& o) override {
    o.add_options()("quiet,q", po::bool_switch(&quiet_), "print only image IDs")(
        "no-trunc", po::bool_switch(&no_trunc_), "do not truncate IDs")(
        "all,a", po::bool_switch(&all_), "all images (hutch keeps no intermediate images: same as without)")(
        "digests", po::bool_switch(&digests_), "show the manifest digest")(
        "format", po::value(&format_), "a Go template ({{.Repository}}:{{.Tag}} {{.ID}}), table TEMPLATE, or json");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() > 1) usage_error("\"hutch images\" takes at most one name to filter by");
    if (!a.empty()) filter_ = a[0];
    // Parsed here: a bad template is a usage error before the store is read.
    if (format_ == "table") format_ = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
    if (!format_.empty()) template_.emplace(format_, kImagesHeaders);
  }
  int run(CommandContext& ctx) override {
    auto images = ctx.engine().list_images();
    std::sort(images.begin(), images.end(), [](const ImageRecord& a, const ImageRecord& b) { return a.created > b.created; });
    std::vector<std::vector<std::string>> rows;
    std::vector<nlohmann::ordered_json> values;
    if (!quiet_) {
      if (digests_) rows.push_back({"REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"});
      else rows.push_back({"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"});
    }
    std::set<std::string> seen;
    for (const auto& img : images) {
      std::string id = no_trunc_ ? "sha256:" + img.id : img.id.substr(0, 12);
      std::vector<std::string> names = img.names.empty() ? std::vector<std::string>{"<none>:<none>"} : img.names;
      for (const auto& n : names) {
        // "host:port/name:tag", or "host/name@sha256:..." (pulled by digest: no tag).
        auto at = n.find('@');
        auto colon = n.rfind(':', at == std::string::npos ? std::string::npos : at);
        auto slash = n.rfind('/', at == std::string::npos ? std::string::npos : at);
        bool tagged = at == std::string::npos && colon != std::string::npos && (slash == std::string::npos || colon > slash);
        std::string repo = at != std::string::npos ? n.substr(0, at) : tagged ? n.substr(0, colon) : n;
        std::string tag = tagged ? n.substr(colon + 1) : "<none>";
        if (!filter_.empty() && filter_ != repo && filter_ != n && "localhost/" + filter_ != repo &&
            "localhost/" + filter_ != n)
          continue;
        if (quiet_) {
          if (seen.insert(id).second) rows.push_back({no_trunc_ ? id : img.id.substr(0, 12)});
          continue;
        }
        if (template_) {
          values.push_back({{"Repository", repo},
                            {"Tag", tag},
                            {"Digest", img.manifest_digest},
                            {"ID", id},
                            {"CreatedAt", img.created},
                            {"CreatedSince", human_ago(img.created)},
                            {"Size", human_size(img.size)}});
          continue;
        }
        if (digests_) rows.push_back({repo, tag, img.manifest_digest, id, human_ago(img.created), human_size(img.size)});
        else rows.push_back({repo, tag, id, human_ago(img.created), human_size(img.size)});
      }
    }
    if (template_ && !quiet_) {
      std::cout << template_->render(values) << std::flush;
      return 0;
    }
    print_table(rows);
    return 0;
  }

 private:
  bool quiet_ = false, no_trunc_ = false, all_ = false, digests_ = false;
  std::string filter_, format_;
  std::optional<FormatOption> template_;
};

}  // namespace
std::unique_ptr<Command> make_images_command() { return std::make_unique<ImagesCommand>(); }
}  // namespace hutch::cli
