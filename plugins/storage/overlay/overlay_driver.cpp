// overlay: the kernel's overlayfs, mounted inside hutch's user namespace with `userxattr`
// (overlay metadata in user.overlay.*, which an unprivileged namespace may write).
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "../overlay-common/overlay_store.hpp"
#include "hutch/abi.hpp"

namespace hutch::storage::overlay {
namespace fs = std::filesystem;

namespace {

class KernelOverlayDriver final : public OverlayStore {
 public:
  explicit KernelOverlayDriver(const PluginContext& ctx) : OverlayStore(ctx) {}

  StorageCapabilities capabilities() const override {
    return {true, true, "the kernel's overlayfs in the user namespace (layers shared, containers copy on write)"};
  }

  StorageProbe probe() override {
    return probe_mount("the kernel's overlayfs mounts in the user namespace on this store's filesystem");
  }

 protected:
  void mount_overlay(const MountRequest& r) override {
    // userxattr: overlay metadata in user.overlay.*, which the namespace may write. It also
    // implies redirect_dir=nofollow and no metacopy, so a container's upper directory holds
    // its whole change set (what diff and commit read).
    std::string options = "lowerdir=" + r.lowerdir + ",upperdir=" + r.upper.string() + ",workdir=" +
                          r.work.string() + ",userxattr" + (r.ephemeral ? ",volatile" : "");
    if (options.size() >= static_cast<size_t>(sysconf(_SC_PAGESIZE))) {
      mount_layer_by_layer(r, options.size());
      return;
    }
    // The lower layers are named relative to the store (short links): mount from there.
    int cwd = ::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (::chdir(r.cwd.c_str()) != 0) {
      int e = errno;
      if (cwd >= 0) ::close(cwd);
      throw system_error("cannot enter " + r.cwd.string(), e);
    }
    int rc = ::mount("overlay", r.target.c_str(), "overlay", 0, options.c_str());
    int e = errno;
    if (cwd >= 0) {
      if (::fchdir(cwd) != 0) {
      }
      ::close(cwd);
    }
    if (rc != 0)
      throw Error(Errc::kSystem,
                  std::string("the kernel refused the overlay mount (") + strerror(e) +
                      "); the store's filesystem may not support overlay (NFS, overlay on overlay) or the kernel "
                      "is older than 5.11; use --storage-driver fuse-overlayfs or vfs");
  }

  // Past a page of options (an image of well over a hundred layers): the new mount API,
  // which takes the lower layers one by one ("lowerdir+", Linux 6.8).
  void mount_layer_by_layer(const MountRequest& r, size_t option_bytes) {
    int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fsfd < 0) throw system_error("cannot open an overlay filesystem context", errno);
    auto fail = [&](const std::string& what) {
      int e = errno;
      ::close(fsfd);
      throw Error(Errc::kSystem, "the overlay mount options for this image are " + std::to_string(option_bytes) +
                                     " bytes, past the kernel's page limit, and " + what + " (" + strerror(e) +
                                     "): the kernel needs \"lowerdir+\" (Linux 6.8); use --storage-driver "
                                     "fuse-overlayfs or vfs for this image");
    };
    size_t i = 0;
    while (i < r.lowerdir.size()) {
      size_t j = r.lowerdir.find(':', i);
      if (j == std::string::npos) j = r.lowerdir.size();
      std::string layer = (r.cwd / r.lowerdir.substr(i, j - i)).string();
      if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", layer.c_str(), 0) != 0) fail("adding a lower layer failed");
      i = j + 1;
    }
    if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", r.upper.c_str(), 0) != 0 ||
        fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", r.work.c_str(), 0) != 0 ||
        fsconfig(fsfd, FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) != 0 ||
        (r.ephemeral && fsconfig(fsfd, FSCONFIG_SET_FLAG, "volatile", nullptr, 0) != 0) ||
        fsconfig(fsfd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
      fail("setting up the overlay failed");
    int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
    if (mfd < 0) fail("making the mount failed");
    int rc = move_mount(mfd, "", AT_FDCWD, r.target.c_str(), MOVE_MOUNT_F_EMPTY_PATH);
    int e = errno;
    ::close(mfd);
    ::close(fsfd);
    if (rc != 0) throw system_error("cannot attach the overlay at " + r.target.string(), e);
  }

  void unmount_overlay(const fs::path& target) override {
    if (::umount2(target.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
      throw system_error("cannot unmount " + target.string(), errno);
  }
};

std::unique_ptr<StorageDriver> make_overlay_driver(const PluginContext& ctx) {
  return std::make_unique<KernelOverlayDriver>(ctx);
}

}  // namespace
}  // namespace hutch::storage::overlay

HUTCH_PLUGIN(hutch::StorageDriver, "overlay", "0.1.0", hutch::storage::overlay::make_overlay_driver);
