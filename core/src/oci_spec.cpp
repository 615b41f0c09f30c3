#include "hutch/oci_spec.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "hutch/error.hpp"
#include "hutch/paths.hpp"

namespace hutch {
namespace fs = std::filesystem;
using nlohmann::json;

ImageConfig parse_image_config(const json& oci_config) {
  ImageConfig c;
  if (!oci_config.contains("config") || !oci_config["config"].is_object()) return c;
  const json& j = oci_config["config"];
  auto strings = [&](const char* key) {
    std::vector<std::string> v;
    if (j.contains(key) && j[key].is_array())
      for (const auto& e : j[key])
        if (e.is_string()) v.push_back(e.get<std::string>());
    return v;
  };
  c.env = strings("Env");
  c.entrypoint = strings("Entrypoint");
  c.cmd = strings("Cmd");
  c.working_dir = j.value("WorkingDir", "");
  c.user = j.value("User", "");
  c.stop_signal = j.value("StopSignal", "");
  return c;
}

namespace {

// Reads a file of the image beneath its root: a symlinked /etc/passwd cannot lead outside.
std::string read_image_file(const fs::path& rootfs, const std::string& rel) {
  int root = ::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return "";
  struct open_how how {};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how);
  ::close(root);
  if (fd < 0) return "";
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(static_cast<int>(fd), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(static_cast<int>(fd));
  return out;
}

std::vector<std::vector<std::string>> colon_records(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::string f;
    std::istringstream ls(line);
    while (std::getline(ls, f, ':')) fields.push_back(f);
    if (!line.empty() && line.back() == ':') fields.push_back("");
    out.push_back(fields);
  }
  return out;
}

bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

}  // namespace

ProcessUser resolve_user(const fs::path& rootfs, const std::string& spec) {
  ProcessUser u;
  std::string user = spec.empty() ? "0" : spec, group;
  if (auto colon = user.find(':'); colon != std::string::npos) {
    group = user.substr(colon + 1);
    user = user.substr(0, colon);
  }
  auto passwd = colon_records(read_image_file(rootfs, "etc/passwd"));
  auto groups = colon_records(read_image_file(rootfs, "etc/group"));
  std::string user_name;
  bool found = false;
  for (const auto& p : passwd) {
    if (p.size() < 4) continue;
    if ((all_digits(user) && p[2] == user) || p[0] == user) {
      user_name = p[0];
      u.uid = static_cast<uid_t>(std::stoul(p[2]));
      u.gid = all_digits(p[3]) ? static_cast<gid_t>(std::stoul(p[3])) : 0;
      if (p.size() > 5 && !p[5].empty()) u.home = p[5];
      found = true;
      break;
    }
  }
  if (!found) {
    if (!all_digits(user))
      throw Error(Errc::kNotFound, "unable to find user " + user + ": no matching entries in the image's /etc/passwd");
    // A uid the image does not know: group 0 unless one is given, as docker does.
    u.uid = static_cast<uid_t>(std::stoul(user));
    u.gid = 0;
  }
  if (!group.empty()) {
    if (all_digits(group)) {
      u.gid = static_cast<gid_t>(std::stoul(group));
    } else {
      bool g = false;
      for (const auto& r : groups)
        if (r.size() >= 3 && r[0] == group && all_digits(r[2])) {
          u.gid = static_cast<gid_t>(std::stoul(r[2]));
          g = true;
        }
      if (!g) throw Error(Errc::kNotFound, "unable to find group " + group + ": no matching entries in the image's /etc/group");
    }
  }
  // Supplementary groups: every group of the image that lists the user as a member.
  if (!user_name.empty())
    for (const auto& r : groups) {
      if (r.size() < 4 || !all_digits(r[2])) continue;
      std::istringstream members(r[3]);
      std::string m;
      while (std::getline(members, m, ','))
        if (m == user_name) {
          gid_t gid = static_cast<gid_t>(std::stoul(r[2]));
          if (gid != u.gid) u.additional_gids.push_back(gid);
        }
    }
  return u;
}

std::vector<std::string> read_env_file(const fs::path& file) {
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error& e) {
    throw Error(Errc::kInvalidInput, std::string("cannot read env file: ") + e.what());
  }
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    line = line.substr(first);
    if (line[0] == '=')
      throw Error(Errc::kInvalidInput, file.string() + ":" + std::to_string(n) + ": a variable needs a name before '='");
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> merge_env(const std::vector<std::string>& image_env, const std::vector<std::string>& overrides,
                                   const std::string& hostname, const std::string& home, bool tty) {
  std::vector<std::string> env;
  auto set = [&](const std::string& kv) {
    auto eq = kv.find('=');
    std::string key = kv.substr(0, eq);
    for (auto& e : env)
      if (e.compare(0, key.size() + 1, key + "=") == 0) {
        e = kv;
        return;
      }
    env.push_back(kv);
  };
  auto has = [&](const std::string& key) {
    for (const auto& e : env)
      if (e.compare(0, key.size() + 1, key + "=") == 0) return true;
    return false;
  };
  for (const auto& e : image_env) set(e);
  if (!has("PATH")) set(std::string("PATH=") + kDefaultPath);
  if (tty && !has("TERM")) set("TERM=xterm");
  set("HOSTNAME=" + hostname);
  if (!has("HOME")) set("HOME=" + home);
  for (const auto& o : overrides) {
    if (o.empty()) continue;
    if (o.find('=') == std::string::npos) {
      if (const char* v = std::getenv(o.c_str())) set(o + "=" + v);
      continue;
    }
    set(o);
  }
  return env;
}

json generate_spec(const SpecInputs& in) {
  static const std::vector<std::string> kDefaultCaps = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",     "CAP_MKNOD",
      "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",           "CAP_SETFCAP",    "CAP_SETPCAP",
      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",     "CAP_AUDIT_WRITE"};
  json caps_for_user = in.user.uid == 0 ? json(kDefaultCaps) : json::array();
  struct rlimit nofile {};
  getrlimit(RLIMIT_NOFILE, &nofile);
  json process = {
      {"terminal", in.terminal},
      {"user", {{"uid", in.user.uid}, {"gid", in.user.gid}}},
      {"args", in.args},
      {"env", in.env},
      {"cwd", in.cwd.empty() ? "/" : in.cwd},
      {"capabilities",
       {{"bounding", kDefaultCaps},
        {"effective", caps_for_user},
        {"permitted", caps_for_user},
        {"inheritable", json::array()},
        {"ambient", json::array()}}},
      {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", nofile.rlim_max}, {"soft", nofile.rlim_max}}})},
      {"noNewPrivileges", false}};
  if (!in.user.additional_gids.empty()) process["user"]["additionalGids"] = in.user.additional_gids;

  json mounts = json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}, {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"},
       {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
      {{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"source", "shm"},
       {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      {{"destination", "/dev/mqueue"}, {"type", "mqueue"}, {"source", "mqueue"}, {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"}, {"options", {"nosuid", "noexec", "nodev", "ro"}}},
  });
  for (const auto& [dest, src] : in.file_binds)
    mounts.push_back({{"destination", dest}, {"type", "bind"}, {"source", src.string()}, {"options", {"rbind", "rprivate"}}});

  json namespaces = json::array({{{"type", "pid"}}, {{"type", "ipc"}}, {{"type", "uts"}}, {{"type", "mount"}},
                                 {{"type", "cgroup"}}});
  if (in.network.new_netns) namespaces.push_back({{"type", "network"}});

  return {{"ociVersion", "1.0.2"},
          {"process", process},
          {"root", {{"path", in.rootfs.string()}, {"readonly", in.read_only}}},
          {"hostname", in.hostname},
          {"mounts", mounts},
          {"linux",
           {{"namespaces", namespaces},
            {"maskedPaths",
             {"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
              "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}},
            {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}}}}};
}

}  // namespace hutch
