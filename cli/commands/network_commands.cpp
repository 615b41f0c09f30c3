// User networks: network create, ls, inspect, rm, prune, connect, disconnect, and `hutch
// network` itself (the group's help). Docker's flags and docker's JSON.
#include <algorithm>
#include <iostream>

#include "../command.hpp"
#include "../go_template.hpp"

namespace hutch::cli {
namespace {

const std::map<std::string, std::string> kNetworkHeaders = {
    {"ID", "NETWORK ID"}, {"Name", "NAME"}, {"Driver", "DRIVER"}, {"Subnet", "SUBNET"}, {"Gateway", "GATEWAY"},
    {"Internal", "INTERNAL"}, {"Created", "CREATED"}, {"Labels", "LABELS"}};

nlohmann::ordered_json network_row(const NetworkInfo& n) {
  std::string labels;
  for (const auto& [k, v] : n.labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
  return {{"ID", n.id.empty() ? n.name : n.id.substr(0, 12)}, {"Name", n.name},      {"Driver", n.driver},
          {"Subnet", n.subnet},                              {"Gateway", n.gateway}, {"Internal", n.internal},
          {"Created", n.created},                            {"Labels", labels}};
}

class NetworkGroupCommand final : public Command {
 public:
  std::string name() const override { return "network"; }
  std::string summary() const override { return "Manage networks (create, ls, inspect, rm, prune, connect, disconnect)"; }
  std::string usage() const override { return "COMMAND"; }
  bool needs_user_namespace() const override { return false; }
  bool reports_only() const override { return true; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty())
      usage_error("unknown command \"network " + a[0] + "\"; the commands are create, ls, inspect, rm, prune, connect and disconnect");
  }
  int run(CommandContext&) override {
    std::cout << group_help("network", summary()) << std::flush;
    return 0;
  }
};

class NetworkCreateCommand final : public Command {
 public:
  std::string name() const override { return "network create"; }
  std::string summary() const override { return "Create a user network (the bridge backend)"; }
  std::string usage() const override { return "[OPTIONS] NAME"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("subnet", po::value(&req_.subnet), "the network's IPv4 subnet (default: the next free 10.89.N.0/24)")(
        "gateway", po::value(&req_.gateway), "the gateway's address in it (default: its first)")(
        "internal", po::bool_switch(&req_.internal), "no uplink: no outbound traffic, no published ports")(
        "label", po::value(&labels_)->composing(), "a label KEY=VALUE (repeatable)")(
        "driver,d", po::value(&driver_)->default_value("bridge"), "the driver (only bridge)")(
        "ignore", po::bool_switch(&ignore_), "if the network exists, print its name and change nothing");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 1) usage_error("\"hutch network create\" needs one network name");
    req_.name = a[0];
    if (driver_ != "bridge") usage_error("network driver \"" + driver_ + "\" is not supported; hutch's user networks are \"bridge\"");
    for (const auto& l : labels_) {
      auto eq = l.find('=');
      if (eq == 0) usage_error("--label \"" + l + "\": give KEY=VALUE");
      req_.labels[l.substr(0, eq)] = eq == std::string::npos ? "" : l.substr(eq + 1);
    }
  }
  int run(CommandContext& ctx) override {
    if (ignore_ && ctx.engine().inspect_network(req_.name)) {
      std::cout << req_.name << std::endl;
      return 0;
    }
    std::cout << ctx.engine().create_network(req_).name << std::endl;
    return 0;
  }

 private:
  NetworkCreateRequest req_;
  std::vector<std::string> labels_;
  std::string driver_;
  bool ignore_ = false;
};

class NetworkLsCommand final : public Command {
 public:
  std::string name() const override { return "network ls"; }
  std::vector<std::string> aliases() const override { return {"network list"}; }
  std::string summary() const override { return "List networks"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("quiet,q", po::bool_switch(&quiet_), "print only network names")(
        "no-trunc", po::bool_switch(&no_trunc_), "full network IDs")(
        "format", po::value(&format_), "a Go template: {{.ID}}, {{.Name}}, {{.Driver}}, {{.Subnet}}, {{.Gateway}}, {{json .}}, table ...");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch network ls\" takes no arguments");
    std::string table = "table {{.ID}}\t{{.Name}}\t{{.Driver}}";
    template_.emplace(quiet_ ? "{{.Name}}" : format_.empty() || format_ == "table" ? table : format_, kNetworkHeaders);
  }
  int run(CommandContext& ctx) override {
    std::vector<nlohmann::ordered_json> rows;
    for (const auto& n : ctx.engine().list_networks()) {
      auto row = network_row(n);
      if (no_trunc_ && !n.id.empty()) row["ID"] = n.id;
      rows.push_back(row);
    }
    std::cout << template_->render(rows) << std::flush;
    return 0;
  }

 private:
  bool quiet_ = false, no_trunc_ = false;
  std::string format_;
  std::optional<FormatOption> template_;
};

class NetworkInspectCommand final : public Command {
 public:
  std::string name() const override { return "network inspect"; }
  std::string summary() const override { return "Show networks as JSON (subnet, gateway, containers and their addresses)"; }
  std::string usage() const override { return "NAME..."; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("format,f", po::value(&format_), "a Go template over the JSON, e.g. '{{range .IPAM.Config}}{{.Subnet}}{{end}}'");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch network inspect\" needs at least one network name");
    names_ = a;
    if (!format_.empty() && format_ != "json") template_.emplace(format_);
  }
  int run(CommandContext& ctx) override {
    std::vector<nlohmann::ordered_json> found;
    auto print = [&] {
      if (template_) {
        std::cout << template_->render(found) << std::flush;
        return;
      }
      auto out = nlohmann::ordered_json::array();
      for (const auto& v : found) out.push_back(v);
      std::cout << out.dump(4) << std::endl;
    };
    try {
      for_each_name(names_, [&](const std::string& n) {
        auto j = ctx.engine().inspect_network(n);
        if (!j) throw Error(Errc::kNotFound, "no such network: " + n + " (see \"hutch network ls\")");
        found.push_back(nlohmann::ordered_json::parse(j->dump()));
      });
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

class NetworkRmCommand final : public Command {
 public:
  std::string name() const override { return "network rm"; }
  std::vector<std::string> aliases() const override { return {"network remove"}; }
  std::string summary() const override { return "Remove user networks"; }
  std::string usage() const override { return "NAME..."; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("force,f", po::bool_switch(&force_), "remove the containers on the network first");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch network rm\" needs at least one network name");
    names_ = a;
  }
  int run(CommandContext& ctx) override {
    for_each_name(names_, [&](const std::string& n) {
      ctx.engine().remove_network(n, force_);
      std::cout << n << std::endl;
    });
    return 0;
  }

 private:
  std::vector<std::string> names_;
  bool force_ = false;
};

class NetworkPruneCommand final : public Command {
 public:
  std::string name() const override { return "network prune"; }
  std::string summary() const override { return "Remove every user network no container is on"; }
  std::string usage() const override { return ""; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override { o.add_options()("force,f", po::bool_switch(&force_), "do not ask"); }
  void set_arguments(const std::vector<std::string>& a) override {
    if (!a.empty()) usage_error("\"hutch network prune\" takes no arguments");
  }
  int run(CommandContext& ctx) override {
    if (!force_) {
      std::cout << "WARNING! This will remove all custom networks not used by at least one container.\n";
      if (!confirm("Are you sure you want to continue?")) {
        std::cout << "Nothing removed." << std::endl;
        return 0;
      }
    }
    auto removed = ctx.engine().prune_networks();
    if (!removed.empty()) {
      std::string out = "Deleted Networks:\n";
      for (const auto& n : removed) out += n + "\n";
      std::cout << out << std::flush;
    }
    return 0;
  }

 private:
  bool force_ = false;
};

class NetworkConnectCommand final : public Command {
 public:
  std::string name() const override { return "network connect"; }
  std::string summary() const override { return "Connect a container to one more user network (also while it runs)"; }
  std::string usage() const override { return "[OPTIONS] NETWORK CONTAINER"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("alias", po::value(&aliases_)->composing(), "another name for the container on this network");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 2) usage_error("\"hutch network connect\" needs a network and a container");
    network_ = a[0], container_ = a[1];
  }
  int run(CommandContext& ctx) override {
    ctx.engine().connect_network(network_, container_, aliases_);
    return 0;
  }

 private:
  std::string network_, container_;
  std::vector<std::string> aliases_;
};

class NetworkDisconnectCommand final : public Command {
 public:
  std::string name() const override { return "network disconnect"; }
  std::string summary() const override { return "Disconnect a container from a user network"; }
  std::string usage() const override { return "[OPTIONS] NETWORK CONTAINER"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("force,f", po::bool_switch(&force_), "accepted for docker's sake; disconnecting never waits");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 2) usage_error("\"hutch network disconnect\" needs a network and a container");
    network_ = a[0], container_ = a[1];
  }
  int run(CommandContext& ctx) override {
    ctx.engine().disconnect_network(network_, container_);
    return 0;
  }

 private:
  std::string network_, container_;
  bool force_ = false;
};

}  // namespace

std::unique_ptr<Command> make_network_group_command() { return std::make_unique<NetworkGroupCommand>(); }
std::unique_ptr<Command> make_network_create_command() { return std::make_unique<NetworkCreateCommand>(); }
std::unique_ptr<Command> make_network_ls_command() { return std::make_unique<NetworkLsCommand>(); }
std::unique_ptr<Command> make_network_inspect_command() { return std::make_unique<NetworkInspectCommand>(); }
std::unique_ptr<Command> make_network_rm_command() { return std::make_unique<NetworkRmCommand>(); }
std::unique_ptr<Command> make_network_prune_command() { return std::make_unique<NetworkPruneCommand>(); }
std::unique_ptr<Command> make_network_connect_command() { return std::make_unique<NetworkConnectCommand>(); }
std::unique_ptr<Command> make_network_disconnect_command() { return std::make_unique<NetworkDisconnectCommand>(); }

}  // namespace hutch::cli
