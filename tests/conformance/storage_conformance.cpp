// What every storage driver must do, run against each storage plugin through the real loader.
#include <gtest/gtest.h>

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

INSTANTIATE_TEST_SUITE_P(Plugins, StorageConformance, ::testing::Values("vfs"));

}  // namespace
