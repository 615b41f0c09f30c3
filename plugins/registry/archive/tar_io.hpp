// The tar these archives need, and no more: image archives hold regular files and directories
// (docker save's older form also symlinks between layer files). Read in place through an
// index of where each file's bytes are, and written as ustar, with PAX records for long names
// and sizes. Not libarchive: this is a few hundred lines, loads nothing, and reading in place
// means nothing of a hostile archive is ever extracted.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>

namespace hutch::registry::archive {

// How an index treats links: an OCI layout has none; docker save (before 25) links a layer
// file shared by two images to the first copy.
enum class LinkPolicy { kReject, kFollowInside };

struct TarFileEntry {
  std::uint64_t offset = 0;  // of the first byte of content in the archive
  std::uint64_t size = 0;
};

// The regular files of a tar, by their cleaned path ("a/b"). Every entry is checked: an
// absolute path, a "..", a device, a link (kReject) or a link leading outside the archive or to
// no file (kFollowInside) is an Errc::kInvalidInput naming the archive and the entry.
class TarIndex {
 public:
  TarIndex(int fd, const std::string& archive_name, LinkPolicy links);
  const TarFileEntry* find(const std::string& path) const;
  const std::map<std::string, TarFileEntry>& files() const { return files_; }

 private:
  std::map<std::string, TarFileEntry> files_;
};

// Writes a tar to a file descriptor: directories and regular files, owner 0:0, mtime 0, so
// that the same content makes the same archive.
class TarWriter {
 public:
  TarWriter(int fd, std::string file_name);
  void add_directory(const std::string& path);
  void add_bytes(const std::string& path, const std::string& content);
  // Copies `source` (exactly the size it has when called).
  void add_file(const std::string& path, const std::filesystem::path& source);
  // The end-of-archive blocks, padded to a 10 KiB record as tar writes them.
  void finish();

 private:
  void header(const std::string& path, char type, std::uint64_t size, unsigned mode);
  void write(const void* data, std::size_t size);
  void pad();
  int fd_;
  std::string file_name_;
  std::uint64_t written_ = 0;
};

}  // namespace hutch::registry::archive
