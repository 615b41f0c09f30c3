// What a container changed: tree comparison (vfs), overlay upper directories (kernel and
// fuse-overlayfs forms), and the layer tar that records the changes.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>

#include "hutch/layer_diff.hpp"
#include "hutch/layer_tar.hpp"
#include "test_support.hpp"

using namespace hutch;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

std::string lines(const std::vector<Change>& changes) {
  std::string out;
  for (const auto& c : changes) out += std::string(1, change_letter(c.kind)) + " " + c.path + (c.opaque ? " (opaque)" : "") + "\n";
  return out;
}

struct Dir {
  int fd;
  explicit Dir(const fs::path& p) : fd(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {}
  ~Dir() { ::close(fd); }
};

// Entry names of a tar, in order ("name" or "name -> hardlink target").
std::vector<std::string> tar_names(const fs::path& tar) {
  std::vector<std::string> out;
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, tar.c_str(), 10240), ARCHIVE_OK);
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string n = archive_entry_pathname(e);
    if (archive_entry_hardlink(e)) n += std::string(" -> ") + archive_entry_hardlink(e);
    out.push_back(n);
  }
  archive_read_free(a);
  return out;
}

TEST(LayerDiff, CompareTreesSaysWhatDockerSays) {
  test::TempDir t;
  fs::path lower = t.path() / "lower", upper = t.path() / "upper";
  write(lower / "etc/conf", "v1");
  write(lower / "etc/gone", "g");
  write(lower / "same/file", "s");
  write(lower / "tree/a/b", "b");
  fs::create_directories(upper);
  {
    Dir l(lower), u(upper);
    copy_tree(l.fd, u.fd);
  }
  EXPECT_EQ(lines(compare_trees(Dir(lower).fd, Dir(upper).fd)), "");
  write(upper / "etc/conf", "v2, longer");
  fs::remove(upper / "etc/gone");
  fs::remove_all(upper / "tree");
  write(upper / "new/dir/file", "n");
  EXPECT_EQ(lines(compare_trees(Dir(lower).fd, Dir(upper).fd)),
            "C /etc\nC /etc/conf\nD /etc/gone\nA /new\nA /new/dir\nA /new/dir/file\nD /tree\n");
}

TEST(LayerDiff, OverlayUpperInKernelAndFuseForms) {
  test::TempDir t;
  fs::path lower = t.path() / "lower", upper = t.path() / "upper";
  write(lower / "etc/conf", "v1");
  write(lower / "etc/gone", "g");
  write(lower / "var/old/x", "x");
  write(lower / "fuse/gone", "f");
  write(lower / "fuse/keep", "k");
  write(lower / "opq/old", "o");
  // Kernel form: a 0:0 device for a deletion, the opaque xattr for a replaced directory.
  write(upper / "etc/conf", "v2");
  ASSERT_EQ(::mknod((upper / "etc/gone").c_str(), S_IFCHR, 0), 0) << "whiteout devices need Linux 5.8";
  write(upper / "var/old/new", "n");
  ASSERT_EQ(::setxattr((upper / "var/old").c_str(), kOverlayOpaqueXattr, "y", 1, 0), 0);
  // fuse-overlayfs' form: ".wh.NAME" files and a ".wh..wh..opq" marker.
  write(upper / "fuse/.wh.gone", "");
  write(upper / "opq/.wh..wh..opq", "");
  write(upper / "opq/fresh", "f");
  write(upper / "brand/.wh..wh..opq", "");  // fuse-overlayfs marks new directories too
  write(upper / "brand/file", "b");
  Dir u(upper), l(lower);
  auto changes = overlay_changes(u.fd, {l.fd});
  EXPECT_EQ(lines(changes),
            "A /brand\nA /brand/file\nC /etc\nC /etc/conf\nD /etc/gone\nC /fuse\nD /fuse/gone\n"
            "C /opq (opaque)\nA /opq/fresh\nD /opq/old\nC /var\nC /var/old (opaque)\nA /var/old/new\nD /var/old/x\n");

  // As a layer tar: deletions as .wh. entries, opaque directories followed by their marker
  // (which stands for the deletions inside them).
  fs::path tar = t.path() / "changes.tar";
  ExportedLayer layer = write_changes_tar(u.fd, changes, tar);
  EXPECT_EQ(layer.size, fs::file_size(tar));
  EXPECT_EQ(layer.diff_hex.size(), 64u);
  EXPECT_EQ(tar_names(tar), (std::vector<std::string>{"brand/", "brand/file", "etc/", "etc/conf", "etc/.wh.gone", "fuse/",
                                                      "fuse/.wh.gone", "opq/", "opq/.wh..wh..opq", "opq/fresh", "var/",
                                                      "var/old/", "var/old/.wh..wh..opq", "var/old/new"}));

  // Applied on the lower tree (vfs form), it gives what the overlay showed.
  ApplyOptions opts;
  opts.squash_ownership = getuid() != 0;
  apply_layer_tar(l.fd, tar, opts);
  EXPECT_EQ(test::slurp(lower / "etc/conf"), "v2");
  EXPECT_FALSE(fs::exists(lower / "etc/gone"));
  EXPECT_FALSE(fs::exists(lower / "fuse/gone"));
  EXPECT_TRUE(fs::exists(lower / "fuse/keep"));
  EXPECT_FALSE(fs::exists(lower / "opq/old"));
  EXPECT_FALSE(fs::exists(lower / "var/old/x"));
  EXPECT_TRUE(fs::exists(lower / "var/old/new"));
  EXPECT_FALSE(fs::exists(lower / "brand/.wh..wh..opq"));
}

TEST(LayerDiff, HardlinksInTheChangesStayHardlinks) {
  test::TempDir t;
  fs::path lower = t.path() / "lower", upper = t.path() / "upper";
  fs::create_directories(lower);
  write(upper / "a", "same");
  fs::create_hard_link(upper / "a", upper / "b");
  Dir u(upper), l(lower);
  fs::path tar = t.path() / "links.tar";
  write_changes_tar(u.fd, compare_trees(l.fd, u.fd), tar);
  EXPECT_EQ(tar_names(tar), (std::vector<std::string>{"a", "b -> a"}));
}

TEST(LayerDiff, LinkTreeSharesFilesAndMakesDirectoriesAnew) {
  test::TempDir t;
  fs::path src = t.path() / "src", dst = t.path() / "dst";
  write(src / "d/f", "f");
  fs::create_symlink("d/f", src / "link");
  fs::create_directories(dst);
  {
    Dir s(src), d(dst);
    link_tree(s.fd, d.fd);
  }
  struct stat a, b;
  ASSERT_EQ(::stat((src / "d/f").c_str(), &a), 0);
  ASSERT_EQ(::stat((dst / "d/f").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  ASSERT_EQ(::stat((src / "d").c_str(), &a), 0);
  ASSERT_EQ(::stat((dst / "d").c_str(), &b), 0);
  EXPECT_NE(a.st_ino, b.st_ino);
  EXPECT_EQ(fs::read_symlink(dst / "link"), "d/f");
  std::set<std::pair<dev_t, ino_t>> seen;
  std::uint64_t first = disk_usage(Dir(src).fd, &seen);
  std::uint64_t second = disk_usage(Dir(dst).fd, &seen);
  EXPECT_GT(first, 0u);
  EXPECT_LT(second, first) << "shared inodes are counted once";
}

}  // namespace
