#include "hutch/cgroups.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "hutch/error.hpp"
#include "hutch/paths.hpp"

namespace hutch {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr long kCgroup2Magic = 0x63677270;
const fs::path kCgroupRoot = "/sys/fs/cgroup";

bool is_cgroup2(const fs::path& p) {
  struct statfs s {};
  return ::statfs(p.c_str(), &s) == 0 && static_cast<long>(s.f_type) == kCgroup2Magic;
}

std::string read_trimmed(const fs::path& p) {
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The caller's own cgroup in the unified hierarchy ("0::/path").
std::string own_unified_cgroup() {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return "";
}

void write_value(const fs::path& file, const std::string& value) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw system_error("cannot open " + file.string(), errno);
  ssize_t n = ::write(fd, value.data(), value.size());
  int e = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size()))
    throw system_error("the kernel refused " + value + " for " + file.string(), e);
}

const char* const kV1Controllers[] = {"memory", "pids", "cpu", "cpuset"};

// "oom_kill N" in memory.events (v2) or memory.oom_control (v1).
bool oom_kill_counted(const fs::path& file) {
  std::ifstream in(file);
  for (std::string key, value; in >> key >> value;)
    if (key == "oom_kill") return value != "0";
  return false;
}

}  // namespace

CgroupSupport detect_cgroups(bool real_root, const std::string& configured_parent) {
  CgroupSupport s;
  if (is_cgroup2(kCgroupRoot)) {
    s.layout = "v2";
    std::string parent = configured_parent.empty() ? own_unified_cgroup() : configured_parent;
    if (parent.rfind(kCgroupRoot.string(), 0) == 0) parent = parent.substr(kCgroupRoot.string().size());
    if (parent.empty()) parent = "/";
    s.parent = parent;
    fs::path dir = kCgroupRoot / parent.substr(1);
    auto available = words(read_trimmed(dir / "cgroup.controllers"));
    for (const char* c : {"memory", "pids", "cpu", "cpuset"})
      if (std::find(available.begin(), available.end(), c) != available.end()) s.controllers.push_back(c);
    if (::access(dir.c_str(), W_OK) != 0 || ::access((dir / "cgroup.subtree_control").c_str(), W_OK) != 0) {
      s.reason = "cgroup v2, but the cgroup " + parent + " is not delegated to you (not writable)";
      s.fix = real_root ? "check that /sys/fs/cgroup is mounted read-write"
                        : "run hutch in a systemd user session with delegation (Delegate=yes), or have an admin "
                          "make you a writable cgroup and name it in hutch.conf: [engine] cgroup_parent = \"/sys/fs/cgroup/...\"";
      return s;
    }
    if (s.controllers.empty()) {
      s.reason = "cgroup v2, but no controller is delegated to the cgroup " + parent;
      s.fix = "delegate memory, pids and cpu to it (systemd: Delegate=memory pids cpu)";
      return s;
    }
    s.usable = true;
    return s;
  }
  s.layout = is_cgroup2(kCgroupRoot / "unified") ? "hybrid" : "v1";
  s.parent = "/hutch";
  if (!real_root) {
    s.reason = "cgroup " + s.layout + ": cgroup v1 controllers cannot be delegated to an unprivileged user";
    s.fix = "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2) and delegate controllers to the user, or run as root";
    return s;
  }
  for (const char* c : kV1Controllers)
    if (::access((kCgroupRoot / c).c_str(), W_OK) == 0) s.controllers.push_back(c);
  if (s.controllers.empty()) {
    s.reason = "cgroup " + s.layout + ": no writable v1 controller is mounted under /sys/fs/cgroup";
    s.fix = "mount the memory, pids and cpu controllers";
    return s;
  }
  s.usable = true;
  return s;
}

std::vector<std::string> controllers_for(const ResourceLimits& l) {
  std::vector<std::string> out;
  if (l.memory || l.memory_swap) out.push_back("memory");
  if (l.pids_limit) out.push_back("pids");
  if (l.cpus || l.cpu_shares) out.push_back("cpu");
  if (!l.cpuset_cpus.empty()) out.push_back("cpuset");
  return out;
}

std::string container_cgroup_path(const CgroupSupport& s, const std::string& id) {
  if (s.layout == "v2") return (s.parent == "/" ? "" : s.parent) + "/hutch-" + id;
  return "/hutch/" + id;
}

std::vector<fs::path> cgroup_directories(const CgroupSupport& s, const std::string& path,
                                         const std::vector<std::string>& controllers) {
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  if (s.layout == "v2") return {kCgroupRoot / rel};
  std::vector<fs::path> out;
  for (const auto& c : controllers) out.push_back(kCgroupRoot / c / rel);
  return out;
}

namespace {

std::vector<std::string> controllers_in(const json& r) {
  std::vector<std::string> out;
  if (r.contains("memory")) out.push_back("memory");
  if (r.contains("pids")) out.push_back("pids");
  if (r.contains("cpu")) {
    const json& c = r["cpu"];
    if (c.contains("shares") || c.contains("quota")) out.push_back("cpu");
    if (c.contains("cpus")) out.push_back("cpuset");
  }
  return out;
}

// v1 cpuset: a new cgroup has no cpus and mems until it is given some (from its parent).
void inherit_cpuset(const fs::path& dir) {
  for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
    if (!read_trimmed(dir / f).empty()) continue;
    fs::path up = dir.parent_path();
    if (read_trimmed(up / f).empty() && up != kCgroupRoot / "cpuset") inherit_cpuset(up);
    write_value(dir / f, read_trimmed(up / f));
  }
}

}  // namespace

void create_container_cgroup(const CgroupSupport& s, const std::string& path, const json& r) {
  auto controllers = controllers_in(r);
  if (s.layout == "v2") {
    fs::path dir = cgroup_directories(s, path, {}).front();
    std::string enable;
    for (const auto& c : controllers) enable += (enable.empty() ? "+" : " +") + c;
    if (!enable.empty()) {
      try {
        write_value(dir.parent_path() / "cgroup.subtree_control", enable);
      } catch (const Error& e) {
        throw Error(Errc::kRuntime, std::string(e.what()) +
                                        " (a cgroup with processes of its own cannot delegate controllers: point "
                                        "[engine] cgroup_parent at an empty delegated cgroup)");
      }
    }
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw system_error("cannot create " + dir.string(), errno);
    if (r.contains("memory")) {
      const json& m = r["memory"];
      if (m.contains("limit")) write_value(dir / "memory.max", std::to_string(m["limit"].get<std::int64_t>()));
      if (m.contains("swap") && m.contains("limit")) {
        std::int64_t swap = m["swap"].get<std::int64_t>();
        write_value(dir / "memory.swap.max",
                    swap < 0 ? "max" : std::to_string(std::max<std::int64_t>(0, swap - m["limit"].get<std::int64_t>())));
      }
    }
    if (r.contains("pids")) {
      std::int64_t n = r["pids"].value("limit", std::int64_t{-1});
      write_value(dir / "pids.max", n <= 0 ? "max" : std::to_string(n));
    }
    if (r.contains("cpu")) {
      const json& c = r["cpu"];
      if (c.contains("quota"))
        write_value(dir / "cpu.max", std::to_string(c["quota"].get<std::int64_t>()) + " " +
                                         std::to_string(c.value("period", std::uint64_t{100000})));
      if (c.contains("shares")) {
        std::uint64_t shares = c["shares"].get<std::uint64_t>();
        write_value(dir / "cpu.weight", std::to_string(1 + ((shares - 2) * 9999) / 262142));
      }
      if (c.contains("cpus")) write_value(dir / "cpuset.cpus", c["cpus"].get<std::string>());
    }
    return;
  }
  for (const auto& c : controllers) {
    fs::path dir = cgroup_directories(s, path, {c}).front();
    make_dirs(dir, 0755);
    if (c == "memory") {
      const json& m = r["memory"];
      if (m.contains("limit")) write_value(dir / "memory.limit_in_bytes", std::to_string(m["limit"].get<std::int64_t>()));
      if (m.contains("swap") && fs::exists(dir / "memory.memsw.limit_in_bytes"))
        write_value(dir / "memory.memsw.limit_in_bytes", std::to_string(m["swap"].get<std::int64_t>()));
    } else if (c == "pids") {
      std::int64_t n = r["pids"].value("limit", std::int64_t{-1});
      write_value(dir / "pids.max", n <= 0 ? "max" : std::to_string(n));
    } else if (c == "cpu") {
      const json& cpu = r["cpu"];
      if (cpu.contains("quota")) {
        write_value(dir / "cpu.cfs_period_us", std::to_string(cpu.value("period", std::uint64_t{100000})));
        write_value(dir / "cpu.cfs_quota_us", std::to_string(cpu["quota"].get<std::int64_t>()));
      }
      if (cpu.contains("shares")) write_value(dir / "cpu.shares", std::to_string(cpu["shares"].get<std::uint64_t>()));
    } else if (c == "cpuset") {
      inherit_cpuset(dir);
      write_value(dir / "cpuset.cpus", r["cpu"]["cpus"].get<std::string>());
    }
  }
}

void join_container_cgroup(const CgroupSupport& s, const std::string& path, pid_t pid) {
  std::vector<std::string> all(std::begin(kV1Controllers), std::end(kV1Controllers));
  for (const auto& dir : cgroup_directories(s, path, all))
    if (fs::exists(dir)) write_value(dir / "cgroup.procs", std::to_string(pid));
}

bool cgroup_oom_killed(const CgroupSupport& s, const std::string& path) {
  if (path.empty()) return false;
  if (s.layout == "v2") return oom_kill_counted(cgroup_directories(s, path, {}).front() / "memory.events");
  return oom_kill_counted(cgroup_directories(s, path, {"memory"}).front() / "memory.oom_control");
}

void remove_container_cgroup(const CgroupSupport& s, const std::string& path) {
  if (path.empty()) return;
  std::vector<std::string> all(std::begin(kV1Controllers), std::end(kV1Controllers));
  for (const auto& dir : cgroup_directories(s, path, all))
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR)
      throw system_error("cannot remove the cgroup " + dir.string(), errno);
}

}  // namespace hutch
