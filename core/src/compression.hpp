// Layer blobs: what compression a blob has, and turning one form into another while hashing.
// (libarchive does the work, opened lazily: see archive_lazy.hpp.)
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace hutch {

enum class Compression { kNone, kGzip, kZstd, kOther };

// By the first bytes of the file: gzip 1f 8b, zstd 28 b5 2f fd, xz, bzip2 (kOther), else none.
Compression sniff_compression(const std::filesystem::path& file);
const char* compression_name(Compression c);

struct WrittenBlob {
  std::string digest;  // "sha256:<hex>" of what was written
  std::uint64_t size = 0;
  std::string plain_digest;  // "sha256:<hex>" of the uncompressed content
  std::uint64_t plain_size = 0;
};

// Reads `input` (any compression libarchive reads), writes it to `output` compressed as
// `to` (kNone: plain), and returns the digests and sizes of both forms.
WrittenBlob recompress_blob(const std::filesystem::path& input, const std::filesystem::path& output, Compression to);

// Decompresses `input` into the pipe (or file) `output_fd`, hashing the plain bytes. When the
// reader of a pipe goes away early (a tar reader stops at the end-of-archive marker), the rest
// is still read and hashed. Returns the plain digest and size; throws Errc::kInvalidInput
// naming `display_name` when the input cannot be decompressed.
WrittenBlob decompress_to_fd(const std::filesystem::path& input, int output_fd, const std::string& display_name);

}  // namespace hutch
