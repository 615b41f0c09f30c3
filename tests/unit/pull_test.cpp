// The engine's copy of an image from a source into the store (pull, load), against an
// in-memory source: platform choice, refusals, verification, and what a failure leaves.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <map>

#include "engine_fixture.hpp"
#include "hutch/digest.hpp"
#include "hutch/transport.hpp"

namespace hutch::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Blobs and manifests by digest; the top manifest by "".
class FakeSource final : public ImageSource {
 public:
  std::map<std::string, std::string> blobs;
  std::map<std::string, Manifest> manifests;
  std::set<std::string> fail_blobs;  // get_blob throws for these
  std::vector<std::string> fetched;

  std::string add_blob(const std::string& content) {
    std::string d = "sha256:" + sha256_hex(content);
    blobs[d] = content;
    return d;
  }
  Manifest get_manifest(const std::string& digest) override {
    auto it = manifests.find(digest);
    if (it == manifests.end()) throw Error(Errc::kNotFound, "no manifest " + digest);
    return it->second;
  }
  void get_blob(const BlobInfo& b, const fs::path& dest, const ProgressFn&) override {
    fetched.push_back(b.digest);
    if (fail_blobs.count(b.digest)) throw Error(Errc::kNetwork, "connection reset fetching " + b.digest);
    auto it = blobs.find(b.digest);
    if (it == blobs.end()) throw Error(Errc::kNotFound, "no blob " + b.digest);
    std::ofstream(dest, std::ios::binary) << it->second;
  }
};

class PullTest : public EngineTest {
 protected:
  // `copy` throws an Error with `code` whose message holds every needle.
  static ::testing::AssertionResult FailsWith(const std::function<void()>& copy, Errc code,
                                              const std::vector<std::string>& needles) {
    try {
      copy();
    } catch (const Error& e) {
      if (e.code() != code)
        return ::testing::AssertionFailure() << "error code " << static_cast<int>(e.code()) << ": " << e.what();
      for (const auto& n : needles)
        if (std::string(e.what()).find(n) == std::string::npos)
          return ::testing::AssertionFailure() << "\"" << n << "\" is not in: " << e.what();
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no error";
  }
  // A layer tar holding one file; returns {blob digest, diff id}.
  std::pair<std::string, std::string> layer(FakeSource& src, const std::string& file, const std::string& content) {
    auto tar = make_tar(tmp_.path(), file + ".tar", {{file, AE_IFREG, content}});
    std::string bytes = slurp(tar);
    std::string d = src.add_blob(bytes);
    return {d, d};
  }
  // An image manifest over `layers` ({blob, diff id}); returns the manifest bytes.
  std::string image(FakeSource& src, const std::vector<std::pair<std::string, std::string>>& layers,
                    const std::string& arch = "amd64", std::vector<std::string> diff_ids = {}) {
    json ls = json::array();
    if (diff_ids.empty())
      for (const auto& l : layers) diff_ids.push_back(l.second);
    for (const auto& l : layers)
      ls.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", l.first},
                    {"size", src.blobs[l.first].size()}});
    json config = {{"architecture", arch}, {"os", "linux"}, {"config", {{"Cmd", {"sh"}}}},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
    std::string ctext = config.dump();
    std::string cd = src.add_blob(ctext);
    json m = {{"schemaVersion", 2},
              {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
              {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cd}, {"size", ctext.size()}}},
              {"layers", ls}};
    return m.dump();
  }
  std::string set_top(FakeSource& src, const std::string& manifest, const std::string& type) {
    src.manifests[""] = {type, manifest};
    std::string d = "sha256:" + sha256_hex(manifest);
    src.manifests[d] = {type, manifest};
    return d;
  }
};

TEST_F(PullTest, AnImageWithTwoLayersIsStoredAndNamed) {
  FakeSource src;
  auto l1 = layer(src, "a", "one");
  auto l2 = layer(src, "b", "two");
  set_top(src, image(src, {l1, l2}), "application/vnd.oci.image.manifest.v1+json");
  ImageRecord rec = engine_->copy_into_store(src, "fake", {"example.com/x:1"}, {});
  EXPECT_EQ(rec.layers.size(), 2u);
  auto images = engine_->list_images();
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0].names, std::vector<std::string>{"example.com/x:1"});
  // A second copy fetches no layer again.
  src.fetched.clear();
  engine_->copy_into_store(src, "fake", {"example.com/x:2"}, {});
  for (const auto& f : src.fetched) EXPECT_NE(f, l1.first);
  EXPECT_EQ(engine_->list_images()[0].names.size(), 2u);
}

TEST_F(PullTest, AnIndexYieldsTheAskedPlatformAndListsTheOthersWhenMissing) {
  FakeSource src;
  auto l1 = layer(src, "a", "amd");
  std::string amd = image(src, {l1}, "amd64");
  std::string arm = image(src, {l1}, "arm64");
  std::string amd_d = set_top(src, amd, "application/vnd.oci.image.manifest.v1+json");
  std::string arm_d = set_top(src, arm, "application/vnd.oci.image.manifest.v1+json");
  auto entry = [](const std::string& d, size_t size, json platform) {
    json e = json::object();
    e["mediaType"] = "application/vnd.oci.image.manifest.v1+json";
    e["digest"] = d;
    e["size"] = size;
    e["platform"] = std::move(platform);
    return e;
  };
  json index = json::object();
  index["schemaVersion"] = 2;
  index["mediaType"] = "application/vnd.oci.image.index.v1+json";
  index["manifests"] = json::array({entry(amd_d, amd.size(), {{"os", "linux"}, {"architecture", "amd64"}}),
                                    entry(arm_d, arm.size(), {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}})});
  std::string index_d = set_top(src, index.dump(), "application/vnd.oci.image.index.v1+json");
  PullOptions o;
  o.arch = "arm64";
  ImageRecord rec = engine_->copy_into_store(src, "fake", {"example.com/multi:1"}, o);
  json inspect = engine_->inspect_image("example.com/multi:1");
  EXPECT_EQ(inspect["Architecture"], "arm64");
  EXPECT_EQ(rec.index_digests, std::vector<std::string>{index_d});
  o.arch = "riscv64";
  EXPECT_TRUE(FailsWith([&] { engine_->copy_into_store(src, "fake", {"example.com/multi:2"}, o); }, Errc::kNotFound,
                        {"linux/riscv64", "linux/amd64", "linux/arm64/v8"}));
}

TEST_F(PullTest, SchemaOneIsRefusedClearly) {
  FakeSource src;
  src.manifests[""] = {"application/vnd.docker.distribution.manifest.v1+prettyjws", R"({"schemaVersion":1,"fsLayers":[]})"};
  EXPECT_TRUE(FailsWith([&] { engine_->copy_into_store(src, "old", {"example.com/old:1"}, {}); }, Errc::kUnsupported,
                        {"schema 1"}));
}

TEST_F(PullTest, ALayerThatUnpacksToAnotherDiffIdIsRemovedAndTheImageNotListed) {
  FakeSource src;
  auto l1 = layer(src, "a", "good");
  set_top(src, image(src, {l1}, "amd64", {"sha256:" + std::string(64, 'e')}), "application/vnd.oci.image.manifest.v1+json");
  EXPECT_TRUE(FailsWith([&] { engine_->copy_into_store(src, "liar", {"example.com/liar:1"}, {}); }, Errc::kCorrupt,
                        {l1.first}));
  EXPECT_TRUE(engine_->list_images().empty());
  EXPECT_TRUE(engine_->storage().list_layers().empty());
}

TEST_F(PullTest, AFailedFetchLeavesNoImageButKeepsTheLayersMadeForTheNextPull) {
  FakeSource src;
  auto l1 = layer(src, "a", "first");
  auto l2 = layer(src, "b", "second");
  set_top(src, image(src, {l1, l2}), "application/vnd.oci.image.manifest.v1+json");
  src.fail_blobs.insert(l2.first);
  PullOptions one_at_a_time;
  one_at_a_time.parallel = 1;
  EXPECT_THROW(engine_->copy_into_store(src, "flaky", {"example.com/flaky:1"}, one_at_a_time), Error);
  EXPECT_TRUE(engine_->list_images().empty());
  src.fail_blobs.clear();
  src.fetched.clear();
  engine_->copy_into_store(src, "flaky", {"example.com/flaky:1"}, one_at_a_time);
  EXPECT_EQ(engine_->list_images().size(), 1u);
  for (const auto& f : src.fetched) EXPECT_NE(f, l1.first) << "the first layer was fetched again";
}

TEST_F(PullTest, AnArtifactIsNotAnImage) {
  FakeSource src;
  std::string cd = src.add_blob("{}");
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"config", {{"mediaType", "application/vnd.cncf.helm.config.v1+json"}, {"digest", cd}, {"size", 2}}},
            {"layers", json::array()}};
  set_top(src, m.dump(), "application/vnd.oci.image.manifest.v1+json");
  EXPECT_TRUE(FailsWith([&] { engine_->copy_into_store(src, "chart", {"example.com/chart:1"}, {}); }, Errc::kUnsupported,
                        {"helm"}));
}

TEST_F(PullTest, ImagePruneRemovesTheLayersAKilledPullLeft) {
  FakeSource src;
  auto l1 = layer(src, "a", "first");
  auto l2 = layer(src, "b", "second");
  set_top(src, image(src, {l1, l2}), "application/vnd.oci.image.manifest.v1+json");
  src.fail_blobs.insert(l2.first);
  PullOptions one_at_a_time;
  one_at_a_time.parallel = 1;
  EXPECT_THROW(engine_->copy_into_store(src, "flaky", {"example.com/flaky:1"}, one_at_a_time), Error);
  ASSERT_EQ(engine_->store().layers().size(), 1u) << "the first layer is kept for the next pull";
  PruneReport r = engine_->prune_images(false);
  EXPECT_TRUE(engine_->store().layers().empty());
  EXPECT_TRUE(engine_->storage().list_layers().empty());
  EXPECT_FALSE(engine_->store().has_blob(l1.first));
  ASSERT_EQ(r.images.size(), 1u);
  EXPECT_NE(r.images[0].find("no image uses it"), std::string::npos) << r.images[0];
}

TEST_F(PullTest, AHugeConfigIsRefusedBeforeItIsFetched) {
  FakeSource src;
  std::string cd = "sha256:" + std::string(64, 'c');
  json m = {{"schemaVersion", 2},
            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
            {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cd}, {"size", 1LL << 34}}},
            {"layers", json::array()}};
  set_top(src, m.dump(), "application/vnd.oci.image.manifest.v1+json");
  EXPECT_THROW(engine_->copy_into_store(src, "huge", {"example.com/huge:1"}, {}), Error);
  EXPECT_TRUE(src.fetched.empty()) << "nothing was fetched";
}

}  // namespace
}  // namespace hutch::test
