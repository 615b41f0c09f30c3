// fuse-overlayfs: the same layers as `overlay`, mounted by the fuse-overlayfs program (for
// stores where the kernel's overlay cannot work: NFS, overlay on overlay, old kernels) and
// unmounted with fusermount3.
//
// [plugins.fuse-overlayfs] mount_program = "/path/to/fuse-overlayfs"
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "../overlay-common/overlay_store.hpp"
#include "hutch/abi.hpp"

namespace hutch::storage::overlay {
namespace fs = std::filesystem;

namespace {

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = getenv("PATH");
  std::string p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find(':', i);
    if (j == std::string::npos) j = p.size();
    std::string cand = p.substr(i, j - i) + "/" + name;
    if (j > i && ::access(cand.c_str(), X_OK) == 0) return cand;
    i = j + 1;
  }
  return "";
}

struct Spawned {
  int code = -1;
  std::string err;
};

// Runs argv in `cwd`, stdin from /dev/null, stderr collected; waits for the first process
// (fuse-overlayfs itself forks its server into the background once the mount is up).
Spawned spawn(const std::vector<std::string>& argv, const fs::path& cwd) {
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) != 0) throw_errno("pipe");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
    }
    dup2(errpipe[1], 2);
    if (::chdir(cwd.c_str()) != 0) _exit(126);
    execv(args[0], args.data());
    _exit(127);
  }
  ::close(errpipe[1]);
  Spawned out;
  char buf[4096];
  // The server in the background keeps stderr open: read only until the first process ends.
  int status = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    struct timeval tv {0, 20000};
    fd_set set;
    FD_ZERO(&set);
    FD_SET(errpipe[0], &set);
    if (select(errpipe[0] + 1, &set, nullptr, nullptr, &tv) > 0) {
      ssize_t n = ::read(errpipe[0], buf, sizeof buf);
      if (n > 0 && out.err.size() < 65536) out.err.append(buf, static_cast<size_t>(n));
    }
    if (w == pid) break;
  }
  ::close(errpipe[0]);
  out.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  while (!out.err.empty() && (out.err.back() == '\n' || out.err.back() == ' ')) out.err.pop_back();
  return out;
}

class FuseOverlayDriver final : public OverlayStore {
 public:
  explicit FuseOverlayDriver(const PluginContext& ctx) : OverlayStore(ctx) {
    std::string configured = "fuse-overlayfs";
    if (ctx.config.is_object() && ctx.config.contains("mount_program") && ctx.config["mount_program"].is_string())
      configured = ctx.config["mount_program"].get<std::string>();
    configured_ = configured;
    program_ = find_program(configured);
    fusermount_ = find_program("fusermount3");
  }

  StorageCapabilities capabilities() const override {
    return {true, true, "overlay layers mounted by " + (program_.empty() ? configured_ : program_) + " (FUSE)"};
  }

  StorageProbe probe() override {
    if (program_.empty())
      return {false, "the mount program \"" + configured_ + "\" is not installed (Debian: apt-get install fuse-overlayfs)"};
    int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      return {false, std::string("cannot open /dev/fuse: ") + strerror(e) +
                         (e == EACCES || e == EPERM ? " (distributions make it mode 0666: chmod 0666 /dev/fuse as root)"
                                                    : " (load the fuse module: modprobe fuse)")};
    }
    ::close(fd);
    return probe_mount("fuse-overlayfs (" + program_ + ") mounts in the user namespace");
  }

 protected:
  void mount_overlay(const MountRequest& r) override {
    if (program_.empty())
      throw Error(Errc::kNotFound, "the mount program \"" + configured_ +
                                       "\" is not installed (Debian: apt-get install fuse-overlayfs)");
    // fsync=0: fuse-overlayfs' way of not syncing a container that is removed when it stops.
    std::string options = "lowerdir=" + r.lowerdir + ",upperdir=" + r.upper.string() + ",workdir=" + r.work.string() +
                          (r.ephemeral ? ",fsync=0" : "");
    auto res = spawn({program_, "-o", options, r.target.string()}, r.cwd);
    if (res.code != 0)
      throw Error(Errc::kSystem, program_ + " could not mount (exit " + std::to_string(res.code) + ")" +
                                     (res.err.empty() ? "" : ": " + res.err));
  }

  void unmount_overlay(const fs::path& target) override {
    if (!fusermount_.empty()) {
      auto res = spawn({fusermount_, "-u", "-z", target.string()}, "/");
      if (res.code == 0) return;
      if (context().logger) context().logger->debug("fusermount3 -u " + target.string() + ": " + res.err);
    }
    // In our own user and mount namespace we may unmount it ourselves.
    if (::umount2(target.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
      throw system_error("cannot unmount " + target.string(), errno);
  }

 private:
  std::string configured_, program_, fusermount_;
};

std::unique_ptr<StorageDriver> make_fuse_overlayfs_driver(const PluginContext& ctx) {
  return std::make_unique<FuseOverlayDriver>(ctx);
}

}  // namespace
}  // namespace hutch::storage::overlay

HUTCH_PLUGIN(hutch::StorageDriver, "fuse-overlayfs", "0.1.0", hutch::storage::overlay::make_fuse_overlayfs_driver);
