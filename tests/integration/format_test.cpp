// --format of inspect, ps and images: the Go templates docker users script with, through the
// real binary. (volume ls --format: volume_test.cpp.)
#include "harness.hpp"

namespace hit {
namespace {

using nlohmann::json;

class FormatTest : public ImageTest {
 protected:
  void SetUp() override {
    ImageTest::SetUp();
    if (HasFatalFailure()) return;
    // Its exit code is not what these tests look at.
    hutch({"run", "--name", "keeper", "-v", "data:/data", "bb", "sh", "-c", "exit 0"});
    Result id = hutch({"ps", "-aq", "--no-trunc"});
    ASSERT_OK(id);
    ASSERT_EQ(lines(id.out).size(), 1u) << id;
    cid_ = trim(id.out);
  }
  std::string cid_;
};

TEST_F(FormatTest, InspectTakesAGoTemplateForEachItem) {
  Result id = hutch({"inspect", "-f", "{{.Id}}", "keeper", "bb"});
  ASSERT_OK(id);
  EXPECT_EQ(id.out, cid_ + "\n" + id_ + "\n") << "one line for each";
  Result f = hutch({"inspect", "--format",
                    "{{.Name}} {{.Path}} {{len .Args}} {{join .Args \",\"}} {{range .Mounts}}{{.Destination}}{{end}}",
                    "keeper"});
  ASSERT_OK(f);
  EXPECT_EQ(f.out, "keeper sh 2 -c,exit 0 /data\n");
  Result all = hutch({"inspect", "bb"});
  ASSERT_OK(all);
  Result one = hutch({"inspect", "-f", "{{json .}}", "bb"});
  ASSERT_OK(one);
  EXPECT_EQ(json::parse(one.out, nullptr, false), json::parse(all.out, nullptr, false)[0]) << one;
  Result logic = hutch({"inspect", "-f", "{{if .State.Running}}up{{else}}down{{end}} {{.Nope}} {{index .RepoTags 0}}", "bb"});
  ASSERT_OK(logic);
  EXPECT_EQ(logic.out, "down <no value> localhost/bb:latest\n") << "an image has no State: no value";
  EXPECT_TRUE(EngineError(hutch({"inspect", "-f", "{{foo}}", "bb"}), {"--format", "function \"foo\" not defined"}));
  EXPECT_TRUE(EngineError(hutch({"inspect", "-f", "{{index .RepoTags 5}}", "bb"}), {"--format", "index out of range: 5"}));
}

TEST_F(FormatTest, PsFormatsRowsAsDocker) {
  Result t = hutch({"ps", "-a", "--format", "{{.ID}}\\t{{.Names}}\\t{{.Image}}\\t{{.Mounts}}"});
  ASSERT_OK(t);
  EXPECT_EQ(t.out, cid_.substr(0, 12) + "\tkeeper\tlocalhost/bb:latest\tdata\n");
  Result table = hutch({"ps", "-a", "--format", "table {{.ID}}\\t{{.Names}}"});
  ASSERT_OK(table);
  auto tl = lines(table.out);
  ASSERT_EQ(tl.size(), 2u) << table;
  EXPECT_EQ(split_columns(tl[0]), (std::vector<std::string>{"CONTAINER ID", "NAMES"})) << table;
  EXPECT_EQ(split_columns(tl[1]), (std::vector<std::string>{cid_.substr(0, 12), "keeper"})) << table;
  Result j = hutch({"ps", "-a", "--format", "json"});
  ASSERT_OK(j);
  ASSERT_EQ(lines(j.out).size(), 1u) << j;
  json row = json::parse(j.out, nullptr, false);
  EXPECT_EQ(row["Names"], "keeper") << j;
  EXPECT_EQ(row["ID"], cid_.substr(0, 12)) << j;
  Result label = hutch({"ps", "-a", "--format", "[{{.Label \"app\"}}]"});
  ASSERT_OK(label);
  EXPECT_EQ(label.out, "[]\n");
  EXPECT_TRUE(EngineError(hutch({"ps", "-a", "--format", "{{.Nope}}"}), {"--format", "Nope", "Names"}));
}

TEST_F(FormatTest, ImagesFormatsRowsAsDocker) {
  ASSERT_OK(hutch({"tag", "bb", "bb:v2"}));
  Result t = hutch({"images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"});
  ASSERT_OK(t);
  EXPECT_EQ(t.out, "localhost/bb:latest " + id_.substr(0, 12) + "\nlocalhost/bb:v2 " + id_.substr(0, 12) + "\n");
  Result j = hutch({"images", "--format", "json"});
  ASSERT_OK(j);
  auto jl = lines(j.out);
  ASSERT_EQ(jl.size(), 2u) << j;
  EXPECT_EQ(json::parse(jl[1], nullptr, false)["Tag"], "v2") << j;
  Result table = hutch({"images", "--format", "table {{.Repository}}\\t{{.Tag}}"});
  ASSERT_OK(table);
  EXPECT_EQ(split_columns(lines(table.out)[0]), (std::vector<std::string>{"REPOSITORY", "TAG"})) << table;
}

}  // namespace
}  // namespace hit
