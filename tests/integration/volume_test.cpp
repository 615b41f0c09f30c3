// Named volumes: volume create, ls, inspect, rm, prune, their errors, and what system df and
// system prune do with them; then (VolumeRunTest.*) `run -v NAME:/path`.
//
// Until `run` takes -v, a container "uses" a volume because the test writes the volume's name
// into its record in containers.json (the store's owner is the caller in every mode, so the
// test can). That is exactly what run will record; VolumeRunTest.* does it for real.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "harness.hpp"

namespace hit {
namespace {

using nlohmann::json;


// The lines of a section ("Deleted Volumes:") up to the next blank line.
std::vector<std::string> section(const std::string& out, const std::string& title) {
  std::vector<std::string> got;
  auto ls = raw_lines(out);
  for (size_t i = 0; i < ls.size(); ++i) {
    if (!contains(ls[i], title)) continue;
    for (size_t k = i + 1; k < ls.size() && !trim(ls[k]).empty(); ++k) got.push_back(trim(ls[k]));
    break;
  }
  return got;
}

std::string total_line(const std::string& out) {
  for (const auto& l : raw_lines(out))
    if (auto at = l.find("Total reclaimed space: "); at != std::string::npos) return l.substr(at);
  return "";
}

// A size as docker prints it ("52.43MB", "4.096kB", "0B") in bytes, -1 for anything else.
double parse_size(const std::string& s) {
  static const std::regex re("^([0-9]+(\\.[0-9]+)?)(B|kB|MB|GB|TB)$");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return -1;
  std::string u = m[3].str();
  double mult = u == "B" ? 1 : u == "kB" ? 1e3 : u == "MB" ? 1e6 : u == "GB" ? 1e9 : 1e12;
  return std::stod(m[1].str()) * mult;
}

class VolumeTest : public HutchTest {
 protected:
  // `volume ls -q`, one name a line.
  std::vector<std::string> names(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> a = {"volume", "ls", "-q"};
    a.insert(a.end(), extra.begin(), extra.end());
    Result r = hutch(a);
    EXPECT_OK(r);
    return lines(r.out);
  }
  json inspect(const std::string& name) {
    Result r = hutch({"volume", "inspect", name});
    EXPECT_OK(r);
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_array() || j.size() != 1 || !j[0].is_object()) {
      ADD_FAILURE() << "volume inspect " << name << " must print a JSON array of one object" << r;
      return json::object();
    }
    return j[0];
  }
  std::string mountpoint(const std::string& name) { return inspect(name).value("Mountpoint", ""); }
  void create(const std::string& name) { ASSERT_OK(hutch({"volume", "create", name})); }
  // A file of `bytes` bytes in the volume (the test owns the store: its namespace's root is the caller).
  void fill(const std::string& name, const std::string& file, size_t bytes) {
    std::string mp = mountpoint(name);
    ASSERT_FALSE(mp.empty());
    std::ofstream(mp + "/" + file) << std::string(bytes, 'x');
    ASSERT_EQ(fs::file_size(mp + "/" + file), bytes);
  }
  // Records that container `container` mounts `volume` (as run -v will).
  void mark_uses(const std::string& container, const std::string& volume) {
    std::string file = root_ + "/containers.json";
    json all = json::parse(read_file(file), nullptr, false);
    ASSERT_TRUE(all.is_array()) << file;
    bool found = false;
    for (auto& c : all)
      if (c.value("name", "") == container) {
        c["volumes"].push_back(volume);
        found = true;
      }
    ASSERT_TRUE(found) << "no container " << container << " in " << file;
    write_file(file + ".tmp-test", all.dump());
    fs::rename(file + ".tmp-test", file);
  }
  // system df's rows: TYPE -> {TOTAL, ACTIVE, SIZE, RECLAIMABLE}.
  std::map<std::string, std::vector<std::string>> df() {
    Result r = hutch({"system", "df"});
    EXPECT_OK(r);
    std::map<std::string, std::vector<std::string>> rows;
    auto ls = lines(r.out);
    for (size_t i = 1; i < ls.size(); ++i) {
      auto c = split_columns(ls[i]);
      if (!c.empty()) rows[c[0]] = std::vector<std::string>(c.begin() + 1, c.end());
    }
    EXPECT_EQ(rows.count("Local Volumes"), 1u) << r;
    return rows;
  }
};

class VolumeInUseTest : public VolumeTest {
 protected:
  void SetUp() override {
    VolumeTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_FALSE(import_busybox("bb").empty());
  }
};

TEST_F(VolumeTest, CreatePrintsTheNameAndLsListsItAsDockerDoes) {
  Result r = hutch({"volume", "create", "data"});
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "data\n");
  Result ls = hutch({"volume", "ls"});
  ASSERT_OK(ls);
  auto l = lines(ls.out);
  ASSERT_EQ(l.size(), 2u) << ls;
  EXPECT_EQ(l[0], "DRIVER    VOLUME NAME") << ls;
  EXPECT_EQ(split_columns(l[1]), (std::vector<std::string>{"local", "data"})) << ls;
  EXPECT_EQ(names(), std::vector<std::string>{"data"});
  Result list = hutch({"volume", "list", "-q"});
  EXPECT_OK(list);
  EXPECT_EQ(list.out, "data\n") << "list is ls";
  Result empty = hutch({"volume", "rm", "data"});
  ASSERT_OK(empty);
  Result none = hutch({"volume", "ls"});
  ASSERT_OK(none);
  EXPECT_EQ(none.out, "DRIVER    VOLUME NAME\n") << "an empty list is the header alone" << none;
}

TEST_F(VolumeTest, CreateWithoutANameMakesARandomOne) {
  Result a = hutch({"volume", "create"});
  Result b = hutch({"volume", "create"});
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_TRUE(is_hex(trim(a.out), 64)) << a;
  EXPECT_NE(a.out, b.out);
  EXPECT_EQ(names().size(), 2u);
}

TEST_F(VolumeTest, BadNamesAreRefusedSayingWhatIsAllowed) {
  for (const char* bad : {"-x", ".hidden", "_x", "a/b", "a b", "a:b", "../up"}) {
    Result r = hutch({"volume", "create", "--", bad});
    EXPECT_TRUE(OneLineError(r, {"invalid volume name", bad, "[a-zA-Z0-9][a-zA-Z0-9_.-]*"})) << bad;
  }
  EXPECT_TRUE(names().empty());
  for (const char* good : {"a", "9lives", "my_vol.v1-2"}) EXPECT_OK(hutch({"volume", "create", good})) << good;
  EXPECT_EQ(names(), (std::vector<std::string>{"9lives", "a", "my_vol.v1-2"}));
}

TEST_F(VolumeTest, ADuplicateNameIsAnErrorUnlessIgnore) {
  ASSERT_OK(hutch({"volume", "create", "--label", "k=1", "data"}));
  EXPECT_TRUE(OneLineError(hutch({"volume", "create", "data"}), {"volume data already exists", "--ignore"}));
  Result again = hutch({"volume", "create", "--ignore", "--label", "k=2", "data"});
  ASSERT_OK(again);
  EXPECT_EQ(again.out, "data\n");
  EXPECT_EQ(inspect("data")["Labels"], json({{"k", "1"}})) << "--ignore changes nothing";
  EXPECT_EQ(names(), std::vector<std::string>{"data"});
}

TEST_F(VolumeTest, InspectPrintsAJsonArrayAsPodmanDoes) {
  ASSERT_OK(hutch({"volume", "create", "--label", "env=prod", "-l", "flag", "-o", "type=none", "--opt", "o=bind", "a"}));
  create("b");
  Result r = hutch({"volume", "inspect", "a", "b"});
  ASSERT_OK(r);
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << r;
  ASSERT_EQ(j.size(), 2u) << r;
  const json& a = j[0];
  EXPECT_EQ(a["Name"], "a");
  EXPECT_EQ(a["Driver"], "local");
  EXPECT_EQ(a["Scope"], "local");
  EXPECT_EQ(a["Labels"], json({{"env", "prod"}, {"flag", ""}}));
  EXPECT_EQ(a["Options"], json({{"type", "none"}, {"o", "bind"}}));
  EXPECT_TRUE(std::regex_match(a.value("CreatedAt", ""), std::regex("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d.*Z$"))) << a;
  std::string mp = a.value("Mountpoint", "");
  EXPECT_EQ(mp, root_ + "/volumes/a/_data");
  struct stat st;
  ASSERT_EQ(::stat(mp.c_str(), &st), 0) << mp;
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_uid, suite().uid) << "_data belongs to the namespace's root, the caller";
  EXPECT_EQ(j[1]["Name"], "b");
  EXPECT_EQ(j[1]["Labels"], json::object());
  Result f = hutch({"volume", "inspect", "--format", "{{.Name}}={{.Mountpoint}}", "a"});
  ASSERT_OK(f);
  EXPECT_EQ(f.out, "a=" + mp + "\n");
  EXPECT_TRUE(OneLineError(hutch({"volume", "inspect", "nope"}), {"no such volume: nope"}));
  Result partly = hutch({"volume", "inspect", "a", "nope"});
  EXPECT_TRUE(OneLineError(partly, {"no such volume: nope"}));
  EXPECT_TRUE(contains(partly.out, "\"a\"")) << "the volumes found are still printed" << partly;
}

TEST_F(VolumeTest, LsFiltersByNameLabelAndDangling) {
  ASSERT_OK(hutch({"volume", "create", "--label", "env=prod", "app-a"}));
  ASSERT_OK(hutch({"volume", "create", "--label", "env=dev", "--label", "tier=web", "app-b"}));
  ASSERT_OK(hutch({"volume", "create", "--label", "tier=db", "other"}));
  using V = std::vector<std::string>;
  EXPECT_EQ(names({"--filter", "name=app"}), (V{"app-a", "app-b"}));
  EXPECT_EQ(names({"--filter", "name=^other$"}), V{"other"});
  EXPECT_EQ(names({"--filter", "name=other", "--filter", "name=app-a"}), (V{"app-a", "other"})) << "names: any of them";
  EXPECT_EQ(names({"--filter", "label=env"}), (V{"app-a", "app-b"}));
  EXPECT_EQ(names({"-f", "label=env=prod"}), V{"app-a"});
  EXPECT_EQ(names({"-f", "label=env", "-f", "label=tier"}), V{"app-b"}) << "labels: all of them";
  EXPECT_EQ(names({"-f", "label=tier=db", "-f", "name=app"}), V{});
  EXPECT_EQ(names({"-f", "dangling=true"}), (V{"app-a", "app-b", "other"})) << "no container uses any";
  EXPECT_EQ(names({"-f", "dangling=false"}), V{});
  EXPECT_EQ(names({"-f", "driver=local", "-f", "name=other"}), V{"other"});
  EXPECT_TRUE(EngineError(hutch({"volume", "ls", "-f", "colour=red"}), {"colour", "name", "label", "dangling"}));
  EXPECT_TRUE(EngineError(hutch({"volume", "ls", "-f", "dangling=maybe"}), {"dangling"}));
}

TEST_F(VolumeTest, LsFormatsJsonAndGoTemplates) {
  ASSERT_OK(hutch({"volume", "create", "--label", "env=prod", "a"}));
  create("b");
  Result j = hutch({"volume", "ls", "--format", "json"});
  ASSERT_OK(j);
  auto ls = lines(j.out);
  ASSERT_EQ(ls.size(), 2u) << "json: one object a line, as docker" << j;
  json a = json::parse(ls[0], nullptr, false);
  ASSERT_TRUE(a.is_object()) << j;
  EXPECT_EQ(a["Name"], "a");
  EXPECT_EQ(a["Driver"], "local");
  EXPECT_EQ(a["Mountpoint"], root_ + "/volumes/a/_data");
  EXPECT_EQ(a["Labels"], json({{"env", "prod"}}));
  EXPECT_EQ(json::parse(ls[1], nullptr, false)["Name"], "b");
  Result jt = hutch({"volume", "ls", "--format", "{{json .}}"});
  ASSERT_OK(jt);
  EXPECT_EQ(jt.out, j.out) << "{{json .}} is json";

  Result t = hutch({"volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Mountpoint}}"});
  ASSERT_OK(t);
  EXPECT_EQ(t.out, "a local " + root_ + "/volumes/a/_data\nb local " + root_ + "/volumes/b/_data\n");
  Result lab = hutch({"volume", "ls", "--format", "{{.Name}}:{{.Labels}}:{{.Label \"env\"}}"});
  ASSERT_OK(lab);
  EXPECT_EQ(lab.out, "a:env=prod:prod\nb::\n");
  Result tab = hutch({"volume", "ls", "--format", "{{.Name}}\\t{{.Driver}}"});
  ASSERT_OK(tab);
  EXPECT_EQ(tab.out, "a\tlocal\nb\tlocal\n") << "\\t is a tab, as in docker";
  Result table = hutch({"volume", "ls", "--format", "table {{.Name}}\\t{{.Mountpoint}}"});
  ASSERT_OK(table);
  auto tl = lines(table.out);
  ASSERT_EQ(tl.size(), 3u) << table;
  EXPECT_EQ(split_columns(tl[0]), (std::vector<std::string>{"VOLUME NAME", "MOUNTPOINT"})) << table;
  EXPECT_EQ(split_columns(tl[2]), (std::vector<std::string>{"b", root_ + "/volumes/b/_data"})) << table;
  EXPECT_TRUE(EngineError(hutch({"volume", "ls", "--format", "{{.Nope}}"}), {"--format", "Nope", "Name"}));
  EXPECT_TRUE(EngineError(hutch({"volume", "ls", "--format", "{{range .}}x{{end}}"}), {"--format", "not supported"}));
  EXPECT_TRUE(EngineError(hutch({"volume", "ls", "-q", "--format", "json"}), {"--quiet", "--format"}));
}

TEST_F(VolumeTest, RmRemovesVolumesAndTheirData) {
  create("a");
  create("b");
  create("c");
  fill("a", "f", 1000);
  std::string mp = mountpoint("a");
  Result r = hutch({"volume", "rm", "a", "b"});
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "a\nb\n");
  EXPECT_FALSE(fs::exists(fs::path(mp).parent_path())) << "the volume's directory is gone";
  EXPECT_EQ(names(), std::vector<std::string>{"c"});
  Result alias = hutch({"volume", "remove", "c"});
  EXPECT_OK(alias);
  EXPECT_TRUE(names().empty());
  EXPECT_TRUE(OneLineError(hutch({"volume", "rm", "a"}), {"no such volume: a"}));
  create("d");
  Result some = hutch({"volume", "rm", "nope", "d"});
  EXPECT_TRUE(OneLineError(some, {"no such volume: nope"})) << "one bad name does not stop the others";
  EXPECT_EQ(some.out, "d\n");
  EXPECT_TRUE(names().empty());
  EXPECT_TRUE(EngineError(hutch({"volume", "rm"}), {"volume name"}));
  EXPECT_FALSE(fs::exists(root_ + "/volumes") && !fs::is_empty(root_ + "/volumes")) << "nothing is left behind";
}

TEST_F(VolumeTest, PruneAsksThenRemovesEveryUnusedVolume) {
  create("a");
  create("b");
  fill("a", "f", 100000);
  for (std::optional<std::string> answer : {std::optional<std::string>("n\n"), std::optional<std::string>()}) {
    Options o;
    o.input = answer;
    Result r = hutch({"volume", "prune"}, o);
    ASSERT_OK(r);
    EXPECT_TRUE(contains(r.out,
                         "WARNING! This will remove all volumes not used by at least one container.\n"
                         "Are you sure you want to continue? [y/N] "))
        << r;
    EXPECT_TRUE(contains(r.out, "Nothing removed.")) << r;
    EXPECT_EQ(names().size(), 2u) << "answer " << answer.value_or("(none)");
  }
  Options yes;
  yes.input = "y\n";
  Result r = hutch({"volume", "prune"}, yes);
  ASSERT_OK(r);
  EXPECT_EQ(section(r.out, "Deleted Volumes:"), (std::vector<std::string>{"a", "b"})) << r;
  std::string total = total_line(r.out);
  ASSERT_FALSE(total.empty()) << r;
  double freed = parse_size(total.substr(strlen("Total reclaimed space: ")));
  EXPECT_GE(freed, 100000) << "the 100 kB file was freed" << r;
  EXPECT_LT(freed, 200000) << r;
  EXPECT_TRUE(names().empty());
  Result again = hutch({"volume", "prune", "-f"});
  ASSERT_OK(again);
  EXPECT_FALSE(contains(again.out, "[y/N]")) << "-f does not ask" << again;
  EXPECT_EQ(again.out, "Total reclaimed space: 0B\n") << again;
}

TEST_F(VolumeTest, WhatAKilledCreateLeftIsNeitherListedNorKept) {
  create("a");
  // What `volume create` killed before its rename leaves: a .partial- directory.
  std::string half = root_ + "/volumes/.partial-0123456789abcdef";
  fs::create_directories(half + "/_data");
  write_file(half + "/volume.json", "{\"name\":\"half\"}");
  // And a directory hutch did not make.
  fs::create_directories(root_ + "/volumes/stray/_data");
  EXPECT_EQ(names(), std::vector<std::string>{"a"});
  create("b");
  EXPECT_FALSE(fs::exists(half)) << "the next change removes it";
  Result p = hutch({"volume", "prune", "-f"});
  ASSERT_OK(p);
  EXPECT_EQ(section(p.out, "Deleted Volumes:"), (std::vector<std::string>{"a", "b"})) << p;
  EXPECT_TRUE(fs::exists(root_ + "/volumes/stray")) << "prune removes volumes, not what it did not make";
  EXPECT_TRUE(OneLineError(hutch({"volume", "create", "stray"}), {"stray", "not a volume"}));
}

TEST_F(VolumeTest, TheGroupWithoutAVerbPrintsItsHelp) {
  Result r = hutch({"volume"});
  ASSERT_OK(r);
  for (const char* verb : {"create", "ls", "inspect", "rm", "prune"})
    EXPECT_TRUE(contains(r.out, "  " + std::string(verb) + " ")) << verb << r;
  EXPECT_TRUE(contains(r.out, "hutch volume COMMAND")) << r;
  EXPECT_TRUE(EngineError(hutch({"volume", "frobnicate"}), {"volume frobnicate", "create"}));
  for (const char* verb : {"create", "ls", "inspect", "rm", "prune"}) {
    Result h = hutch({"volume", verb, "--help"});
    EXPECT_OK(h);
    EXPECT_TRUE(contains(h.out, "hutch volume " + std::string(verb))) << h;
  }
  Result global = hutch({"--help"});
  EXPECT_TRUE(contains(global.out, "volume create")) << global;
}

TEST_F(VolumeTest, SystemDfCountsVolumesAndSystemPruneVolumesRemovesThem) {
  auto empty = df();
  EXPECT_EQ(empty["Local Volumes"], (std::vector<std::string>{"0", "0", "0B", "0B"}));
  create("a");
  create("b");
  fill("a", "f", 200000);
  auto rows = df();
  ASSERT_EQ(rows["Local Volumes"].size(), 4u);
  EXPECT_EQ(rows["Local Volumes"][0], "2");
  EXPECT_EQ(rows["Local Volumes"][1], "0") << "no container uses them";
  double size = parse_size(rows["Local Volumes"][2]);
  EXPECT_GE(size, 200000);
  EXPECT_LT(size, 300000);
  EXPECT_EQ(split_ws(rows["Local Volumes"][3]), (std::vector<std::string>{rows["Local Volumes"][2], "(100%)"}));
  Result v = hutch({"system", "df", "-v"});
  ASSERT_OK(v);
  auto ls = raw_lines(v.out);
  auto at = std::find(ls.begin(), ls.end(), "Local Volumes space usage:");
  ASSERT_NE(at, ls.end()) << v;
  ASSERT_GE(ls.end() - at, 5) << v;
  EXPECT_EQ(split_columns(at[2]), (std::vector<std::string>{"VOLUME NAME", "LINKS", "SIZE"})) << v;
  EXPECT_EQ(split_columns(at[3]), (std::vector<std::string>{"a", "0", rows["Local Volumes"][2]})) << v;
  EXPECT_EQ(split_columns(at[4]), (std::vector<std::string>{"b", "0", "0B"})) << v;

  Result keep = hutch({"system", "prune", "-f"});
  ASSERT_OK(keep);
  EXPECT_EQ(names().size(), 2u) << "without --volumes, system prune keeps volumes" << keep;
  Options yes;
  yes.input = "y\n";
  Result r = hutch({"system", "prune", "--volumes"}, yes);
  ASSERT_OK(r);
  EXPECT_TRUE(contains(r.out, "  - all volumes not used by at least one container\n")) << r;
  EXPECT_EQ(section(r.out, "Deleted Volumes:"), (std::vector<std::string>{"a", "b"})) << r;
  EXPECT_GE(parse_size(total_line(r.out).substr(strlen("Total reclaimed space: "))), 200000) << r;
  EXPECT_TRUE(names().empty());
}

TEST_F(VolumeInUseTest, AVolumeInUseIsRefusedNamingItsContainersAndForceRemovesThem) {
  create("data");
  create("spare");
  ASSERT_OK(hutch({"run", "--name", "user1", "bb", "true"}));
  ASSERT_OK(hutch({"run", "--name", "user2", "bb", "true"}));
  mark_uses("user1", "data");
  mark_uses("user2", "data");
  fill("data", "keep", 10);
  EXPECT_TRUE(OneLineError(hutch({"volume", "rm", "data"}),
                           {"volume data is in use", "user1 user2", "hutch rm user1 user2", "hutch volume rm -f data"}));
  EXPECT_EQ(names({"-f", "dangling=false"}), std::vector<std::string>{"data"});
  EXPECT_EQ(names({"-f", "dangling=true"}), std::vector<std::string>{"spare"});
  auto rows = df();
  EXPECT_EQ(rows["Local Volumes"][0], "2");
  EXPECT_EQ(rows["Local Volumes"][1], "1") << "a volume a container mounts is active, running or not";
  EXPECT_EQ(split_ws(rows["Local Volumes"][3])[0], "0B") << "the used volume is not reclaimable";
  Result prune = hutch({"volume", "prune", "-f"});
  ASSERT_OK(prune);
  EXPECT_EQ(section(prune.out, "Deleted Volumes:"), std::vector<std::string>{"spare"}) << prune;
  EXPECT_EQ(names(), std::vector<std::string>{"data"});

  Result force = hutch({"volume", "rm", "-f", "data"});
  ASSERT_OK(force);
  EXPECT_EQ(force.out, "data\n");
  EXPECT_TRUE(names().empty());
  Result ps = hutch({"ps", "-a", "-q"});
  ASSERT_OK(ps);
  EXPECT_TRUE(lines(ps.out).empty()) << "--force removed the containers that used it" << ps;
}

TEST_F(VolumeInUseTest, AVolumeOutlivesTheContainersThatUsedIt) {
  create("data");
  fill("data", "f", 1234);
  ASSERT_OK(hutch({"run", "--name", "c", "bb", "true"}));
  mark_uses("c", "data");
  ASSERT_OK(hutch({"rm", "c"}));
  EXPECT_EQ(names(), std::vector<std::string>{"data"});
  EXPECT_EQ(fs::file_size(mountpoint("data") + "/f"), 1234u);
  EXPECT_EQ(names({"-f", "dangling=true"}), std::vector<std::string>{"data"}) << "unused once its container is gone";
  Result sp = hutch({"system", "prune", "-f"});
  ASSERT_OK(sp);
  EXPECT_EQ(names(), std::vector<std::string>{"data"}) << "system prune without --volumes keeps it";
}

// ---- run -v NAME:/path (needs run's -v) ---------------------------------------------------------

class VolumeRunTest : public VolumeInUseTest {};

TEST_F(VolumeRunTest, DataWrittenByOneContainerIsReadByTheNext) {
  ASSERT_OK(hutch({"run", "--rm", "-v", "data:/data", "bb", "sh", "-c", "echo hi > /data/f"}));
  EXPECT_EQ(names(), std::vector<std::string>{"data"}) << "run makes a missing volume";
  Result r = hutch({"run", "--rm", "-v", "data:/data", "bb", "cat", "/data/f"});
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_EQ(read_file(mountpoint("data") + "/f"), "hi\n");
  EXPECT_EQ(names({"-f", "dangling=true"}), std::vector<std::string>{"data"}) << "--rm containers are gone";
}

TEST_F(VolumeRunTest, ANewVolumeIsSeededWithTheImageFiles) {
  Result r = hutch({"run", "--rm", "-v", "v2:/etc", "bb", "ls", "/etc/passwd"});
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "/etc/passwd\n");
  std::string mp = mountpoint("v2");
  ASSERT_TRUE(fs::exists(mp + "/passwd")) << mp;
  EXPECT_TRUE(contains(read_file(mp + "/passwd"), "root:")) << "the image's /etc/passwd";
  // Changes stay in the volume, not in a fresh copy of the image's.
  ASSERT_OK(hutch({"run", "--rm", "-v", "v2:/etc", "bb", "sh", "-c", "echo extra > /etc/added"}));
  Result again = hutch({"run", "--rm", "-v", "v2:/etc", "bb", "cat", "/etc/added"});
  ASSERT_OK(again);
  EXPECT_EQ(again.out, "extra\n");
}

TEST_F(VolumeRunTest, ReadOnlyMountRefusesWrites) {
  ASSERT_OK(hutch({"run", "--rm", "-v", "data:/data", "bb", "sh", "-c", "echo before > /data/f"}));
  Result r = hutch({"run", "--rm", "-v", "data:/data:ro", "bb", "sh", "-c", "echo x > /data/f"});
  EXPECT_NE(r.code, 0) << r;
  EXPECT_TRUE(icontains(r.err, "read-only")) << r;
  Result read = hutch({"run", "--rm", "-v", "data:/data:ro", "bb", "cat", "/data/f"});
  ASSERT_OK(read);
  EXPECT_EQ(read.out, "before\n");
}

TEST_F(VolumeRunTest, AVolumeOfAStoppedContainerIsNotRemoved) {
  ASSERT_OK(hutch({"run", "--name", "keeper", "-v", "data:/data", "bb", "true"}));
  EXPECT_TRUE(OneLineError(hutch({"volume", "rm", "data"}), {"in use", "keeper"}));
  EXPECT_EQ(names(), std::vector<std::string>{"data"});
  ASSERT_OK(hutch({"rm", "keeper"}));
  EXPECT_OK(hutch({"volume", "rm", "data"}));
  EXPECT_TRUE(names().empty());
}

}  // namespace
}  // namespace hit
