#include <algorithm>
#include <iostream>

#include "../command.hpp"
#include "../go_template.hpp"

namespace hutch::cli {
namespace {

std::string since(const std::string& t) {
  std::string up = human_ago(t);
  if (up.size() > 4 && up.compare(up.size() - 4, 4, " ago") == 0) up.resize(up.size() - 4);
  return up;
}

// docker's STATUS column: "Up 31 seconds (healthy)", "Exited (0) 5 seconds ago", "Created".
std::string status_text(const ContainerRecord& c) {
  const ContainerState& s = c.state;
  if (s.status == "running" || s.status == "paused") {
    std::string out = "Up " + since(s.started_at);
    if (s.status == "paused") out += " (Paused)";
    else if (s.health && s.health->status == "starting") out += " (health: starting)";
    else if (s.health && !s.health->status.empty()) out += " (" + s.health->status + ")";
    return out;
  }
  if (s.status == "restarting") return "Restarting (" + std::to_string(s.exit_code) + ") " + human_ago(s.finished_at);
  if (s.status == "exited") return "Exited (" + std::to_string(s.exit_code) + ") " + human_ago(s.finished_at);
  return "Created";
}

std::string health_of(const ContainerRecord& c) {
  if (!c.healthcheck) return "none";
  if (c.state.status != "running" || !c.state.health) return c.state.status == "running" ? "starting" : "none";
  return c.state.health->status;
}

// docker ps's row fields and their table headers: what --format names.
const std::map<std::string, std::string> kPsHeaders = {
    {"ID", "CONTAINER ID"}, {"Image", "IMAGE"},   {"Command", "COMMAND"}, {"CreatedAt", "CREATED AT"},
    {"RunningFor", "CREATED"}, {"Ports", "PORTS"}, {"State", "STATE"},     {"Status", "STATUS"},
    {"Names", "NAMES"},     {"Labels", "LABELS"}, {"Mounts", "MOUNTS"},   {"Networks", "NETWORKS"},
    {"Size", "SIZE"}};

// As docker, {{.Labels}} prints "a=b,c=d" and {{.Mounts}} "data,logs"; the row's own "Labels"
// and "Mounts" ({{json .}}) stay an object and an array.
const std::map<std::string, GoTemplate::RowMethod> kPsRowMethods = {
    {"Labels", [](const nlohmann::ordered_json& row) {
       std::string out;
       for (const auto& [k, v] : row.at("Labels").items()) out += (out.empty() ? "" : ",") + k + "=" + v.get<std::string>();
       return nlohmann::ordered_json(out);
     }},
    {"Mounts", [](const nlohmann::ordered_json& row) {
       std::string out;
       for (const auto& m : row.at("Mounts")) out += (out.empty() ? "" : ",") + m.get<std::string>();
       return nlohmann::ordered_json(out);
     }}};

struct Filter {
  std::string key, value;
};

bool matches(const ContainerRecord& c, const std::vector<Filter>& filters) {
  // docker: the same key given twice matches either value; different keys must all match.
  std::map<std::string, bool> by_key;
  for (const auto& f : filters) {
    bool ok = false;
    if (f.key == "name") {
      ok = c.name.find(f.value) != std::string::npos;
    } else if (f.key == "id") {
      ok = c.id.rfind(f.value, 0) == 0;
    } else if (f.key == "status") {
      ok = c.state.status == f.value;
    } else if (f.key == "label") {
      auto eq = f.value.find('=');
      auto it = c.labels.find(f.value.substr(0, eq));
      ok = it != c.labels.end() && (eq == std::string::npos || it->second == f.value.substr(eq + 1));
    } else if (f.key == "ancestor") {
      std::string v = f.value;
      std::string with_tag = v.find(':') == std::string::npos ? v + ":latest" : v;
      ok = c.image_id.rfind(v, 0) == 0 || c.image_id == v || c.image_name == v || c.image_name == with_tag ||
           c.image_name == "localhost/" + with_tag || (v.size() > 7 && c.image_id == v.substr(7));
    } else if (f.key == "health") {
      ok = health_of(c) == f.value;
    } else if (f.key == "exited") {
      ok = c.state.status == "exited" && std::to_string(c.state.exit_code) == f.value;
    }
    by_key[f.key] = by_key[f.key] || ok;
  }
  return std::all_of(by_key.begin(), by_key.end(), [](const auto& kv) { return kv.second; });
}

class PsCommand final : public Command {
 public:
  std::string name() const override { return "ps"; }
  std::string summary() const override { return "List containers"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description& o) override {
    o.add_options()("all,a", po::bool_switch(&all_), "all containers, not only running ones")(
        "quiet,q", po::bool_switch(&quiet_), "print only container IDs")(
        "no-trunc", po::bool_switch(&no_trunc_), "do not truncate IDs and commands")(
        "last,n", po::value<int>(&last_)->default_value(-1), "the N most recently created (any state)")(
        "latest,l", po::bool_switch(&latest_), "the most recently created (any state)")(
        "filter,f", po::value(&filters_)->composing(),
        "name=, id=, status=, label=KEY[=VALUE], ancestor=IMAGE, health=starting|healthy|unhealthy|none, exited=CODE")(
        "format", po::value(&format_), "a Go template ({{.ID}} {{.Names}} {{.Status}} ...), table TEMPLATE, or json");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch ps\" takes no arguments");
    // Parsed here: a bad template is a usage error before anything is listed.
    if (format_ == "table") format_ = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
    if (!format_.empty()) template_.emplace(format_, kPsHeaders, kPsRowMethods);
  }
  int run(CommandContext& ctx) override {
    static const std::set<std::string> keys = {"name", "id", "status", "label", "ancestor", "health", "exited"};
    static const std::set<std::string> statuses = {"created", "restarting", "running", "removing", "paused", "exited", "dead"};
    std::vector<Filter> filters;
    for (const auto& f : filters_) {
      auto eq = f.find('=');
      Filter fl{f.substr(0, eq), eq == std::string::npos ? "" : f.substr(eq + 1)};
      if (!keys.count(fl.key) || fl.value.empty())
        usage_error("--filter \"" + f + "\": expected KEY=VALUE with KEY one of name, id, status, label, ancestor, health, exited");
      if (fl.key == "status" && !statuses.count(fl.value))
        usage_error("--filter \"" + f + "\": status is one of created, restarting, running, removing, paused, exited, dead");
      filters.push_back(fl);
    }
    auto all = ctx.engine().list_containers();
    // Newest first, as docker lists them.
    std::stable_sort(all.begin(), all.end(), [](const ContainerRecord& a, const ContainerRecord& b) { return a.created > b.created; });
    int limit = latest_ ? 1 : last_;
    bool any_state = all_ || limit >= 0 || std::any_of(filters.begin(), filters.end(), [](const Filter& f) {
                       return f.key == "status" || f.key == "exited";
                     });
    std::vector<ContainerRecord> shown;
    for (const auto& c : all) {
      bool up = c.state.status == "running" || c.state.status == "paused" || c.state.status == "restarting";
      if (!any_state && !up) continue;
      if (!matches(c, filters)) continue;
      shown.push_back(c);
      if (limit >= 0 && static_cast<int>(shown.size()) >= limit) break;
    }
    if (quiet_) {
      for (const auto& c : shown) std::cout << (no_trunc_ ? c.id : c.id.substr(0, 12)) << "\n";
      return 0;
    }
    if (template_) {
      std::vector<nlohmann::ordered_json> rows;
      for (const auto& c : shown) rows.push_back(row(c));
      std::cout << template_->render(rows) << std::flush;
      return 0;
    }
    std::vector<std::vector<std::string>> table = {{"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"}};
    for (const auto& c : shown) {
      std::string cmd = command_of(c);
      if (!no_trunc_ && cmd.size() > 20) cmd = cmd.substr(0, 17) + "...";
      table.push_back({no_trunc_ ? c.id : c.id.substr(0, 12), c.image_name, "\"" + cmd + "\"", human_ago(c.created),
                       status_text(c), ports_of(c), c.name});
    }
    print_table(table);
    return 0;
  }

 private:
  static std::string command_of(const ContainerRecord& c) {
    std::string cmd;
    for (const auto& a : c.command) cmd += (cmd.empty() ? "" : " ") + a;
    return cmd;
  }
  static std::string ports_of(const ContainerRecord& c) {
    std::string out;
    // docker's words, for the ports as bound while it runs.
    if (c.state.status != "running" && c.state.status != "paused") return out;
    for (const auto& p : c.state.ports) out += (out.empty() ? "" : ", ") + port_display(p);
    return out;
  }
  static std::string networks_of(const ContainerRecord& c) {
    if (c.networks.empty()) return c.network;
    std::string out;
    for (const auto& n : c.networks) out += (out.empty() ? "" : ",") + n;
    return out;
  }
  nlohmann::ordered_json row(const ContainerRecord& c) const {
    std::string cmd = command_of(c);
    if (!no_trunc_ && cmd.size() > 20) cmd = cmd.substr(0, 17) + "...";
    nlohmann::ordered_json labels = nlohmann::ordered_json::object();
    for (const auto& [k, v] : c.labels) labels[k] = v;
    nlohmann::ordered_json mounts = nlohmann::ordered_json::array();
    for (const auto& v : c.volumes) mounts.push_back(v);
    return {{"ID", no_trunc_ ? c.id : c.id.substr(0, 12)},
            {"Image", c.image_name},
            {"Command", "\"" + cmd + "\""},
            {"CreatedAt", c.created},
            {"RunningFor", human_ago(c.created)},
            {"Ports", ports_of(c)},
            {"State", c.state.status},
            {"Status", status_text(c)},
            {"Names", c.name},
            {"Labels", labels},
            {"Mounts", mounts},
            {"Networks", networks_of(c)},
            {"Size", ""}};
  }

  bool all_ = false, quiet_ = false, no_trunc_ = false, latest_ = false;
  int last_ = -1;
  std::vector<std::string> filters_;
  std::string format_;
  std::optional<FormatOption> template_;
};

}  // namespace
std::unique_ptr<Command> make_ps_command() { return std::make_unique<PsCommand>(); }
}  // namespace hutch::cli
