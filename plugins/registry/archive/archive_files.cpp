#include "archive_files.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "hutch/digest.hpp"
#include "hutch/error.hpp"
#include "hutch/paths.hpp"

namespace hutch::registry::archive {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kChunk = 1 << 20;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Reads `fd` to its end in chunks.
void read_fd(int fd, const std::string& name, const Sink& sink) {
  std::vector<char> buf(kChunk);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot read " + name);
    if (n == 0) return;
    sink(buf.data(), static_cast<std::size_t>(n));
  }
}

// Inflates gzip (every member of it, as gzip -d does) into `sink`.
class Gunzip {
 public:
  explicit Gunzip(std::string name) : name_(std::move(name)) {
    std::memset(&z_, 0, sizeof z_);
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw Error(Errc::kInternal, "zlib: cannot start inflating");
  }
  ~Gunzip() { inflateEnd(&z_); }
  void feed(const char* data, std::size_t size, const Sink& sink) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    z_.avail_in = static_cast<uInt>(size);
    while (z_.avail_in > 0) {
      if (ended_) {  // another member follows
        inflateReset(&z_);
        ended_ = false;
      }
      z_.next_out = reinterpret_cast<Bytef*>(out_);
      z_.avail_out = sizeof out_;
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        throw Error(Errc::kInvalidInput, name_ + ": damaged gzip data" + (z_.msg ? std::string(" (") + z_.msg + ")" : ""));
      std::size_t produced = sizeof out_ - z_.avail_out;
      if (produced) sink(out_, produced);
      if (rc == Z_STREAM_END) ended_ = true;
      if (rc == Z_BUF_ERROR && produced == 0) break;
    }
  }
  void finish() const {
    if (!ended_) throw Error(Errc::kInvalidInput, name_ + ": the gzip data is truncated");
  }

 private:
  std::string name_;
  z_stream z_;
  bool ended_ = false;
  char out_[1 << 16];
};

class DirectoryFiles final : public ImageFiles {
 public:
  DirectoryFiles(const fs::path& root, std::string describe) : describe_(std::move(describe)) {
    root_ = Fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (root_.get() < 0) {
      if (errno == ENOENT || errno == ENOTDIR) throw Error(Errc::kNotFound, describe_ + " does not exist");
      throw_errno("cannot open " + describe_);
    }
  }
  const std::string& describe() const override { return describe_; }
  std::optional<std::uint64_t> size_of(const std::string& path) const override {
    Fd fd(open_beneath(path));
    if (fd.get() < 0) return std::nullopt;
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    return static_cast<std::uint64_t>(st.st_size);
  }
  void read(const std::string& path, const Sink& sink) const override {
    Fd fd(open_beneath(path));
    if (fd.get() < 0) {
      if (errno == ENOENT) throw missing(path);
      throw_errno("cannot open " + path + " in " + describe_);
    }
    read_fd(fd.get(), path + " in " + describe_, sink);
  }

 private:
  int open_beneath(const std::string& path) const {
    struct open_how how;
    std::memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    for (;;) {
      long fd = ::syscall(SYS_openat2, root_.get(), path.c_str(), &how, sizeof how);
      if (fd < 0 && errno == EINTR) continue;
      if (fd >= 0) {  // only regular files are served; a FIFO must not block a read
        int f = static_cast<int>(fd);
        struct stat st;
        if (::fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
          ::close(f);
          errno = ENOENT;
          return -1;
        }
        int flags = ::fcntl(f, F_GETFL);
        ::fcntl(f, F_SETFL, flags & ~O_NONBLOCK);
        return f;
      }
      if (errno == EXDEV) errno = ENOENT;  // it would lead outside: as good as not there
      return -1;
    }
  }
  std::string describe_;
  Fd root_;
};

class TarFiles final : public ImageFiles {
 public:
  TarFiles(Fd fd, std::string describe, LinkPolicy links)
      : describe_(std::move(describe)), fd_(std::move(fd)), index_(fd_.get(), describe_, links) {}
  const std::string& describe() const override { return describe_; }
  std::optional<std::uint64_t> size_of(const std::string& path) const override {
    const TarFileEntry* e = index_.find(path);
    if (!e) return std::nullopt;
    return e->size;
  }
  void read(const std::string& path, const Sink& sink) const override {
    const TarFileEntry* e = index_.find(path);
    if (!e) throw missing(path);
    std::vector<char> buf(kChunk);
    std::uint64_t off = e->offset, left = e->size;
    while (left > 0) {
      ssize_t n = ::pread(fd_.get(), buf.data(), std::min<std::uint64_t>(left, buf.size()), static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("cannot read " + describe_);
      if (n == 0) throw Error(Errc::kInvalidInput, describe_ + " shrank while it was read");
      sink(buf.data(), static_cast<std::size_t>(n));
      off += static_cast<std::uint64_t>(n);
      left -= static_cast<std::uint64_t>(n);
    }
  }

 private:
  std::string describe_;
  Fd fd_;
  TarIndex index_;
};

fs::path temp_dir() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? fs::path(t) : fs::path("/var/tmp");
}

// An unnamed file for the inflated archive: nothing is left of it when we go.
Fd unnamed_temp_file() {
  fs::path dir = temp_dir();
  Fd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd.get() >= 0) return fd;
  std::string tmpl = (dir / "hutch-archive-XXXXXX").string();
  fd = Fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (fd.get() < 0) throw_errno("cannot make a temporary file in " + dir.string() + " (set TMPDIR to another directory)");
  ::unlink(tmpl.c_str());
  return fd;
}

Error corrupt(const BlobInfo& blob, const std::string& where, const std::string& hex, std::uint64_t size) {
  std::string why = blob.size >= 0 && static_cast<std::uint64_t>(blob.size) != size
                        ? std::to_string(size) + " bytes, not " + std::to_string(blob.size)
                        : "its content has digest sha256:" + hex;
  return Error(Errc::kCorrupt, "blob " + blob.digest + " in " + where + " does not match its digest: " + why);
}

}  // namespace

std::string ImageFiles::read_small(const std::string& path, std::size_t limit) const {
  auto size = size_of(path);
  if (!size) throw missing(path);
  if (*size > limit)
    throw Error(Errc::kInvalidInput, path + " in " + describe() + " is " + std::to_string(*size) +
                                         " bytes, more than such a file can be (" + std::to_string(limit) + ")");
  std::string out;
  read(path, [&](const char* d, std::size_t n) {
    if (out.size() + n > limit) throw Error(Errc::kInvalidInput, path + " in " + describe() + " grew while it was read");
    out.append(d, n);
  });
  return out;
}

std::string ImageFiles::head(const std::string& path, std::size_t n) const {
  std::string out;
  struct Enough {};
  try {
    read(path, [&](const char* d, std::size_t len) {
      out.append(d, std::min(len, n - out.size()));
      if (out.size() >= n) throw Enough{};
    });
  } catch (const Enough&) {
  }
  return out;
}

Error ImageFiles::missing(const std::string& path) const {
  return Error(Errc::kNotFound, describe() + " has no " + path);
}

std::unique_ptr<ImageFiles> directory_files(const fs::path& root, const std::string& describe) {
  return std::make_unique<DirectoryFiles>(root, describe);
}

std::unique_ptr<ImageFiles> tar_files(const fs::path& file, const std::string& describe, LinkPolicy links) {
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    if (errno == ENOENT) throw Error(Errc::kNotFound, describe + " does not exist");
    throw_errno("cannot open " + describe);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot read " + describe);
  if (S_ISDIR(st.st_mode)) throw Error(Errc::kInvalidInput, describe + " is a directory, not an archive");
  unsigned char magic[2] = {};
  if (::pread(fd.get(), magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    Fd plain = unnamed_temp_file();
    Gunzip gz(describe);
    Sink out = [&](const char* d, std::size_t n) {
      if (!write_all(plain.get(), d, n)) throw_errno("cannot inflate " + describe + " into " + temp_dir().string());
    };
    read_fd(fd.get(), describe, [&](const char* d, std::size_t n) { gz.feed(d, n, out); });
    gz.finish();
    fd = std::move(plain);
  }
  return std::make_unique<TarFiles>(std::move(fd), describe, links);
}

Measured measure(const ImageFiles& files, const std::string& path) {
  Sha256 sha;
  Measured m;
  files.read(path, [&](const char* d, std::size_t n) {
    sha.update(d, n);
    m.size += n;
  });
  m.hex = sha.hex();
  return m;
}

void copy_blob_verified(const ImageFiles& files, const std::string& path, const BlobInfo& blob,
                        const fs::path& destination, const ProgressFn& progress) {
  std::string want = blob_hex(blob.digest);
  auto size = files.size_of(path);
  if (!size) throw Error(Errc::kNotFound, "blob " + blob.digest + " is not in " + files.describe());
  Fd out(::open(destination.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0) throw_errno("cannot create " + destination.string());
  try {
    if (blob.size >= 0 && static_cast<std::uint64_t>(blob.size) != *size)
      throw corrupt(blob, files.describe(), "", *size);
    Sha256 sha;
    std::uint64_t done = 0;
    auto total = static_cast<std::int64_t>(*size);
    files.read(path, [&](const char* d, std::size_t n) {
      sha.update(d, n);
      if (!write_all(out.get(), d, n)) throw_errno("cannot write " + destination.string());
      done += n;
      if (progress) progress(done, total);
    });
    std::string got = sha.hex();
    if (got != want || done != *size) throw corrupt(blob, files.describe(), got, done);
    if (::close(out.release()) != 0) throw_errno("cannot write " + destination.string());
  } catch (...) {
    out = Fd();
    ::unlink(destination.c_str());
    throw;
  }
}

std::string store_blob_verified(const fs::path& source, const BlobInfo& blob, const fs::path& destination,
                                const ProgressFn& progress, bool inflate) {
  std::string want = blob_hex(blob.digest);
  Fd in(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) throw_errno("cannot open " + source.string());
  struct stat st;
  if (::fstat(in.get(), &st) != 0) throw_errno("cannot read " + source.string());
  fs::path tmp = destination;
  tmp += ".tmp-" + random_hex(6);
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (out.get() < 0) throw_errno("cannot create " + tmp.string());
  try {
    unsigned char magic[2] = {};
    bool gunzip = inflate && ::pread(in.get(), magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    std::optional<Gunzip> gz;
    if (gunzip) gz.emplace(source.string());
    Sha256 given, written;
    Sink write_out = [&](const char* d, std::size_t n) {
      if (gunzip) written.update(d, n);
      if (!write_all(out.get(), d, n)) throw_errno("cannot write " + tmp.string());
    };
    std::uint64_t done = 0;
    auto total = blob.size >= 0 ? blob.size : static_cast<std::int64_t>(st.st_size);
    read_fd(in.get(), source.string(), [&](const char* d, std::size_t n) {
      given.update(d, n);
      if (gz) gz->feed(d, n, write_out);
      else write_out(d, n);
      done += n;
      if (progress) progress(done, total);
    });
    if (gz) gz->finish();
    std::string got = given.hex();
    if (got != want || (blob.size >= 0 && static_cast<std::uint64_t>(blob.size) != done))
      throw corrupt(blob, source.string(), got, done);
    if (::fsync(out.get()) != 0 || ::close(out.release()) != 0) throw_errno("cannot write " + tmp.string());
    if (::rename(tmp.c_str(), destination.c_str()) != 0) throw_errno("cannot rename " + tmp.string());
    return gunzip ? written.hex() : want;
  } catch (...) {
    out = Fd();
    ::unlink(tmp.c_str());
    throw;
  }
}

StagingDirectory::StagingDirectory(const fs::path& near) {
  fs::path parent = near.parent_path().empty() ? fs::path(".") : near.parent_path();
  std::string tmpl = (parent / ("." + near.filename().string() + kIncompleteMarker + "XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) {
    if (errno == ENOENT)
      throw Error(Errc::kNotFound, "cannot write " + near.string() + ": the directory " + parent.string() + " does not exist");
    throw_errno("cannot write " + near.string() + ": cannot make a directory in " + parent.string());
  }
  path_ = tmpl;
}

StagingDirectory::~StagingDirectory() {
  try {
    remove_tree(path_);
  } catch (...) {
  }
}

void write_tar_atomically(const fs::path& file, const std::function<void(TarWriter&)>& fill) {
  fs::path tmp = file;
  tmp += ".tmp-" + random_hex(6);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw_errno("cannot create " + tmp.string());
  try {
    TarWriter writer(fd.get(), tmp.string());
    fill(writer);
    writer.finish();
    if (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0) throw_errno("cannot write " + tmp.string());
    if (::rename(tmp.c_str(), file.c_str()) != 0) throw_errno("cannot rename " + tmp.string() + " to " + file.string());
  } catch (...) {
    fd = Fd();
    ::unlink(tmp.c_str());
    throw;
  }
  fs::path parent = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  Fd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) ::fsync(dir.get());
}

std::string blob_hex(const std::string& digest) {
  auto colon = digest.find(':');
  if (colon == std::string::npos) throw Error(Errc::kInvalidInput, "\"" + digest + "\" is not a digest");
  std::string algorithm = digest.substr(0, colon), hex = digest.substr(colon + 1);
  if (algorithm != "sha256")
    throw Error(Errc::kUnsupported, "digest " + digest + ": only sha256 digests are supported");
  if (!is_hex64(hex)) throw Error(Errc::kInvalidInput, "\"" + digest + "\" is not a sha256 digest");
  return hex;
}

}  // namespace hutch::registry::archive
