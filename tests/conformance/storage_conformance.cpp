// What every storage driver must do, run against each storage plugin through the real loader.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "conformance_util.hpp"
#include "hutch/storage.hpp"

using namespace hutch;
using namespace hutch::conformance;
namespace fs = std::filesystem;

namespace {

// Files by path ("dir/" for a directory) and content.
fs::path tar_of(const fs::path& dir, const std::string& name,
                const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<test::TarEntry> entries;
  for (const auto& [path, content] : files) {
    bool is_dir = path.back() == '/';
    entries.push_back({path, static_cast<mode_t>(is_dir ? AE_IFDIR : AE_IFREG), content, static_cast<mode_t>(is_dir ? 0755 : 0644)});
  }
  return test::make_tar(dir, name, entries);
}

using test::slurp;

class StorageConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    driver_ = loader().create<StorageDriver>(GetParam(), context_in(scratch_.path(), GetParam()));
  }
  Scratch scratch_;
  std::unique_ptr<StorageDriver> driver_;
};

TEST_P(StorageConformance, LayersStackAndContainersAreWritableCopies) {
  auto base = tar_of(scratch_.path(), "base.tar", {{"etc/", ""}, {"etc/a", "a"}, {"etc/b", "b"}});
  auto top = tar_of(scratch_.path(), "top.tar", {{"etc/.wh.a", ""}, {"etc/c", "c"}});
  driver_->create_layer("base", "", base);
  driver_->create_layer("top", "base", top);
  EXPECT_TRUE(driver_->has_layer("base"));
  EXPECT_TRUE(driver_->has_layer("top"));
  EXPECT_FALSE(driver_->has_layer("other"));
  auto layers = driver_->list_layers();
  EXPECT_EQ(std::set<std::string>(layers.begin(), layers.end()), (std::set<std::string>{"base", "top"}));

  driver_->create_container_fs("c1", "top");
  fs::path root = driver_->mount("c1");
  EXPECT_FALSE(fs::exists(root / "etc/a"));
  EXPECT_EQ(slurp(root / "etc/b"), "b");
  EXPECT_EQ(slurp(root / "etc/c"), "c");
  std::ofstream(root / "etc/b") << "changed";
  driver_->unmount("c1");

  // The image is untouched by the container.
  driver_->create_container_fs("c2", "top");
  EXPECT_EQ(slurp(driver_->mount("c2") / "etc/b"), "b");
  driver_->unmount("c2");

  driver_->remove_container_fs("c1");
  driver_->remove_container_fs("c2");
  driver_->remove_layer("top");
  EXPECT_FALSE(driver_->has_layer("top"));
  EXPECT_TRUE(driver_->has_layer("base"));
}

TEST_P(StorageConformance, AFailedLayerLeavesNothing) {
  fs::path junk = scratch_.path() / "junk.tar";
  std::ofstream(junk) << "definitely not a tar";
  EXPECT_THROW(driver_->create_layer("bad", "", junk), Error);
  EXPECT_FALSE(driver_->has_layer("bad"));
  EXPECT_TRUE(driver_->list_layers().empty());
  driver_->clean_incomplete();
  EXPECT_TRUE(driver_->list_layers().empty());
}

TEST_P(StorageConformance, CleanIncompleteKeepsCompleteLayers) {
  driver_->create_layer("l", "", tar_of(scratch_.path(), "l.tar", {{"f", "x"}}));
  driver_->clean_incomplete();
  EXPECT_TRUE(driver_->has_layer("l"));
}

TEST_P(StorageConformance, MountOfAnUnknownContainerFails) { EXPECT_THROW(driver_->mount("nope"), Error); }

using test::TarEntry;

TarEntry dir(const std::string& p, mode_t perm = 0755) { return {p, AE_IFDIR, "", perm}; }
TarEntry file(const std::string& p, const std::string& data, mode_t perm = 0644) { return {p, AE_IFREG, data, perm}; }
TarEntry symlink_to(const std::string& p, const std::string& target) { return {p, AE_IFLNK, target, 0777}; }
TarEntry hardlink_to(const std::string& p, const std::string& target) {
  TarEntry e{p, AE_IFREG, target, 0644};
  e.hardlink = true;
  return e;
}

std::set<std::string> listing(const fs::path& d) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(d)) out.insert(e.path().filename().string());
  return out;
}

std::string diff_lines(const std::vector<Change>& changes) {
  std::string out;
  for (const auto& c : changes) out += std::string(1, change_letter(c.kind)) + " " + c.path + "\n";
  return out;
}

TEST_P(StorageConformance, ProbeSaysWhetherItWorksAndWhy) {
  StorageProbe p = driver_->probe();
  EXPECT_FALSE(p.reason.empty());
  // On this machine (and in CI) every driver must work: a probe failure is a failure.
  EXPECT_TRUE(p.usable) << GetParam() << ": " << p.reason;
}

TEST_P(StorageConformance, EveryEntryKindSurvivesALayer) {
  auto base = test::make_tar(scratch_.path(), "kinds.tar",
                             {dir("bin/"), file("bin/tool", "#!/bin/sh\n", 04755), file("bin/sgid", "g", 02755),
                              dir("tmp/", 01777), symlink_to("bin/link", "tool"), symlink_to("abs", "/bin/tool"),
                              file("data/one", "same inode"), hardlink_to("data/two", "data/one"),
                              {"data/fifo", AE_IFIFO, "", 0600},
                              [] {
                                TarEntry e = file("data/tagged", "x");
                                e.xattrs = {{"user.hutch.test", "value"}};
                                return e;
                              }(),
                              [] {
                                // cap_net_bind_service=ep, VFS_CAP_REVISION_2 (20 bytes, little endian).
                                TarEntry e = file("bin/binder", "b", 0755);
                                std::string cap(20, '\0');
                                cap[0] = 0x01, cap[3] = 0x02, cap[5] = 0x04;  // effective; permitted bit 10
                                e.xattrs = {{"security.capability", cap}};
                                return e;
                              }(),
                              [] {
                                TarEntry e = dir("data/sneaky/");
                                e.xattrs = {{"user.overlay.redirect", "/etc"}, {"user.overlay.opaque", "y"}};
                                return e;
                              }(),
                              file("data/sneaky/keep", "k")});
  driver_->create_layer("kinds", "", base);
  driver_->create_container_fs("c", "kinds");
  fs::path root = driver_->mount("c");
  struct stat st;
  ASSERT_EQ(::lstat((root / "bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ASSERT_EQ(::lstat((root / "bin/sgid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02755u);
  ASSERT_EQ(::lstat((root / "tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  EXPECT_EQ(st.st_mtime, 1000000);
  EXPECT_EQ(fs::read_symlink(root / "bin/link"), "tool");
  EXPECT_EQ(fs::read_symlink(root / "abs"), "/bin/tool");
  ASSERT_EQ(::lstat((root / "data/two").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(slurp(root / "data/two"), "same inode");
  ASSERT_EQ(::lstat((root / "data/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  char value[64] = {};
  EXPECT_EQ(::getxattr((root / "data/tagged").c_str(), "user.hutch.test", value, sizeof value), 5);
  EXPECT_STREQ(value, "value");
  // File capabilities survive (inside a user namespace the kernel stores them for its root).
  char cap[64];
  ssize_t cap_len = ::getxattr((root / "bin/binder").c_str(), "security.capability", cap, sizeof cap);
  ASSERT_EQ(cap_len, 20) << strerror(errno);
  EXPECT_EQ(cap[5], 0x04);
  // An image cannot steer the overlay filesystem through its own xattrs.
  EXPECT_EQ(listing(root / "data/sneaky"), (std::set<std::string>{"keep"}));
  driver_->unmount("c");
  driver_->remove_container_fs("c");
}

TEST_P(StorageConformance, WhiteoutsAndOpaqueDirectoriesAcrossThreeLayers) {
  driver_->create_layer("l1", "",
                        test::make_tar(scratch_.path(), "l1.tar",
                                       {dir("a/"), file("a/x", "x1"), file("a/y", "y1"), dir("b/"), file("b/old", "o"),
                                        dir("b/sub/"), file("b/sub/deep", "d"), dir("c/"), file("c/keep", "k"),
                                        file("gone", "g")}));
  driver_->create_layer("l2", "l1",
                        test::make_tar(scratch_.path(), "l2.tar",
                                       {file("a/.wh.x", ""), dir("b/"), file("b/.wh..wh..opq", ""), file("b/new", "n"),
                                        file(".wh.gone", ""), file("c/added", "a")}));
  driver_->create_layer("l3", "l2",
                        test::make_tar(scratch_.path(), "l3.tar",
                                       {file("a/x", "x3"), file(".wh.c", ""), dir("c/"), file("c/fresh", "f")}));
  driver_->create_container_fs("c", "l3");
  fs::path root = driver_->mount("c");
  EXPECT_EQ(listing(root / "a"), (std::set<std::string>{"x", "y"}));
  EXPECT_EQ(slurp(root / "a/x"), "x3");
  EXPECT_EQ(listing(root / "b"), (std::set<std::string>{"new"}));
  EXPECT_FALSE(fs::exists(root / "gone"));
  // c deleted in l3 and made again there: nothing of l1 or l2 shows through.
  EXPECT_EQ(listing(root / "c"), (std::set<std::string>{"fresh"}));
  driver_->unmount("c");

  // The middle layer alone is as l2 left it.
  driver_->create_container_fs("m", "l2");
  fs::path mid = driver_->mount("m");
  EXPECT_EQ(listing(mid / "a"), (std::set<std::string>{"y"}));
  EXPECT_EQ(listing(mid / "c"), (std::set<std::string>{"keep", "added"}));
  driver_->unmount("m");
  driver_->remove_container_fs("m");
  driver_->remove_container_fs("c");
}

TEST_P(StorageConformance, ContainerChangesDiffAndCommitAsALayer) {
  driver_->create_layer("base", "",
                        test::make_tar(scratch_.path(), "b.tar",
                                       {dir("etc/"), file("etc/conf", "v1"), file("etc/drop", "d"), dir("var/"),
                                        dir("var/cache/"), file("var/cache/a", "a"), file("var/cache/b", "b"),
                                        dir("keep/"), file("keep/same", "s")}));
  driver_->create_container_fs("c", "base");
  fs::path root = driver_->mount("c");
  std::ofstream(root / "etc/conf") << "v2";
  fs::remove(root / "etc/drop");
  fs::remove_all(root / "var/cache");
  fs::create_directory(root / "var/cache");
  std::ofstream(root / "var/cache/new") << "n";
  fs::create_directories(root / "srv/www");
  std::ofstream(root / "srv/www/index") << "i";
  fs::create_hard_link(root / "srv/www/index", root / "srv/www/alias");

  std::string diff = diff_lines(driver_->changes("c"));
  // Which of var/cache/{a,b} a driver reports depends on how it recorded the replaced
  // directory (opaque, or item by item); the rest is the same for every driver.
  for (const char* line : {"C /etc\n", "C /etc/conf\n", "D /etc/drop\n", "C /var\n", "C /var/cache\n",
                           "A /var/cache/new\n", "A /srv\n", "A /srv/www\n", "A /srv/www/index\n",
                           "A /srv/www/alias\n"})
    EXPECT_NE(diff.find(line), std::string::npos) << "missing " << line << "in\n" << diff;
  EXPECT_EQ(diff.find("/keep"), std::string::npos) << diff;

  fs::path tar = scratch_.path() / "commit.tar";
  ExportedLayer layer = driver_->export_changes("c", driver_->changes("c"), tar);
  EXPECT_EQ(layer.diff_hex.size(), 64u);
  EXPECT_EQ(layer.size, fs::file_size(tar));
  driver_->unmount("c");

  // The committed layer on top of the base is what the container saw.
  driver_->create_layer("committed", "base", tar);
  driver_->create_container_fs("c2", "committed");
  fs::path r2 = driver_->mount("c2");
  EXPECT_EQ(slurp(r2 / "etc/conf"), "v2");
  EXPECT_FALSE(fs::exists(r2 / "etc/drop"));
  EXPECT_EQ(listing(r2 / "var/cache"), (std::set<std::string>{"new"}));
  EXPECT_EQ(slurp(r2 / "srv/www/alias"), "i");
  struct stat st;
  ASSERT_EQ(::stat((r2 / "srv/www/index").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(slurp(r2 / "keep/same"), "s");
  // A fresh container of it has no changes of its own.
  EXPECT_EQ(diff_lines(driver_->changes("c2")), "");
  driver_->unmount("c2");
  driver_->remove_container_fs("c2");
  driver_->remove_container_fs("c");
  EXPECT_FALSE(driver_->has_container_fs("c"));
}

TEST_P(StorageConformance, MountIsIdempotentAndReported) {
  driver_->create_layer("l", "", tar_of(scratch_.path(), "l.tar", {{"f", "x"}}));
  driver_->create_container_fs("c", "l");
  fs::path a = driver_->mount("c");
  fs::path b = driver_->mount("c");
  EXPECT_EQ(a, b);
  ASSERT_TRUE(driver_->mounted("c").has_value());
  EXPECT_EQ(*driver_->mounted("c"), a);
  driver_->unmount("c");
  EXPECT_FALSE(driver_->mounted("c").has_value());
  driver_->remove_container_fs("c");
}

TEST_P(StorageConformance, SharedBaseIsStoredOnce) {
  std::string big(4 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>(i / 4096);
  driver_->create_layer("base", "", tar_of(scratch_.path(), "base.tar", {{"big", big}}));
  driver_->create_layer("child1", "base", tar_of(scratch_.path(), "c1.tar", {{"one", "1"}}));
  driver_->create_layer("child2", "base", tar_of(scratch_.path(), "c2.tar", {{"two", "2"}}));
  std::set<std::pair<dev_t, ino_t>> seen;
  std::uint64_t total = 0;
  for (const auto& id : {"base", "child1", "child2"}) total += driver_->layer_disk_usage(id, &seen);
  EXPECT_GE(total, big.size());
  EXPECT_LT(total, big.size() + (1u << 20)) << "the 4 MB base is stored more than once";
}

// Crafted layers that try to write outside the layer: every driver refuses them or keeps
// them inside, and nothing appears next to the store.
TEST_P(StorageConformance, HostileLayersNeverWriteOutside) {
  fs::path outside = scratch_.path() / "outside";
  fs::create_directories(outside);
  std::vector<std::pair<std::string, std::vector<TarEntry>>> cases = {
      {"traversal", {file("../../outside/evil", "x"), file("a/../../../outside/evil2", "x")}},
      {"absolute", {file((outside / "abs").string(), "x")}},
      {"symlink escape", {symlink_to("link", outside.string()), file("link/evil", "x")}},
      {"relative symlink escape", {symlink_to("up", "../../../../../../.." + outside.string()), file("up/evil", "x")}},
      {"hardlink escape", {hardlink_to("hl", (outside / "target").string())}},
      {"symlink swapped for a directory", {dir("d/"), file("d/ok", "x"), symlink_to("d", outside.string()), file("d/evil", "x")}},
      {"whiteout through a symlink", {symlink_to("w", outside.string()), file("w/.wh.target", "")}},
  };
  std::ofstream(outside / "target") << "precious";
  int n = 0;
  for (const auto& [name, entries] : cases) {
    std::string id = "hostile" + std::to_string(n++);
    fs::path tar = test::make_tar(scratch_.path(), id + ".tar", entries);
    try {
      driver_->create_layer(id, "", tar);
    } catch (const Error&) {
      EXPECT_FALSE(driver_->has_layer(id)) << name;
    }
    EXPECT_EQ(listing(outside), (std::set<std::string>{"target"})) << name;
    EXPECT_EQ(slurp(outside / "target"), "precious") << name;
  }
}

TEST_P(StorageConformance, AnOwnerOutsideTheMappingIsNamed) {
  auto ctx = context_in(scratch_.path() / "mapped", GetParam());
  ctx.rootless.mode = UsernsMode::kFullRange;
  ctx.rootless.uid_count = ctx.rootless.gid_count = 65536;
  auto driver = loader().create<StorageDriver>(GetParam(), ctx);
  TarEntry e = file("etc/owned", "x");
  e.uid = 70000;
  try {
    driver->create_layer("ids", "", test::make_tar(scratch_.path(), "ids.tar", {dir("etc/"), e}));
    FAIL() << "a file owned by uid 70000 was accepted with 65536 IDs";
  } catch (const Error& err) {
    std::string m = err.what();
    EXPECT_NE(m.find("etc/owned"), std::string::npos) << m;
    EXPECT_NE(m.find("70000"), std::string::npos) << m;
  }
  EXPECT_FALSE(driver->has_layer("ids"));
}

TEST_P(StorageConformance, ACrashedLayerIsCleanedAndNeverListed) {
  // What a kill -9 during extraction leaves: an incomplete directory (and for overlay, a link).
  driver_->create_layer("whole", "", tar_of(scratch_.path(), "w.tar", {{"f", "x"}}));
  fs::path state = scratch_.path() / "store" / GetParam();
  for (const auto& entry : fs::recursive_directory_iterator(state)) {
    if (entry.path().filename() == "whole" && entry.is_directory()) {
      fs::copy(entry.path(), entry.path().parent_path() / "half.incomplete-dead", fs::copy_options::recursive);
      break;
    }
  }
  auto layers = driver_->list_layers();
  EXPECT_EQ(std::set<std::string>(layers.begin(), layers.end()), (std::set<std::string>{"whole"}));
  driver_->clean_incomplete();
  bool leftover = false;
  for (const auto& entry : fs::recursive_directory_iterator(state))
    leftover |= entry.path().filename().string().find(".incomplete-") != std::string::npos;
  EXPECT_FALSE(leftover);
  EXPECT_TRUE(driver_->has_layer("whole"));
}

TEST_P(StorageConformance, VerifyLayerFindsFilesThatAreNotWhatTheTarMakes) {
  auto base = test::make_tar(scratch_.path(), "vb.tar", {dir("etc/"), file("etc/conf", "original"), file("etc/gone", "g")});
  auto top = test::make_tar(scratch_.path(), "vt.tar",
                            {file("etc/.wh.gone", ""), file("etc/added", "new"), symlink_to("etc/link", "conf"),
                             {"etc/fifo", AE_IFIFO, "", 0600}});
  driver_->create_layer("vb", "", base);
  driver_->create_layer("vt", "vb", top);
  EXPECT_EQ(driver_->verify_layer("vb", "", base), std::nullopt);
  EXPECT_EQ(driver_->verify_layer("vt", "vb", top), std::nullopt);
  // Damage the top layer's own file where the driver keeps it (same size: only the bytes differ).
  fs::path added;
  for (const auto& e : fs::recursive_directory_iterator(scratch_.path() / "store" / GetParam()))
    if (e.path().filename() == "added" && e.is_regular_file()) added = e.path();
  ASSERT_FALSE(added.empty());
  struct stat before;
  ASSERT_EQ(::stat(added.c_str(), &before), 0);
  std::ofstream(added, std::ios::in | std::ios::out) << "NEW";
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, added.c_str(), times, 0), 0);
  auto difference = driver_->verify_layer("vt", "vb", top);
  ASSERT_TRUE(difference.has_value());
  EXPECT_NE(difference->find("etc/added"), std::string::npos) << *difference;
  EXPECT_NE(difference->find("content"), std::string::npos) << *difference;
  // Verifying leaves nothing behind.
  auto layers = driver_->list_layers();
  EXPECT_EQ(std::set<std::string>(layers.begin(), layers.end()), (std::set<std::string>{"vb", "vt"}));
}

TEST_P(StorageConformance, AnImageOfManyLayersMounts) {
  // 160 layers: the lowerdir option alone is past a 4 KiB page even with short names.
  constexpr int kLayers = 160;
  std::string parent;
  for (int i = 0; i < kLayers; ++i) {
    std::string id = "deep" + std::to_string(i);
    driver_->create_layer(id, parent,
                          tar_of(scratch_.path(), id + ".tar", {{"layers/", ""}, {"layers/" + std::to_string(i), id}}));
    parent = id;
  }
  driver_->create_container_fs("c", parent);
  fs::path root = driver_->mount("c");
  EXPECT_EQ(listing(root / "layers").size(), static_cast<size_t>(kLayers));
  EXPECT_EQ(slurp(root / "layers/0"), "deep0");
  EXPECT_EQ(slurp(root / "layers/159"), "deep159");
  driver_->unmount("c");
  driver_->remove_container_fs("c");
}

INSTANTIATE_TEST_SUITE_P(Plugins, StorageConformance, ::testing::Values("vfs", "overlay", "fuse-overlayfs"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
