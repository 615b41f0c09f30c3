// The engine around the containers: help, version, info, configuration, plugins, bad input.
#include <unistd.h>

#include <regex>

#include "harness.hpp"

namespace hit {
namespace {

// ---- help, version, usage ----------------------------------------------------------------------

class HelpTest : public HutchTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(HelpTest, EveryCommandHasHelp) {
  Result r = hutch({GetParam(), "--help"});
  EXPECT_OK(r);
  EXPECT_TRUE(icontains(r.out, "usage")) << "usage goes to stdout" << r;
  EXPECT_TRUE(contains(r.out, GetParam())) << r;
}

INSTANTIATE_TEST_SUITE_P(Commands, HelpTest,
                         ::testing::Values("import", "images", "tag", "rmi", "inspect", "run", "ps", "rm", "unshare",
                                           "info", "version", "diff", "commit", "mount", "unmount"),
                         [](const auto& info) { return info.param; });

using CliTest = HutchTest;

TEST_F(CliTest, GlobalHelpListsCommands) {
  Result r = hutch({"--help"});
  EXPECT_OK(r);
  for (const char* c : {"import", "images", "tag", "rmi", "inspect", "run", "ps", "rm", "unshare", "info", "version",
                        "diff", "commit", "mount", "unmount", "system df", "system prune", "system check", "image prune"})
    EXPECT_TRUE(contains(r.out, c)) << "global help does not mention " << c << r;
}

TEST_F(CliTest, GroupCommandsHaveHelpAndListTheirVerbs) {
  for (const auto& [group, verb] : std::vector<std::pair<std::string, std::string>>{
           {"system", "df"}, {"system", "prune"}, {"system", "check"}, {"image", "prune"}}) {
    Result r = hutch({group, verb, "--help"});
    EXPECT_OK(r);
    EXPECT_TRUE(contains(r.out, "hutch " + group + " " + verb)) << r;
  }
  Result bare = hutch({"system"});
  EXPECT_TRUE(EngineError(bare, {"system df", "system prune", "system check"}));
  EXPECT_TRUE(EngineError(hutch({"system", "frobnicate"}), {"system frobnicate", "system df"}));
}

TEST_F(CliTest, UnknownCommand) {
  EXPECT_TRUE(EngineError(hutch({"frobnicate"}), {"frobnicate"}));
}

TEST_F(CliTest, UnknownGlobalOption) {
  EXPECT_TRUE(EngineError(hutch({"--no-such-option", "images"}), {"no-such-option"}));
}

TEST_F(CliTest, Version) {
  Result r = hutch({"version"});
  ASSERT_OK(r);
  auto ls = lines(r.out);
  ASSERT_FALSE(ls.empty()) << r;
  EXPECT_TRUE(std::regex_search(ls[0], std::regex("^hutch version [0-9]+\\.[0-9]+\\.[0-9]+"))) << r;
}

TEST_F(CliTest, LogLevels) {
  for (const char* lvl : {"debug", "info", "warn", "error"}) {
    Result r = hutch({"--log-level", lvl, "images", "-q"});
    EXPECT_OK(r) << lvl;
    EXPECT_EQ(r.out, "") << "logs go to stderr, never stdout (" << lvl << ")" << r;
  }
  EXPECT_TRUE(EngineError(hutch({"--log-level", "shouty", "images"}), {"shouty"}));
}

// ---- info ----------------------------------------------------------------------------------------

const nlohmann::json* plugin_of(const nlohmann::json& info, const std::string& family) {
  if (!info.contains("plugins") || !info["plugins"].is_array()) return nullptr;
  for (const auto& p : info["plugins"])
    if (p.is_object() && p.value("family", "") == family) return &p;
  return nullptr;
}

class InfoTest : public HutchTest {
 protected:
  // A store that has been used: its storage driver is chosen and recorded (by a command
  // that enters the user namespace; `images` only reads records).
  void SetUp() override {
    HutchTest::SetUp();
    ASSERT_OK(hutch({"system", "check"}));
  }
  nlohmann::json info_json(const std::vector<std::string>& global = {}, Options o = {}) {
    std::vector<std::string> a = global;
    a.insert(a.end(), {"info", "--format", "json"});
    Result r = hutch(a, std::move(o));
    if (r.code != 0) {
      ADD_FAILURE() << r;
      return nullptr;
    }
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_object()) ADD_FAILURE() << "info --format json must print one JSON object" << r;
    return j;
  }
};

std::string mode_phrase() {
  switch (suite().mode) {
    case Mode::kRoot: return "real root";
    case Mode::kRanged: return "subordinate ranges";
    case Mode::kNoRange: return "single ID";
  }
  return "";
}

TEST_F(InfoTest, JsonReportsPluginsStoreAndMode) {
  nlohmann::json j = info_json();
  ASSERT_TRUE(j.is_object());
  for (const std::string fam : {"storage", "runtime", "network"}) {
    const nlohmann::json* p = plugin_of(j, fam);
    ASSERT_NE(p, nullptr) << "no " << fam << " plugin in: " << j.dump(2);
    ASSERT_TRUE((*p)["name"].is_string()) << p->dump();
    ASSERT_TRUE((*p)["path"].is_string()) << p->dump();
    ASSERT_TRUE((*p)["version"].is_string()) << p->dump();
    EXPECT_TRUE((*p)["reason"].is_string()) << p->dump();
    EXPECT_FALSE((*p)["version"].get<std::string>().empty()) << p->dump();
    std::string name = (*p)["name"];
    fs::path path = (*p)["path"].get<std::string>();
    EXPECT_EQ(path.filename().string(), "libhutch-" + fam + "-" + name + ".so") << p->dump();
    EXPECT_TRUE(path.is_absolute()) << p->dump();
    EXPECT_TRUE(fs::is_regular_file(path)) << p->dump();
  }
  // The automatic choice: this machine's kernel mounts overlay in a user namespace.
  EXPECT_EQ((*plugin_of(j, "storage"))["name"], "overlay") << j.dump(2);
  EXPECT_TRUE(contains((*plugin_of(j, "storage"))["reason"].get<std::string>(), "chosen automatically")) << j.dump(2);
  EXPECT_EQ((*plugin_of(j, "runtime"))["name"], "native");
  ASSERT_TRUE(j["store"].is_object()) << j.dump(2);
  EXPECT_EQ(j["store"]["root"], root_);
  EXPECT_EQ(j["store"]["runroot"], run_);
  ASSERT_TRUE(j["userns"].is_object()) << j.dump(2);
  ASSERT_TRUE(j["userns"]["mode"].is_string()) << j.dump(2);
  std::string mode = lower(j["userns"]["mode"].get<std::string>());
  for (auto& c : mode)
    if (c == '-' || c == '_') c = ' ';
  const char* want = suite().mode == Mode::kRoot ? "root" : suite().mode == Mode::kRanged ? "subordinate" : "single";
  EXPECT_TRUE(contains(mode, want)) << "userns.mode for mode " << suite().mode_name << ": " << j["userns"].dump();
}

TEST_F(InfoTest, TextReportsPluginsStoreAndMode) {
  Result r = hutch({"info"});
  ASSERT_OK(r);
  EXPECT_TRUE(contains(r.out, "libhutch-storage-overlay.so")) << r;
  EXPECT_TRUE(contains(r.out, "libhutch-runtime-native.so")) << r;
  EXPECT_TRUE(contains(r.out, "libhutch-network-")) << r;
  EXPECT_TRUE(contains(r.out, root_)) << r;
  EXPECT_TRUE(contains(r.out, run_)) << r;
  EXPECT_TRUE(icontains(r.out, mode_phrase())) << "mode " << suite().mode_name << r;
  nlohmann::json j = info_json();
  ASSERT_TRUE(j.is_object());
  for (const std::string fam : {"storage", "runtime", "network"}) {
    const nlohmann::json* p = plugin_of(j, fam);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(contains(r.out, (*p)["version"].get<std::string>())) << "the text names the " << fam << " plugin's version" << r;
    EXPECT_TRUE(contains(r.out, (*p)["path"].get<std::string>())) << r;
  }
}

TEST_F(InfoTest, GlobalOptionsSelectPlugins) {
  nlohmann::json none = info_json({"--network", "none"});
  ASSERT_TRUE(none.is_object());
  ASSERT_NE(plugin_of(none, "network"), nullptr);
  EXPECT_EQ((*plugin_of(none, "network"))["name"], "none");
  nlohmann::json host = info_json(
      {"--root", path("vfs-root"), "--network", "host", "--runtime", "native", "--storage-driver", "vfs"});
  ASSERT_TRUE(host.is_object());
  ASSERT_NE(plugin_of(host, "network"), nullptr);
  EXPECT_EQ((*plugin_of(host, "network"))["name"], "host");
  EXPECT_EQ((*plugin_of(host, "runtime"))["name"], "native");
  EXPECT_EQ((*plugin_of(host, "storage"))["name"], "vfs");
}

TEST_F(InfoTest, AFreshStoreSaysTheDriverIsNotChosenYet) {
  nlohmann::json j = info_json({"--root", path("fresh-root")});
  ASSERT_TRUE(j.is_object());
  ASSERT_NE(plugin_of(j, "storage"), nullptr) << j.dump(2);
  EXPECT_EQ((*plugin_of(j, "storage"))["name"], "auto") << j.dump(2);
  EXPECT_TRUE(contains((*plugin_of(j, "storage"))["reason"].get<std::string>(), "not chosen yet")) << j.dump(2);
  // The first command that changes the store chooses, records, and says why.
  ASSERT_OK(hutch({"--root", path("fresh-root"), "system", "df"}));
  std::string recorded = read_file(path("fresh-root") + "/storage-driver");
  EXPECT_EQ(recorded.substr(0, recorded.find('\n')), "overlay") << recorded;
  Result text = hutch({"--root", path("fresh-root"), "info"});
  ASSERT_OK(text);
  EXPECT_TRUE(contains(text.out, "chosen automatically")) << text;
}

TEST_F(InfoTest, AStoreRefusesAnotherDriver) {
  Result r = hutch_raw({"--root", root_, "--runroot", run_, "--storage-driver", "vfs", "images"});
  EXPECT_TRUE(EngineError(r, {"\"overlay\"", "\"vfs\"", "--storage-driver overlay"}));
}

TEST_F(InfoTest, PluginPathIsSearchedFirst) {
  nlohmann::json j = info_json();
  ASSERT_TRUE(j.is_object());
  const nlohmann::json* st = plugin_of(j, "storage");
  ASSERT_NE(st, nullptr);
  std::string installed = (*st)["path"];
  fs::create_directories(path("plugins"));
  fs::create_directories(path("empty"));
  std::string copy = path("plugins") + "/" + fs::path(installed).filename().string();
  fs::copy_file(installed, copy);
  Options o;
  o.env["HUTCH_PLUGIN_PATH"] = path("empty") + ":" + path("plugins");
  nlohmann::json k = info_json({}, o);
  ASSERT_TRUE(k.is_object());
  const nlohmann::json* st2 = plugin_of(k, "storage");
  ASSERT_NE(st2, nullptr);
  std::error_code ec;
  EXPECT_TRUE(fs::equivalent((*st2)["path"].get<std::string>(), copy, ec)) << "HUTCH_PLUGIN_PATH must come first: " << st2->dump();
  // And the copy works.
  Result imp = hutch({"import", suite().tar, "viacopy"}, o);
  ASSERT_OK(imp);
  Result r = hutch({"run", "--rm", "viacopy", "echo", "copy-works"}, o);
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "copy-works\n");
}

// ---- configuration -------------------------------------------------------------------------------

using ConfigTest = HutchTest;

TEST_F(ConfigTest, UnknownKeyNamesFileAndLine) {
  std::string conf = path("hutch.conf");
  write_file(conf, "[engine]\nlog_level = \"warn\"\nno_such_key = 1\n");
  Options o;
  o.env["HUTCH_CONFIG"] = conf;
  Result r = hutch({"images"}, o);
  EXPECT_TRUE(OneLineError(r, {conf + ":3"}));
  EXPECT_EQ(r.out, "");
}

TEST_F(ConfigTest, UnknownKeyInASectionNamesFileAndLine) {
  std::string conf = path("other.conf");
  write_file(conf, "# storage settings\n[storage]\ndriver = \"vfs\"\n\n[network]\ndefault = \"host\"\nbogus = \"x\"\n");
  Options o;
  o.env["HUTCH_CONFIG"] = conf;
  EXPECT_TRUE(OneLineError(hutch({"images"}, o), {conf + ":7"}));
}

TEST_F(ConfigTest, UserConfigFileIsRead) {
  std::string home = path("home");
  fs::create_directories(home + "/.config/hutch");
  std::string conf = home + "/.config/hutch/hutch.conf";
  write_file(conf, "[storage]\nnot_a_key = true\n");
  Options o;
  o.env["HOME"] = home;
  o.env["XDG_CONFIG_HOME"] = std::nullopt;
  o.env["HUTCH_CONFIG"] = std::nullopt;
  EXPECT_TRUE(OneLineError(hutch({"images"}, o), {conf + ":2"}));
}

TEST_F(ConfigTest, MissingHutchConfigFileIsAnError) {
  Options o;
  o.env["HUTCH_CONFIG"] = path("no-such.conf");
  EXPECT_TRUE(EngineError(hutch({"images"}, o), {path("no-such.conf")}));
}

TEST_F(ConfigTest, SettingsAreApplied) {
  std::string conf = path("good.conf");
  std::string croot = path("croot"), crun = path("crun");
  write_file(conf, "[engine]\nruntime = \"native\"\nlog_level = \"warn\"\nplugin_dirs = []\n\n"
                   "[storage]\ndriver = \"vfs\"\nroot = \"" + croot + "\"\nrunroot = \"" + crun + "\"\n\n"
                   "[network]\ndefault = \"none\"\n\n"
                   "[plugins.vfs]\nanything = \"goes\"\nnumber = 3\n\n[plugins.someone-else]\nx = [1, 2]\n");
  Options o;
  o.env["HUTCH_CONFIG"] = conf;
  Result info = hutch_raw({"info", "--format", "json"}, o);
  ASSERT_OK(info);
  auto j = nlohmann::json::parse(info.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << info;
  EXPECT_EQ(j["store"]["root"], croot) << info;
  EXPECT_EQ(j["store"]["runroot"], crun) << info;
  ASSERT_NE(plugin_of(j, "network"), nullptr);
  EXPECT_EQ((*plugin_of(j, "network"))["name"], "none") << info;

  // Containers use the configured default network.
  Result imp = hutch_raw({"import", suite().tar, "cfg"}, o);
  ASSERT_OK(imp);
  Result r = hutch_raw({"run", "--rm", "cfg", "cat", "/proc/net/dev"}, o);
  ASSERT_OK(r);
  EXPECT_EQ(net_devices(r.out), std::vector<std::string>{"lo"}) << "[network] default = \"none\"" << r;
  // The image is in the configured store, not in the fixture's.
  EXPECT_EQ(hutch({"images", "-q"}).out, "");

  // Command-line flags beat the file.
  std::string froot = path("froot");
  Result over = hutch_raw({"--root", froot, "--runroot", crun, "info", "--format", "json"}, o);
  ASSERT_OK(over);
  auto k = nlohmann::json::parse(over.out, nullptr, false);
  ASSERT_TRUE(k.is_object()) << over;
  EXPECT_EQ(k["store"]["root"], froot) << over;
  // Clean the configured store from inside its namespace (it may hold subordinate-ID files).
  hutch_raw({"unshare", "rm", "-rf", croot, froot}, o);
}

TEST_F(ConfigTest, PluginDirsFromConfig) {
  const Suite& s = suite();
  ASSERT_FALSE(s.fixtures.empty()) << "HUTCH_TEST_FIXTURE_PLUGINS is not set to an existing folder";
  std::string conf = path("plugins.conf");
  write_file(conf, "[engine]\nplugin_dirs = [\"" + s.fixtures + "\"]\n[storage]\ndriver = \"badabi\"\n");
  Options o;
  o.env["HUTCH_CONFIG"] = conf;
  Result r = hutch_raw({"--root", path("fresh-root"), "--runroot", run_, "images"}, o);
  EXPECT_TRUE(EngineError(r, {s.fixtures + "/libhutch-storage-badabi.so", "ABI"}));
}

// ---- plugins that cannot be used -----------------------------------------------------------------

class PluginErrorTest : public HutchTest {
 protected:
  Result with_fixtures(const std::string& driver) {
    Options o;
    o.env["HUTCH_PLUGIN_PATH"] = suite().fixtures;
    // A fresh store: nothing recorded yet for it.
    return hutch_raw({"--root", path("fresh-root"), "--runroot", run_, "--storage-driver", driver, "images"}, o);
  }
};

TEST_F(PluginErrorTest, WrongAbiNamesTheFile) {
  ASSERT_FALSE(suite().fixtures.empty()) << "HUTCH_TEST_FIXTURE_PLUGINS is not set to an existing folder";
  Result r = with_fixtures("badabi");
  EXPECT_TRUE(EngineError(r, {suite().fixtures + "/libhutch-storage-badabi.so", "ABI"}));
  EXPECT_EQ(r.out, "");
}

TEST_F(PluginErrorTest, MissingFactoryNamesTheFile) {
  ASSERT_FALSE(suite().fixtures.empty()) << "HUTCH_TEST_FIXTURE_PLUGINS is not set to an existing folder";
  Result r = with_fixtures("nofactory");
  EXPECT_TRUE(EngineError(r, {suite().fixtures + "/libhutch-storage-nofactory.so"}));
}

TEST_F(PluginErrorTest, ThrowingFactoryIsReported) {
  ASSERT_FALSE(suite().fixtures.empty()) << "HUTCH_TEST_FIXTURE_PLUGINS is not set to an existing folder";
  Result r = with_fixtures("throwing");
  EXPECT_TRUE(EngineError(r, {"throwing", "fixture failure"}));
}

TEST_F(PluginErrorTest, UnknownStorageDriverListsAvailable) {
  Result r = hutch_raw({"--root", path("fresh-root"), "--runroot", run_, "--storage-driver", "nope", "images"});
  EXPECT_TRUE(EngineError(r, {"nope", "vfs"}));
}

TEST_F(PluginErrorTest, UnknownRuntimeListsAvailable) {
  ASSERT_FALSE(import_busybox("bb").empty());
  Result r = hutch({"--runtime", "nope", "run", "--rm", "bb", "true"});
  EXPECT_TRUE(EngineError(r, {"nope", "native"}));
  EXPECT_EQ(hutch({"ps", "-a", "-q"}).out, "") << "a refused run leaves no container";
}

TEST_F(PluginErrorTest, UnknownNetworkListsAvailable) {
  ASSERT_FALSE(import_busybox("bb").empty());
  Result r = hutch({"--network", "nope", "run", "--rm", "bb", "true"});
  EXPECT_TRUE(EngineError(r, {"nope", "host", "none"}));
  EXPECT_EQ(hutch({"ps", "-a", "-q"}).out, "");
}

TEST_F(PluginErrorTest, StoreStillWorksAfterRefusals) {
  ASSERT_FALSE(suite().fixtures.empty()) << "HUTCH_TEST_FIXTURE_PLUGINS is not set to an existing folder";
  EXPECT_EQ(with_fixtures("badabi").code, 125);
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  Result r = hutch({"run", "--rm", "bb", "echo", "fine"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "fine\n");
}

}  // namespace
}  // namespace hit
