// Applying layer tars: OCI semantics, and hostile archives that must not reach outside.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "hutch/error.hpp"
#include "hutch/layer_tar.hpp"
#include "test_support.hpp"

using namespace hutch;
namespace fs = std::filesystem;

namespace {

using Entry = test::TarEntry;
using test::make_tar;
using test::slurp;

class LayerTar : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() / "root";
    outside_ = tmp_.path() / "outside";
    fs::create_directories(root_);
    fs::create_directories(outside_);
    root_fd_ = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY);
    opts_.squash_ownership = getuid() != 0;
  }
  void TearDown() override { ::close(root_fd_); }
  void apply(const std::vector<Entry>& entries) {
    apply_layer_tar(root_fd_, make_tar(tmp_.path(), "l" + std::to_string(n_++) + ".tar", entries), opts_);
  }
  bool outside_untouched() {
    return fs::is_empty(outside_) && !fs::exists(tmp_.path() / "escaped") && !fs::exists("/tmp/hutch-escaped");
  }
  test::TempDir tmp_;
  fs::path root_, outside_;
  int root_fd_ = -1;
  int n_ = 0;
  ApplyOptions opts_;
};

TEST_F(LayerTar, FilesDirsSymlinksHardlinksAndModes) {
  apply({{"bin", AE_IFDIR, "", 0755},
         {"bin/tool", AE_IFREG, "#!/bin/sh\n", 04755},
         {"bin/alias", AE_IFLNK, "tool"},
         {"bin/hard", AE_IFREG, "bin/tool", 0, true},
         {"tmp", AE_IFDIR, "", 01777},
         {"deep/er/file", AE_IFREG, "x"}});
  EXPECT_EQ(slurp(root_ / "bin/tool"), "#!/bin/sh\n");
  EXPECT_EQ(fs::read_symlink(root_ / "bin/alias"), "tool");
  struct stat a, b;
  ASSERT_EQ(stat((root_ / "bin/tool").c_str(), &a), 0);
  ASSERT_EQ(stat((root_ / "bin/hard").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_mode & 07777, 04755u);
  EXPECT_EQ(a.st_mtime, 1000000);
  struct stat t;
  ASSERT_EQ(stat((root_ / "tmp").c_str(), &t), 0);
  EXPECT_EQ(t.st_mode & 07777, 01777u);
  EXPECT_EQ(slurp(root_ / "deep/er/file"), "x");  // parents made on the way
}

TEST_F(LayerTar, WhiteoutsDeleteFromBelow) {
  apply({{"etc", AE_IFDIR, "", 0755}, {"etc/a", AE_IFREG, "a"}, {"etc/b", AE_IFREG, "b"},
         {"opq", AE_IFDIR, "", 0755}, {"opq/old", AE_IFREG, "old"}});
  apply({{"etc/.wh.a", AE_IFREG, ""}, {"opq/new", AE_IFREG, "new"}, {"opq/.wh..wh..opq", AE_IFREG, ""}});
  EXPECT_FALSE(fs::exists(root_ / "etc/a"));
  EXPECT_TRUE(fs::exists(root_ / "etc/b"));
  EXPECT_FALSE(fs::exists(root_ / "etc/.wh.a"));
  EXPECT_FALSE(fs::exists(root_ / "opq/old"));
  EXPECT_TRUE(fs::exists(root_ / "opq/new"));  // the opaque directory keeps its own layer's files
  EXPECT_FALSE(fs::exists(root_ / "opq/.wh..wh..opq"));
}

TEST_F(LayerTar, DotDotAndAbsolutePathsStayInside) {
  apply({{"../outside/evil", AE_IFREG, "x"}, {"/abs/file", AE_IFREG, "y"}, {"a/../../../escaped", AE_IFREG, "z"}});
  EXPECT_TRUE(outside_untouched());
  EXPECT_EQ(slurp(root_ / "outside/evil"), "x");
  EXPECT_EQ(slurp(root_ / "abs/file"), "y");
  EXPECT_EQ(slurp(root_ / "escaped"), "z");
}

TEST_F(LayerTar, SymlinkThenFileCannotEscape) {
  std::string out = outside_.string();
  // Followed as the container would follow them, beneath the root, where they lead
  // nowhere: refused, and nothing is written outside.
  EXPECT_THROW(apply({{"link", AE_IFLNK, out}, {"link/evil", AE_IFREG, "x"}}), Error);
  EXPECT_THROW(apply({{"rel", AE_IFLNK, "../../outside"}, {"rel/evil2", AE_IFREG, "y"}}), Error);
  EXPECT_TRUE(outside_untouched());
  // A symlink to a directory that exists beneath the root is followed there.
  apply({{"real", AE_IFDIR, "", 0755}, {"alias", AE_IFLNK, "/real"}, {"alias/file", AE_IFREG, "z"}});
  EXPECT_EQ(slurp(root_ / "real/file"), "z");
}

TEST_F(LayerTar, HardlinkOutsideIsRefusedOrContained) {
  std::ofstream(outside_ / "secret") << "secret";
  try {
    apply({{"steal", AE_IFREG, (outside_ / "secret").string(), 0, true}});
    ADD_FAILURE() << "a hardlink to a file outside was applied";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("steal"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(root_ / "steal"));
  EXPECT_EQ(slurp(outside_ / "secret"), "secret");
}

TEST_F(LayerTar, SymlinkParentLeadingOutsideForWhiteout) {
  std::ofstream(outside_ / "keep") << "keep";
  apply({{"l", AE_IFLNK, outside_.string()}, {"l/.wh.keep", AE_IFREG, ""}});
  EXPECT_TRUE(fs::exists(outside_ / "keep"));
}

TEST_F(LayerTar, OwnerOutsideTheMappingIsAClearError) {
  opts_.squash_ownership = false;
  opts_.uid_count = 65537;
  opts_.gid_count = 65537;
  try {
    apply({{"etc", AE_IFDIR, "", 0755, false, 0}, {"etc/file", AE_IFREG, "x", 0644, false, 70000}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("etc/file"), std::string::npos) << m;
    EXPECT_NE(m.find("70000"), std::string::npos) << m;
  }
}

// hutch cp's extraction: a stream, ".wh." names are files, the directory itself is left alone,
// and a directory and a non-directory never replace each other.
TEST_F(LayerTar, CopyExtractionFromAStream) {
  opts_.whiteouts = WhiteoutForm::kNone;
  opts_.copy_extraction = true;
  ::chmod(root_.c_str(), 0750);
  fs::create_directories(root_ / "dir");
  std::ofstream(root_ / "file") << "old";
  std::ofstream(root_ / "keep") << "keep";
  fs::path tar = make_tar(tmp_.path(), "cp.tar",
                          {{".", AE_IFDIR, "", 0700}, {".wh.keep", AE_IFREG, "a file"}, {"new/f", AE_IFREG, "f"}});
  int fd = ::open(tar.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  apply_tar_stream(root_fd_, fd, "the test stream", opts_);
  ::close(fd);
  EXPECT_EQ(slurp(root_ / ".wh.keep"), "a file");
  EXPECT_EQ(slurp(root_ / "keep"), "keep");
  EXPECT_EQ(slurp(root_ / "new/f"), "f");
  struct stat st;
  ASSERT_EQ(::stat(root_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u) << "the destination directory keeps its mode";
  try {
    apply({{"dir", AE_IFREG, "x"}});
    ADD_FAILURE() << "a file replaced a directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot overwrite the directory \"dir\""), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_directory(root_ / "dir"));
  EXPECT_THROW(apply({{"file", AE_IFDIR, "", 0755}}), Error);
  EXPECT_EQ(slurp(root_ / "file"), "old");
  // A file over a file is replaced, as docker cp does.
  apply({{"file", AE_IFREG, "new"}});
  EXPECT_EQ(slurp(root_ / "file"), "new");
}

TEST(DecompressLayer, RejectsWhatIsNotATar) {
  test::TempDir tmp;
  fs::path junk = tmp.path() / "junk.txt";
  std::ofstream(junk) << "this is not a tar archive at all, just words\n";
  int fd = ::open(junk.c_str(), O_RDONLY);
  try {
    decompress_layer(fd, "junk.txt", tmp.path() / "out.tar");
    ADD_FAILURE() << "accepted a text file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("junk.txt"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("not a tar"), std::string::npos) << e.what();
  }
  ::close(fd);
}

TEST(DecompressLayer, GzipGivesTheDiffIdOfThePlainTar) {
  test::TempDir tmp;
  fs::path plain = make_tar(tmp.path(), "a.tar", {{"hello", AE_IFREG, "hello world\n"}});
  std::string cmd = "gzip -k -c " + plain.string() + " > " + plain.string() + ".gz";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  int fd = ::open((plain.string() + ".gz").c_str(), O_RDONLY);
  std::uint64_t size = 0;
  std::string hex = decompress_layer(fd, "a.tar.gz", tmp.path() / "out.tar", &size);
  ::close(fd);
  EXPECT_EQ(size, fs::file_size(plain));
  EXPECT_EQ(slurp(tmp.path() / "out.tar"), slurp(plain));
  EXPECT_EQ(hex.size(), 64u);
}

}  // namespace
