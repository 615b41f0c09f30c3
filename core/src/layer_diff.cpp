#include "hutch/layer_diff.hpp"
#include "hutch/paths.hpp"

#include "archive_lazy.hpp"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include "hutch/digest.hpp"
#include "hutch/unique_fd.hpp"
#include "hutch/layer_tar.hpp"

namespace hutch {

namespace {

using Fd = UniqueFd;

std::vector<std::string> list_dir(int dir_fd) {
  std::vector<std::string> names;
  int dup_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup_fd < 0) throw system_error("cannot read a directory", errno);
  DIR* d = fdopendir(dup_fd);
  if (!d) {
    ::close(dup_fd);
    throw system_error("cannot read a directory", errno);
  }
  while (struct dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string join(const std::string& dir, const std::string& name) { return dir == "/" ? "/" + name : dir + "/" + name; }

bool is_whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

bool same_time(const struct timespec& a, const struct timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

std::string read_link(int dir_fd, const std::string& name) {
  char buf[4096];
  ssize_t n = readlinkat(dir_fd, name.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

// Did the entry itself change (not counting what is inside a directory)?
bool entry_changed(int ldir, int udir, const std::string& name, const struct stat& l, const struct stat& u) {
  if ((l.st_mode & S_IFMT) != (u.st_mode & S_IFMT)) return true;
  if (l.st_mode != u.st_mode || l.st_uid != u.st_uid || l.st_gid != u.st_gid) return true;
  if (S_ISDIR(u.st_mode)) return false;
  if (!same_time(l.st_mtim, u.st_mtim) || l.st_size != u.st_size) return true;
  if ((S_ISCHR(u.st_mode) || S_ISBLK(u.st_mode)) && l.st_rdev != u.st_rdev) return true;
  if (S_ISLNK(u.st_mode) && read_link(ldir, name) != read_link(udir, name)) return true;
  return false;
}

// Everything under a new directory. `skip_wh_files`: an overlay upper, where ".wh." files
// are fuse-overlayfs' markers, not content.
void all_added(int dir_fd, const std::string& dir, std::vector<Change>& out, bool skip_wh_files = false) {
  for (const auto& n : list_dir(dir_fd)) {
    std::string path = join(dir, n);
    struct stat st;
    if (fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || is_whiteout(st)) continue;
    if (skip_wh_files && n.rfind(".wh.", 0) == 0) continue;
    out.push_back({path, ChangeKind::kAdded});
    if (S_ISDIR(st.st_mode)) {
      Fd sub(openat(dir_fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.fd >= 0) all_added(sub.fd, path, out, skip_wh_files);
    }
  }
}

// Returns whether anything under `dir` changed.
bool compare_dirs(int ldir, int udir, const std::string& dir, std::vector<Change>& out) {
  bool any = false;
  auto unames = list_dir(udir);
  for (const auto& n : unames) {
    std::string path = join(dir, n);
    struct stat u, l;
    if (fstatat(udir, n.c_str(), &u, AT_SYMLINK_NOFOLLOW) != 0) continue;
    bool in_lower = ldir >= 0 && fstatat(ldir, n.c_str(), &l, AT_SYMLINK_NOFOLLOW) == 0;
    if (!in_lower) {
      any = true;
      out.push_back({path, ChangeKind::kAdded});
      if (S_ISDIR(u.st_mode)) {
        Fd sub(openat(udir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub.fd >= 0) all_added(sub.fd, path, out);
      }
      continue;
    }
    bool changed = entry_changed(ldir, udir, n, l, u);
    if (S_ISDIR(u.st_mode)) {
      size_t at = out.size();
      out.push_back({path, ChangeKind::kChanged});
      Fd usub(openat(udir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      Fd lsub(S_ISDIR(l.st_mode) ? openat(ldir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1);
      bool inner = usub.fd >= 0 && compare_dirs(lsub.fd, usub.fd, path, out);
      if (!changed && !inner) out.erase(out.begin() + static_cast<long>(at));
      else any = true;
      continue;
    }
    if (changed) {
      any = true;
      out.push_back({path, ChangeKind::kChanged});
    }
  }
  if (ldir >= 0) {
    for (const auto& n : list_dir(ldir)) {
      if (std::binary_search(unames.begin(), unames.end(), n)) continue;
      any = true;
      out.push_back({join(dir, n), ChangeKind::kDeleted});
    }
  }
  return any;
}

// The lower layers as the overlay filesystem merges them: does `path` exist below?
std::optional<struct stat> lower_lookup(const std::vector<int>& lowers, const std::string& rel) {
  std::vector<std::string> parts;
  for (size_t i = 0; i <= rel.size();) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    if (j > i) parts.push_back(rel.substr(i, j - i));
    i = j + 1;
  }
  for (int lower : lowers) {
    Fd cur(openat(lower, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    bool stop_below = false;  // an opaque or non-directory ancestor hides the layers further down
    bool reachable = true;
    for (size_t k = 0; k + 1 < parts.size() && reachable; ++k) {
      struct stat st;
      if (fstatat(cur.fd, parts[k].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        reachable = false;
        break;
      }
      if (!S_ISDIR(st.st_mode)) return std::nullopt;  // a file or whiteout hides everything under it
      Fd next(openat(cur.fd, parts[k].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (next.fd < 0) {
        reachable = false;
        break;
      }
      char v;
      if (fgetxattr(next.fd, kOverlayOpaqueXattr, &v, 1) == 1 && v == 'y') stop_below = true;
      std::swap(cur.fd, next.fd);
    }
    if (reachable) {
      struct stat st;
      if (fstatat(cur.fd, parts.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (is_whiteout(st)) return std::nullopt;
        return st;
      }
    }
    if (stop_below) return std::nullopt;
  }
  return std::nullopt;
}

constexpr std::string_view kWhPrefix = ".wh.";
constexpr const char* kWhOpaque = ".wh..wh..opq";

// Opaque by the kernel's xattr, or by fuse-overlayfs' marker file.
bool is_opaque_dir(int fd) {
  char v;
  if (fgetxattr(fd, kOverlayOpaqueXattr, &v, 1) == 1 && v == 'y') return true;
  struct stat st;
  return fstatat(fd, kWhOpaque, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

// The names the merged lower layers show in directory `rel` ("" for the root).
std::set<std::string> lower_names(const std::vector<int>& lowers, const std::string& rel) {
  std::set<std::string> visible, hidden;
  for (int lower : lowers) {
    struct stat st;
    if (!rel.empty()) {
      if (fstatat(lower, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // not in this layer
      if (!S_ISDIR(st.st_mode)) break;  // a whiteout or a file here hides the layers below
    }
    int fd = openat(lower, rel.empty() ? "." : rel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    Fd d(fd);
    for (const auto& n : list_dir(d.fd)) {
      if (n.rfind(kWhPrefix, 0) == 0 || visible.count(n) || hidden.count(n)) continue;
      if (fstatat(d.fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      (is_whiteout(st) ? hidden : visible).insert(n);
    }
    if (is_opaque_dir(d.fd)) break;
  }
  return visible;
}

void overlay_dir(int udir, const std::string& dir, const std::vector<int>& lowers, std::vector<Change>& out) {
  for (const auto& n : list_dir(udir)) {
    std::string path = join(dir, n);
    if (n.rfind(kWhPrefix, 0) == 0) {
      // fuse-overlayfs records a deletion as a ".wh.NAME" file where it cannot make a device.
      if (n != kWhOpaque) {
        std::string victim = join(dir, n.substr(kWhPrefix.size()));
        if (lower_lookup(lowers, victim.substr(1))) out.push_back({victim, ChangeKind::kDeleted});
      }
      continue;
    }
    struct stat u;
    if (fstatat(udir, n.c_str(), &u, AT_SYMLINK_NOFOLLOW) != 0) continue;
    auto below = lower_lookup(lowers, path.substr(1));
    if (is_whiteout(u)) {
      if (below) out.push_back({path, ChangeKind::kDeleted});
      continue;
    }
    if (!S_ISDIR(u.st_mode)) {
      // A file copied up with nothing changed (fuse-overlayfs does that to the other names of
      // a hardlinked file) is no change: same metadata, as vfs' comparison judges it.
      if (below && S_ISREG(u.st_mode) && S_ISREG(below->st_mode) && u.st_mode == below->st_mode &&
          u.st_uid == below->st_uid && u.st_gid == below->st_gid && u.st_size == below->st_size &&
          same_time(u.st_mtim, below->st_mtim))
        continue;
      out.push_back({path, below ? ChangeKind::kChanged : ChangeKind::kAdded});
      continue;
    }
    Fd sub(openat(udir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub.fd < 0) continue;
    bool opaque = is_opaque_dir(sub.fd);
    if (!below) {
      out.push_back({path, ChangeKind::kAdded});
      all_added(sub.fd, path, out, true);  // whiteouts in a new directory hide nothing: skipped
      continue;
    }
    if (opaque || !S_ISDIR(below->st_mode)) {
      // Replaces what was there: everything inside is new, and what was below is deleted.
      out.push_back({path, ChangeKind::kChanged, S_ISDIR(below->st_mode)});
      all_added(sub.fd, path, out, true);
      if (S_ISDIR(below->st_mode)) {
        auto upper_names = list_dir(sub.fd);
        for (const auto& gone : lower_names(lowers, path.substr(1))) {
          if (std::binary_search(upper_names.begin(), upper_names.end(), gone)) {
            // Made again: changed, not added.
            for (auto& c : out)
              if (c.path == join(path, gone) && c.kind == ChangeKind::kAdded) c.kind = ChangeKind::kChanged;
            continue;
          }
          out.push_back({join(path, gone), ChangeKind::kDeleted});
        }
      }
      continue;
    }
    out.push_back({path, ChangeKind::kChanged});
    overlay_dir(sub.fd, path, lowers, out);
  }
}

class TarWriter {
 public:
  TarWriter(const std::filesystem::path& out) : path_(out) {
    fd_ = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd_ < 0) throw system_error("cannot create " + out.string(), errno);
    a_ = lazy_archive::archive_write_new();
    lazy_archive::archive_write_set_format_pax_restricted(a_);
    lazy_archive::archive_write_set_bytes_in_last_block(a_, 1);
    if (lazy_archive::archive_write_open(a_, this, nullptr, &TarWriter::write_cb, nullptr) != ARCHIVE_OK)
      throw Error(Errc::kSystem, std::string("cannot write a layer tar: ") + lazy_archive::archive_error_string(a_));
  }
  ~TarWriter() {
    if (a_) lazy_archive::archive_write_free(a_);
    if (fd_ >= 0) ::close(fd_);
  }

  void entry(struct archive_entry* e, int data_fd, const std::string& what) {
    if (lazy_archive::archive_write_header(a_, e) != ARCHIVE_OK)
      throw Error(Errc::kSystem, "cannot write " + what + " into the layer: " + lazy_archive::archive_error_string(a_));
    if (data_fd < 0) return;
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(data_fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw system_error("cannot read " + what, errno);
      }
      if (n == 0) break;
      if (lazy_archive::archive_write_data(a_, buf, static_cast<size_t>(n)) < 0)
        throw Error(Errc::kSystem, "cannot write " + what + " into the layer: " + lazy_archive::archive_error_string(a_));
    }
  }

  ExportedLayer finish() {
    if (lazy_archive::archive_write_close(a_) != ARCHIVE_OK)
      throw Error(Errc::kSystem, std::string("cannot finish the layer tar: ") + lazy_archive::archive_error_string(a_));
    if (failed_) throw system_error("cannot write " + path_.string(), failed_);
    if (fsync(fd_) != 0) throw system_error("cannot write " + path_.string(), errno);
    return {hash_.hex(), size_};
  }

 private:
  static la_ssize_t write_cb(struct archive*, void* self_ptr, const void* buf, size_t len) {
    auto* self = static_cast<TarWriter*>(self_ptr);
    if (!write_all(self->fd_, buf, len)) {
      self->failed_ = errno;
      return -1;
    }
    self->hash_.update(buf, len);
    self->size_ += len;
    return static_cast<la_ssize_t>(len);
  }

  std::filesystem::path path_;
  int fd_ = -1;
  int failed_ = 0;
  struct archive* a_ = nullptr;
  Sha256 hash_;
  std::uint64_t size_ = 0;
};

void add_xattrs(struct archive_entry* e, int fd) {
  char names[16384];
  ssize_t len = flistxattr(fd, names, sizeof names);
  for (ssize_t i = 0; i < len; i += static_cast<ssize_t>(strlen(names + i)) + 1) {
    std::string_view n(names + i);
    if (n.rfind("trusted.overlay.", 0) == 0 || n.rfind("user.overlay.", 0) == 0) continue;
    char value[16384];
    ssize_t vl = fgetxattr(fd, names + i, value, sizeof value);
    if (vl >= 0) lazy_archive::archive_entry_xattr_add_entry(e, names + i, value, static_cast<size_t>(vl));
  }
}

bool same_bytes(int a_dir, int b_dir, const std::string& name, off_t size) {
  Fd a(openat(a_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  Fd b(openat(b_dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (a.fd < 0 || b.fd < 0) return false;
  std::vector<char> x(1 << 16), y(1 << 16);
  off_t done = 0;
  while (done < size) {
    ssize_t n = ::read(a.fd, x.data(), x.size());
    if (n <= 0) return false;
    size_t got = 0;
    while (got < static_cast<size_t>(n)) {
      ssize_t m = ::read(b.fd, y.data() + got, static_cast<size_t>(n) - got);
      if (m <= 0) return false;
      got += static_cast<size_t>(m);
    }
    if (std::memcmp(x.data(), y.data(), static_cast<size_t>(n)) != 0) return false;
    done += n;
  }
  return true;
}

std::optional<std::string> first_difference_in(int a_dir, int b_dir, const std::string& rel) {
  auto an = list_dir(a_dir), bn = list_dir(b_dir);
  if (an != bn) {
    std::vector<std::string> only;
    std::set_symmetric_difference(an.begin(), an.end(), bn.begin(), bn.end(), std::back_inserter(only));
    return (rel.empty() ? "" : rel + "/") + only.front() + ": in one tree only";
  }
  for (const auto& n : an) {
    std::string path = rel.empty() ? n : rel + "/" + n;
    struct stat a, b;
    if (fstatat(a_dir, n.c_str(), &a, AT_SYMLINK_NOFOLLOW) != 0 || fstatat(b_dir, n.c_str(), &b, AT_SYMLINK_NOFOLLOW) != 0)
      return path + ": cannot be read";
    // What a layer tar sets: not the times of directories, devices and whiteouts (made "now").
    if (a.st_mode != b.st_mode || a.st_uid != b.st_uid || a.st_gid != b.st_gid)
      return path + ": type, mode or owner differ";
    if ((S_ISCHR(a.st_mode) || S_ISBLK(a.st_mode)) && a.st_rdev != b.st_rdev) return path + ": device differs";
    if (S_ISLNK(a.st_mode) && read_link(a_dir, n) != read_link(b_dir, n)) return path + ": symlink target differs";
    if (S_ISREG(a.st_mode)) {
      if (a.st_size != b.st_size || !same_time(a.st_mtim, b.st_mtim)) return path + ": size or time differ";
      if (!same_bytes(a_dir, b_dir, n, a.st_size)) return path + ": content differs";
    }
    if (S_ISDIR(a.st_mode)) {
      Fd sa(openat(a_dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      Fd sb(openat(b_dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sa.fd < 0 || sb.fd < 0) return path + ": cannot be opened";
      if (auto d = first_difference_in(sa.fd, sb.fd, path)) return d;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> first_difference(int a_fd, int b_fd) { return first_difference_in(a_fd, b_fd, ""); }

char change_letter(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kAdded: return 'A';
    case ChangeKind::kDeleted: return 'D';
    default: return 'C';
  }
}

std::vector<Change> compare_trees(int lower_fd, int upper_fd) {
  std::vector<Change> out;
  compare_dirs(lower_fd, upper_fd, "/", out);
  std::sort(out.begin(), out.end(), [](const Change& a, const Change& b) { return a.path < b.path; });
  return out;
}

std::vector<Change> overlay_changes(int upper_fd, const std::vector<int>& lower_fds) {
  std::vector<Change> out;
  overlay_dir(upper_fd, "/", lower_fds, out);
  std::sort(out.begin(), out.end(), [](const Change& a, const Change& b) { return a.path < b.path; });
  return out;
}

ExportedLayer write_changes_tar(int root_fd, const std::vector<Change>& changes, const std::filesystem::path& out) {
  TarWriter tar(out);
  std::map<std::pair<dev_t, ino_t>, std::string> written;  // inode -> first name, for hardlinks
  std::vector<std::string> opaque_dirs;
  for (const auto& c : changes) {
    if (c.opaque) opaque_dirs.push_back(c.path + "/");
    if (c.kind == ChangeKind::kDeleted &&
        std::any_of(opaque_dirs.begin(), opaque_dirs.end(),
                    [&](const std::string& d) { return c.path.compare(0, d.size(), d) == 0; }))
      continue;  // the opaque marker already hides everything below
    std::string rel = c.path.substr(1);
    auto slash = rel.rfind('/');
    std::string parent = slash == std::string::npos ? "" : rel.substr(0, slash);
    std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
    struct archive_entry* e = lazy_archive::archive_entry_new();
    struct EntryFree {
      struct archive_entry* e;
      ~EntryFree() { lazy_archive::archive_entry_free(e); }
    } guard{e};
    if (c.kind == ChangeKind::kDeleted) {
      lazy_archive::archive_entry_set_pathname(e, (parent.empty() ? "" : parent + "/") .append(".wh." + base).c_str());
      lazy_archive::archive_entry_set_filetype(e, AE_IFREG);
      lazy_archive::archive_entry_set_perm(e, 0600);
      lazy_archive::archive_entry_set_size(e, 0);
      tar.entry(e, -1, c.path);
      continue;
    }
    Fd pfd(open_dir_beneath(root_fd, parent, false));
    if (pfd.fd < 0) throw system_error("cannot open the directory of " + c.path, errno);
    struct stat st;
    if (fstatat(pfd.fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // gone since the diff was taken
      throw system_error("cannot inspect " + c.path, errno);
    }
    if (is_whiteout(st)) continue;
    lazy_archive::archive_entry_copy_stat(e, &st);
    lazy_archive::archive_entry_set_pathname(e, rel.c_str());
    Fd data;
    if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      if (auto it = written.find(key); it != written.end()) {
        lazy_archive::archive_entry_set_hardlink(e, it->second.c_str());
        lazy_archive::archive_entry_set_size(e, 0);
        tar.entry(e, -1, c.path);
        continue;
      }
      written.emplace(key, rel);
    }
    if (S_ISLNK(st.st_mode)) {
      lazy_archive::archive_entry_set_symlink(e, read_link(pfd.fd, base).c_str());
    } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
      data.fd = openat(pfd.fd, base.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
      if (data.fd < 0) throw system_error("cannot open " + c.path, errno);
      add_xattrs(e, data.fd);
    } else if (S_ISSOCK(st.st_mode)) {
      continue;
    }
    tar.entry(e, S_ISREG(st.st_mode) ? data.fd : -1, c.path);
    if (c.opaque && S_ISDIR(st.st_mode)) {
      struct archive_entry* o = lazy_archive::archive_entry_new();
      EntryFree og{o};
      lazy_archive::archive_entry_set_pathname(o, (rel + "/.wh..wh..opq").c_str());
      lazy_archive::archive_entry_set_filetype(o, AE_IFREG);
      lazy_archive::archive_entry_set_perm(o, 0600);
      lazy_archive::archive_entry_set_size(o, 0);
      tar.entry(o, -1, c.path);
    }
  }
  return tar.finish();
}

}  // namespace hutch
