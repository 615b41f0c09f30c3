#include "hutch/host_check.hpp"

#include "hutch/cgroups.hpp"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <sstream>

#include "hutch/paths.hpp"

namespace hutch {
namespace fs = std::filesystem;

namespace {

std::string read_trimmed(const char* path) {
  try {
    std::string s = read_file(path);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  } catch (const Error&) {
    return "";
  }
}

HostCheck device_check(const char* dev, const char* purpose) {
  HostCheck c{std::string(dev), false, "", ""};
  struct stat st;
  if (stat(dev, &st) != 0) {
    c.detail = "missing (" + std::string(purpose) + ")";
    c.fix = std::string("load the kernel module (modprobe ") + (std::string(dev) == "/dev/fuse" ? "fuse" : "tun") + ")";
    return c;
  }
  c.ok = access(dev, R_OK | W_OK) == 0;
  char mode[8];
  snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
  c.detail = std::string("mode ") + mode + (c.ok ? ", usable" : ", not usable by you") + " (" + purpose + ")";
  if (!c.ok) c.fix = std::string("as root: chmod 0666 ") + dev + " (most distributions do this with a udev rule)";
  return c;
}

// Do the ranges of `user` overlap the ranges of anybody else in `file`?
std::string overlap_in(const char* file, const std::string& user, const std::vector<IdRange>& mine) {
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error&) {
    return "";
  }
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string owner, start, count;
    if (!std::getline(ls, owner, ':') || !std::getline(ls, start, ':') || !std::getline(ls, count)) continue;
    if (owner == user) continue;
    try {
      unsigned long s = std::stoul(start), n = std::stoul(count);
      for (const auto& r : mine)
        if (s < r.start + r.count && r.start < s + n) return owner;
    } catch (const std::exception&) {
    }
  }
  return "";
}

}  // namespace

std::string filesystem_type(const fs::path& path) {
  fs::path p = path;
  struct statfs sf;
  while (statfs(p.c_str(), &sf) != 0) {
    if (!p.has_parent_path() || p.parent_path() == p) return "unknown";
    p = p.parent_path();
  }
  switch (static_cast<unsigned long>(sf.f_type)) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x6969: return "nfs";
    case 0x794C7630: return "overlay";
    case 0x65735546: return "fuse";
    case 0x0BD00BD0: return "lustre";
    case 0x47504653: return "gpfs";
    case 0x2FC12FC1: return "zfs";
    default: {
      char buf[32];
      snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(sf.f_type));
      return buf;
    }
  }
}

std::vector<HostCheck> check_host(const UsernsPlan& plan, const fs::path& store_root, const fs::path& run_root,
                                 const std::string& cgroup_parent) {
  std::vector<HostCheck> out;
  {
    HostCheck c{"user namespaces", true, "", ""};
    std::string max = read_trimmed("/proc/sys/user/max_user_namespaces");
    std::string clone = read_trimmed("/proc/sys/kernel/unprivileged_userns_clone");
    std::string apparmor = read_trimmed("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    c.detail = "user.max_user_namespaces=" + (max.empty() ? "?" : max);
    if (max == "0") {
      c.ok = false;
      c.fix = "as root: sysctl -w user.max_user_namespaces=15000";
    }
    if (clone == "0") {
      c.ok = false;
      c.detail += ", kernel.unprivileged_userns_clone=0";
      c.fix = "as root: sysctl -w kernel.unprivileged_userns_clone=1";
    }
    if (apparmor == "1") {
      c.ok = false;
      c.detail += ", kernel.apparmor_restrict_unprivileged_userns=1";
      c.fix = "as root: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for hutch";
    }
    out.push_back(c);
  }
  if (plan.mode != UsernsMode::kRealRoot) {
    for (bool uids : {true, false}) {
      const auto& ranges = uids ? plan.uid_ranges : plan.gid_ranges;
      const char* file = uids ? "/etc/subuid" : "/etc/subgid";
      HostCheck c{uids ? "subordinate uids" : "subordinate gids", !ranges.empty(), "", ""};
      if (ranges.empty()) {
        c.detail = std::string("none for ") + plan.user + " in " + file + " (single-ID mode)";
        c.fix = "as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 " + plan.user;
      } else {
        for (const auto& r : ranges)
          c.detail += (c.detail.empty() ? "" : ", ") + std::to_string(r.start) + "-" + std::to_string(r.start + r.count - 1);
        c.detail += " (" + plan.ranges_source + ")";
        std::string other = overlap_in(file, plan.user, ranges);
        if (!other.empty()) {
          c.ok = false;
          c.detail += "; overlaps the range of " + other;
          c.fix = "give each user a range of its own in " + std::string(file);
        }
      }
      out.push_back(c);
    }
    for (const auto& [name, path] : {std::pair<std::string, std::string>{"newuidmap", plan.newuidmap},
                                     {"newgidmap", plan.newgidmap}}) {
      HostCheck c{name, false, "", ""};
      struct stat st;
      if (path.empty() || stat(path.c_str(), &st) != 0) {
        c.detail = "not found";
        c.fix = "as root: apt-get install uidmap";
      } else {
        c.ok = (st.st_mode & S_ISUID) && st.st_uid == 0;
        c.detail = path + (c.ok ? " (setuid root)" : " (not setuid root; it may have file capabilities)");
        if (!c.ok) {
          c.ok = true;  // file capabilities (cap_setuid+ep) work as well
        }
      }
      out.push_back(c);
    }
  }
  out.push_back(device_check("/dev/fuse", "fuse-overlayfs"));
  out.push_back(device_check("/dev/net/tun", "user-mode networking"));
  {
    HostCheck c{"cgroups", true, "", ""};
    // `info` runs outside the user namespace: its euid is the caller's real one.
    CgroupSupport cg = detect_cgroups(::geteuid() == 0, cgroup_parent);
    c.detail = cg.layout;
    if (cg.usable) {
      std::string list;
      for (const auto& ctl : cg.controllers) list += (list.empty() ? "" : " ") + ctl;
      c.detail += ", resource limits enforced with: " + list + " (containers under " + cg.parent + ")";
    } else {
      c.detail += ": resource limits (--memory, --cpus, --pids-limit) cannot be enforced: " + cg.reason +
                  " (hutch warns, or refuses with [engine] require_limits = true)";
      c.fix = cg.fix;
      c.ok = false;
    }
    out.push_back(c);
  }
  {
    HostCheck c{"runtime directory", true, run_root.string(), ""};
    const char* x = getenv("XDG_RUNTIME_DIR");
    if (!x) c.detail += " ($XDG_RUNTIME_DIR is not set; a private directory is used)";
    out.push_back(c);
  }
  {
    std::string t = filesystem_type(store_root);
    HostCheck c{"store filesystem", true, store_root.string() + " on " + t, ""};
    if (t == "nfs" || t == "lustre" || t == "gpfs") {
      c.detail += " (a network filesystem: user namespaces cannot own files there)";
      c.fix = "set [storage] root in hutch.conf to a local disk (for example /tmp or a node-local scratch)";
      c.ok = false;
    } else if (t == "overlay") {
      c.detail += " (overlay on overlay: native overlay will not work here)";
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace hutch
