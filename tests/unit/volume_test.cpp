// Named volumes through the engine: what `run -v NAME:/path` gets (volume_for_run seeding a new
// volume with the image's files, resolved beneath the rootfs), names, leftovers, removal.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "hutch/engine.hpp"
#include "hutch/paths.hpp"
#include "engine_fixture.hpp"

using namespace hutch;
namespace fs = std::filesystem;

namespace {

class VolumeEngineTest : public test::EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    rootfs_ = tmp_.path() / "rootfs";
    make_dirs(rootfs_ / "etc" / "sub", 0755);
  }
  void write(const fs::path& file, const std::string& content, mode_t mode = 0644) {
    std::ofstream(file) << content;
    ::chmod(file.c_str(), mode);
  }
  std::string slurp(const fs::path& file) { return read_file(file); }
  fs::path volumes() const { return tmp_.path() / "root" / "volumes"; }
  fs::path for_run(const std::string& name, const std::string& destination) {
    auto lock = engine_->store().lock(FileLock::Mode::kExclusive);  // as run holds it
    return engine_->volume_for_run(name, rootfs_, destination);
  }

  fs::path rootfs_;
};

TEST_F(VolumeEngineTest, ANewVolumeGetsTheImageFilesWithModesTimesLinksAndOwners) {
  write(rootfs_ / "etc" / "passwd", "root:x:0:0::/root:/bin/sh\n", 0640);
  write(rootfs_ / "etc" / "sub" / "deep", "deep\n", 0600);
  ASSERT_EQ(::symlink("passwd", (rootfs_ / "etc" / "link").c_str()), 0);
  ASSERT_EQ(::link((rootfs_ / "etc" / "passwd").c_str(), (rootfs_ / "etc" / "hard").c_str()), 0);
  ::chmod((rootfs_ / "etc").c_str(), 0750);
  struct timespec times[2] = {{1000000, 0}, {1000000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (rootfs_ / "etc" / "passwd").c_str(), times, 0), 0);
  bool root = ::geteuid() == 0;
  if (root) {
    ASSERT_EQ(::chown((rootfs_ / "etc" / "sub" / "deep").c_str(), 1234, 4321), 0);
  }

  fs::path data = for_run("v", "/etc");
  EXPECT_EQ(data, volumes() / "v" / "_data");
  EXPECT_EQ(slurp(data / "passwd"), "root:x:0:0::/root:/bin/sh\n");
  EXPECT_EQ(slurp(data / "sub" / "deep"), "deep\n");
  struct stat st, hard;
  ASSERT_EQ(::lstat((data / "passwd").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000000);
  ASSERT_EQ(::lstat((data / "hard").c_str(), &hard), 0);
  EXPECT_EQ(hard.st_ino, st.st_ino) << "a hardlink stays one file";
  EXPECT_EQ(fs::read_symlink(data / "link"), "passwd");
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u) << "_data takes the mode of the image's directory";
  if (root) {
    ASSERT_EQ(::lstat((data / "sub" / "deep").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1234u);
    EXPECT_EQ(st.st_gid, 4321u);
  }
  auto v = engine_->inspect_volume("v");
  EXPECT_EQ(v.mountpoint, data);
  EXPECT_EQ(v.driver, "local");
}

TEST_F(VolumeEngineTest, TheDestinationResolvesBeneathTheRootfs) {
  // An absolute symlink in the image means the image's /inner, not the host's.
  make_dirs(rootfs_ / "inner", 0755);
  write(rootfs_ / "inner" / "f", "inside\n");
  ASSERT_EQ(::symlink("/inner", (rootfs_ / "abs").c_str()), 0);
  EXPECT_EQ(slurp(for_run("a", "/abs") / "f"), "inside\n");
  // ".." cannot climb out of the rootfs to the host's files (rootfs/../host-secret).
  make_dirs(tmp_.path() / "host-secret", 0755);
  write(tmp_.path() / "host-secret" / "secret", "host\n");
  ASSERT_EQ(::symlink("../host-secret", (rootfs_ / "up").c_str()), 0);
  fs::path data = for_run("b", "/up");
  EXPECT_TRUE(fs::is_empty(data)) << "the host's directory was copied";
  ASSERT_EQ(::symlink("../../../host-secret", (rootfs_ / "etc" / "sub" / "esc").c_str()), 0);
  EXPECT_TRUE(fs::is_empty(for_run("c", "/etc/sub/esc")));
}

TEST_F(VolumeEngineTest, AMissingDestinationMakesAnEmptyVolume) {
  fs::path data = for_run("empty", "/no/such/dir");
  EXPECT_TRUE(fs::is_empty(data));
  struct stat st;
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_THROW(for_run("rel", "relative/path"), Error);
  EXPECT_THROW(for_run("slash", "/"), Error);
  EXPECT_THROW(for_run("bad/name", "/etc"), Error);
}

TEST_F(VolumeEngineTest, AnExistingEmptyVolumeIsSeededInPlaceOnceItHasFiles) {
  engine_->create_volume("e", {}, {});
  fs::path data = volumes() / "e" / "_data";
  struct stat before, after;
  ASSERT_EQ(::stat(data.c_str(), &before), 0);
  write(rootfs_ / "etc" / "first", "1\n");
  EXPECT_EQ(for_run("e", "/etc"), data);
  ASSERT_EQ(::stat(data.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "a running container may have _data mounted: it stays the same directory";
  EXPECT_EQ(slurp(data / "first"), "1\n");
  // Not empty any more: the next container's image does not overwrite it.
  fs::remove(rootfs_ / "etc" / "first");
  write(rootfs_ / "etc" / "second", "2\n");
  for_run("e", "/etc");
  EXPECT_TRUE(fs::exists(data / "first"));
  EXPECT_FALSE(fs::exists(data / "second"));
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(volumes(), ec))
    EXPECT_NE(e.path().filename().string().rfind(".partial-", 0), 0u) << "a staging directory stayed: " << e.path();
}

TEST_F(VolumeEngineTest, NamesFollowDockersRule) {
  for (const char* bad : {"-x", ".x", "_x", "a/b", "a b", "a:b", ".partial-1", "é"})
    EXPECT_THROW(engine_->create_volume(bad, {}, {}), Error) << bad;
  for (const char* good : {"a", "A9", "9", "a_b.c-d", "data.incomplete-1234"})
    EXPECT_EQ(engine_->create_volume(good, {}, {}).name, good);
  std::string random = engine_->create_volume("", {}, {}).name;
  EXPECT_EQ(random.size(), 64u);
  EXPECT_EQ(random.find_first_not_of("0123456789abcdef"), std::string::npos);
  try {
    engine_->create_volume("a", {}, {});
    ADD_FAILURE() << "a duplicate name was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kAlreadyExists);
    EXPECT_NE(std::string(e.what()).find("volume a already exists"), std::string::npos) << e.what();
  }
  EXPECT_EQ(engine_->create_volume("a", {{"k", "v"}}, {}, true).labels.size(), 0u)
      << "--ignore gives the existing volume, unchanged";
}

TEST_F(VolumeEngineTest, WhatAKilledCommandLeftIsRemovedByTheNextChange) {
  make_dirs(volumes() / ".partial-deadbeef" / "_data", 0755);
  write(volumes() / ".partial-deadbeef" / "volume.json", "{\"name\":\"half\"}");
  EXPECT_TRUE(engine_->list_volumes().empty()) << "a half volume is not listed";
  engine_->create_volume("x", {}, {});
  EXPECT_FALSE(fs::exists(volumes() / ".partial-deadbeef"));
  auto all = engine_->list_volumes();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "x");
}

TEST_F(VolumeEngineTest, RemovalRefusesAVolumeInUseUnlessForced) {
  engine_->create_volume("x", {}, {});
  engine_->create_volume("free", {}, {});
  ContainerRecord c;
  c.id = std::string(64, 'c');
  c.name = "user1";
  c.state.status = "exited";
  c.volumes = {"x"};
  {
    auto lock = engine_->store().lock(FileLock::Mode::kExclusive);
    engine_->store().save_containers({c});
  }
  try {
    engine_->remove_volume("x", false);
    ADD_FAILURE() << "a volume in use was removed";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("user1"), std::string::npos) << m;
    EXPECT_NE(m.find("hutch rm user1"), std::string::npos) << m;
    EXPECT_NE(m.find("-f"), std::string::npos) << m;
  }
  std::uint64_t reclaimed = 1;
  EXPECT_EQ(engine_->prune_volumes(&reclaimed), std::vector<std::string>{"free"});
  EXPECT_EQ(reclaimed, 0u) << "an empty volume frees nothing";
  engine_->remove_volume("x", true);
  EXPECT_TRUE(engine_->list_volumes().empty());
  EXPECT_TRUE(engine_->list_containers().empty()) << "--force removed the container";
  try {
    engine_->remove_volume("x", false);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound);
    EXPECT_NE(std::string(e.what()).find("no such volume: x"), std::string::npos) << e.what();
  }
}

}  // namespace
