// Named volumes: volume create, ls, inspect, rm, prune, and `hutch volume` itself (the group's help).
#include <algorithm>
#include <iostream>
#include <regex>
#include <set>

#include "../command.hpp"
#include "../go_template.hpp"

namespace hutch::cli {
namespace {

// KEY=VALUE (or KEY alone, an empty value, when `value_optional`) of --label and --opt.
std::map<std::string, std::string> key_values(const std::vector<std::string>& items, const std::string& flag,
                                              bool value_optional) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    auto eq = item.find('=');
    std::string key = item.substr(0, eq);
    if (key.empty() || (eq == std::string::npos && !value_optional))
      usage_error(flag + " \"" + item + "\": give KEY=VALUE");
    out[key] = eq == std::string::npos ? "" : item.substr(eq + 1);
  }
  return out;
}

// What inspect prints, podman's and docker's keys, in podman's order.
nlohmann::ordered_json volume_json(const VolumeRecord& v) {
  return nlohmann::ordered_json{{"Name", v.name},
              {"Driver", v.driver},
              {"Mountpoint", v.mountpoint.string()},
              {"CreatedAt", v.created},
              {"Labels", v.labels},
              {"Scope", "local"},
              {"Options", v.options}};
}

const std::map<std::string, std::string> kVolumeHeaders = {
    {"Name", "VOLUME NAME"}, {"Driver", "DRIVER"},    {"Mountpoint", "MOUNTPOINT"}, {"Scope", "SCOPE"},
    {"CreatedAt", "CREATED"}, {"Labels", "LABELS"}, {"Options", "OPTIONS"}};

// A volume's row for --format: its inspect JSON, whose labels and options print as docker's
// volume ls prints them ({{.Labels}}: "a=b,c=d"), while {{json .}} keeps them objects.
std::string joined_pairs(const nlohmann::ordered_json& m) {
  std::string out;
  for (const auto& [k, v] : m.items()) out += (out.empty() ? "" : ",") + k + "=" + v.get<std::string>();
  return out;
}
const std::map<std::string, GoTemplate::RowMethod> kVolumeRowMethods = {
    {"Labels", [](const nlohmann::ordered_json& row) { return nlohmann::ordered_json(joined_pairs(row.at("Labels"))); }},
    {"Options", [](const nlohmann::ordered_json& row) { return nlohmann::ordered_json(joined_pairs(row.at("Options"))); }}};

// A volume ls row has docker's row fields ({{.Labels}}: "a=b"); volume inspect's value is the
// volume's JSON itself, as docker's ({{.Labels}}: map[a:b], {{range $k, $v := .Labels}}).
FormatOption listing_format(const std::string& format) { return FormatOption(format, kVolumeHeaders, kVolumeRowMethods); }

std::string render_volumes(const FormatOption& f, const std::vector<VolumeRecord>& volumes) {
  std::vector<nlohmann::ordered_json> rows;
  for (const auto& v : volumes) rows.push_back(volume_json(v));
  return f.render(rows);
}

class VolumeGroupCommand final : public Command {
 public:
  std::string name() const override { return "volume"; }
  std::string summary() const override { return "Manage named volumes (create, ls, inspect, rm, prune)"; }
  std::string usage() const override { return "COMMAND"; }
  bool needs_user_namespace() const override { return false; }
  bool reports_only() const override { return true; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty())
      usage_error("unknown command \"volume " + a[0] + "\"; the commands are create, ls, inspect, rm and prune");
  }
  int run(CommandContext&) override {
    std::cout << group_help("volume", summary()) << std::flush;
    return 0;
  }
};

class VolumeCreateCommand final : public Command {
 public:
  std::string name() const override { return "volume create"; }
  std::string summary() const override { return "Create a volume (a random name when none is given)"; }
  std::string usage() const override { return "[NAME]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("label,l", po::value(&labels_)->composing(), "a label KEY=VALUE (repeatable)")(
        "opt,o", po::value(&opts_)->composing(), "a driver option KEY=VALUE (repeatable; kept, shown by inspect)")(
        "driver,d", po::value(&driver_)->default_value("local"), "the volume driver (only local)")(
        "ignore", po::bool_switch(&ignore_), "if the volume exists, print its name and change nothing");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() > 1) usage_error("\"hutch volume create\" takes at most one name");
    if (!a.empty()) name_ = a[0];
    if (driver_ != "local") usage_error("volume driver \"" + driver_ + "\" is not supported; hutch has only \"local\"");
  }
  int run(CommandContext& ctx) override {
    VolumeRecord v = ctx.engine().create_volume(name_, key_values(labels_, "--label", true),
                                                key_values(opts_, "--opt", false), ignore_);
    std::cout << v.name << std::endl;
    return 0;
  }

 private:
  std::vector<std::string> labels_, opts_;
  std::string driver_, name_;
  bool ignore_ = false;
};

// --filter of volume ls: name (a regular expression searched in the name, as docker's),
// label=KEY or label=KEY=VALUE (all must match), dangling=true|false, driver.
class VolumeFilter {
 public:
  explicit VolumeFilter(const std::vector<std::string>& filters) {
    for (const auto& f : filters) {
      auto eq = f.find('=');
      if (eq == std::string::npos) usage_error("--filter \"" + f + "\": give KEY=VALUE (name, label, dangling or driver)");
      std::string key = f.substr(0, eq), value = f.substr(eq + 1);
      if (key == "name") names_.push_back(value);
      else if (key == "label") labels_.push_back(value);
      else if (key == "driver") drivers_.push_back(value);
      else if (key == "dangling") {
        if (value == "true" || value == "1") dangling_ = true;
        else if (value == "false" || value == "0") dangling_ = false;
        else usage_error("--filter \"" + f + "\": dangling is true or false");
      } else {
        usage_error("--filter \"" + f + "\": unknown filter \"" + key + "\"; the filters are name, label, dangling and driver");
      }
    }
  }
  bool needs_users() const { return dangling_.has_value(); }
  bool matches(const VolumeRecord& v, const std::set<std::string>& used) const {
    if (!names_.empty() && std::none_of(names_.begin(), names_.end(), [&](const std::string& n) { return name_matches(n, v.name); }))
      return false;
    if (!drivers_.empty() && std::find(drivers_.begin(), drivers_.end(), v.driver) == drivers_.end()) return false;
    for (const auto& l : labels_) {
      auto eq = l.find('=');
      auto it = v.labels.find(l.substr(0, eq));
      if (it == v.labels.end() || (eq != std::string::npos && it->second != l.substr(eq + 1))) return false;
    }
    if (dangling_ && *dangling_ == (used.count(v.name) > 0)) return false;
    return true;
  }

 private:
  static bool name_matches(const std::string& pattern, const std::string& name) {
    try {
      return std::regex_search(name, std::regex(pattern));
    } catch (const std::regex_error&) {
      return name.find(pattern) != std::string::npos;
    }
  }
  std::vector<std::string> names_, labels_, drivers_;
  std::optional<bool> dangling_;
};

class VolumeLsCommand final : public Command {
 public:
  std::string name() const override { return "volume ls"; }
  std::vector<std::string> aliases() const override { return {"volume list"}; }
  std::string summary() const override { return "List volumes"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("quiet,q", po::bool_switch(&quiet_), "print only volume names")(
        "filter,f", po::value(&filters_)->composing(),
        "name=REGEX, label=KEY[=VALUE], dangling=true|false, driver=local (repeatable)")(
        "format", po::value(&format_), "json (one object a line), or a Go template: {{.Name}}, {{.Driver}}, "
                                       "{{.Mountpoint}}, {{.Scope}}, {{.CreatedAt}}, {{.Labels}}, {{json .}}, table ...");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch volume ls\" takes no arguments; filter with --filter name=NAME");
    if (quiet_ && !format_.empty()) usage_error("--quiet and --format cannot be used together");
    filter_.emplace(filters_);
    std::string table = "table {{.Driver}}\t{{.Name}}";
    template_.emplace(listing_format(quiet_ ? "{{.Name}}" : format_.empty() || format_ == "table" ? table : format_));
  }
  int run(CommandContext& ctx) override {
    auto volumes = ctx.engine().list_volumes();
    std::set<std::string> used;
    if (filter_->needs_users())
      for (const auto& c : ctx.engine().list_containers()) used.insert(c.volumes.begin(), c.volumes.end());
    std::vector<VolumeRecord> shown;
    for (const auto& v : volumes)
      if (filter_->matches(v, used)) shown.push_back(v);
    std::cout << render_volumes(*template_, shown) << std::flush;
    return 0;
  }

 private:
  bool quiet_ = false;
  std::vector<std::string> filters_;
  std::string format_;
  std::optional<VolumeFilter> filter_;
  std::optional<FormatOption> template_;
};

class VolumeInspectCommand final : public Command {
 public:
  std::string name() const override { return "volume inspect"; }
  std::string summary() const override { return "Show volumes as JSON (name, driver, mountpoint, labels, options)"; }
  std::string usage() const override { return "NAME..."; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("format,f", po::value(&format_), "a Go template (as volume ls --format) instead of the JSON array");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch volume inspect\" needs at least one volume name");
    names_ = a;
    if (!format_.empty() && format_ != "json") template_.emplace(format_);
  }
  int run(CommandContext& ctx) override {
    std::vector<VolumeRecord> found;
    auto print = [&] {
      if (template_) {
        std::cout << render_volumes(*template_, found) << std::flush;
        return;
      }
      auto out = nlohmann::ordered_json::array();
      for (const auto& v : found) out.push_back(volume_json(v));
      std::cout << out.dump(4) << std::endl;
    };
    try {
      for_each_name(names_, [&](const std::string& n) { found.push_back(ctx.engine().inspect_volume(n)); });
    } catch (const Error&) {
      if (!found.empty()) print();
      throw;
    }
    print();
    return 0;
  }

 private:
  std::vector<std::string> names_;
  std::string format_;
  std::optional<FormatOption> template_;
};

class VolumeRmCommand final : public Command {
 public:
  std::string name() const override { return "volume rm"; }
  std::vector<std::string> aliases() const override { return {"volume remove"}; }
  std::string summary() const override { return "Remove volumes (-f: and the containers that use them)"; }
  std::string usage() const override { return "NAME..."; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("force,f", po::bool_switch(&force_), "remove the containers that use the volume first");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch volume rm\" needs at least one volume name");
    names_ = a;
  }
  int run(CommandContext& ctx) override {
    for_each_name(names_, [&](const std::string& n) {
      ctx.engine().remove_volume(n, force_);
      std::cout << n << std::endl;
    });
    return 0;
  }

 private:
  std::vector<std::string> names_;
  bool force_ = false;
};

class VolumePruneCommand final : public Command {
 public:
  std::string name() const override { return "volume prune"; }
  std::string summary() const override { return "Remove every volume no container uses"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("force,f", po::bool_switch(&force_), "do not ask");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch volume prune\" takes no arguments");
  }
  int run(CommandContext& ctx) override {
    if (!force_) {
      std::cout << "WARNING! This will remove all volumes not used by at least one container.\n";
      if (!confirm("Are you sure you want to continue?")) {
        std::cout << "Nothing removed." << std::endl;
        return 0;
      }
    }
    std::uint64_t reclaimed = 0;
    auto removed = ctx.engine().prune_volumes(&reclaimed);
    std::string out;
    if (!removed.empty()) {
      out += "Deleted Volumes:\n";
      for (const auto& n : removed) out += n + "\n";
      out += "\n";
    }
    out += "Total reclaimed space: " + compact_size(reclaimed) + "\n";
    std::cout << out << std::flush;
    return 0;
  }

 private:
  bool force_ = false;
};

}  // namespace
std::unique_ptr<Command> make_volume_group_command() { return std::make_unique<VolumeGroupCommand>(); }
std::unique_ptr<Command> make_volume_create_command() { return std::make_unique<VolumeCreateCommand>(); }
std::unique_ptr<Command> make_volume_ls_command() { return std::make_unique<VolumeLsCommand>(); }
std::unique_ptr<Command> make_volume_inspect_command() { return std::make_unique<VolumeInspectCommand>(); }
std::unique_ptr<Command> make_volume_rm_command() { return std::make_unique<VolumeRmCommand>(); }
std::unique_ptr<Command> make_volume_prune_command() { return std::make_unique<VolumePruneCommand>(); }
}  // namespace hutch::cli
