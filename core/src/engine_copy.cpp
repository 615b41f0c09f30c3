// `hutch cp`: files between a container and the host, or a tar stream, as docker cp does.
//
// Both directions are one pipeline: the source is written as a tar (TarOut) into a pipe, and
// the layer applier (apply_tar_stream) extracts it beneath the destination directory. Every
// path in a container is resolved beneath its root with openat2(RESOLVE_IN_ROOT), so that the
// image's symlinks cannot lead outside; below the resolved source the tree is walked with
// O_NOFOLLOW, below the destination directory the applier resolves beneath it again.
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <map>
#include <optional>
#include <thread>

#include "archive_lazy.hpp"
#include "hutch/engine.hpp"
#include "hutch/layer_tar.hpp"
#include "hutch/unique_fd.hpp"

namespace hutch {
namespace {

constexpr int kMaxSymlinks = 40;  // the kernel's own limit for one path

// ---- paths ------------------------------------------------------------------------------------


bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "DIR/." (or "."): what the directory holds, not the directory itself.
bool names_contents(const std::string& raw) { return raw == "." || ends_with(raw, "/."); }

// A trailing "/" (or "/."): the path must be a directory.
bool asserts_directory(const std::string& raw) { return ends_with(raw, "/") || names_contents(raw); }

// Where `path` is looked up: its directory and its last name, "." when the path itself is to
// be opened as a directory (the root, or a name that is "." or ".." after a symlink).
void split_lookup(const std::string& path, std::string& dir, std::string& base) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  dir = slash == std::string::npos ? "" : p.substr(0, slash == 0 ? 1 : slash);
  base = slash == std::string::npos ? p : p.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") {
    dir = p;
    base = ".";
  }
}

// The target of the symlink `name` in `dir_fd` (st_size is not to be trusted: /proc says 0).
bool read_link(int dir_fd, const std::string& name, std::string& target) {
  char buf[4096];
  ssize_t n = readlinkat(dir_fd, name.c_str(), buf, sizeof buf);
  if (n < 0) return false;
  if (static_cast<size_t>(n) == sizeof buf) {
    errno = ENAMETOOLONG;
    return false;
  }
  target.assign(buf, static_cast<size_t>(n));
  return true;
}

std::string basename_of(const std::string& cleaned) {
  auto slash = cleaned.rfind('/');
  return slash == std::string::npos ? cleaned : cleaned.substr(slash + 1);
}

// One side of a copy: a container's root, or the host's "/".
struct Side {
  int root = -1;
  std::string container;  // as the user named it; empty: the host

  // "/etc/passwd in container c1", or the host path.
  std::string show(const std::string& cleaned) const {
    return "/" + cleaned + (container.empty() ? "" : " in container " + container);
  }
  Error not_found(const std::string& cleaned) const {
    return Error(Errc::kNotFound, "could not find the file " + show(cleaned));
  }
  Error not_a_directory(const std::string& cleaned) const {
    return Error(Errc::kInvalidInput, show(cleaned) + " is not a directory");
  }
};

// An entry: the directory that holds it (O_PATH) and its name there ("." for that directory).
struct Located {
  UniqueFd parent;
  std::string base;
  std::optional<struct stat> st;  // lstat; empty when it does not exist (its directory does)
};

// Finds `dir`/`base` beneath side.root. With `follow`, a symlink that `base` is (and the one
// that it points to, and so on) is followed, still beneath the root: docker's DEST, and -L.
// `shown` is the cleaned path the user gave, for errors.
Located locate(const Side& side, std::string dir, std::string base, bool follow, const std::string& shown) {
  for (int hops = 0;; ++hops) {
    Located at;
    at.parent.reset(open_beneath(side.root, dir, O_PATH | O_DIRECTORY));
    if (at.parent.get() < 0) {
      int e = errno;
      std::string d = normalize_path(dir);
      if (e == ENOENT) throw side.not_found(hops == 0 ? d : shown);
      if (e == ENOTDIR) throw base == "." && hops == 0 ? side.not_a_directory(d) : side.not_found(hops == 0 ? d : shown);
      if (e == ELOOP) throw Error(Errc::kInvalidInput, "too many levels of symbolic links in " + side.show(shown));
      throw system_error("cannot open " + side.show(d), e);
    }
    at.base = base;
    struct stat st;
    if (fstatat(at.parent.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return at;
      throw system_error("cannot inspect " + side.show(shown), errno);
    }
    at.st = st;
    if (!follow || !S_ISLNK(st.st_mode)) return at;
    if (hops == kMaxSymlinks) throw Error(Errc::kInvalidInput, "too many levels of symbolic links in " + side.show(shown));
    std::string target;
    if (!read_link(at.parent.get(), base, target)) throw system_error("cannot read the symlink " + side.show(shown), errno);
    // An absolute target starts again at the root (open_beneath treats "/" as the root).
    split_lookup(!target.empty() && target[0] == '/' ? target : (dir.empty() ? "" : dir + "/") + target, dir, base);
  }
}

// ---- the source ---------------------------------------------------------------------------------

struct Source {
  Located at;        // exists
  std::string name;  // its name in the tar: its base name, "." for DIR/. and the root
  bool contents = false;
  bool is_dir = false;
};

Source find_source(const Side& side, const std::string& raw, const std::string& cleaned, bool follow) {
  Source s;
  s.contents = names_contents(raw) || cleaned.empty();
  if (asserts_directory(raw) || cleaned.empty()) {
    s.at = locate(side, cleaned, ".", false, cleaned);
  } else {
    std::string dir, base;
    split_lookup(cleaned, dir, base);
    s.at = locate(side, dir, base, follow, cleaned);
  }
  if (!s.at.st) throw side.not_found(cleaned);
  s.is_dir = S_ISDIR(s.at.st->st_mode);
  if (asserts_directory(raw) && !s.is_dir) throw side.not_a_directory(cleaned);
  s.name = s.contents ? "." : basename_of(cleaned);
  return s;
}

// ---- the destination ----------------------------------------------------------------------------

// Where the tar is extracted, and the name its top entry takes there.
struct Target {
  UniqueFd dir;
  std::string name;  // "." when the source's contents go into `dir` itself
};

UniqueFd open_dir_at(const Located& at, const Side& side, const std::string& shown) {
  UniqueFd fd(openat(at.parent.get(), at.base.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) throw system_error("cannot open " + side.show(shown), errno);
  return fd;
}

// docker's rules: into an existing directory (under the source's name, or its contents for
// DIR/.), over an existing file (a file only), or as a new entry whose directory exists.
Target place(const Side& side, const std::string& raw, const std::string& cleaned, const Source& src) {
  bool dir_only = asserts_directory(raw) || cleaned.empty();
  std::string dir, base;
  split_lookup(cleaned, dir, base);
  // docker follows a symlink that DEST is (in the container's scope).
  Located at = locate(side, dir, base, true, cleaned);
  Target t;
  if (at.st && S_ISDIR(at.st->st_mode)) {
    t.dir = open_dir_at(at, side, cleaned);
    t.name = src.contents ? "." : src.name;
    return t;
  }
  if (at.st) {
    if (dir_only) throw side.not_a_directory(cleaned);
    // As docker: a device, a FIFO or a socket is not a file to replace (think of /dev/null).
    if (!S_ISREG(at.st->st_mode))
      throw Error(Errc::kInvalidInput, "cannot copy to " + side.show(cleaned) + ": it is " +
                                           (S_ISFIFO(at.st->st_mode)   ? "a FIFO"
                                            : S_ISSOCK(at.st->st_mode) ? "a socket"
                                                                       : "a device") +
                                           ", not a regular file or a directory");
    if (src.is_dir)
      throw Error(Errc::kInvalidInput, "cannot copy a directory to a file: " + side.show(cleaned) + " is a file");
    t.dir = std::move(at.parent);
    t.name = at.base;
    return t;
  }
  if (dir_only && !src.is_dir)
    throw Error(Errc::kNotFound, "no such directory: " + side.show(cleaned) +
                                     " (a destination that ends in \"/\" must be an existing directory when the source "
                                     "is a file)");
  t.dir = std::move(at.parent);
  t.name = at.base;
  return t;
}

// A tar stream is extracted into an existing directory.
UniqueFd stream_target(const Side& side, const std::string& cleaned) {
  std::string dir, base;
  split_lookup(cleaned, dir, base);
  Located at = locate(side, dir, base, true, cleaned);
  if (!at.st) throw side.not_found(cleaned);
  if (!S_ISDIR(at.st->st_mode))
    throw Error(Errc::kInvalidInput, side.show(cleaned) + " is not a directory: a tar stream is extracted into a directory");
  return open_dir_at(at, side, cleaned);
}

// ---- writing the tar ----------------------------------------------------------------------------

// A PAX tar of a tree, written to a file descriptor. The tree is walked with O_NOFOLLOW below
// its top: a container that swaps a directory for a symlink meanwhile gets an error, not a
// way out.
class TarOut {
 public:
  explicit TarOut(int fd) : fd_(fd) {
    a_ = lazy_archive::archive_write_new();
    lazy_archive::archive_write_set_format_pax_restricted(a_);
    lazy_archive::archive_write_set_bytes_in_last_block(a_, 1);
    if (lazy_archive::archive_write_open(a_, this, nullptr, &TarOut::write_cb, nullptr) != ARCHIVE_OK)
      throw Error(Errc::kSystem, std::string("cannot write a tar: ") + lazy_archive::archive_error_string(a_));
  }
  ~TarOut() {
    if (a_) lazy_archive::archive_write_free(a_);
  }
  TarOut(const TarOut&) = delete;
  TarOut& operator=(const TarOut&) = delete;

  // `base` in the directory `parent_fd` (the directory itself when "."), as `name`; `shown`
  // names it in errors.
  void add_top(int parent_fd, const std::string& base, const std::string& name, const std::string& shown) {
    if (!add(parent_fd, base, name, shown)) throw system_error("cannot read " + shown, ENOENT);
  }

  std::uint64_t finish() {
    if (lazy_archive::archive_write_close(a_) != ARCHIVE_OK) fail("cannot finish the tar");
    return bytes_;
  }

  // The reader went away (EPIPE): what it says is the error that matters.
  bool reader_gone() const { return write_errno_ == EPIPE; }

 private:
  [[noreturn]] void fail(const std::string& what) {
    if (write_errno_) throw system_error(what, write_errno_);
    throw Error(Errc::kSystem, what + ": " + lazy_archive::archive_error_string(a_));
  }

  // False when the entry vanished before it could be read (a running container's file).
  bool add(int parent_fd, const std::string& base, const std::string& name, const std::string& shown) {
    struct stat st;
    if (fstatat(parent_fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return false;
      throw system_error("cannot inspect " + shown, errno);
    }
    if (S_ISSOCK(st.st_mode)) return true;  // a socket means nothing in a copy (docker skips them)
    struct archive_entry* e = lazy_archive::archive_entry_new();
    struct EntryFree {
      struct archive_entry* e;
      ~EntryFree() { lazy_archive::archive_entry_free(e); }
    } guard{e};
    lazy_archive::archive_entry_copy_stat(e, &st);
    lazy_archive::archive_entry_set_pathname(e, (S_ISDIR(st.st_mode) ? name + "/" : name).c_str());
    UniqueFd data;
    if (S_ISDIR(st.st_mode)) {
      data.reset(openat(parent_fd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (data.get() < 0) {
        if (errno == ENOENT) return false;
        throw system_error("cannot open " + shown, errno);
      }
      header(e, shown);
      add_children(data.get(), name, shown);
      return true;
    }
    if (!S_ISREG(st.st_mode)) {
      lazy_archive::archive_entry_set_size(e, 0);
      if (S_ISLNK(st.st_mode)) {
        std::string target;
        if (!read_link(parent_fd, base, target)) {
          if (errno == ENOENT) return false;
          throw system_error("cannot read the symlink " + shown, errno);
        }
        lazy_archive::archive_entry_set_symlink(e, target.c_str());
      }
      header(e, shown);
      return true;
    }
    if (st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      if (auto it = links_.find(key); it != links_.end()) {
        lazy_archive::archive_entry_set_hardlink(e, it->second.c_str());
        lazy_archive::archive_entry_set_size(e, 0);
        header(e, shown);
        return true;
      }
      links_.emplace(key, name);
    }
    // O_NONBLOCK: should the file have become a FIFO meanwhile, the open does not hang.
    data.reset(openat(parent_fd, base.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (data.get() < 0) {
      if (errno == ENOENT) return false;
      throw system_error("cannot open " + shown, errno);
    }
    struct stat now;
    if (fstat(data.get(), &now) != 0 || !S_ISREG(now.st_mode) || now.st_ino != st.st_ino)
      throw Error(Errc::kSystem, shown + " changed while it was being copied");
    // File capabilities travel with the file, as in docker.
    char cap[256];
    ssize_t cl = fgetxattr(data.get(), "security.capability", cap, sizeof cap);
    if (cl > 0) lazy_archive::archive_entry_xattr_add_entry(e, "security.capability", cap, static_cast<size_t>(cl));
    header(e, shown);
    // What the header says, no more: a file that grows meanwhile is cut, one that shrinks is
    // padded (by libarchive).
    char buf[1 << 16];
    off_t left = st.st_size;
    while (left > 0) {
      ssize_t n = ::read(data.get(), buf, static_cast<size_t>(std::min<off_t>(left, sizeof buf)));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw system_error("cannot read " + shown, errno);
      }
      if (n == 0) break;
      if (lazy_archive::archive_write_data(a_, buf, static_cast<size_t>(n)) < 0) fail("cannot write " + shown + " into the tar");
      left -= n;
    }
    return true;
  }

  void add_children(int dir_fd, const std::string& name, const std::string& shown) {
    std::vector<std::string> names;
    int dup_fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = dup_fd < 0 ? nullptr : fdopendir(dup_fd);
    if (!d) {
      if (dup_fd >= 0) ::close(dup_fd);
      throw system_error("cannot read the directory " + shown, errno);
    }
    while (struct dirent* de = readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) add(dir_fd, n, name + "/" + n, shown + "/" + n);
  }

  void header(struct archive_entry* e, const std::string& shown) {
    if (lazy_archive::archive_write_header(a_, e) != ARCHIVE_OK) fail("cannot write " + shown + " into the tar");
  }

  static la_ssize_t write_cb(struct archive*, void* self_ptr, const void* buf, size_t len) {
    auto* self = static_cast<TarOut*>(self_ptr);
    if (!write_all(self->fd_, buf, len)) {
      self->write_errno_ = errno;
      return -1;
    }
    self->bytes_ += len;
    return static_cast<la_ssize_t>(len);
  }

  int fd_;
  struct archive* a_ = nullptr;
  int write_errno_ = 0;
  std::uint64_t bytes_ = 0;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first name of each hardlinked inode
};

// Writes the source as a tar into a pipe on a second thread and extracts it here, beneath
// `target`. Returns the bytes of the tar.
std::uint64_t copy_through_pipe(const Source& src, const std::string& src_shown, const Target& target,
                        const ApplyOptions& options) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) throw_errno("cannot make a pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  std::uint64_t bytes = 0;
  std::exception_ptr write_error;
  bool broken_pipe = false;  // the writer failed because the extraction stopped reading
  std::thread writer([&] {
    // A broken pipe is an error to report (EPIPE), not a signal that ends the process.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
    std::optional<TarOut> tar;
    try {
      tar.emplace(wr.get());
      tar->add_top(src.at.parent.get(), src.at.base, target.name, src_shown);
      bytes = tar->finish();
    } catch (...) {
      write_error = std::current_exception();
      broken_pipe = tar && tar->reader_gone();
    }
    tar.reset();
    wr.reset();
  });
  std::exception_ptr apply_error;
  try {
    apply_tar_stream(target.dir.get(), rd.get(), "the copy of " + src_shown, options);
    // Read what is left (the end of the archive) so that the writer never sees a broken pipe.
    char buf[4096];
    while (::read(rd.get(), buf, sizeof buf) > 0) {
    }
  } catch (...) {
    apply_error = std::current_exception();
  }
  rd.reset();  // a writer still writing now gets EPIPE
  writer.join();
  // A source that cannot be read ends the tar early: the extraction's complaint follows from it.
  if (write_error && !broken_pipe) std::rethrow_exception(write_error);
  if (apply_error) std::rethrow_exception(apply_error);
  if (write_error) std::rethrow_exception(write_error);
  return bytes;
}

ApplyOptions copy_options(const RootlessInfo& rootless, bool archive, const Logger& logger) {
  ApplyOptions o;
  o.logger = &logger;  // device nodes an unprivileged user cannot make are skipped with a warning
  o.whiteouts = WhiteoutForm::kNone;
  o.copy_extraction = true;
  // Created by this process: the container's root (in) or the caller (out). With -a the
  // source's IDs are kept, except in single-ID mode where there is no other ID to give.
  o.squash_ownership = !archive || rootless.mode == UsernsMode::kSingleId;
  if (rootless.mode != UsernsMode::kRealRoot) {
    o.uid_count = rootless.uid_count;
    o.gid_count = rootless.gid_count;
  }
  return o;
}

// ---- the container's filesystem -----------------------------------------------------------------

// The root a copy resolves beneath, held for the copy: the store's shared lock (nobody removes
// the container meanwhile) and, for a stopped container that was not mounted, its mount.
class ContainerRoot {
 public:
  ContainerRoot(Engine& engine, const std::string& name_or_id) : engine_(engine) {
    lock_ = engine.store().lock(FileLock::Mode::kShared);
    auto c = engine.store().find_container(name_or_id);
    if (!c) throw Error(Errc::kNotFound, "no such container: " + name_or_id + " (see \"hutch ps -a\")");
    record_ = *c;
    // Running: its own view, through its init's root, where its volumes, binds and tmpfs
    // mounts are (they live in its mount namespace, not in the merged directory).
    if (pid_t pid = running_pid()) {
      unsigned long long started = process_start_time(pid);
      root_.reset(::open(("/proc/" + std::to_string(pid) + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (root_.get() >= 0 && started != 0 && process_start_time(pid) == started) return;
      root_.reset();
    }
    StorageDriver& sd = engine.storage();
    if (!sd.has_container_fs(record_.id))
      throw Error(Errc::kNotFound, "container " + record_.name + " has no filesystem; run \"hutch system check\"");
    std::filesystem::path path;
    if (auto p = sd.mounted(record_.id)) {
      path = *p;
    } else {
      try {
        path = sd.mount(record_.id);
      } catch (Error& e) {
        throw std::move(e.with_context("mounting container " + record_.name));
      }
      mounted_here_ = true;
    }
    root_.reset(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (root_.get() < 0) throw system_error("cannot open the filesystem of container " + record_.name, errno);
  }
  ~ContainerRoot() {
    try {
      release();
    } catch (const Error&) {
    }
  }
  ContainerRoot(const ContainerRoot&) = delete;
  ContainerRoot& operator=(const ContainerRoot&) = delete;

  int fd() const { return root_.get(); }

  // Unmounts what this copy mounted; throws when that fails.
  void release() {
    root_.reset();
    if (!mounted_here_) return;
    mounted_here_ = false;
    // A container started meanwhile (its monitor mounted the same filesystem again, which
    // gave the same mount) keeps it: its monitor unmounts it when the container ends.
    ContainerState now = engine_.store().container_state(record_.id);
    if (now.monitor_pid > 0 && process_start_time(now.monitor_pid) == now.monitor_start) return;
    try {
      engine_.storage().unmount(record_.id);
    } catch (Error& e) {
      throw std::move(e.with_context("unmounting container " + record_.name + " after the copy"));
    }
  }

 private:
  // The runtime knows whether its process lives (the record's state may lag behind).
  pid_t running_pid() {
    try {
      auto s = engine_.runtime(record_.runtime).state(record_.id);
      if (s && s->status != "stopped" && s->pid > 0) return s->pid;
    } catch (const Error&) {
    }
    return 0;
  }

  Engine& engine_;
  FileLock lock_;
  ContainerRecord record_;
  UniqueFd root_;
  bool mounted_here_ = false;
};

UniqueFd open_host_root() {
  UniqueFd fd(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) throw_errno("cannot open /");
  return fd;
}

// A host path as an absolute one; "-" and the like are the caller's business.
std::string host_path(const std::string& raw) {
  if (raw.empty()) throw Error(Errc::kUsage, "an empty host path");
  std::string abs = std::filesystem::absolute(raw).string();
  if (ends_with(raw, "/") && !ends_with(abs, "/")) abs += "/";
  return abs;
}

}  // namespace

std::uint64_t Engine::copy_from_container(const std::string& container, const std::string& src, const std::string& dest,
                                          const CopyOptions& options) {
  ContainerRoot root(*this, container);
  // Every descriptor into the container's filesystem is closed before it is unmounted.
  std::uint64_t bytes = [&] {
    Side from{root.fd(), container};
    std::string src_clean = normalize_path(src);
    Source s = find_source(from, src, src_clean, options.follow_link);
    if (dest == "-") {
      try {
        TarOut tar(options.stream_fd);
        tar.add_top(s.at.parent.get(), s.at.base, s.name, from.show(src_clean));
        return tar.finish();
      } catch (Error& e) {
        throw std::move(e.with_context("copying " + container + ":" + src + " to standard output"));
      }
    }
    UniqueFd host_root = open_host_root();
    Side to{host_root.get(), ""};
    std::string dest_raw = host_path(dest);
    Target t = place(to, dest_raw, normalize_path(dest_raw), s);
    try {
      return copy_through_pipe(s, from.show(src_clean), t, copy_options(rootless(), options.archive, logger_));
    } catch (Error& e) {
      throw std::move(e.with_context("copying " + container + ":" + src + " to " + dest));
    }
  }();
  root.release();
  return bytes;
}

std::uint64_t Engine::copy_to_container(const std::string& src, const std::string& container, const std::string& dest,
                                        const CopyOptions& options) {
  ContainerRoot root(*this, container);
  std::uint64_t bytes = [&] {
    Side to{root.fd(), container};
    std::string dest_clean = normalize_path(dest);
    if (src == "-") {
      UniqueFd dir = stream_target(to, dest_clean);
      try {
        return apply_tar_stream(dir.get(), options.stream_fd, "the tar stream on standard input",
                                copy_options(rootless(), options.archive, logger_))
            .bytes;
      } catch (Error& e) {
        throw std::move(e.with_context("copying standard input to " + container + ":" + dest));
      }
    }
    UniqueFd host_root = open_host_root();
    Side from{host_root.get(), ""};
    std::string src_raw = host_path(src);
    std::string src_clean = normalize_path(src_raw);
    Source s = find_source(from, src_raw, src_clean, options.follow_link);
    Target t = place(to, dest, dest_clean, s);
    try {
      return copy_through_pipe(s, from.show(src_clean), t, copy_options(rootless(), options.archive, logger_));
    } catch (Error& e) {
      throw std::move(e.with_context("copying " + src + " to " + container + ":" + dest));
    }
  }();
  root.release();
  return bytes;
}

}  // namespace hutch
