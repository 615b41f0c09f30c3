#include "hutch/layer_tar.hpp"
#include "hutch/paths.hpp"

#include "archive_lazy.hpp"
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "hutch/digest.hpp"
#include "hutch/unique_fd.hpp"
#include "hutch/error.hpp"

namespace hutch {

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

int openat2_beneath(int root_fd, const std::string& path, int flags) {
  struct open_how how {};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = syscall(SYS_openat2, root_fd, path.empty() ? "." : path.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != EAGAIN) return static_cast<int>(fd);
  }
}


void split(const std::string& path, std::string& parent, std::string& base) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    parent.clear();
    base = path;
  } else {
    parent = path.substr(0, slash);
    base = path.substr(slash + 1);
  }
}

using Fd = UniqueFd;

void copy_file_data(int from, int to, off_t size, const std::string& what) {
  off_t left = size;
  while (left > 0) {
    ssize_t n = copy_file_range(from, nullptr, to, nullptr, static_cast<size_t>(left), 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      // Fall back to read/write (filesystems without copy_file_range).
      char buf[1 << 16];
      ssize_t r = read(from, buf, sizeof buf);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) throw system_error("cannot read " + what, errno);
        break;
      }
      if (write(to, buf, static_cast<size_t>(r)) != r) throw system_error("cannot write " + what, errno);
      left -= r;
      continue;
    }
    left -= n;
  }
}

struct ArchiveReader {
  struct archive* a = lazy_archive::archive_read_new();
  ~ArchiveReader() { lazy_archive::archive_read_free(a); }
};

struct DeferredTimes {
  std::string path;
  struct timespec times[2];
};

class Applier {
 public:
  Applier(int root_fd, const ApplyOptions& opts) : root_(root_fd), opts_(opts) {}

  void apply(struct archive* a, struct archive_entry* e) {
    std::string path = normalize_path(lazy_archive::archive_entry_pathname(e) ? lazy_archive::archive_entry_pathname(e) : "");
    if (path.empty() && opts_.copy_extraction) return;  // docker cp leaves the directory itself alone
    std::string parent, base;
    split(path, parent, base);
    if (opts_.whiteouts != WhiteoutForm::kNone && base.rfind(kWhiteoutPrefix, 0) == 0) {
      whiteout(path, parent, base);
      return;
    }
    Fd pfd(open_dir_beneath(root_, parent, true));
    if (pfd.fd < 0) {
      if ((errno == ENOENT || errno == ENOTDIR || errno == EEXIST || errno == ELOOP) && opts_.copy_extraction)
        throw Error(Errc::kInvalidInput, "the entry \"" + path + "\" lies under \"" + parent +
                                             "\", which is not a directory beneath the destination (a symlink "
                                             "that leads outside it, or a file)");
      if (errno == ENOENT || errno == ENOTDIR || errno == EEXIST || errno == ELOOP)
        throw Error(Errc::kInvalidInput, "the layer entry \"" + path + "\" lies under \"" + parent +
                                             "\", which is not a directory inside the image (a symlink that "
                                             "leads outside, or a file); the layer is refused");
      throw system_error("cannot open the directory of " + path, errno);
    }
    uid_t uid = static_cast<uid_t>(lazy_archive::archive_entry_uid(e));
    gid_t gid = static_cast<gid_t>(lazy_archive::archive_entry_gid(e));
    if (opts_.squash_ownership) {
      uid = 0;
      gid = 0;
    } else if (lazy_archive::archive_entry_uid(e) >= static_cast<la_int64_t>(opts_.uid_count) ||
               lazy_archive::archive_entry_gid(e) >= static_cast<la_int64_t>(opts_.gid_count)) {
      throw Error(Errc::kInvalidInput,
                  "\"" + path + "\" is owned by uid " + std::to_string(lazy_archive::archive_entry_uid(e)) + " gid " +
                      std::to_string(lazy_archive::archive_entry_gid(e)) + ", outside the IDs this user namespace maps (uids 0-" +
                      std::to_string(opts_.uid_count - 1) + ", gids 0-" + std::to_string(opts_.gid_count - 1) +
                      "); give your user a subordinate range of at least 65536 IDs in /etc/subuid and /etc/subgid");
    }
    mode_t mode = lazy_archive::archive_entry_perm(e);
    const char* hardlink = lazy_archive::archive_entry_hardlink(e);
    if (path.empty()) {  // the root itself: metadata only
      set_owner_mode(root_, "", uid, gid, mode, false);
      return;
    }
    created_.insert(path);
    mode_t type = lazy_archive::archive_entry_filetype(e);
    if (opts_.copy_extraction && (hardlink || type != AE_IFDIR)) {
      struct stat st;
      if (fstatat(pfd.fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        throw Error(Errc::kInvalidInput, "cannot overwrite the directory \"" + path + "\" with a non-directory");
    }
    if (hardlink) {
      make_hardlink(pfd.fd, base, normalize_path(hardlink), path);
      return;
    }
    if (type == AE_IFDIR) {
      struct stat st;
      bool replaces_whiteout = false;
      if (fstatat(pfd.fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
        if (opts_.copy_extraction)
          throw Error(Errc::kInvalidInput, "cannot overwrite the non-directory \"" + path + "\" with a directory");
        replaces_whiteout = is_overlay_whiteout(st);
        remove_beneath(pfd.fd, base);
      }
      if (mkdirat(pfd.fd, base.c_str(), 0700) != 0 && errno != EEXIST)
        throw system_error("cannot create directory " + path, errno);
      Fd dfd(openat(pfd.fd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (dfd.fd < 0) throw system_error("cannot open directory " + path, errno);
      set_owner_mode(dfd.fd, "", uid, gid, mode, false);
      set_xattrs(dfd.fd, e, path);
      // Deleted, then made again in this layer: nothing of the old one shows through.
      if (replaces_whiteout) set_opaque(dfd.fd, path);
      DeferredTimes t{path, {entry_atime(e), entry_mtime(e)}};
      dirs_.push_back(t);
      return;
    }
    replace_existing(pfd.fd, base);
    switch (type) {
      case AE_IFREG: {
        Fd fd(openat(pfd.fd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (fd.fd < 0) throw system_error("cannot create " + path, errno);
        write_data(a, fd.fd, path);
        set_owner_mode(fd.fd, "", uid, gid, mode, false);
        set_xattrs(fd.fd, e, path);
        struct timespec ts[2] = {entry_atime(e), entry_mtime(e)};
        futimens(fd.fd, ts);
        break;
      }
      case AE_IFLNK: {
        const char* target = lazy_archive::archive_entry_symlink(e);
        if (symlinkat(target ? target : "", pfd.fd, base.c_str()) != 0)
          throw system_error("cannot create symlink " + path, errno);
        set_owner_mode(pfd.fd, base, uid, gid, 0, true);
        struct timespec ts[2] = {entry_atime(e), entry_mtime(e)};
        utimensat(pfd.fd, base.c_str(), ts, AT_SYMLINK_NOFOLLOW);
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: {
        mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
        if (mknodat(pfd.fd, base.c_str(), kind | 0600, lazy_archive::archive_entry_rdev(e)) != 0) {
          if ((errno == EPERM || errno == EACCES) && kind != S_IFIFO) {
            if (stats.skipped_devices++ == 0 && opts_.logger)
              opts_.logger->warn("skipping device nodes in the image (such as /" + path +
                                 "): an unprivileged user cannot create them; /dev in a container is made anew");
            created_.erase(path);
            return;
          }
          throw system_error("cannot create device node " + path, errno);
        }
        set_owner_mode(pfd.fd, base, uid, gid, mode, false);
        break;
      }
      case AE_IFSOCK:
        created_.erase(path);
        return;  // sockets in a layer mean nothing; docker skips them too
      default:
        throw Error(Errc::kInvalidInput, "\"" + path + "\" has an unknown tar entry type");
    }
  }

  void finish() {
    // Directory times last: creating their children changed them.
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      Fd fd(openat2_beneath(root_, it->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      if (fd.fd >= 0) futimens(fd.fd, it->times);
    }
  }

  ApplyStats stats;

 private:
  static struct timespec entry_mtime(struct archive_entry* e) {
    struct timespec t {};
    if (lazy_archive::archive_entry_mtime_is_set(e)) {
      t.tv_sec = lazy_archive::archive_entry_mtime(e);
      t.tv_nsec = lazy_archive::archive_entry_mtime_nsec(e);
    } else {
      t.tv_nsec = UTIME_OMIT;
    }
    return t;
  }
  static struct timespec entry_atime(struct archive_entry* e) {
    struct timespec t {};
    if (lazy_archive::archive_entry_atime_is_set(e)) {
      t.tv_sec = lazy_archive::archive_entry_atime(e);
      t.tv_nsec = lazy_archive::archive_entry_atime_nsec(e);
    } else {
      return entry_mtime(e);
    }
    return t;
  }

  void set_owner_mode(int fd, const std::string& name, uid_t uid, gid_t gid, mode_t mode, bool is_link) {
    if (!opts_.squash_ownership) {
      int r = name.empty() ? fchown(fd, uid, gid) : fchownat(fd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
      if (r != 0)
        throw system_error("cannot give " + (name.empty() ? std::string("a file") : name) + " owner " +
                               std::to_string(uid) + ":" + std::to_string(gid),
                           errno);
    }
    if (is_link) return;
    // After chown, which clears setuid and setgid.
    if (name.empty()) {
      if (fchmod(fd, mode) != 0) throw system_error("cannot set mode", errno);
    } else if (fchmodat(fd, name.c_str(), mode, AT_SYMLINK_NOFOLLOW) != 0) {
      throw system_error("cannot set the mode of " + name, errno);
    }
  }

  static bool is_overlay_whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

  void set_opaque(int dir_fd, const std::string& path) {
    if (fsetxattr(dir_fd, kOverlayOpaqueXattr, "y", 1, 0) != 0)
      throw system_error("cannot mark " + (path.empty() ? std::string("/") : path) +
                             " opaque (xattr " + kOverlayOpaqueXattr + "); the store's filesystem needs user xattrs",
                         errno);
  }

  void set_xattrs(int fd, struct archive_entry* e, const std::string& path) {
    const char* name;
    const void* value;
    size_t size;
    if (lazy_archive::archive_entry_xattr_reset(e) == 0) return;
    while (lazy_archive::archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
      std::string_view n(name);
      if (n.rfind("trusted.overlay.", 0) == 0 || n.rfind("user.overlay.", 0) == 0) {
        if (opts_.logger) opts_.logger->debug("dropping overlay xattr " + std::string(n) + " of " + path + " from the layer");
        continue;
      }
      if (fsetxattr(fd, name, value, size, 0) != 0) {
        // trusted.* and security.* other than capabilities need privileges we do not have.
        if (opts_.logger) opts_.logger->debug("cannot set xattr " + std::string(name) + " on " + path + ": " + strerror(errno));
      }
    }
  }

  void write_data(struct archive* a, int fd, const std::string& path) {
    const void* buf;
    size_t size;
    la_int64_t offset;
    off_t end = 0;
    for (;;) {
      int r = lazy_archive::archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        throw Error(Errc::kInvalidInput, "cannot read the data of \"" + path + "\": " + lazy_archive::archive_error_string(a));
      const char* p = static_cast<const char*>(buf);
      size_t done = 0;
      while (done < size) {
        ssize_t n = pwrite(fd, p + done, size - done, offset + static_cast<off_t>(done));
        if (n < 0) {
          if (errno == EINTR) continue;
          throw system_error("cannot write " + path, errno);
        }
        done += static_cast<size_t>(n);
      }
      stats.bytes += size;
      end = offset + static_cast<off_t>(size);
    }
    // A sparse file ending in a hole.
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size < end && ftruncate(fd, end) != 0)
      throw system_error("cannot size " + path, errno);
  }

  void replace_existing(int pfd, const std::string& base) {
    struct stat st;
    if (fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) remove_beneath(pfd, base);
  }

  void make_hardlink(int pfd, const std::string& base, const std::string& target, const std::string& path) {
    std::string tparent, tbase;
    split(target, tparent, tbase);
    if (tbase.empty()) throw Error(Errc::kInvalidInput, "\"" + path + "\" is a hardlink to the root");
    struct stat st;
    auto find_target = [&](Fd& tpfd) {
      tpfd.fd = openat2_beneath(root_, tparent, O_PATH | O_DIRECTORY);
      return tpfd.fd >= 0 && fstatat(tpfd.fd, tbase.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    };
    Fd tpfd;
    if (!find_target(tpfd)) {
      int e = errno;
      // An overlay layer holds only itself: the target may be in a layer below.
      bool found = e == ENOENT && opts_.whiteouts == WhiteoutForm::kOverlay && copy_up_from_lower(target);
      if (found) {
        if (tpfd.fd >= 0) ::close(tpfd.fd);
        tpfd.fd = -1;
        found = find_target(tpfd);
      }
      if (!found) throw system_error("cannot find the target of hardlink " + path + " (" + target + ")", e);
    }
    if (S_ISDIR(st.st_mode)) throw Error(Errc::kInvalidInput, "\"" + path + "\" is a hardlink to a directory");
    if (target == path) return;
    replace_existing(pfd, base);
    if (linkat(tpfd.fd, tbase.c_str(), pfd, base.c_str(), 0) != 0)
      throw system_error("cannot create hardlink " + path, errno);
  }

  void whiteout(const std::string& path, const std::string& parent, const std::string& base) {
    if (opts_.whiteouts == WhiteoutForm::kOverlay) {
      overlay_whiteout(path, parent, base);
      return;
    }
    Fd pfd(openat2_beneath(root_, parent, O_RDONLY | O_DIRECTORY));
    if (pfd.fd < 0) return;  // nothing below to hide
    if (base == kOpaqueMarker) {
      // Hide everything the layers below put here; keep what this layer made.
      Fd dup_fd(dup(pfd.fd));
      DIR* d = fdopendir(dup_fd.fd);
      if (!d) throw system_error("cannot read directory " + parent, errno);
      dup_fd.fd = -1;
      std::vector<std::string> names;
      while (struct dirent* de = readdir(d)) {
        std::string n = de->d_name;
        if (n == "." || n == "..") continue;
        std::string child = parent.empty() ? n : parent + "/" + n;
        if (!created_.count(child)) names.push_back(n);
      }
      closedir(d);
      for (const auto& n : names) remove_beneath(pfd.fd, n);
      return;
    }
    std::string victim = base.substr(kWhiteoutPrefix.size());
    if (victim.empty() || victim == "." || victim == "..")
      throw Error(Errc::kInvalidInput, "\"" + path + "\" is not a valid whiteout");
    struct stat st;
    if (fstatat(pfd.fd, victim.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) remove_beneath(pfd.fd, victim);
  }

  // The layer stands alone: record the deletion for the overlay filesystem to apply.
  void overlay_whiteout(const std::string& path, const std::string& parent, const std::string& base) {
    Fd ppath(open_dir_beneath(root_, parent, true));
    if (ppath.fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR || errno == EEXIST || errno == ELOOP)
        throw Error(Errc::kInvalidInput, "the whiteout \"" + path + "\" lies under \"" + parent +
                                             "\", which is not a directory inside the image; the layer is refused");
      throw system_error("cannot open the directory of " + path, errno);
    }
    Fd pfd(openat2_beneath(root_, parent, O_RDONLY | O_DIRECTORY));
    if (pfd.fd < 0) throw system_error("cannot open the directory of " + path, errno);
    if (base == kOpaqueMarker) {
      set_opaque(pfd.fd, parent);
      return;
    }
    std::string victim = base.substr(kWhiteoutPrefix.size());
    if (victim.empty() || victim == "." || victim == ".." || victim.rfind(kWhiteoutPrefix, 0) == 0)
      throw Error(Errc::kInvalidInput, "\"" + path + "\" is not a valid whiteout");
    replace_existing(pfd.fd, victim);
    if (mknodat(pfd.fd, victim.c_str(), S_IFCHR | 0000, 0) != 0)
      throw system_error("cannot record the deletion of " + (parent.empty() ? victim : parent + "/" + victim) +
                             " (a 0:0 whiteout device)",
                         errno);
  }

  // A hardlink whose target a lower layer holds: bring the file up into this layer first.
  bool copy_up_from_lower(const std::string& target) {
    std::string tparent, tbase;
    split(target, tparent, tbase);
    for (int lower : opts_.lower_fds) {
      Fd lp(openat2_beneath(lower, tparent, O_RDONLY | O_DIRECTORY));
      if (lp.fd < 0) continue;
      struct stat st;
      if (fstatat(lp.fd, tbase.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (is_overlay_whiteout(st) || S_ISDIR(st.st_mode)) return false;
      Fd up(open_dir_beneath(root_, tparent, true));
      Fd upd(openat2_beneath(root_, tparent, O_RDONLY | O_DIRECTORY));
      if (up.fd < 0 || upd.fd < 0) return false;
      if (S_ISREG(st.st_mode)) {
        Fd s(openat(lp.fd, tbase.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        Fd d(openat(upd.fd, tbase.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (s.fd < 0 || d.fd < 0) throw system_error("cannot copy " + target + " up from a lower layer", errno);
        copy_file_data(s.fd, d.fd, st.st_size, target);
        if (!opts_.squash_ownership && fchown(d.fd, st.st_uid, st.st_gid) != 0)
          throw system_error("cannot give " + target + " its owner", errno);
        fchmod(d.fd, st.st_mode & 07777);
        struct timespec ts[2] = {st.st_atim, st.st_mtim};
        futimens(d.fd, ts);
      } else if (S_ISLNK(st.st_mode)) {
        std::vector<char> buf(static_cast<size_t>(st.st_size) + 2);
        ssize_t n = readlinkat(lp.fd, tbase.c_str(), buf.data(), buf.size() - 1);
        if (n < 0) throw system_error("cannot read symlink " + target, errno);
        buf[static_cast<size_t>(n)] = '\0';
        if (symlinkat(buf.data(), upd.fd, tbase.c_str()) != 0) throw system_error("cannot copy up " + target, errno);
      } else {
        return false;
      }
      return true;
    }
    return false;
  }

  int root_;
  ApplyOptions opts_;
  std::set<std::string> created_;
  std::vector<DeferredTimes> dirs_;
};

}  // namespace

int open_dir_beneath(int root_fd, const std::string& relative, bool create) {
  int fd = openat2_beneath(root_fd, relative, O_PATH | O_DIRECTORY);
  if (fd >= 0 || errno != ENOENT || !create) return fd;
  // Walk down, making what is missing; each step resolved beneath the root again.
  std::string sofar;
  size_t i = 0;
  int parent = openat2_beneath(root_fd, "", O_PATH | O_DIRECTORY);
  if (parent < 0) return -1;
  while (i < relative.size()) {
    size_t j = relative.find('/', i);
    if (j == std::string::npos) j = relative.size();
    std::string comp = relative.substr(i, j - i);
    sofar += (sofar.empty() ? "" : "/") + comp;
    int next = openat2_beneath(root_fd, sofar, O_PATH | O_DIRECTORY);
    if (next < 0 && errno == ENOENT) {
      if (mkdirat(parent, comp.c_str(), 0755) != 0 && errno != EEXIST) {
        int e = errno;
        ::close(parent);
        errno = e;
        return -1;
      }
      next = openat2_beneath(root_fd, sofar, O_PATH | O_DIRECTORY);
    }
    ::close(parent);
    if (next < 0) return -1;
    parent = next;
    i = j + 1;
  }
  return parent;
}

void remove_beneath(int dir_fd, const std::string& name) {
  struct stat st;
  if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    throw system_error("cannot inspect " + name, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw system_error("cannot open " + name, errno);
    DIR* d = fdopendir(fd);
    if (!d) {
      ::close(fd);
      throw system_error("cannot read " + name, errno);
    }
    std::vector<std::string> names;
    while (struct dirent* de = readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    for (const auto& n : names) remove_beneath(dirfd(d), n);
    closedir(d);
    if (unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0) throw system_error("cannot remove " + name, errno);
  } else if (unlinkat(dir_fd, name.c_str(), 0) != 0) {
    throw system_error("cannot remove " + name, errno);
  }
}

namespace {

// Applies every entry of the opened archive; `display_name` ("layer X") names it in errors.
ApplyStats apply_entries(struct archive* a, int root_fd, const std::string& display_name, const ApplyOptions& options) {
  Applier applier(root_fd, options);
  struct archive_entry* e;
  for (;;) {
    int rc = lazy_archive::archive_read_next_header(a, &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      throw Error(Errc::kInvalidInput, display_name + " is not a valid tar: " + lazy_archive::archive_error_string(a));
    applier.apply(a, e);
    applier.stats.entries++;
  }
  applier.finish();
  return applier.stats;
}

}  // namespace

ApplyStats apply_layer_tar(int root_fd, const std::filesystem::path& tar, const ApplyOptions& options) {
  ArchiveReader r;
  lazy_archive::archive_read_support_filter_all(r.a);
  lazy_archive::archive_read_support_format_tar(r.a);
  if (lazy_archive::archive_read_open_filename(r.a, tar.c_str(), 1 << 16) != ARCHIVE_OK)
    throw Error(Errc::kInvalidInput, "cannot open layer " + tar.string() + ": " + lazy_archive::archive_error_string(r.a));
  return apply_entries(r.a, root_fd, "layer " + tar.string(), options);
}

ApplyStats apply_tar_stream(int root_fd, int tar_fd, const std::string& display_name, const ApplyOptions& options) {
  ArchiveReader r;
  lazy_archive::archive_read_support_filter_all(r.a);
  lazy_archive::archive_read_support_format_tar(r.a);
  if (lazy_archive::archive_read_open_fd(r.a, tar_fd, 1 << 16) != ARCHIVE_OK)
    throw Error(Errc::kInvalidInput, "cannot read " + display_name + ": " + lazy_archive::archive_error_string(r.a));
  return apply_entries(r.a, root_fd, display_name, options);
}

int open_beneath(int root_fd, const std::string& relative, int flags) { return openat2_beneath(root_fd, relative, flags); }

std::string decompress_layer(int input_fd, const std::string& display_name, const std::filesystem::path& output,
                             std::uint64_t* size) {
  Fd out(::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.fd < 0) throw system_error("cannot create " + output.string(), errno);
  Sha256 hash;
  std::uint64_t total = 0;
  {
    ArchiveReader r;
    lazy_archive::archive_read_support_filter_all(r.a);
    lazy_archive::archive_read_support_format_raw(r.a);
    struct archive_entry* e;
    if (lazy_archive::archive_read_open_fd(r.a, input_fd, 1 << 16) != ARCHIVE_OK || lazy_archive::archive_read_next_header(r.a, &e) != ARCHIVE_OK)
      throw Error(Errc::kInvalidInput, display_name + " cannot be read: " +
                                           (lazy_archive::archive_error_string(r.a) ? lazy_archive::archive_error_string(r.a) : "empty input") +
                                           "; give a tar archive (plain, gzip, xz, bzip2 or zstd)");
    char buf[1 << 16];
    for (;;) {
      la_ssize_t n = lazy_archive::archive_read_data(r.a, buf, sizeof buf);
      if (n < 0)
        throw Error(Errc::kInvalidInput, display_name + " is corrupt: " + lazy_archive::archive_error_string(r.a));
      if (n == 0) break;
      size_t done = 0;
      while (done < static_cast<size_t>(n)) {
        ssize_t w = ::write(out.fd, buf + done, static_cast<size_t>(n) - done);
        if (w < 0) {
          if (errno == EINTR) continue;
          throw system_error("cannot write " + output.string(), errno);
        }
        done += static_cast<size_t>(w);
      }
      hash.update(buf, static_cast<size_t>(n));
      total += static_cast<std::uint64_t>(n);
    }
  }
  if (fsync(out.fd) != 0) throw system_error("cannot write " + output.string(), errno);
  // Is it a tar? Read every header (and skip the data) before anything is stored.
  ArchiveReader check;
  lazy_archive::archive_read_support_format_tar(check.a);
  if (lazy_archive::archive_read_open_filename(check.a, output.c_str(), 1 << 16) != ARCHIVE_OK)
    throw Error(Errc::kInvalidInput, display_name + " is not a tar archive: " + lazy_archive::archive_error_string(check.a));
  struct archive_entry* e;
  for (;;) {
    int rc = lazy_archive::archive_read_next_header(check.a, &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      throw Error(Errc::kInvalidInput, display_name + " is not a tar archive: " + lazy_archive::archive_error_string(check.a));
  }
  if (size) *size = total;
  return hash.hex();
}

namespace {

struct TreeCopier {
    bool link_files = false;  // hardlink what is not a directory
    std::map<std::pair<dev_t, ino_t>, std::string> links;  // first path of each hardlinked inode

    static void copy_xattrs(int from, int to) {
      char names[8192];
      ssize_t len = flistxattr(from, names, sizeof names);
      for (ssize_t i = 0; i < len; i += static_cast<ssize_t>(strlen(names + i)) + 1) {
        char value[8192];
        ssize_t vl = fgetxattr(from, names + i, value, sizeof value);
        if (vl >= 0) fsetxattr(to, names + i, value, static_cast<size_t>(vl), 0);
      }
    }

    void copy_dir(int sfd, int dfd, const std::string& rel, int droot) {
      int dup_fd = dup(sfd);
      DIR* d = fdopendir(dup_fd);
      if (!d) {
        ::close(dup_fd);
        throw system_error("cannot read " + rel, errno);
      }
      std::vector<std::string> names;
      while (struct dirent* de = readdir(d)) {
        std::string n = de->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      closedir(d);
      for (const auto& n : names) copy_entry(sfd, dfd, n, rel.empty() ? n : rel + "/" + n, droot);
    }

    void copy_entry(int sfd, int dfd, const std::string& name, const std::string& rel, int droot) {
      struct stat st;
      if (fstatat(sfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) throw system_error("cannot inspect " + rel, errno);
      struct timespec ts[2] = {st.st_atim, st.st_mtim};
      if (S_ISDIR(st.st_mode)) {
        if (mkdirat(dfd, name.c_str(), 0700) != 0) throw system_error("cannot create " + rel, errno);
        Fd s(openat(sfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        Fd t(openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (s.fd < 0 || t.fd < 0) throw system_error("cannot open " + rel, errno);
        copy_dir(s.fd, t.fd, rel, droot);
        if (fchown(t.fd, st.st_uid, st.st_gid) != 0) {
        }
        fchmod(t.fd, st.st_mode & 07777);
        copy_xattrs(s.fd, t.fd);
        futimens(t.fd, ts);
        return;
      }
      if (link_files && linkat(sfd, name.c_str(), dfd, name.c_str(), 0) == 0) return;
      if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        auto key = std::make_pair(st.st_dev, st.st_ino);
        auto it = links.find(key);
        if (it != links.end()) {
          std::string p, b;
          split(it->second, p, b);
          Fd pf(openat2_beneath(droot, p, O_PATH | O_DIRECTORY));
          if (pf.fd >= 0 && linkat(pf.fd, b.c_str(), dfd, name.c_str(), 0) == 0) return;
        } else {
          links.emplace(key, rel);
        }
      }
      if (S_ISREG(st.st_mode)) {
        Fd s(openat(sfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        Fd t(openat(dfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (s.fd < 0 || t.fd < 0) throw system_error("cannot copy " + rel, errno);
        copy_file_data(s.fd, t.fd, st.st_size, rel);
        if (fchown(t.fd, st.st_uid, st.st_gid) != 0) {
        }
        fchmod(t.fd, st.st_mode & 07777);
        copy_xattrs(s.fd, t.fd);
        futimens(t.fd, ts);
      } else if (S_ISLNK(st.st_mode)) {
        std::vector<char> target(static_cast<size_t>(st.st_size) + 2);
        ssize_t n = readlinkat(sfd, name.c_str(), target.data(), target.size() - 1);
        if (n < 0) throw system_error("cannot read symlink " + rel, errno);
        target[static_cast<size_t>(n)] = '\0';
        if (symlinkat(target.data(), dfd, name.c_str()) != 0) throw system_error("cannot create symlink " + rel, errno);
        if (fchownat(dfd, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
        }
        utimensat(dfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
      } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
        if (mknodat(dfd, name.c_str(), st.st_mode, st.st_rdev) != 0) return;  // as on apply: skipped
        if (fchownat(dfd, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
        }
        fchmodat(dfd, name.c_str(), st.st_mode & 07777, 0);
        utimensat(dfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
      }
    }
};

void copy_tree_with(TreeCopier& copier, int src_fd, int dst_fd) {
  copier.copy_dir(src_fd, dst_fd, "", dst_fd);
  struct stat st;
  if (fstat(src_fd, &st) == 0) {
    if (fchown(dst_fd, st.st_uid, st.st_gid) != 0) {
    }
    fchmod(dst_fd, st.st_mode & 07777);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    futimens(dst_fd, ts);
  }
}


}  // namespace

void copy_tree(int src_fd, int dst_fd) {
  TreeCopier copier;
  copy_tree_with(copier, src_fd, dst_fd);
}

void link_tree(int src_fd, int dst_fd) {
  TreeCopier copier;
  copier.link_files = true;
  copy_tree_with(copier, src_fd, dst_fd);
}

std::uint64_t disk_usage(int dir_fd, std::set<std::pair<dev_t, ino_t>>* seen) {
  std::set<std::pair<dev_t, ino_t>> local;
  if (!seen) seen = &local;
  std::uint64_t total = 0;
  struct stat st;
  if (fstat(dir_fd, &st) == 0 && seen->insert({st.st_dev, st.st_ino}).second)
    total += static_cast<std::uint64_t>(st.st_blocks) * 512;
  int dup_fd = dup(dir_fd);
  DIR* d = fdopendir(dup_fd);
  if (!d) {
    if (dup_fd >= 0) ::close(dup_fd);
    return total;
  }
  while (struct dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n == "." || n == "..") continue;
    if (fstatat(dirfd(d), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      Fd sub(openat(dirfd(d), n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.fd >= 0) total += disk_usage(sub.fd, seen);
    } else if (seen->insert({st.st_dev, st.st_ino}).second) {
      total += static_cast<std::uint64_t>(st.st_blocks) * 512;
    }
  }
  closedir(d);
  return total;
}

}  // namespace hutch
