#include "native_spec.hpp"

#include <sys/capability.h>
#include <sys/resource.h>

#include <map>

#include "hutch/error.hpp"
#include "seccomp_filter.hpp"

namespace hutch::runtime::native {
using nlohmann::json;

bool NativeSpec::has_namespace(const std::string& type) const {
  for (const auto& n : namespaces)
    if (n.type == type) return true;
  return false;
}

namespace {

std::vector<int> caps_from_names(const json& list, const std::string& field) {
  std::vector<int> out;
  if (!list.is_array()) return out;
  for (const auto& n : list) {
    std::string name = n.get<std::string>();
    std::string lower;
    for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    cap_value_t v;
    if (cap_from_name(lower.c_str(), &v) != 0)
      throw Error(Errc::kInvalidInput, "config.json: process.capabilities." + field + ": unknown capability \"" + name + "\"");
    out.push_back(v);
  }
  return out;
}

int rlimit_resource(const std::string& name) {
  static const std::map<std::string, int> table = {
      {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK}};
  auto it = table.find(name);
  if (it == table.end()) throw Error(Errc::kInvalidInput, "config.json: process.rlimits: unknown type \"" + name + "\"");
  return it->second;
}

std::vector<IdMapping> mappings(const json& list) {
  std::vector<IdMapping> out;
  if (!list.is_array()) return out;
  for (const auto& m : list)
    out.push_back({m.at("containerID").get<unsigned long>(), m.at("hostID").get<unsigned long>(),
                   m.at("size").get<unsigned long>()});
  return out;
}

}  // namespace

NativeSpec parse_spec(const json& c, const std::filesystem::path& bundle) {
  NativeSpec s;
  try {
    const json& p = c.at("process");
    s.args = p.at("args").get<std::vector<std::string>>();
    if (s.args.empty()) throw Error(Errc::kInvalidInput, "config.json: process.args is empty");
    s.env = p.value("env", std::vector<std::string>{});
    s.cwd = p.value("cwd", "/");
    if (p.contains("user")) {
      s.uid = p["user"].value("uid", 0u);
      s.gid = p["user"].value("gid", 0u);
      s.additional_gids = p["user"].value("additionalGids", std::vector<gid_t>{});
    }
    if (p.contains("capabilities")) {
      const json& caps = p["capabilities"];
      s.cap_bounding = caps_from_names(caps.value("bounding", json::array()), "bounding");
      s.cap_effective = caps_from_names(caps.value("effective", json::array()), "effective");
      s.cap_permitted = caps_from_names(caps.value("permitted", json::array()), "permitted");
      s.cap_inheritable = caps_from_names(caps.value("inheritable", json::array()), "inheritable");
      s.cap_ambient = caps_from_names(caps.value("ambient", json::array()), "ambient");
    }
    for (const auto& r : p.value("rlimits", json::array()))
      s.rlimits.push_back({rlimit_resource(r.at("type").get<std::string>()), r.at("soft").get<unsigned long long>(),
                           r.at("hard").get<unsigned long long>()});
    s.no_new_privileges = p.value("noNewPrivileges", false);
    s.terminal = p.value("terminal", false);
    if (p.contains("oomScoreAdj")) {
      s.has_oom_score_adj = true;
      s.oom_score_adj = p["oomScoreAdj"].get<int>();
    }
    std::filesystem::path root = c.at("root").at("path").get<std::string>();
    s.root = root.is_absolute() ? root : bundle / root;
    s.root_readonly = c["root"].value("readonly", false);
    s.hostname = c.value("hostname", "");
    for (const auto& m : c.value("mounts", json::array()))
      s.mounts.push_back({m.at("destination").get<std::string>(), m.value("type", ""), m.value("source", ""),
                          m.value("options", std::vector<std::string>{})});
    if (c.contains("linux")) {
      const json& l = c["linux"];
      for (const auto& n : l.value("namespaces", json::array()))
        s.namespaces.push_back({n.at("type").get<std::string>(), n.value("path", "")});
      s.uid_mappings = mappings(l.value("uidMappings", json::array()));
      s.gid_mappings = mappings(l.value("gidMappings", json::array()));
      s.masked_paths = l.value("maskedPaths", std::vector<std::string>{});
      s.readonly_paths = l.value("readonlyPaths", std::vector<std::string>{});
      if (l.contains("seccomp") && !l["seccomp"].is_null()) {
        s.seccomp = l["seccomp"];
        check_seccomp(s.seccomp);
      }
    }
  } catch (const json::exception& e) {
    throw Error(Errc::kInvalidInput, std::string("config.json is not a valid OCI runtime spec: ") + e.what());
  }
  return s;
}

}  // namespace hutch::runtime::native
