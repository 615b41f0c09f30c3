#include "hutch/paths.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>
#include <cstdlib>
#include <cstring>

namespace hutch {
namespace fs = std::filesystem;

fs::path home_dir(uid_t uid) {
  if (const char* h = std::getenv("HOME"); h && *h == '/') return h;
  struct passwd pw, *res = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res && res->pw_dir) return res->pw_dir;
  throw Error(Errc::kConfig, "cannot find the home directory of uid " + std::to_string(uid) + "; set HOME");
}

fs::path xdg_config_home(uid_t uid) {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x == '/') return x;
  return home_dir(uid) / ".config";
}

fs::path default_store_root(uid_t uid) {
  if (uid == 0) return "/var/lib/hutch";
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x == '/') return fs::path(x) / "hutch";
  return home_dir(uid) / ".local" / "share" / "hutch";
}

RunRoot default_run_root(uid_t uid) {
  if (uid == 0) return {"/run/hutch", "real root"};
  const char* x = std::getenv("XDG_RUNTIME_DIR");
  std::string why;
  if (x && *x == '/') {
    struct stat st;
    if (::stat(x, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid && access(x, W_OK) == 0)
      return {fs::path(x) / "hutch", "$XDG_RUNTIME_DIR"};
    why = std::string("$XDG_RUNTIME_DIR (") + x + ") is not a writable directory of uid " + std::to_string(uid);
  } else {
    why = "$XDG_RUNTIME_DIR is not set";
  }
  return {fs::path("/tmp") / ("hutch-run-" + std::to_string(uid)), why + "; using a private directory"};
}

void make_dirs(const fs::path& dir, mode_t mode) {
  if (dir.empty()) return;
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return;
    throw Error(Errc::kSystem, dir.string() + " exists and is not a directory");
  }
  if (dir.has_parent_path() && dir.parent_path() != dir) make_dirs(dir.parent_path(), mode);
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) throw_errno("cannot create " + dir.string());
}

void ensure_private_dir(const fs::path& dir, uid_t uid) {
  make_dirs(dir.parent_path());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw_errno("cannot create " + dir.string());
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) throw_errno("cannot inspect " + dir.string());
  if (!S_ISDIR(st.st_mode))
    throw Error(Errc::kPermission, dir.string() + " is not a directory (a symlink or file is in its place); "
                                   "remove it, or set [storage] runroot in hutch.conf");
  if (st.st_uid != geteuid())
    throw Error(Errc::kPermission, dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
                                       ", not to you (uid " + std::to_string(uid) +
                                       "); remove it, or set [storage] runroot in hutch.conf");
  if ((st.st_mode & 0077) != 0 && ::chmod(dir.c_str(), 0700) != 0)
    throw_errno("cannot make " + dir.string() + " private");
}

std::string read_file(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open " + file.string());
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      throw system_error("cannot read " + file.string(), e);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

fs::path find_program(const std::string& name) {
  const char* env = std::getenv("PATH");
  std::string path = env && *env ? env : "";
  path += ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  std::stringstream ss(path);
  for (std::string dir; std::getline(ss, dir, ':');) {
    if (dir.empty()) continue;
    fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

void write_file_atomic(const fs::path& file, const std::string& content, mode_t mode, Durability durability) {
  fs::path tmp = file;
  tmp += ".tmp-" + random_hex(6);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw_errno("cannot create " + tmp.string());
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw system_error("cannot write " + tmp.string(), e);
    }
    off += static_cast<size_t>(n);
  }
  if ((durability == Durability::kSynced && ::fsync(fd) != 0) || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw system_error("cannot write " + tmp.string(), e);
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw system_error("cannot rename " + tmp.string() + " to " + file.string(), e);
  }
}

void write_file_in_place(const fs::path& file, const std::string& content) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open " + file.string());
  ssize_t n = ::write(fd, content.data(), content.size());
  int e = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(content.size())) throw system_error("cannot write " + file.string(), n < 0 ? e : EIO);
}

void remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (!ec) return;
  // A directory without its write or search bit (as images may ship): open them up and retry.
  for (fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
  }
  ::chmod(path.c_str(), 0700);
  fs::remove_all(path, ec);
  if (ec) throw Error(Errc::kSystem, "cannot remove " + path.string() + ": " + ec.message());
}

bool build_directory(const fs::path& final, const std::string& what, const std::function<void(const fs::path&)>& build,
                     bool exists_ok, const std::function<void()>& undo) {
  fs::path staging = final;
  staging += kIncompleteMarker + random_hex(4);
  if (::mkdir(staging.c_str(), 0700) != 0) throw_errno("cannot create " + staging.string());
  auto discard = [&] {
    if (undo) undo();
    remove_tree(staging);
  };
  try {
    build(staging);
  } catch (...) {
    discard();
    throw;
  }
  if (::rename(staging.c_str(), final.c_str()) != 0) {
    int e = errno;
    discard();
    if (exists_ok && (e == EEXIST || e == ENOTEMPTY)) return false;
    throw system_error("cannot create " + what, e);
  }
  return true;
}

void with_scratch_directory(const fs::path& near, const std::function<void(const fs::path&)>& use) {
  fs::path scratch = near;
  scratch += std::string(kIncompleteMarker) + "scratch-" + random_hex(4);
  if (::mkdir(scratch.c_str(), 0700) != 0) throw_errno("cannot create " + scratch.string());
  try {
    use(scratch);
  } catch (...) {
    remove_tree(scratch);
    throw;
  }
  remove_tree(scratch);
}

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("getrandom");
    }
    got += static_cast<size_t>(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

bool write_all(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t w = ::write(fd, p, size);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pf {fd, POLLOUT, 0};
        ::poll(&pf, 1, 100);
        continue;
      }
      return false;
    }
    p += w;
    size -= static_cast<std::size_t>(w);
  }
  return true;
}

std::string normalize_path(const std::string& raw) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i <= raw.size()) {
    std::size_t j = raw.find('/', i);
    if (j == std::string::npos) j = raw.size();
    std::string comp = raw.substr(i, j - i);
    if (comp == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!comp.empty() && comp != ".") {
      parts.push_back(comp);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : "/") + part;
  return out;
}

}  // namespace hutch
