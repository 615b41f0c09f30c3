// Helpers shared by the unit and conformance tests: temporary directories, layer tars.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hutch/paths.hpp"

#include "skip.hpp"

namespace hutch::test {

// A temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/hutch-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { remove_tree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// One entry of a tar to build: a file (content), directory, symlink or hardlink (target).
struct TarEntry {
  std::string path;
  mode_t type = AE_IFREG;
  std::string data;  // file content, or symlink/hardlink target
  mode_t perm = 0644;
  bool hardlink = false;
  int uid = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
  dev_t rdev = 0;  // device nodes
};

inline std::filesystem::path make_tar(const std::filesystem::path& dir, const std::string& name,
                                      const std::vector<TarEntry>& entries) {
  std::filesystem::path out = dir / name;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open_filename(a, out.c_str());
  for (const auto& e : entries) {
    struct archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_perm(ae, e.perm);
    archive_entry_set_uid(ae, e.uid);
    archive_entry_set_gid(ae, e.uid);
    archive_entry_set_mtime(ae, 1000000, 0);
    if (e.hardlink) {
      archive_entry_set_hardlink(ae, e.data.c_str());
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_size(ae, 0);
    } else {
      archive_entry_set_filetype(ae, e.type);
      if (e.type == AE_IFLNK) archive_entry_set_symlink(ae, e.data.c_str());
      if (e.type == AE_IFCHR || e.type == AE_IFBLK) archive_entry_set_rdev(ae, e.rdev);
      archive_entry_set_size(ae, e.type == AE_IFREG ? static_cast<la_int64_t>(e.data.size()) : 0);
    }
    for (const auto& [k, v] : e.xattrs) archive_entry_xattr_add_entry(ae, k.c_str(), v.data(), v.size());
    archive_write_header(a, ae);
    if (!e.hardlink && e.type == AE_IFREG) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace hutch::test
