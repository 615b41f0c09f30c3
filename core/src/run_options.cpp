// `run`'s option strings, parsed as docker and podman parse them.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <cmath>
#include <map>
#include <sstream>

#include "engine_internal.hpp"
#include "build_config.hpp"
#include "hutch/error.hpp"
#include "hutch/seccomp.hpp"

namespace hutch::detail {
namespace fs = std::filesystem;

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep)) out.push_back(item);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

[[noreturn]] void bad(const std::string& flag, const std::string& value, const std::string& why) {
  throw Error(Errc::kUsage, flag + " \"" + value + "\": " + why);
}

bool is_mount_option(const std::string& o) {
  static const char* known[] = {"ro", "rw", "private", "rprivate", "shared", "rshared", "slave", "rslave",
                                "nosuid", "suid", "nodev", "dev", "noexec", "exec", "bind", "rbind"};
  for (const char* k : known)
    if (o == k) return true;
  return false;
}

void check_destination(const std::string& flag, const std::string& value, const std::string& dest) {
  if (dest.empty() || dest[0] != '/') bad(flag, value, "the container path must be absolute");
  if (dest == "/") bad(flag, value, "cannot mount over the container's /");
}

bool valid_volume_name(const std::string& n) {
  if (n.empty() || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

// --mount's "k=v,k2,..." fields.
std::map<std::string, std::string> mount_fields(const std::string& spec) {
  std::map<std::string, std::string> kv;
  for (const auto& field : split(spec, ',')) {
    auto eq = field.find('=');
    kv[field.substr(0, eq)] = eq == std::string::npos ? "" : field.substr(eq + 1);
  }
  return kv;
}

bool truthy(const std::string& v) { return v.empty() || v == "true" || v == "1"; }

}  // namespace

std::int64_t parse_bytes(const std::string& value, const std::string& flag) {
  std::string v = value;
  std::transform(v.begin(), v.end(), v.begin(), ::tolower);
  size_t num_end = v.find_first_not_of("0123456789.");
  std::string num = v.substr(0, num_end), unit = num_end == std::string::npos ? "" : v.substr(num_end);
  if (num.empty() || std::count(num.begin(), num.end(), '.') > 1)
    bad(flag, value, "not a size (a number with an optional unit b, k, m, g, t: 64m, 1g)");
  if (unit.size() > 1 && (unit.substr(1) == "b" || unit.substr(1) == "ib")) unit = unit.substr(0, 1);
  static const std::map<std::string, double> units = {
      {"", 1}, {"b", 1}, {"k", 1024.0}, {"m", 1024.0 * 1024}, {"g", 1024.0 * 1024 * 1024}, {"t", 1024.0 * 1024 * 1024 * 1024}};
  auto it = units.find(unit);
  if (it == units.end()) bad(flag, value, "unknown unit \"" + unit + "\" (use b, k, m, g or t)");
  double bytes = std::stod(num) * it->second;
  if (bytes >= 9.2e18) bad(flag, value, "too large");
  return static_cast<std::int64_t>(bytes);
}

std::vector<VolumeMount> parse_volume_mounts(const RunOptions& o) {
  std::vector<VolumeMount> out;
  for (const auto& v : o.volumes) {
    auto parts = split(v, ':');
    VolumeMount m;
    if (parts.size() == 1) {
      m.anonymous = true;
      m.destination = parts[0];
    } else if (parts.size() == 2 || parts.size() == 3) {
      const std::string& src = parts[0];
      m.destination = parts[1];
      if (src.empty()) bad("-v", v, "the source is empty (SRC:DST[:OPTIONS])");
      if (src[0] == '/' || src[0] == '.' || src[0] == '~') {
        std::string path = src;
        if (path[0] == '~') path = std::string(getenv("HOME") ? getenv("HOME") : "") + path.substr(1);
        m.host = fs::absolute(path).lexically_normal();
        std::error_code ec;
        if (!fs::exists(m.host, ec))
          bad("-v", v, "the host path " + m.host.string() + " does not exist; create it first (hutch, like podman, does not)");
      } else {
        if (!valid_volume_name(src))
          bad("-v", v, "\"" + src + "\" is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)");
        m.volume = src;
      }
      if (parts.size() == 3)
        for (const auto& opt : split(parts[2], ',')) {
          if (opt == "z" || opt == "Z" || opt == "nocopy" || opt == "delegated" || opt == "cached" || opt == "consistent")
            continue;  // SELinux relabels and docker-desktop hints mean nothing here
          if (!is_mount_option(opt)) bad("-v", v, "unknown option \"" + opt + "\" (ro, rw, z, Z, nocopy, or a propagation)");
          m.options.push_back(opt);
        }
    } else {
      bad("-v", v, "expected SRC:DST[:OPTIONS], NAME:DST[:OPTIONS] or DST");
    }
    check_destination("-v", v, m.destination);
    out.push_back(m);
  }
  for (const auto& spec : o.mounts) {
    auto kv = mount_fields(spec);
    std::string type = kv.count("type") ? kv["type"] : "volume";
    if (type == "tmpfs") continue;  // parse_tmpfs_mounts
    if (type != "bind" && type != "volume")
      bad("--mount", spec, "type must be bind, volume or tmpfs");
    VolumeMount m;
    for (const char* k : {"target", "destination", "dst"})
      if (kv.count(k)) m.destination = kv[k];
    std::string source;
    for (const char* k : {"source", "src"})
      if (kv.count(k)) source = kv[k];
    for (const char* k : {"readonly", "ro"})
      if (kv.count(k) && truthy(kv[k])) m.options.push_back("ro");
    if (kv.count("bind-propagation")) {
      if (!is_mount_option(kv["bind-propagation"])) bad("--mount", spec, "unknown bind-propagation");
      m.options.push_back(kv["bind-propagation"]);
    }
    if (type == "bind") {
      if (source.empty()) bad("--mount", spec, "a bind mount needs source=HOSTPATH");
      m.host = fs::absolute(source).lexically_normal();
      std::error_code ec;
      if (!fs::exists(m.host, ec)) bad("--mount", spec, "the host path " + m.host.string() + " does not exist");
    } else if (source.empty()) {
      m.anonymous = true;
    } else {
      if (!valid_volume_name(source)) bad("--mount", spec, "\"" + source + "\" is not a volume name");
      m.volume = source;
    }
    check_destination("--mount", spec, m.destination);
    out.push_back(m);
  }
  return out;
}

std::vector<MountRequest> parse_tmpfs_mounts(const RunOptions& o) {
  std::vector<MountRequest> out;
  for (const auto& t : o.tmpfs) {
    auto colon = t.find(':');
    MountRequest m;
    m.type = "tmpfs";
    m.destination = t.substr(0, colon);
    check_destination("--tmpfs", t, m.destination);
    m.options = {"rw", "noexec", "nosuid", "nodev"};  // docker's and podman's defaults
    if (colon != std::string::npos)
      for (const auto& opt : split(t.substr(colon + 1), ',')) {
        if (opt.empty()) continue;
        // An explicit exec, dev, suid or ro undoes its default.
        auto undo = [&](const char* a, const char* b) { m.options.erase(std::remove(m.options.begin(), m.options.end(), a), m.options.end()); m.options.push_back(b); };
        if (opt == "exec") undo("noexec", "exec");
        else if (opt == "dev") undo("nodev", "dev");
        else if (opt == "suid") undo("nosuid", "suid");
        else if (opt == "ro") undo("rw", "ro");
        else if (opt == "rw" || opt == "noexec" || opt == "nodev" || opt == "nosuid") continue;
        else if (opt.rfind("size=", 0) == 0) m.options.push_back("size=" + std::to_string(parse_bytes(opt.substr(5), "--tmpfs")));
        else if (opt.rfind("mode=", 0) == 0 || opt.rfind("uid=", 0) == 0 || opt.rfind("gid=", 0) == 0 ||
                 opt.rfind("nr_inodes=", 0) == 0 || opt == "notmpcopyup" || opt == "tmpcopyup")
          m.options.push_back(opt);
        else bad("--tmpfs", t, "unknown option \"" + opt + "\" (size=, mode=, uid=, gid=, ro, exec, dev, suid)");
      }
    m.options.erase(std::remove_if(m.options.begin(), m.options.end(),
                                   [](const std::string& x) { return x == "notmpcopyup" || x == "tmpcopyup"; }),
                    m.options.end());
    out.push_back(m);
  }
  for (const auto& spec : o.mounts) {
    auto kv = mount_fields(spec);
    if (kv["type"] != "tmpfs") continue;
    MountRequest m;
    m.type = "tmpfs";
    for (const char* k : {"target", "destination", "dst"})
      if (kv.count(k)) m.destination = kv[k];
    check_destination("--mount", spec, m.destination);
    m.options = {"rw", "noexec", "nosuid", "nodev"};
    if (kv.count("tmpfs-size")) m.options.push_back("size=" + std::to_string(parse_bytes(kv["tmpfs-size"], "--mount tmpfs-size")));
    if (kv.count("tmpfs-mode")) m.options.push_back("mode=" + kv["tmpfs-mode"]);
    for (const char* k : {"readonly", "ro"})
      if (kv.count(k) && truthy(kv[k])) m.options[0] = "ro";
    out.push_back(m);
  }
  return out;
}

std::vector<DeviceRequest> parse_devices(const std::vector<std::string>& devices) {
  std::vector<DeviceRequest> out;
  for (const auto& d : devices) {
    auto parts = split(d, ':');
    if (parts.empty() || parts.size() > 3 || parts[0].empty() || parts[0][0] != '/')
      bad("--device", d, "expected HOST-DEVICE[:CONTAINER-PATH[:PERMISSIONS]], with absolute paths");
    DeviceRequest r;
    r.host = parts[0];
    r.container = parts[0];
    if (parts.size() >= 2) {
      // "--device /dev/x:rw" is a device and its permissions.
      if (parts.size() == 2 && parts[1].find_first_not_of("rwm") == std::string::npos) r.permissions = parts[1];
      else r.container = parts[1];
    }
    if (parts.size() == 3) r.permissions = parts[2];
    if (r.container.empty() || r.container[0] != '/') bad("--device", d, "the container path must be absolute");
    if (r.permissions.empty() || r.permissions.find_first_not_of("rwm") != std::string::npos)
      bad("--device", d, "permissions are some of r, w, m");
    out.push_back(r);
  }
  return out;
}

std::vector<Ulimit> parse_ulimits(const std::vector<std::string>& ulimits, bool host_root) {
  static const std::vector<std::string> known = {"as",     "core",   "cpu",    "data",       "fsize",  "locks",
                                                 "memlock", "msgqueue", "nice", "nofile",     "nproc",  "rss",
                                                 "rtprio", "rttime", "sigpending", "stack"};
  std::vector<Ulimit> out;
  for (const auto& u : ulimits) {
    auto eq = u.find('=');
    if (eq == std::string::npos) bad("--ulimit", u, "expected NAME=SOFT[:HARD], e.g. nofile=1024:2048");
    Ulimit l;
    l.name = u.substr(0, eq);
    if (std::find(known.begin(), known.end(), l.name) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      bad("--ulimit", u, "unknown limit \"" + l.name + "\" (one of " + list + ")");
    }
    auto values = split(u.substr(eq + 1), ':');
    auto number = [&](const std::string& s) -> std::uint64_t {
      if (s == "-1" || s == "unlimited") return RLIM_INFINITY;
      if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) bad("--ulimit", u, "\"" + s + "\" is not a number");
      return std::stoull(s);
    };
    if (values.empty() || values.size() > 2) bad("--ulimit", u, "expected NAME=SOFT[:HARD]");
    l.soft = number(values[0]);
    l.hard = values.size() == 2 ? number(values[1]) : l.soft;
    if (l.soft > l.hard) bad("--ulimit", u, "the soft limit is above the hard one");
    // Only the host's root may raise a hard limit (CAP_SYS_RESOURCE of the first namespace).
    struct rlimit now {};
    static const std::map<std::string, int> resource = {
        {"as", RLIMIT_AS},       {"core", RLIMIT_CORE},     {"cpu", RLIMIT_CPU},         {"data", RLIMIT_DATA},
        {"fsize", RLIMIT_FSIZE}, {"locks", RLIMIT_LOCKS},   {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE},
        {"nice", RLIMIT_NICE},   {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},     {"rss", RLIMIT_RSS},
        {"rtprio", RLIMIT_RTPRIO}, {"rttime", RLIMIT_RTTIME}, {"sigpending", RLIMIT_SIGPENDING}, {"stack", RLIMIT_STACK}};
    if (!host_root && ::getrlimit(resource.at(l.name), &now) == 0 && now.rlim_max != RLIM_INFINITY && l.hard > now.rlim_max)
      bad("--ulimit", u, "above your own hard limit (" + std::to_string(now.rlim_max) +
                             "); rootless, a container cannot raise it (ask for at most that, or have the admin raise yours)");
    out.push_back(l);
  }
  return out;
}

void apply_security_opts(const std::vector<std::string>& opts, SpecInputs& in) {
  for (const auto& o : opts) {
    auto sep = o.find_first_of("=:");
    std::string key = o.substr(0, sep), value = sep == std::string::npos ? "" : o.substr(sep + 1);
    if (key == "no-new-privileges") {
      if (value != "" && value != "true" && value != "false") bad("--security-opt", o, "no-new-privileges takes true or false");
      in.no_new_privileges = value != "false";
    } else if (key == "seccomp") {
      if (value == "unconfined") in.seccomp_unconfined = true;
      else if (value.empty()) bad("--security-opt", o, "seccomp takes unconfined or the path of a profile");
      else in.seccomp_profile = read_seccomp_profile(value);
    } else if (key == "label" || key == "apparmor") {
      // No SELinux or AppArmor confinement in hutch: "disable"/"unconfined" is what it is.
      if (value != "disable" && value != "unconfined" && value.rfind("type:", 0) != 0 && value.rfind("level:", 0) != 0)
        bad("--security-opt", o, key + " confinement is not supported by hutch (only " + key + "=" +
                                     (key == "label" ? "disable" : "unconfined") + " is accepted)");
    } else if (key == "mask") {
      for (const auto& p : split(value, ':'))
        if (!p.empty()) in.extra_masked_paths.push_back(p);
    } else if (key == "unmask") {
      for (const auto& p : split(value, ':'))
        if (!p.empty()) in.unmasked_paths.push_back(p);
    } else {
      bad("--security-opt", o, "unknown option (no-new-privileges, seccomp=unconfined|FILE, mask=, unmask=, label=disable, apparmor=unconfined)");
    }
  }
}

ResourceLimits parse_limits(const RunOptions& o) {
  ResourceLimits l;
  if (!o.memory.empty()) {
    l.memory = parse_bytes(o.memory, "--memory");
    if (*l.memory < 6 * 1024 * 1024) bad("--memory", o.memory, "the minimum is 6m");
  }
  if (!o.memory_swap.empty()) {
    if (!l.memory) bad("--memory-swap", o.memory_swap, "needs --memory too");
    l.memory_swap = o.memory_swap == "-1" ? -1 : parse_bytes(o.memory_swap, "--memory-swap");
    if (*l.memory_swap >= 0 && *l.memory_swap < *l.memory)
      bad("--memory-swap", o.memory_swap, "must be at least --memory (it counts memory plus swap), or -1 for unlimited swap");
  }
  if (!o.cpus.empty()) {
    char* end = nullptr;
    double c = std::strtod(o.cpus.c_str(), &end);
    if (*end || c <= 0) bad("--cpus", o.cpus, "expected a positive number of CPUs, e.g. 1.5");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 0 && c > n) bad("--cpus", o.cpus, "this host has " + std::to_string(n) + " CPUs");
    l.cpus = c;
  }
  if (!o.cpu_shares.empty()) {
    if (o.cpu_shares.find_first_not_of("0123456789") != std::string::npos) bad("--cpu-shares", o.cpu_shares, "expected a number (1024 is the default weight)");
    l.cpu_shares = std::clamp<std::uint64_t>(std::stoull(o.cpu_shares), 2, 262144);
  }
  if (!o.cpuset_cpus.empty()) {
    if (o.cpuset_cpus.find_first_not_of("0123456789,-") != std::string::npos) bad("--cpuset-cpus", o.cpuset_cpus, "expected CPUs like 0-1 or 0,2");
    l.cpuset_cpus = o.cpuset_cpus;
  }
  if (!o.pids_limit.empty()) {
    const std::string& p = o.pids_limit;
    if (p != "-1" && p.find_first_not_of("0123456789") != std::string::npos) bad("--pids-limit", p, "expected a number, or -1 for unlimited");
    l.pids_limit = std::stoll(p);
  }
  return l;
}

std::vector<IdMap> parse_id_maps(const std::vector<std::string>& maps, const std::string& flag) {
  std::vector<IdMap> out;
  for (const auto& m : maps) {
    auto parts = split(m, ':');
    bool ok = parts.size() == 3;
    for (const auto& p : parts) ok &= !p.empty() && p.find_first_not_of("0123456789") == std::string::npos;
    if (!ok) bad(flag, m, "expected CONTAINER-ID:HOST-ID:SIZE (host IDs as \"hutch unshare\" sees them)");
    IdMap e{std::stoul(parts[0]), std::stoul(parts[1]), std::stoul(parts[2])};
    if (e.size == 0) bad(flag, m, "the size must be at least 1");
    out.push_back(e);
  }
  return out;
}

std::string hosts_line(const std::string& h) {
  auto sep = h.find_last_of(":=");
  // IPv6 addresses have colons: NAME:IP splits at the first colon, NAME=IP at the '='.
  if (h.find('=') != std::string::npos) sep = h.find('=');
  else sep = h.find(':');
  if (sep == std::string::npos || sep == 0 || sep + 1 >= h.size())
    bad("--add-host", h, "expected NAME:IP (e.g. db:10.0.0.5)");
  std::string ip = h.substr(sep + 1);
  if (ip == "host-gateway") ip = "127.0.0.1";  // with host or slirp networking, the host is loopback-reachable
  if (ip.find_first_not_of("0123456789abcdefABCDEF.:") != std::string::npos) bad("--add-host", h, "\"" + ip + "\" is not an IP address");
  return ip + "\t" + h.substr(0, sep) + "\n";
}

int parse_signal(const std::string& name) {
  if (name.empty()) return 0;
  if (name.find_first_not_of("0123456789") == std::string::npos) {
    int n = std::stoi(name);
    return n > 0 && n < NSIG ? n : 0;
  }
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), ::toupper);
  if (n.rfind("SIG", 0) == 0) n = n.substr(3);
  static const std::map<std::string, int> table = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},     {"TRAP", SIGTRAP},
      {"ABRT", SIGABRT}, {"BUS", SIGBUS},   {"FPE", SIGFPE},   {"KILL", SIGKILL},   {"USR1", SIGUSR1},
      {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},   {"TERM", SIGTERM},
      {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
      {"TTOU", SIGTTOU}, {"URG", SIGURG},   {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM},
      {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},   {"PWR", SIGPWR},     {"SYS", SIGSYS}};
  auto it = table.find(n);
  if (it != table.end()) return it->second;
  if (n.rfind("RTMIN+", 0) == 0) return SIGRTMIN + std::atoi(n.c_str() + 6);
  return 0;
}

fs::path find_init_binary(const Config& config) {
  if (!config.init_path.empty()) {
    if (::access(config.init_path.c_str(), X_OK) != 0)
      throw Error(Errc::kConfig, "[engine] init_path " + config.init_path.string() + " is not an executable file");
    return config.init_path;
  }
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && self.string().rfind(kBuildDir, 0) == 0 && ::access(kBuildInitPath, X_OK) == 0) return kBuildInitPath;
  if (::access(kInstallInitPath, X_OK) == 0) return kInstallInitPath;
  throw Error(Errc::kConfig, std::string("--init needs hutch-init, which is not installed at ") + kInstallInitPath +
                                 "; reinstall hutch, or set [engine] init_path in hutch.conf");
}

std::int64_t parse_duration(const std::string& value, const std::string& flag) {
  auto bad = [&] {
    return Error(Errc::kUsage, flag + " \"" + value + "\": expected a duration such as 30s, 1m30s, 500ms or 2h");
  };
  if (value.empty()) throw bad();
  if (value == "0") return 0;
  static const std::pair<const char*, double> units[] = {{"ns", 1},     {"us", 1e3},  {"µs", 1e3}, {"ms", 1e6},
                                                         {"s", 1e9},    {"m", 60e9},  {"h", 3600e9}};
  double total = 0;
  std::size_t i = 0;
  while (i < value.size()) {
    std::size_t start = i;
    while (i < value.size() && (std::isdigit(static_cast<unsigned char>(value[i])) || value[i] == '.')) ++i;
    if (i == start) throw bad();
    double number = std::stod(value.substr(start, i - start));
    std::size_t best = 0;
    double scale = 0;
    for (const auto& [u, f] : units) {
      std::size_t n = std::strlen(u);
      if (value.compare(i, n, u) == 0 && n > best) best = n, scale = f;
    }
    // "m" must not swallow the "m" of "ms".
    if (best == 1 && value.compare(i, 2, "ms") == 0) best = 2, scale = 1e6;
    if (best == 0) throw bad();
    total += number * scale;
    i += best;
  }
  return static_cast<std::int64_t>(total);
}

void parse_restart_policy(const std::string& value, ContainerRecord& r) {
  r.restart_policy = "no";
  r.restart_max = 0;
  if (value.empty() || value == "no") return;
  std::string name = value.substr(0, value.find(':'));
  std::string count = value.find(':') == std::string::npos ? "" : value.substr(value.find(':') + 1);
  if (name == "on-failure") {
    if (!count.empty()) {
      if (count.find_first_not_of("0123456789") != std::string::npos || count.size() > 6)
        throw Error(Errc::kUsage, "--restart \"" + value + "\": the maximum number of restarts must be a number (on-failure:3)");
      r.restart_max = std::stoi(count);
    }
  } else if ((name == "always" || name == "unless-stopped") && count.empty()) {
  } else {
    throw Error(Errc::kUsage, "--restart \"" + value + "\": expected no, on-failure[:N], always or unless-stopped");
  }
  r.restart_policy = name;
}

std::map<std::string, std::string> parse_labels(const std::vector<std::string>& values,
                                                const std::vector<std::string>& files, const std::string& flag) {
  std::vector<std::string> all;
  for (const auto& f : files) {
    std::istringstream in(read_file(f));
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#') all.push_back(line);
  }
  all.insert(all.end(), values.begin(), values.end());
  std::map<std::string, std::string> out;
  for (const auto& kv : all) {
    auto eq = kv.find('=');
    std::string k = kv.substr(0, eq);
    if (k.empty()) throw Error(Errc::kUsage, flag + " \"" + kv + "\": expected KEY=VALUE");
    out[k] = eq == std::string::npos ? "" : kv.substr(eq + 1);
  }
  return out;
}

std::optional<HealthConfig> healthcheck_for(const RunOptions& o, const nlohmann::json& image_config) {
  bool flags = !o.health_cmd.empty() || !o.health_interval.empty() || !o.health_timeout.empty() ||
               !o.health_start_period.empty() || o.health_retries || !o.health_on_failure.empty();
  if (o.no_healthcheck) {
    if (flags) throw Error(Errc::kUsage, "--no-healthcheck conflicts with the --health-* options");
    return std::nullopt;
  }
  HealthConfig h;
  bool have = false;
  if (image_config.contains("config") && image_config["config"].contains("Healthcheck") &&
      image_config["config"]["Healthcheck"].is_object()) {
    const auto& j = image_config["config"]["Healthcheck"];
    h.test = j.value("Test", std::vector<std::string>{});
    // Go's time.Duration: ns; 0 means the default.
    if (j.value("Interval", 0LL) > 0) h.interval = j.value("Interval", 0LL);
    if (j.value("Timeout", 0LL) > 0) h.timeout = j.value("Timeout", 0LL);
    if (j.value("StartPeriod", 0LL) > 0) h.start_period = j.value("StartPeriod", 0LL);
    if (j.value("Retries", 0) > 0) h.retries = j.value("Retries", 0);
    have = !h.test.empty();
  }
  if (!o.health_cmd.empty()) {
    if (o.health_cmd[0] == '[') {
      try {
        auto arr = nlohmann::json::parse(o.health_cmd).get<std::vector<std::string>>();
        h.test = {"CMD"};
        h.test.insert(h.test.end(), arr.begin(), arr.end());
      } catch (const nlohmann::json::exception&) {
        throw Error(Errc::kUsage, "--health-cmd \"" + o.health_cmd + "\": not a JSON array of strings; give a shell command or [\"cmd\", \"arg\"]");
      }
    } else {
      h.test = {"CMD-SHELL", o.health_cmd};
    }
    have = true;
  }
  auto positive = [&](const std::string& v, const char* flag, std::int64_t& into) {
    if (v.empty()) return;
    std::int64_t d = parse_duration(v, flag);
    if (d < 1'000'000) throw Error(Errc::kUsage, std::string(flag) + " \"" + v + "\": must be at least 1ms");
    into = d;
  };
  positive(o.health_interval, "--health-interval", h.interval);
  positive(o.health_timeout, "--health-timeout", h.timeout);
  if (!o.health_start_period.empty()) h.start_period = parse_duration(o.health_start_period, "--health-start-period");
  if (o.health_retries) {
    if (*o.health_retries < 1) throw Error(Errc::kUsage, "--health-retries must be at least 1");
    h.retries = *o.health_retries;
  }
  if (!o.health_on_failure.empty()) {
    if (o.health_on_failure != "none" && o.health_on_failure != "kill" && o.health_on_failure != "restart" &&
        o.health_on_failure != "stop")
      throw Error(Errc::kUsage, "--health-on-failure \"" + o.health_on_failure + "\": expected none, kill, restart or stop");
    h.on_failure = o.health_on_failure;
  }
  if (!have) {
    if (flags) throw Error(Errc::kUsage, "the --health-* options need a check: give --health-cmd (the image has no HEALTHCHECK)");
    return std::nullopt;
  }
  if (h.test.empty() || h.test[0] == "NONE") return std::nullopt;
  if (h.test[0] != "CMD" && h.test[0] != "CMD-SHELL")
    throw Error(Errc::kInvalidInput, "the image's HEALTHCHECK test starts with \"" + h.test[0] + "\"; expected CMD, CMD-SHELL or NONE");
  return h;
}

}  // namespace hutch::detail
