// Housekeeping: system df, system prune, system check, image prune.
#include <iostream>

#include "../command.hpp"

namespace hutch::cli {
namespace {

std::string percent(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "";
  return " (" + std::to_string(part * 100 / whole) + "%)";
}

class SystemDfCommand final : public Command {
 public:
  std::string name() const override { return "system df"; }
  std::string summary() const override { return "Show how much disk images, containers and volumes take"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("verbose,v", po::bool_switch(&verbose_), "per image and per container");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch system df\" takes no arguments");
  }
  int run(CommandContext& ctx) override {
    DiskUsageReport r = ctx.engine().disk_usage();
    int active_images = 0, active_containers = 0;
    for (const auto& i : r.images) active_images += i.containers > 0;
    for (const auto& c : r.containers) active_containers += c.container.state.status == "running";
    int active_volumes = 0;
    for (const auto& v : r.volumes) active_volumes += v.containers > 0;
    if (!verbose_) {
      print_table({{"TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"},
                   {"Images", std::to_string(r.images.size()), std::to_string(active_images), compact_size(r.images_size),
                    compact_size(r.images_reclaimable) + percent(r.images_reclaimable, r.images_size)},
                   {"Containers", std::to_string(r.containers.size()), std::to_string(active_containers),
                    compact_size(r.containers_size),
                    compact_size(r.containers_reclaimable) + percent(r.containers_reclaimable, r.containers_size)},
                   {"Local Volumes", std::to_string(r.volumes.size()), std::to_string(active_volumes),
                    compact_size(r.volumes_size),
                    compact_size(r.volumes_reclaimable) + percent(r.volumes_reclaimable, r.volumes_size)}});
      return 0;
    }
    std::cout << "Images space usage:\n\n";
    std::vector<std::vector<std::string>> rows{
        {"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"}};
    for (const auto& i : r.images) {
      std::string repo = "<none>", tag = "<none>";
      if (!i.image.names.empty()) {
        const std::string& n = i.image.names.front();
        auto colon = n.rfind(':');
        repo = n.substr(0, colon);
        tag = colon == std::string::npos ? "" : n.substr(colon + 1);
      }
      rows.push_back({repo, tag, i.image.id.substr(0, 12), human_ago(i.image.created), compact_size(i.size),
                      compact_size(i.shared_size), compact_size(i.unique_size), std::to_string(i.containers)});
    }
    print_table(rows);
    std::cout << "\nContainers space usage:\n\n";
    rows = {{"CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"}};
    for (const auto& c : r.containers) {
      std::string cmd;
      for (const auto& a : c.container.command) cmd += (cmd.empty() ? "" : " ") + a;
      if (cmd.size() > 20) cmd = cmd.substr(0, 17) + "...";
      rows.push_back({c.container.id.substr(0, 12), c.container.image_name, "\"" + cmd + "\"",
                      std::to_string(c.container.volumes.size()), compact_size(c.size),
                      human_ago(c.container.created), c.container.state.status, c.container.name});
    }
    print_table(rows);
    std::cout << "\nLocal Volumes space usage:\n\n";
    rows = {{"VOLUME NAME", "LINKS", "SIZE"}};
    for (const auto& v : r.volumes) rows.push_back({v.volume.name, std::to_string(v.containers), compact_size(v.size)});
    print_table(rows);
    std::cout << "\nLayers on disk: " << compact_size(r.disk_bytes) << " (files shared between layers counted once)\n";
    return 0;
  }

 private:
  bool verbose_ = false;
};

// docker's prompt: the warning, then y/N; "Nothing removed." unless the answer is yes.
bool confirmed(const std::string& warning) {
  std::cout << warning;
  if (confirm("Are you sure you want to continue?")) return true;
  std::cout << "Nothing removed." << std::endl;
  return false;
}

void print_prune(const PruneReport& containers, const PruneReport& images, const std::vector<std::string>& volumes = {},
                 std::uint64_t volumes_reclaimed = 0) {
  std::string out;
  if (!containers.containers.empty()) {
    out += "Deleted Containers:\n";
    for (const auto& id : containers.containers) out += id + "\n";
    out += "\n";
  }
  if (!volumes.empty()) {
    out += "Deleted Volumes:\n";
    for (const auto& n : volumes) out += n + "\n";
    out += "\n";
  }
  if (!images.images.empty()) {
    out += "Deleted Images:\n";
    for (const auto& l : images.images) out += l + "\n";
    out += "\n";
  }
  out += "Total reclaimed space: " + compact_size(containers.reclaimed + images.reclaimed + volumes_reclaimed) + "\n";
  std::cout << out << std::flush;
}

class SystemPruneCommand final : public Command {
 public:
  std::string name() const override { return "system prune"; }
  std::string summary() const override {
    return "Remove stopped containers and dangling images (-a: every unused image; --volumes: unused volumes)";
  }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("all,a", po::bool_switch(&all_), "remove every image no container uses, not only dangling ones")(
        "force,f", po::bool_switch(&force_), "do not ask")(
        "volumes", po::bool_switch(&volumes_), "also remove every volume no container uses");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch system prune\" takes no arguments");
  }
  int run(CommandContext& ctx) override {
    if (!force_ && !confirmed(std::string("WARNING! This will remove:\n  - all stopped containers\n") +
                              (volumes_ ? "  - all volumes not used by at least one container\n" : "") +
                              (all_ ? "  - all images without at least one container associated to them\n"
                                    : "  - all dangling images\n")))
      return 0;
    PruneReport c = ctx.engine().prune_containers();
    std::vector<std::string> v;
    std::uint64_t v_reclaimed = 0;
    if (volumes_) v = ctx.engine().prune_volumes(&v_reclaimed);
    PruneReport i = ctx.engine().prune_images(all_);
    print_prune(c, i, v, v_reclaimed);
    return 0;
  }

 private:
  bool all_ = false, force_ = false, volumes_ = false;
};

class ImagePruneCommand final : public Command {
 public:
  std::string name() const override { return "image prune"; }
  std::string summary() const override { return "Remove dangling images (-a: every image no container uses)"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("all,a", po::bool_switch(&all_), "remove every image no container uses")(
        "force,f", po::bool_switch(&force_), "do not ask");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch image prune\" takes no arguments");
  }
  int run(CommandContext& ctx) override {
    if (!force_ && !confirmed(all_ ? "WARNING! This will remove all images without at least one container associated to them.\n"
                                   : "WARNING! This will remove all dangling images.\n"))
      return 0;
    print_prune({}, ctx.engine().prune_images(all_));
    return 0;
  }

 private:
  bool all_ = false, force_ = false;
};

class SystemCheckCommand final : public Command {
 public:
  std::string name() const override { return "system check"; }
  std::string summary() const override { return "Verify every blob, layer, image and container of the store (--repair: fix)"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("repair,r", po::bool_switch(&repair_), "remove or rebuild what is damaged")(
        "quick,q", po::bool_switch(&quick_), "skip the slow part: comparing every layer's files with its blob");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch system check\" takes no arguments");
  }
  int run(CommandContext& ctx) override {
    CheckReport r = ctx.engine().check_store(repair_, quick_);
    std::string out;
    for (const auto& p : r.problems) out += "problem: " + p + "\n";
    for (const auto& f : r.repairs) out += "repaired: " + f + "\n";
    if (r.problems.empty()) {
      std::cout << "no problems found\n" << std::flush;
      return 0;
    }
    std::cout << out << std::flush;
    if (repair_) {
      std::cout << r.problems.size() << " problem(s) found and repaired as above\n" << std::flush;
      return 0;
    }
    throw Error(Errc::kInvalidInput, std::to_string(r.problems.size()) +
                                         " problem(s) found in the store; run \"hutch system check --repair\" to fix them");
  }

 private:
  bool repair_ = false, quick_ = false;
};

}  // namespace
std::unique_ptr<Command> make_system_df_command() { return std::make_unique<SystemDfCommand>(); }
std::unique_ptr<Command> make_system_prune_command() { return std::make_unique<SystemPruneCommand>(); }
std::unique_ptr<Command> make_system_check_command() { return std::make_unique<SystemCheckCommand>(); }
std::unique_ptr<Command> make_image_prune_command() { return std::make_unique<ImagePruneCommand>(); }
}  // namespace hutch::cli
