// What the three transports share: reading an image's files from a directory or in place from
// a tar, copying a blob while checking it against its digest, a staging directory that leaves
// nothing behind, and writing a tar atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "hutch/transport.hpp"
#include "tar_io.hpp"

namespace hutch::registry::archive {

using Sink = std::function<void(const char* data, std::size_t size)>;

// The files of an image, by path relative to its root ("blobs/sha256/<hex>", "manifest.json").
class ImageFiles {
 public:
  virtual ~ImageFiles() = default;
  // For messages: "the OCI layout /x", "the archive /x.tar".
  virtual const std::string& describe() const = 0;
  // The size of a regular file, or nothing when there is none at `path`.
  virtual std::optional<std::uint64_t> size_of(const std::string& path) const = 0;
  // Streams the whole file to `sink`; Errc::kNotFound naming it when it is missing.
  virtual void read(const std::string& path, const Sink& sink) const = 0;
  // A small file whole (JSON); Errc::kInvalidInput when it is larger than `limit`.
  std::string read_small(const std::string& path, std::size_t limit = 16u << 20) const;
  // Its first bytes (up to `n`), to tell compressed from plain.
  std::string head(const std::string& path, std::size_t n) const;
  Error missing(const std::string& path) const;
};

// A directory; paths are resolved beneath it (openat2 RESOLVE_BENEATH), so a symlink inside
// cannot lead out of it.
std::unique_ptr<ImageFiles> directory_files(const std::filesystem::path& root, const std::string& describe);
// A tar archive read in place (gzip-compressed ones are first inflated to an unnamed temporary
// file in $TMPDIR, /var/tmp by default). Errc::kNotFound when `file` does not exist.
std::unique_ptr<ImageFiles> tar_files(const std::filesystem::path& file, const std::string& describe,
                                      LinkPolicy links);

// The sha256 hex and size of a file of `files`.
struct Measured {
  std::string hex;
  std::uint64_t size = 0;
};
Measured measure(const ImageFiles& files, const std::string& path);

// Copies `path` of `files` to `destination` (created or truncated), hashing as it goes: when
// the bytes are not `blob.digest` (or not `blob.size` long, when it is known), the file is
// removed and Errc::kCorrupt names the digest and `files`.
void copy_blob_verified(const ImageFiles& files, const std::string& path, const BlobInfo& blob,
                        const std::filesystem::path& destination, const ProgressFn& progress);

// Copies a local file into `destination` (a temporary name beside it, renamed when it is
// complete) after checking it against `blob`; Errc::kCorrupt naming the digest otherwise.
// With `inflate`, gzip content is decompressed on the way (the digest is checked over what
// was given) and the sha256 of what was written is returned; otherwise the digest's hex.
std::string store_blob_verified(const std::filesystem::path& source, const BlobInfo& blob,
                                const std::filesystem::path& destination, const ProgressFn& progress,
                                bool inflate = false);

// The gzip magic (1f 8b) at the start of `bytes`.
inline bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f && static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// A directory beside an archive being written ("<dir>/.<name>.incomplete-XXXXXX"), removed
// when the object goes, whatever happened.
class StagingDirectory {
 public:
  explicit StagingDirectory(const std::filesystem::path& near);
  ~StagingDirectory();
  StagingDirectory(const StagingDirectory&) = delete;
  StagingDirectory& operator=(const StagingDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Writes `file` whole or not at all: `fill` writes the tar into "<file>.tmp-XXXXXX", which is
// synced and renamed over `file`; on failure the temporary file is removed.
void write_tar_atomically(const std::filesystem::path& file, const std::function<void(TarWriter&)>& fill);

// "sha256:<hex>" -> the hex, as a path component; Errc::kUnsupported for other algorithms,
// Errc::kInvalidInput for what is not a digest.
std::string blob_hex(const std::string& digest);

}  // namespace hutch::registry::archive
