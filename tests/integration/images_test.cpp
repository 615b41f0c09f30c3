// import, images, tag, rmi, inspect.
#include <sys/utsname.h>

#include <regex>
#include <set>

#include "harness.hpp"
#include "registry_fixture.hpp"

namespace hit {
namespace {


class ImportTest : public HutchTest {
 protected:
  // Runs a refused import: one-line error (with `needles`), no image, no new blob file.
  void expect_refused_and_nothing_written(const std::vector<std::string>& import_args,
                                          const std::vector<std::string>& needles = {}) {
    auto before = blob_files();
    std::vector<std::string> args{"import"};
    args.insert(args.end(), import_args.begin(), import_args.end());
    EXPECT_TRUE(OneLineError(hutch(args), needles));
    Result q = hutch({"images", "-q"});
    ASSERT_OK(q);
    EXPECT_EQ(trim(q.out), "") << q;
    EXPECT_EQ(blob_files(), before) << "a refused import left files under ROOT/blobs";
  }
};

TEST_F(ImportTest, PrintsImageIdAndListsImage) {
  Result r = hutch({"import", suite().tar, "bb"});
  ASSERT_OK(r);
  auto out = lines(r.out);
  ASSERT_EQ(out.size(), 1u) << r;
  ASSERT_TRUE(std::regex_match(out[0], std::regex("sha256:[0-9a-f]{64}"))) << r;
  std::string id = out[0].substr(7);

  Result q = hutch({"images", "-q"});
  ASSERT_OK(q);
  EXPECT_EQ(lines(q.out), std::vector<std::string>{id.substr(0, 12)}) << q;

  Result full = hutch({"images", "-q", "--no-trunc"});
  ASSERT_OK(full);
  auto fl = lines(full.out);
  ASSERT_EQ(fl.size(), 1u) << full;
  EXPECT_EQ(strip_sha(fl[0]), id) << full;
}

TEST_F(ImportTest, LayerDiffIdIsTheTarballDigest) {
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  nlohmann::json j = inspect_one("bb");
  ASSERT_TRUE(j.is_object());
  ASSERT_TRUE(j["RootFS"].is_object()) << j.dump(2);
  EXPECT_EQ(j["RootFS"]["Type"], "layers") << j.dump(2);
  ASSERT_TRUE(j["RootFS"]["Layers"].is_array()) << j.dump(2);
  ASSERT_EQ(j["RootFS"]["Layers"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["RootFS"]["Layers"][0], suite().tar_sha256) << "the diff ID of an imported layer is the sha256 of the uncompressed tar";
}

TEST_F(ImportTest, FromStdin) {
  Options o;
  o.input = read_file(suite().tar);
  ASSERT_GT(o.input->size(), 100000u);
  Result r = hutch({"import", "-", "fromstdin:v1"}, o);
  ASSERT_OK(r);
  std::string id = trim(r.out);
  ASSERT_TRUE(std::regex_match(id, std::regex("sha256:[0-9a-f]{64}"))) << r;
  nlohmann::json j = inspect_one("fromstdin:v1");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["Id"], id.substr(7));
  EXPECT_EQ(j["RootFS"]["Layers"][0], suite().tar_sha256);
  Result run = hutch({"run", "--rm", "fromstdin:v1", "echo", "stdin-image-runs"});
  EXPECT_OK(run);
  EXPECT_EQ(run.out, "stdin-image-runs\n") << run;
}

class CompressedImportTest : public HutchTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(CompressedImportTest, ImportsAndRuns) {
  const Suite& s = suite();
  std::string file = GetParam() == "gzip" ? s.tar_gz : GetParam() == "xz" ? s.tar_xz : s.tar_zst;
  ASSERT_FALSE(file.empty()) << "could not make the " << GetParam()
                             << "-compressed tarball (are gzip, xz and zstd installed? scripts/test.sh installs them)";
  std::string id = import_busybox("packed", file);
  ASSERT_FALSE(id.empty());
  nlohmann::json j = inspect_one("packed");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["RootFS"]["Layers"][0], s.tar_sha256) << "diff ID = sha256 of the decompressed tar";
  Result r = hutch({"run", "--rm", "packed", "cat", "/etc/passwd"});
  EXPECT_OK(r);
  EXPECT_TRUE(contains(r.out, "app:x:1000:1000:")) << r;
}

INSTANTIATE_TEST_SUITE_P(Formats, CompressedImportTest, ::testing::Values("gzip", "xz", "zstd"),
                         [](const auto& info) { return info.param; });

TEST_F(ImportTest, NotATarIsRejectedAndNothingIsWritten) {
  std::string bad = path("notatar.txt");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "this is not a tar archive, line " + std::to_string(i) + "\n";
  write_file(bad, text);
  expect_refused_and_nothing_written({bad, "bad"});
}

TEST_F(ImportTest, GzipOfNotATarIsRejected) {
  std::string plain = path("plain.txt");
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "plain text, not a tar: " + std::to_string(i) + "\n";
  write_file(plain, text);
  Result gz = run({"/bin/sh", "-c", "gzip -n -c \"$1\" > \"$1.gz\"", "sh", plain});
  ASSERT_OK(gz);
  expect_refused_and_nothing_written({plain + ".gz", "bad"});
}

TEST_F(ImportTest, TruncatedGzipIsRejectedAndNothingIsWritten) {
  ASSERT_FALSE(suite().tar_gz.empty()) << "gzip is missing";
  std::string full = read_file(suite().tar_gz);
  std::string cut = path("cut.tar.gz");
  write_file(cut, full.substr(0, full.size() / 2));
  expect_refused_and_nothing_written({cut, "cut"});
  // The store still works afterwards.
  EXPECT_FALSE(import_busybox("bb").empty());
}

// A tar whose symlink leads outside, with a file "inside" that symlink: refused, nothing
// written outside, nothing left in the store.
TEST_F(ImportTest, SymlinkEscapeIsRefusedAndNothingIsWritten) {
  std::string outside = path("outside");
  fs::create_directories(outside);
  std::string a = path("a"), b = path("b");
  fs::create_directories(a);
  fs::create_directories(b + "/link");
  fs::create_symlink(outside, a + "/link");
  write_file(b + "/link/evil", "pwned\n");
  std::string tarball = path("evil.tar");
  ASSERT_EQ(run({"tar", "--numeric-owner", "--owner=0", "--group=0", "-C", a, "-cf", tarball, "link"}).code, 0);
  ASSERT_EQ(run({"tar", "--numeric-owner", "--owner=0", "--group=0", "-C", b, "-rf", tarball, "link/evil"}).code, 0);
  expect_refused_and_nothing_written({tarball, "evil"}, {"link/evil"});
  EXPECT_FALSE(fs::exists(outside + "/evil")) << "the layer wrote outside its root";
  EXPECT_FALSE(import_busybox("bb").empty());
}

TEST_F(ImportTest, MissingFileIsRejected) {
  EXPECT_TRUE(OneLineError(hutch({"import", path("does-not-exist.tar"), "x"})));
  Result q = hutch({"images", "-q"});
  EXPECT_EQ(trim(q.out), "") << q;
}

TEST_F(ImportTest, NamesResolve) {
  std::string id = import_busybox("bb:1.0");
  ASSERT_FALSE(id.empty());
  for (const std::string& ref : std::vector<std::string>{"bb:1.0", "localhost/bb:1.0", id, id.substr(0, 12), id.substr(0, 3)}) {
    nlohmann::json j = inspect_one(ref);
    ASSERT_TRUE(j.is_object()) << "ref " << ref;
    EXPECT_EQ(j["Id"], id) << "ref " << ref;
  }
  nlohmann::json j = inspect_one("bb:1.0");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["RepoTags"], nlohmann::json::array({"localhost/bb:1.0"}));
  // bb means bb:latest, which does not exist; a 2-char prefix is too short.
  EXPECT_TRUE(OneLineError(hutch({"inspect", "bb"}), {"no such image"}));
  EXPECT_TRUE(OneLineError(hutch({"inspect", id.substr(0, 2)}), {"no such image"}));
}

TEST_F(ImportTest, DefaultTagIsLatest) {
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  for (const std::string ref : {"bb", "bb:latest", "localhost/bb", "localhost/bb:latest"}) {
    nlohmann::json j = inspect_one(ref);
    ASSERT_TRUE(j.is_object()) << "ref " << ref;
    EXPECT_EQ(j["Id"], id) << "ref " << ref;
  }
}

using InspectTest = HutchTest;

TEST_F(InspectTest, Fields) {
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  Result r = hutch({"inspect", "bb"});
  ASSERT_OK(r);
  nlohmann::json arr = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(arr.is_array()) << "stdout must be only a JSON array" << r;
  ASSERT_EQ(arr.size(), 1u);
  const auto& j = arr[0];
  EXPECT_EQ(j["Id"], id);
  EXPECT_EQ(j["RepoTags"], nlohmann::json::array({"localhost/bb:latest"}));
  ASSERT_TRUE(j["Created"].is_string()) << j.dump(2);
  EXPECT_TRUE(std::regex_search(j["Created"].get<std::string>(), std::regex("^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}")))
      << j["Created"];
  EXPECT_EQ(j["Architecture"], host_oci_arch());
  EXPECT_EQ(j["Os"], "linux");
  ASSERT_TRUE(j["Size"].is_number_integer()) << j.dump(2);
  EXPECT_GE(j["Size"].get<long long>(), static_cast<long long>(suite().busybox_size))
      << "Size must count the uncompressed layer, at least the busybox binary";
  ASSERT_TRUE(j["Config"].is_object()) << j.dump(2);
  for (const char* k : {"Env", "Cmd", "Entrypoint", "WorkingDir", "User"})
    EXPECT_TRUE(j["Config"].contains(k)) << "Config lacks " << k << ": " << j.dump(2);
  ASSERT_TRUE(j["RootFS"].is_object());
  EXPECT_EQ(j["RootFS"]["Type"], "layers");
  ASSERT_TRUE(j["RootFS"]["Layers"].is_array());
  for (const auto& l : j["RootFS"]["Layers"])
    EXPECT_TRUE(l.is_string() && std::regex_match(l.get<std::string>(), std::regex("sha256:[0-9a-f]{64}"))) << l;
}

TEST_F(InspectTest, SeveralImages) {
  std::string a = import_busybox("aa");
  std::string b = import_busybox("bb");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  Result r = hutch({"inspect", "aa", "bb"});
  ASSERT_OK(r);
  nlohmann::json arr = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(arr.is_array() && arr.size() == 2) << r;
  EXPECT_EQ(arr[0]["Id"], a);
  EXPECT_EQ(arr[1]["Id"], b);
}

TEST_F(InspectTest, UnknownImage) {
  Result r = hutch({"inspect", "nosuchimage"});
  EXPECT_TRUE(OneLineError(r, {"no such image"}));
  EXPECT_EQ(trim(r.out).find_first_not_of("[]"), std::string::npos) << "nothing but at most an empty array on stdout" << r;
  ASSERT_FALSE(import_busybox("bb").empty());
  EXPECT_EQ(hutch({"inspect", "bb", "nosuchimage"}).code, 125);
}

using ImagesTest = HutchTest;

TEST_F(ImagesTest, TableColumns) {
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  Result r = hutch({"images"});
  ASSERT_OK(r);
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 2u) << r;
  EXPECT_EQ(split_columns(ls[0]), (std::vector<std::string>{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}))
      << "header, columns separated by at least two spaces" << r;
  auto row = split_columns(ls[1]);
  ASSERT_EQ(row.size(), 5u) << "row, columns separated by at least two spaces" << r;
  EXPECT_EQ(row[0], "localhost/bb");
  EXPECT_EQ(row[1], "latest");
  EXPECT_EQ(row[2], id.substr(0, 12));
  EXPECT_FALSE(row[3].empty());
  EXPECT_TRUE(std::regex_search(row[4], std::regex("[0-9]"))) << row[4];

  Result nt = hutch({"images", "--no-trunc"});
  ASSERT_OK(nt);
  auto nls = lines(nt.out);
  ASSERT_EQ(nls.size(), 2u) << nt;
  auto nrow = split_columns(nls[1]);
  ASSERT_GE(nrow.size(), 3u) << nt;
  EXPECT_EQ(strip_sha(nrow[2]), id) << nt;
}

TEST_F(ImagesTest, EmptyStoreShowsHeaderOnly) {
  Result r = hutch({"images"});
  ASSERT_OK(r);
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 1u) << r;
  EXPECT_EQ(split_columns(ls[0]), (std::vector<std::string>{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}));
  Result q = hutch({"images", "-q"});
  ASSERT_OK(q);
  EXPECT_EQ(q.out, "") << q;
}

TEST_F(ImagesTest, TwoImages) {
  std::string a = import_busybox("aa");
  std::string b = import_busybox("bb");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  Result q = hutch({"images", "-q"});
  ASSERT_OK(q);
  auto got = lines(q.out);
  std::set<std::string> ids(got.begin(), got.end());
  EXPECT_EQ(ids, (std::set<std::string>{a.substr(0, 12), b.substr(0, 12)})) << q;
}

using TagTest = HutchTest;

TEST_F(TagTest, TagAndUntag) {
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  Result t = hutch({"tag", "bb", "bb:v2"});
  ASSERT_OK(t);
  ASSERT_OK(hutch({"tag", id.substr(0, 12), "other:x"}));
  ASSERT_OK(hutch({"tag", "bb", "example.com/team/tool:1"}));
  nlohmann::json j = inspect_one("bb:v2");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["Id"], id);
  std::set<std::string> tags;
  for (const auto& tg : j["RepoTags"]) tags.insert(tg.get<std::string>());
  EXPECT_EQ(tags, (std::set<std::string>{"localhost/bb:latest", "localhost/bb:v2", "localhost/other:x",
                                         "example.com/team/tool:1"}))
      << j.dump(2);
  EXPECT_EQ(inspect_one("example.com/team/tool:1")["Id"], id);

  Result imgs = hutch({"images"});
  ASSERT_OK(imgs);
  std::set<std::pair<std::string, std::string>> rows;
  for (const auto& l : lines(imgs.out)) {
    auto c = split_columns(l);
    if (c.size() >= 3 && c[0] != "REPOSITORY") {
      rows.insert({c[0], c[1]});
      EXPECT_EQ(c[2], id.substr(0, 12)) << imgs;
    }
  }
  EXPECT_EQ(rows, (std::set<std::pair<std::string, std::string>>{
                      {"localhost/bb", "latest"}, {"localhost/bb", "v2"}, {"localhost/other", "x"},
                      {"example.com/team/tool", "1"}}))
      << imgs;

  // Removing one tag of several only untags.
  Result u = hutch({"rmi", "bb:v2"});
  ASSERT_OK(u);
  EXPECT_EQ(lines(u.out), std::vector<std::string>{"Untagged: localhost/bb:v2"}) << u;
  EXPECT_TRUE(OneLineError(hutch({"inspect", "bb:v2"}), {"no such image"}));
  EXPECT_EQ(inspect_one("bb")["Id"], id);
}

TEST_F(TagTest, UnknownSource) {
  EXPECT_TRUE(OneLineError(hutch({"tag", "nosuch", "x:y"}), {"no such image"}));
}

using RmiTest = HutchTest;

TEST_F(RmiTest, LastTagDeletes) {
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  Result r = hutch({"rmi", "bb"});
  ASSERT_OK(r);
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 2u) << r;
  EXPECT_EQ(ls[0], "Untagged: localhost/bb:latest") << r;
  ASSERT_EQ(ls[1].rfind("Deleted: ", 0), 0u) << r;
  EXPECT_EQ(strip_sha(ls[1].substr(9)), id) << r;
  Result q = hutch({"images", "-q"});
  ASSERT_OK(q);
  EXPECT_EQ(q.out, "") << q;
  EXPECT_TRUE(OneLineError(hutch({"inspect", id}), {"no such image"}));
}

TEST_F(RmiTest, SeveralAtOnce) {
  ASSERT_FALSE(import_busybox("aa").empty());
  ASSERT_FALSE(import_busybox("bb").empty());
  Result r = hutch({"rmi", "aa", "bb"});
  ASSERT_OK(r);
  EXPECT_EQ(lines(r.out).size(), 4u) << r;
  EXPECT_EQ(hutch({"images", "-q"}).out, "");
}

TEST_F(RmiTest, ForceByIdRemovesAllTags) {
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  ASSERT_OK(hutch({"tag", "bb", "bb:two"}));
  Result r = hutch({"rmi", "-f", id});
  ASSERT_OK(r);
  auto ls = lines(r.out);
  std::set<std::string> got(ls.begin(), ls.end());
  EXPECT_TRUE(got.count("Untagged: localhost/bb:latest")) << r;
  EXPECT_TRUE(got.count("Untagged: localhost/bb:two")) << r;
  ASSERT_FALSE(ls.empty());
  ASSERT_EQ(ls.back().rfind("Deleted: ", 0), 0u) << r;
  EXPECT_EQ(strip_sha(ls.back().substr(9)), id);
  EXPECT_EQ(hutch({"images", "-q"}).out, "");
}

TEST_F(RmiTest, InUseNeedsForce) {
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  ASSERT_OK(hutch({"run", "bb", "true"}));  // kept: no --rm
  Result r = hutch({"rmi", "bb"});
  EXPECT_TRUE(OneLineError(r)) << "an image used by a container is not removed without -f";
  EXPECT_EQ(lines(hutch({"images", "-q"}).out), std::vector<std::string>{id.substr(0, 12)});
  Result f = hutch({"rmi", "-f", "bb"});
  EXPECT_OK(f);
  EXPECT_EQ(hutch({"images", "-q"}).out, "");
}

TEST_F(RmiTest, UnknownImage) {
  EXPECT_TRUE(OneLineError(hutch({"rmi", "nosuchimage"}), {"no such image"}));
}

}  // namespace
}  // namespace hit
