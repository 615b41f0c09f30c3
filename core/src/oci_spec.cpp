#include "hutch/oci_spec.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "hutch/error.hpp"
#include "hutch/paths.hpp"
#include "hutch/runtime.hpp"
#include "hutch/seccomp.hpp"

namespace hutch {
namespace fs = std::filesystem;
using nlohmann::json;

json read_bundle_config(const fs::path& bundle) {
  try {
    return json::parse(read_file(bundle / "config.json"));
  } catch (const json::exception& e) {
    throw Error(Errc::kInvalidInput, (bundle / "config.json").string() + " is not valid JSON: " + e.what());
  }
}

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

gid_t resolve_group(const fs::path& rootfs, const std::string& group) {
  if (all_digits(group)) return static_cast<gid_t>(std::stoul(group));
  for (const auto& r : colon_records(read_image_file(rootfs, "etc/group")))
    if (r.size() >= 3 && r[0] == group && all_digits(r[2])) return static_cast<gid_t>(std::stoul(r[2]));
  throw Error(Errc::kNotFound, "--group-add " + group + ": no such group in the image's /etc/group (give a number instead)");
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

namespace {

const std::vector<std::string> kDefaultCaps = {
    "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER",           "CAP_MKNOD",      "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID",       "CAP_SETFCAP", "CAP_SETPCAP",          "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL",     "CAP_AUDIT_WRITE"};

std::string cap_name(std::string c) {
  std::transform(c.begin(), c.end(), c.begin(), ::toupper);
  if (c.rfind("CAP_", 0) != 0) c = "CAP_" + c;
  return c;
}

std::string rlimit_name(const std::string& docker_name) {
  std::string n = docker_name;
  std::transform(n.begin(), n.end(), n.begin(), ::toupper);
  return "RLIMIT_" + n;
}

json mount(const std::string& dest, const std::string& type, const std::string& source,
           const std::vector<std::string>& options) {
  return {{"destination", dest}, {"type", type}, {"source", source}, {"options", options}};
}

// The device node behind a --device, as linux.devices wants it.
json device_entry(const DeviceRequest& d) {
  struct stat st {};
  if (::stat(d.host.c_str(), &st) != 0)
    throw Error(Errc::kInvalidInput, "--device " + d.host.string() + ": " + std::strerror(errno));
  if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
    throw Error(Errc::kInvalidInput, "--device " + d.host.string() + " is not a device node");
  return {{"path", d.container.empty() ? d.host.string() : d.container},
          {"type", S_ISCHR(st.st_mode) ? "c" : "b"},
          {"major", major(st.st_rdev)},
          {"minor", minor(st.st_rdev)},
          {"fileMode", st.st_mode & 07777},
          {"uid", 0},
          {"gid", 0}};
}

}  // namespace

const std::vector<std::string>& default_capabilities() { return kDefaultCaps; }

const std::vector<std::string>& all_capabilities() {
  static const std::vector<std::string> all = {
      "CAP_CHOWN",           "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",          "CAP_FSETID",
      "CAP_KILL",            "CAP_SETGID",       "CAP_SETUID",          "CAP_SETPCAP",         "CAP_LINUX_IMMUTABLE",
      "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",     "CAP_NET_RAW",         "CAP_IPC_LOCK",
      "CAP_IPC_OWNER",       "CAP_SYS_MODULE",   "CAP_SYS_RAWIO",       "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
      "CAP_SYS_PACCT",       "CAP_SYS_ADMIN",    "CAP_SYS_BOOT",        "CAP_SYS_NICE",        "CAP_SYS_RESOURCE",
      "CAP_SYS_TIME",        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",         "CAP_LEASE",           "CAP_AUDIT_WRITE",
      "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",      "CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",       "CAP_SYSLOG",
      "CAP_WAKE_ALARM",      "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",     "CAP_PERFMON",         "CAP_BPF",
      "CAP_CHECKPOINT_RESTORE"};
  return all;
}

namespace {

// The capabilities this process may still pass on (its bounding set); a container cannot
// get more than its runtime has (this host's root may lack some, rootless hutch has all).
bool in_bounding_set(const std::string& cap) {
  const auto& all = all_capabilities();
  auto it = std::find(all.begin(), all.end(), cap);
  if (it == all.end()) return false;
  int r = prctl(PR_CAPBSET_READ, static_cast<unsigned long>(it - all.begin()), 0, 0, 0);
  return r != 0;  // 1, or -1 on a kernel that does not know it: let the runtime say
}

}  // namespace

std::vector<std::string> container_capabilities(bool privileged, const std::vector<std::string>& add,
                                                const std::vector<std::string>& drop) {
  std::vector<std::string> all;
  for (const auto& c : all_capabilities())
    if (in_bounding_set(c)) all.push_back(c);
  auto known = [&](const std::string& c, const char* flag) {
    if (c == "CAP_ALL") return;
    const auto& known_caps = all_capabilities();
    if (std::find(known_caps.begin(), known_caps.end(), c) == known_caps.end())
      throw Error(Errc::kUsage, std::string(flag) + " " + c.substr(4) + ": no such capability (see capabilities(7); ALL means every one)");
    if (std::string(flag) == "--cap-add" && std::find(all.begin(), all.end(), c) == all.end())
      throw Error(Errc::kUsage, std::string(flag) + " " + c.substr(4) + ": hutch itself does not have it (not in its bounding set), so no container can");
  };
  std::vector<std::string> caps;
  for (const auto& c : privileged ? all : kDefaultCaps)
    if (in_bounding_set(c)) caps.push_back(c);
  bool drop_all = false;
  for (const auto& d : drop) {
    std::string c = cap_name(d);
    known(c, "--cap-drop");
    if (c == "CAP_ALL") drop_all = true;
  }
  if (drop_all) caps.clear();
  for (const auto& a : add) {
    std::string c = cap_name(a);
    known(c, "--cap-add");
    if (c == "CAP_ALL") caps = all;
    else if (std::find(caps.begin(), caps.end(), c) == caps.end()) caps.push_back(c);
  }
  // Drops after adds, as docker: "--cap-add ALL --cap-drop NET_RAW" keeps all but one.
  for (const auto& d : drop) {
    std::string c = cap_name(d);
    if (c != "CAP_ALL") caps.erase(std::remove(caps.begin(), caps.end(), c), caps.end());
  }
  return caps;
}

json generate_spec(const SpecInputs& in) {
  std::vector<std::string> caps = container_capabilities(in.privileged, in.cap_add, in.cap_drop);
  // A non-root user starts with none in effect, as with docker; the bounding set still limits
  // what setuid binaries and file capabilities can give.
  json caps_for_user = in.user.uid == 0 ? json(caps) : json::array();
  struct rlimit nofile {};
  getrlimit(RLIMIT_NOFILE, &nofile);
  json rlimits = json::array();
  bool nofile_set = false;
  for (const auto& u : in.ulimits) {
    rlimits.push_back({{"type", rlimit_name(u.name)}, {"hard", u.hard}, {"soft", u.soft}});
    nofile_set |= u.name == "nofile";
  }
  if (!nofile_set) rlimits.push_back({{"type", "RLIMIT_NOFILE"}, {"hard", nofile.rlim_max}, {"soft", nofile.rlim_max}});

  std::vector<std::string> args = in.args;
  if (!in.init_binary.empty()) args.insert(args.begin(), {"/run/hutch-init", "--"});
  json process = {
      {"terminal", in.terminal},
      {"user", {{"uid", in.user.uid}, {"gid", in.user.gid}}},
      {"args", args},
      {"env", in.env},
      {"cwd", in.cwd.empty() ? "/" : in.cwd},
      {"capabilities",
       {{"bounding", caps},
        {"effective", caps_for_user},
        {"permitted", caps_for_user},
        {"inheritable", json::array()},
        {"ambient", json::array()}}},
      {"rlimits", rlimits},
      {"noNewPrivileges", in.no_new_privileges}};
  if (!in.user.additional_gids.empty()) process["user"]["additionalGids"] = in.user.additional_gids;
  if (in.oom_score_adj) process["oomScoreAdj"] = *in.oom_score_adj;

  // The kernel lets only the owner of a PID (network) namespace mount a proc (sys) for it:
  // sharing the host's, bind-mount the host's instead.
  json proc = in.host_pid ? mount("/proc", "bind", "/proc", {"rbind", "nosuid", "noexec", "nodev"})
                          : mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"});
  bool sys_rw = in.privileged && in.network.new_netns;
  json sys = in.network.new_netns
                 ? mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", sys_rw ? "rw" : "ro"})
                 : mount("/sys", "bind", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"});
  json mounts = json::array({
      proc,
      mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
      // gid=5 (tty) only where it is mapped: a single-ID namespace has no gid 5, and the
      // kernel refuses the mount then (crun and runc do not drop it themselves).
      in.tty_group_mapped
          ? mount("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"})
          : mount("/dev/pts", "devpts", "devpts", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}),
      // Sharing the host's IPC namespace means its /dev/shm and its message queues too.
      in.host_ipc ? mount("/dev/shm", "bind", "/dev/shm", {"rbind", "nosuid", "noexec", "nodev"})
                  : mount("/dev/shm", "tmpfs", "shm",
                          {"nosuid", "noexec", "nodev", "mode=1777", "size=" + std::to_string(in.shm_size / 1024) + "k"}),
      sys,
  });
  // The host's message queues, when it has them mounted; a new mqueue needs our own IPC namespace.
  if (!in.host_ipc) mounts.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  else if (::access("/dev/mqueue", F_OK) == 0)
    mounts.push_back(mount("/dev/mqueue", "bind", "/dev/mqueue", {"rbind", "nosuid", "noexec", "nodev"}));
  if (in.read_only && in.read_only_tmpfs)
    for (const char* d : {"/tmp", "/var/tmp", "/run"})
      mounts.push_back(mount(d, "tmpfs", "tmpfs", {"rw", "rprivate", "nosuid", "nodev"}));
  for (const auto& [dest, src] : in.file_binds)
    mounts.push_back(mount(dest, "bind", src.string(), {"rbind", "rprivate"}));
  if (!in.init_binary.empty())
    mounts.push_back(mount("/run/hutch-init", "bind", in.init_binary.string(), {"bind", "ro", "nosuid", "nodev"}));
  // The user's mounts last; one on the destination of an earlier one replaces it.
  for (const auto& m : in.mounts) {
    for (auto it = mounts.begin(); it != mounts.end();)
      it = (*it)["destination"] == m.destination ? mounts.erase(it) : it + 1;
    std::vector<std::string> options = m.options;
    if (m.type == "bind") {
      bool has_propagation = false;
      for (const auto& o : options) has_propagation |= o.find("private") != std::string::npos || o.find("slave") != std::string::npos || o.find("shared") != std::string::npos;
      if (std::find(options.begin(), options.end(), "bind") == options.end() &&
          std::find(options.begin(), options.end(), "rbind") == options.end())
        options.insert(options.begin(), "rbind");
      if (!has_propagation) options.push_back("rprivate");
    }
    mounts.push_back(mount(m.destination, m.type, m.type == "tmpfs" ? "tmpfs" : m.source.string(), options));
  }

  json namespaces = json::array({{{"type", "mount"}}, {{"type", "cgroup"}}});
  if (!in.host_pid) namespaces.push_back({{"type", "pid"}});
  if (!in.host_ipc) namespaces.push_back({{"type", "ipc"}});
  if (!in.host_uts) namespaces.push_back({{"type", "uts"}});
  if (in.network.new_netns) namespaces.push_back({{"type", "network"}});

  json linux_ = {{"namespaces", namespaces}};
  if (!in.uid_mappings.empty() || !in.gid_mappings.empty()) {
    linux_["namespaces"].push_back({{"type", "user"}});
    auto maps = [](const std::vector<IdMap>& m) {
      json a = json::array();
      for (const auto& e : m) a.push_back({{"containerID", e.container_id}, {"hostID", e.host_id}, {"size", e.size}});
      return a;
    };
    linux_["uidMappings"] = maps(in.uid_mappings);
    linux_["gidMappings"] = maps(in.gid_mappings);
  }
  bool unmask_all = in.privileged || std::find(in.unmasked_paths.begin(), in.unmasked_paths.end(), "ALL") != in.unmasked_paths.end();
  if (!unmask_all) {
    auto keep = [&](std::vector<std::string> paths) {
      paths.erase(std::remove_if(paths.begin(), paths.end(),
                                 [&](const std::string& p) {
                                   return std::find(in.unmasked_paths.begin(), in.unmasked_paths.end(), p) != in.unmasked_paths.end();
                                 }),
                  paths.end());
      return paths;
    };
    std::vector<std::string> masked = {"/proc/asound",       "/proc/acpi",        "/proc/kcore",      "/proc/keys",
                                       "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                                       "/proc/scsi",          "/sys/firmware",    "/sys/devices/virtual/powercap"};
    masked.insert(masked.end(), in.extra_masked_paths.begin(), in.extra_masked_paths.end());
    linux_["maskedPaths"] = keep(masked);
    linux_["readonlyPaths"] = keep({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"});
  } else if (!in.extra_masked_paths.empty()) {
    linux_["maskedPaths"] = in.extra_masked_paths;
  }
  // Devices are bind-mounted from the host (an unprivileged namespace cannot mknod, and a
  // bind works as root too), and allowed in the devices cgroup of runtimes that keep one.
  json allowed = json::array();
  for (const auto& d : in.devices) {
    json e = device_entry(d);
    mounts.push_back(mount(d.container.empty() ? d.host.string() : d.container, "bind", d.host.string(),
                           {"bind", "nosuid", "noexec"}));
    allowed.push_back({{"allow", true}, {"type", e["type"]}, {"major", e["major"]}, {"minor", e["minor"]},
                       {"access", d.permissions}});
  }
  if (!in.cgroups_path.empty()) {
    linux_["cgroupsPath"] = in.cgroups_path;
    json r = json::object();
    const ResourceLimits& l = in.resources;
    if (l.memory) r["memory"]["limit"] = *l.memory;
    if (l.memory_swap) r["memory"]["swap"] = *l.memory_swap;
    if (l.pids_limit) r["pids"]["limit"] = *l.pids_limit;
    if (l.cpu_shares) r["cpu"]["shares"] = *l.cpu_shares;
    if (l.cpus) {
      r["cpu"]["period"] = 100000;
      r["cpu"]["quota"] = static_cast<std::int64_t>(*l.cpus * 100000);
    }
    if (!l.cpuset_cpus.empty()) r["cpu"]["cpus"] = l.cpuset_cpus;
    linux_["resources"] = r;
  }
  if (!allowed.empty()) linux_["resources"]["devices"] = allowed;
  if (!in.privileged && !in.seccomp_unconfined)
    linux_["seccomp"] = seccomp_for_spec(in.seccomp_profile ? *in.seccomp_profile : default_seccomp_profile(), caps,
                                         in.seccomp_profile ? "the seccomp profile" : "the default seccomp profile");

  json spec = {{"ociVersion", "1.0.2"},
               {"process", process},
               {"root", {{"path", in.rootfs.string()}, {"readonly", in.read_only}}},
               {"mounts", mounts},
               {"linux", linux_}};
  // A hostname needs a UTS namespace of its own (runc refuses one without).
  if (!in.host_uts) spec["hostname"] = in.hostname;
  return spec;
}

}  // namespace hutch
