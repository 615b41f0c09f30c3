#include "compression.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "archive_lazy.hpp"
#include "hutch/digest.hpp"
#include "hutch/error.hpp"
#include "hutch/paths.hpp"
#include "hutch/unique_fd.hpp"

namespace hutch {

namespace {

struct Reader {
  struct archive* a = lazy_archive::archive_read_new();
  ~Reader() { lazy_archive::archive_read_free(a); }
};

// Opens `input` for reading its decompressed bytes.
void open_plain(Reader& r, const std::filesystem::path& input, const std::string& display_name) {
  lazy_archive::archive_read_support_filter_all(r.a);
  lazy_archive::archive_read_support_format_raw(r.a);
  struct archive_entry* e;
  if (lazy_archive::archive_read_open_filename(r.a, input.c_str(), 1 << 17) != ARCHIVE_OK ||
      lazy_archive::archive_read_next_header(r.a, &e) != ARCHIVE_OK) {
    const char* why = lazy_archive::archive_error_string(r.a);
    throw Error(Errc::kInvalidInput, display_name + " cannot be read: " + (why ? why : "it is empty"));
  }
}

}  // namespace

Compression sniff_compression(const std::filesystem::path& file) {
  unsigned char b[6] = {};
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw system_error("cannot read " + file.string(), errno);
  ssize_t n = ::read(fd.get(), b, sizeof b);
  if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return Compression::kGzip;
  if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) return Compression::kZstd;
  if (n >= 6 && b[0] == 0xfd && b[1] == '7' && b[2] == 'z' && b[3] == 'X' && b[4] == 'Z') return Compression::kOther;
  if (n >= 3 && b[0] == 'B' && b[1] == 'Z' && b[2] == 'h') return Compression::kOther;
  return Compression::kNone;
}

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
    case Compression::kOther: return "other";
  }
  return "other";
}

WrittenBlob decompress_to_fd(const std::filesystem::path& input, int output_fd, const std::string& display_name) {
  // A write to a pipe whose reader is gone must fail with EPIPE here, not kill the process.
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  struct Restore {
    sigset_t old;
    ~Restore() {
      // Drop a SIGPIPE this thread caused, so that unblocking does not deliver it.
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE)) {
        sigset_t only;
        sigemptyset(&only);
        sigaddset(&only, SIGPIPE);
        struct timespec zero {};
        sigtimedwait(&only, nullptr, &zero);
      }
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
  } restore{old};
  Reader r;
  open_plain(r, input, display_name);
  Sha256 hash;
  WrittenBlob out;
  bool reader_gone = false;
  static thread_local char buf[1 << 17];
  for (;;) {
    la_ssize_t n = lazy_archive::archive_read_data(r.a, buf, sizeof buf);
    if (n < 0) throw Error(Errc::kInvalidInput, display_name + " is corrupt: " + lazy_archive::archive_error_string(r.a));
    if (n == 0) break;
    hash.update(buf, static_cast<size_t>(n));
    out.plain_size += static_cast<std::uint64_t>(n);
    if (reader_gone) continue;
    size_t done = 0;
    while (done < static_cast<size_t>(n)) {
      ssize_t w = ::write(output_fd, buf + done, static_cast<size_t>(n) - done);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EPIPE) {
          reader_gone = true;
          break;
        }
        throw system_error("cannot pass on " + display_name, errno);
      }
      done += static_cast<size_t>(w);
    }
  }
  out.plain_digest = "sha256:" + hash.hex();
  return out;
}

WrittenBlob recompress_blob(const std::filesystem::path& input, const std::filesystem::path& output, Compression to) {
  Reader r;
  open_plain(r, input, input.string());
  UniqueFd out_fd(::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out_fd.get() < 0) throw system_error("cannot create " + output.string(), errno);
  struct Sink {
    int fd;
    Sha256 hash;
    std::uint64_t size = 0;
    bool failed = false;
    int err = 0;
  } sink{out_fd.get(), {}, 0, false, 0};
  auto put = [](Sink& s, const void* data, size_t n) {
    if (!write_all(s.fd, data, n)) {
      s.failed = true;
      s.err = errno;
      return false;
    }
    s.hash.update(data, n);
    s.size += n;
    return true;
  };
  struct archive* w = nullptr;
  if (to != Compression::kNone) {
    w = lazy_archive::archive_write_new();
    lazy_archive::archive_write_set_format_raw(w);
    int rc = to == Compression::kZstd ? lazy_archive::archive_write_add_filter_zstd(w)
                                      : lazy_archive::archive_write_add_filter_gzip(w);
    if (rc != ARCHIVE_OK) {
      std::string why = lazy_archive::archive_error_string(w) ? lazy_archive::archive_error_string(w) : "";
      lazy_archive::archive_write_free(w);
      throw Error(Errc::kUnsupported, std::string("cannot compress with ") + compression_name(to) + ": " + why);
    }
    lazy_archive::archive_write_set_bytes_in_last_block(w, 1);
    auto writer = +[](struct archive*, void* user, const void* data, size_t n) -> la_ssize_t {
      auto* s = static_cast<Sink*>(user);
      return static_cast<la_ssize_t>(s->failed ? -1 : (write_all(s->fd, data, n) ? (s->hash.update(data, n), s->size += n, n) : (s->failed = true, s->err = errno, -1)));
    };
    if (lazy_archive::archive_write_open(w, &sink, nullptr, writer, nullptr) != ARCHIVE_OK) {
      std::string why = lazy_archive::archive_error_string(w) ? lazy_archive::archive_error_string(w) : "";
      lazy_archive::archive_write_free(w);
      throw Error(Errc::kSystem, "cannot write " + output.string() + ": " + why);
    }
    struct archive_entry* e = lazy_archive::archive_entry_new();
    lazy_archive::archive_entry_set_pathname(e, "layer");
    lazy_archive::archive_entry_set_filetype(e, AE_IFREG);
    lazy_archive::archive_entry_set_perm(e, 0644);
    lazy_archive::archive_write_header(w, e);
    lazy_archive::archive_entry_free(e);
  }
  struct Closer {
    struct archive* w;
    ~Closer() {
      if (w) lazy_archive::archive_write_free(w);
    }
  } closer{w};
  Sha256 plain;
  WrittenBlob out;
  static thread_local char buf[1 << 17];
  for (;;) {
    la_ssize_t n = lazy_archive::archive_read_data(r.a, buf, sizeof buf);
    if (n < 0) throw Error(Errc::kInvalidInput, input.string() + " is corrupt: " + lazy_archive::archive_error_string(r.a));
    if (n == 0) break;
    plain.update(buf, static_cast<size_t>(n));
    out.plain_size += static_cast<std::uint64_t>(n);
    if (w) {
      if (lazy_archive::archive_write_data(w, buf, static_cast<size_t>(n)) != n)
        throw system_error("cannot write " + output.string(), sink.err ? sink.err : EIO);
    } else if (!put(sink, buf, static_cast<size_t>(n))) {
      throw system_error("cannot write " + output.string(), sink.err);
    }
  }
  if (w && lazy_archive::archive_write_close(w) != ARCHIVE_OK)
    throw system_error("cannot write " + output.string(), sink.err ? sink.err : EIO);
  if (sink.failed) throw system_error("cannot write " + output.string(), sink.err);
  out.digest = "sha256:" + sink.hash.hex();
  out.size = sink.size;
  out.plain_digest = "sha256:" + plain.hex();
  return out;
}

}  // namespace hutch
