#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "hutch/error.hpp"
#include "hutch/paths.hpp"
#include "hutch/registries.hpp"
#include "test_support.hpp"

using namespace hutch;
namespace fs = std::filesystem;

namespace {

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old, had_ = true;
    value ? setenv(name, value, 1) : unsetenv(name);
  }
  ~ScopedEnv() { had_ ? setenv(name_, old_.c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

void write(const fs::path& file, const std::string& text) {
  make_dirs(file.parent_path());
  std::ofstream(file) << text;
}

RegistriesConf parse(const std::string& text, const std::string& source = "/etc/containers/registries.conf") {
  RegistriesConf c;
  apply_registries_conf_text(c, text, source);
  return c;
}

// The message of the Errc::kConfig error `text` raises.
std::string conf_error(const std::string& text, const std::string& source = "/etc/containers/registries.conf") {
  try {
    parse(text, source);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kConfig) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return "";
}

std::vector<std::string> locations(const std::vector<RegistryEndpoint>& endpoints) {
  std::vector<std::string> out;
  for (const auto& e : endpoints) out.push_back(e.location + (e.insecure ? " insecure" : "") + (e.mirror ? " mirror" : ""));
  return out;
}

using Strings = std::vector<std::string>;

// ---- parsing ----------------------------------------------------------------------------------

TEST(Registries, ReadsEveryKey) {
  auto c = parse(R"(unqualified-search-registries = ["registry.fedoraproject.org", "docker.io/", "[::1]:5000"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json"]

[[registry]]
prefix = "example.com/foo"
location = "internal.example.net/bar/"
insecure = true
blocked = false
mirror-by-digest-only = true

[[registry.mirror]]
location = "mirror-0.local/foo"

[[registry.mirror]]
location = "mirror-1.local:5000/mirrors/foo"
insecure = true

[[registry]]
location = "quay.io"

[[registry.mirror]]
location = "q-mirror.local"
pull-from-mirror = "digest-only"

[[registry.mirror]]
location = "q-tags.local"
pull-from-mirror = "tag-only"

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"ns/tool" = "docker.io/tool"
)");
  EXPECT_EQ(c.unqualified_search_registries, (Strings{"registry.fedoraproject.org", "docker.io", "[::1]:5000"}));
  EXPECT_EQ(c.short_name_mode, "enforcing");
  ASSERT_EQ(c.registries.size(), 2u);
  const auto& a = c.registries[0];
  EXPECT_EQ(a.prefix, "example.com/foo");
  EXPECT_EQ(a.location, "internal.example.net/bar");
  EXPECT_TRUE(a.insecure);
  EXPECT_FALSE(a.blocked);
  EXPECT_TRUE(a.mirror_by_digest_only);
  EXPECT_EQ(a.source, "/etc/containers/registries.conf:5");
  ASSERT_EQ(a.mirrors.size(), 2u);
  EXPECT_EQ(a.mirrors[0].location, "mirror-0.local/foo");
  EXPECT_FALSE(a.mirrors[0].insecure);
  EXPECT_EQ(a.mirrors[0].pull_from_mirror, "all");
  EXPECT_EQ(a.mirrors[1].location, "mirror-1.local:5000/mirrors/foo");
  EXPECT_TRUE(a.mirrors[1].insecure);
  const auto& q = c.registries[1];
  EXPECT_EQ(q.prefix, "quay.io");  // the location, when there is no prefix
  EXPECT_EQ(q.location, "quay.io");
  EXPECT_EQ(q.source, "/etc/containers/registries.conf:19");
  ASSERT_EQ(q.mirrors.size(), 2u);
  EXPECT_EQ(q.mirrors[0].pull_from_mirror, "digest-only");
  EXPECT_EQ(q.mirrors[1].pull_from_mirror, "tag-only");
  EXPECT_EQ(c.aliases.at("fedora"), "registry.fedoraproject.org/fedora");
  EXPECT_EQ(c.aliases.at("ns/tool"), "docker.io/library/tool");  // normalized as containers/image does
}

TEST(Registries, DefaultsArePermissiveAndEmpty) {
  auto c = parse("# nothing\n");
  EXPECT_EQ(c.short_name_mode, "permissive");
  EXPECT_TRUE(c.unqualified_search_registries.empty());
  EXPECT_TRUE(c.registries.empty());
  EXPECT_TRUE(c.aliases.empty());
  EXPECT_EQ(parse("short-name-mode = \"\"\n").short_name_mode, "permissive");
}

TEST(Registries, LaterFilesMergeAsContainersImageDoes) {
  RegistriesConf c;
  apply_registries_conf_text(c, R"(unqualified-search-registries = ["a.io", "b.io"]
short-name-mode = "disabled"
[[registry]]
prefix = "x.io"
location = "x-old.io"
[[registry]]
location = "y.io"
insecure = true
[aliases]
"one" = "a.io/one"
"two" = "a.io/two"
)",
                             "/etc/containers/registries.conf");
  apply_registries_conf_text(c, R"([[registry]]
prefix = "x.io"
location = "x-new.io"
[[registry]]
location = "z.io"
[aliases]
"two" = "b.io/two"
"three" = "b.io/three"
)",
                             "/etc/containers/registries.conf.d/10-more.conf");
  // Lists the later file does not set stay; a [[registry]] with the same prefix is replaced.
  EXPECT_EQ(c.unqualified_search_registries, (Strings{"a.io", "b.io"}));
  EXPECT_EQ(c.short_name_mode, "disabled");
  ASSERT_EQ(c.registries.size(), 3u);
  const RegistryConf* x = find_registry_conf(c, "x.io/img");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->location, "x-new.io");
  EXPECT_EQ(x->source, "/etc/containers/registries.conf.d/10-more.conf:1");
  EXPECT_TRUE(find_registry_conf(c, "y.io/img")->insecure);
  EXPECT_EQ(c.aliases, (std::map<std::string, std::string>{{"one", "a.io/one"}, {"two", "b.io/two"}, {"three", "b.io/three"}}));

  // A list that is set replaces the earlier one, even when empty; "" erases an alias.
  apply_registries_conf_text(c, "unqualified-search-registries = []\n[aliases]\n\"one\" = \"\"\n", "20.conf");
  EXPECT_TRUE(c.unqualified_search_registries.empty());
  EXPECT_EQ(c.aliases.count("one"), 0u);
  EXPECT_EQ(c.aliases.count("two"), 1u);
}

TEST(Registries, ABadFileChangesNothing) {
  RegistriesConf c = parse("unqualified-search-registries = [\"a.io\"]\n");
  EXPECT_THROW(apply_registries_conf_text(c, "unqualified-search-registries = [\"b.io\"]\nbogus = 1\n", "b.conf"), Error);
  EXPECT_EQ(c.unqualified_search_registries, (Strings{"a.io"}));
}

TEST(Registries, ErrorsNameFileAndLine) {
  const std::string f = "/home/u/.config/containers/registries.conf";
  std::string m = conf_error("unqualified-search-registries = [\"a.io\"]\n\n[[registry]]\nlocation = \"a.io\"\nblockd = true\n", f);
  EXPECT_NE(m.find(f + ":5"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown key \"blockd\""), std::string::npos) << m;
  EXPECT_NE(m.find("blocked"), std::string::npos) << m;  // the known keys are listed

  m = conf_error("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\nsecure = true\n", f);
  EXPECT_NE(m.find(f + ":5: unknown key \"secure\" in [[registry.mirror]]"), std::string::npos) << m;

  m = conf_error("shortnamemode = \"enforcing\"\n", f);
  EXPECT_NE(m.find(f + ":1: unknown key \"shortnamemode\" in the top level"), std::string::npos) << m;

  m = conf_error("[[registry]]\nlocation = \"a.io\"\ninsecure = \"yes\"\n", f);
  EXPECT_NE(m.find(f + ":3: \"insecure\" must be true or false"), std::string::npos) << m;

  m = conf_error("short-name-mode = \"strict\"\n", f);
  EXPECT_NE(m.find(f + ":1:"), std::string::npos) << m;
  EXPECT_NE(m.find("enforcing, permissive, disabled"), std::string::npos) << m;

  m = conf_error("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"sometimes\"\n", f);
  EXPECT_NE(m.find(f + ":5:"), std::string::npos) << m;
  EXPECT_NE(m.find("all, digest-only, tag-only"), std::string::npos) << m;

  m = conf_error("x = [1,\n", f);  // TOML syntax
  EXPECT_NE(m.find(f + ":"), std::string::npos) << m;
}

TEST(Registries, BadValuesAreRefused) {
  auto has = [](const std::string& m, const std::string& what) {
    EXPECT_NE(m.find(what), std::string::npos) << m;
  };
  has(conf_error("[[registry]]\nlocation = \"https://a.io\"\n"), "URI schemes are not supported");
  has(conf_error("[[registry]]\ninsecure = true\n"), "needs a \"prefix\" or a \"location\"");
  has(conf_error("[[registry]]\nprefix = \"a.io/x\"\n"), "without a \"location\" must have a wildcard prefix");
  has(conf_error("[[registry]]\nprefix = \"*.a.io/x\"\n"), "must be *.example.com");
  has(conf_error("[[registry]]\nprefix = \"*.a.io:5000\"\n"), "must be *.example.com");
  has(conf_error("[[registry]]\nprefix = \"a.*.io\"\nlocation = \"b.io\"\n"), "is not host[:port]");
  has(conf_error("[[registry]]\nlocation = \"a.io/Upper\"\n"), "is not host[:port]");
  has(conf_error("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n"), "needs a \"location\"");
  has(conf_error("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"\"\n"), "location\" is empty");
  has(conf_error("[[registry]]\nlocation = \"a.io\"\npull-from-mirror = \"all\"\n"), "unknown key \"pull-from-mirror\"");
  has(conf_error("[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "
                 "\"m.io\"\npull-from-mirror = \"tag-only\"\n"),
      ":6: \"pull-from-mirror\" cannot be set on a mirror of a registry with mirror-by-digest-only");
  has(conf_error("unqualified-search-registries = [\"docker.io/library\"]\n"), "is not a registry host[:port]");
  has(conf_error("unqualified-search-registries = \"docker.io\"\n"), "must be an array");
  has(conf_error("[[registry]]\nlocation = \"a.io\"\n\n[[registry]]\nprefix = \"a.io\"\nlocation = \"b.io\"\n"),
      ":4: prefix \"a.io\" is already configured at /etc/containers/registries.conf:1");
  has(conf_error("[[registry]]\nprefix = \"a.io/x\"\nlocation = \"r.io\"\n[[registry]]\nprefix = \"a.io/y\"\nlocation = "
                 "\"r.io\"\ninsecure = true\n"),
      "different \"insecure\" setting");
  has(conf_error("[aliases]\n\"docker.io/busybox\" = \"docker.io/library/busybox\"\n"), "is not a short name");
  has(conf_error("[aliases]\n\"busybox:1\" = \"docker.io/library/busybox\"\n"), "is not a short name");
  has(conf_error("[aliases]\n\"busybox\" = \"busybox\"\n"), "must be a fully qualified repository");
  has(conf_error("[aliases]\n\"busybox\" = \"docker.io/library/busybox:1.36\"\n"), "without a tag or digest");
  has(conf_error("credential-helpers = [\"secretservice\"]\n"), "credential helper \"secretservice\" is not supported");
  has(conf_error("[[registry]]\nlocation = \"a.io\"\nproxy = \"http://p:3128\"\n"), "\"proxy\" in [[registry]] is not supported");
}

TEST(Registries, VersionOneIsRefusedWithAWayOut) {
  std::string m = conf_error("# old\n[registries.search]\nregistries = ['registry1.com']\n[registries.insecure]\nregistries = []\n",
                             "/etc/containers/registries.conf");
  EXPECT_NE(m.find("/etc/containers/registries.conf:2:"), std::string::npos) << m;
  EXPECT_NE(m.find("version 1"), std::string::npos) << m;
  EXPECT_NE(m.find("convert it to version 2"), std::string::npos) << m;
  EXPECT_NE(m.find("unqualified-search-registries"), std::string::npos) << m;
}

TEST(Registries, ReadsTheDistributionsShortNames) {
  fs::path f = "/etc/containers/registries.conf.d/shortnames.conf";
  std::error_code ec;
  if (!fs::exists(f, ec)) {
    HUTCH_SKIP_OUTSIDE_CI(f.string() + " is not installed (Debian: golang-github-containers-common, which podman brings)");
  }
  RegistriesConf c;
  apply_registries_conf_file(c, f);
  EXPECT_FALSE(c.aliases.empty());
  ASSERT_EQ(c.files_read.size(), 1u);
}

// ---- matching and endpoints -----------------------------------------------------------------

TEST(Registries, LongestPrefixWins) {
  auto c = parse(R"([[registry]]
location = "example.com"
[[registry]]
prefix = "example.com/foo"
location = "foo.example.net"
[[registry]]
prefix = "example.com/foo/bar"
location = "bar.example.net"
[[registry]]
prefix = "example.com:5000"
location = "five.example.net"
)");
  EXPECT_EQ(find_registry_conf(c, "example.com/img")->location, "example.com");
  EXPECT_EQ(find_registry_conf(c, "example.com/foo/img")->location, "foo.example.net");
  EXPECT_EQ(find_registry_conf(c, "example.com/foo")->location, "foo.example.net");
  EXPECT_EQ(find_registry_conf(c, "example.com/foo/bar/img")->location, "bar.example.net");
  EXPECT_EQ(find_registry_conf(c, "example.com/foobar/img")->location, "example.com");  // whole components only
  EXPECT_EQ(find_registry_conf(c, "example.com:5000/img")->location, "five.example.net");
  EXPECT_EQ(find_registry_conf(c, "example.com")->location, "example.com");
  EXPECT_EQ(find_registry_conf(c, "example.org/img"), nullptr);
  EXPECT_EQ(find_registry_conf(c, "myexample.com/img"), nullptr);
  // "example.com" does not cover "example.com:6000" (containers/image matches it only by accident).
  EXPECT_EQ(find_registry_conf(c, "example.com:6000/img"), nullptr);
}

TEST(Registries, WildcardPrefixesMatchSubdomains) {
  auto c = parse(R"([[registry]]
prefix = "*.example.com"
insecure = true
[[registry]]
prefix = "exact.example.com"
location = "exact.example.com"
[[registry]]
prefix = "*.mirrored.io"
location = "central.io/all"
)");
  const RegistryConf* r = find_registry_conf(c, "a.example.com/img");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->prefix, "*.example.com");
  EXPECT_EQ(find_registry_conf(c, "a.b.example.com/ns/img")->prefix, "*.example.com");
  EXPECT_EQ(find_registry_conf(c, "a.example.com:5000/img")->prefix, "*.example.com");
  EXPECT_EQ(find_registry_conf(c, "exact.example.com/img")->prefix, "exact.example.com");  // longer wins
  EXPECT_EQ(find_registry_conf(c, "example.com/img"), nullptr);
  EXPECT_EQ(find_registry_conf(c, "a.example.com.evil.io/img"), nullptr);
  EXPECT_EQ(find_registry_conf(c, "evil.io/a.example.com/img"), nullptr);
  EXPECT_EQ(find_registry_conf(c, "aexample.com/img"), nullptr);
  // Without a location, the reference is used as it is; with one, the host is replaced.
  EXPECT_EQ(locations(registry_endpoints(c, "a.example.com/ns/img", false, false)), (Strings{"a.example.com/ns/img insecure"}));
  EXPECT_EQ(locations(registry_endpoints(c, "x.mirrored.io/ns/img", false, false)), (Strings{"central.io/all/ns/img"}));
}

TEST(Registries, LocationsAreRewritten) {
  auto c = parse(R"([[registry]]
prefix = "example.com/foo"
location = "internal.example.net/bar"
[[registry]]
prefix = "docker.io/library"
location = "hub-cache.local:5000/library"
)");
  EXPECT_EQ(locations(registry_endpoints(c, "example.com/foo/myimage", false, false)),
            (Strings{"internal.example.net/bar/myimage"}));
  EXPECT_EQ(locations(registry_endpoints(c, "example.com/foo/a/b", true, false)), (Strings{"internal.example.net/bar/a/b"}));
  // docker.io's single names are under library/, before matching.
  EXPECT_EQ(locations(registry_endpoints(c, "docker.io/busybox", false, false)),
            (Strings{"hub-cache.local:5000/library/busybox"}));
  EXPECT_EQ(locations(registry_endpoints(c, "docker.io/library/busybox", false, false)),
            (Strings{"hub-cache.local:5000/library/busybox"}));
  EXPECT_EQ(locations(registry_endpoints(c, "docker.io/someone/busybox", false, false)), (Strings{"docker.io/someone/busybox"}));
}

TEST(Registries, WithoutARegistryTheRepositoryItself) {
  RegistriesConf c;
  auto e = registry_endpoints(c, "quay.io/ns/img", true, false);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].location, "quay.io/ns/img");
  EXPECT_FALSE(e[0].insecure);
  EXPECT_FALSE(e[0].mirror);
}

TEST(Registries, MirrorsComeFirstInOrder) {
  auto c = parse(R"([[registry]]
prefix = "example.com/foo"
location = "internal-registry-for-example.net/bar"
[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"
[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true
)");
  Strings want{"example-mirror-0.local/mirror-for-foo/image mirror", "example-mirror-1.local/mirrors/foo/image insecure mirror",
               "internal-registry-for-example.net/bar/image"};
  EXPECT_EQ(locations(registry_endpoints(c, "example.com/foo/image", false, false)), want);
  EXPECT_EQ(locations(registry_endpoints(c, "example.com/foo/image", true, false)), want);
  // A push goes to the registry's location only.
  EXPECT_EQ(locations(registry_endpoints(c, "example.com/foo/image", false, true)),
            (Strings{"internal-registry-for-example.net/bar/image"}));
}

TEST(Registries, PullFromMirrorAndMirrorByDigestOnly) {
  auto c = parse(R"([[registry]]
location = "quay.io"
[[registry.mirror]]
location = "all.local"
[[registry.mirror]]
location = "digests.local"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"

[[registry]]
location = "registry.io"
insecure = true
mirror-by-digest-only = true
[[registry.mirror]]
location = "m1.local"
[[registry.mirror]]
location = "m2.local"
)");
  EXPECT_EQ(locations(registry_endpoints(c, "quay.io/ns/img", false, false)),
            (Strings{"all.local/ns/img mirror", "tags.local/ns/img mirror", "quay.io/ns/img"}));
  EXPECT_EQ(locations(registry_endpoints(c, "quay.io/ns/img", true, false)),
            (Strings{"all.local/ns/img mirror", "digests.local/ns/img mirror", "quay.io/ns/img"}));
  EXPECT_EQ(locations(registry_endpoints(c, "registry.io/img", false, false)), (Strings{"registry.io/img insecure"}));
  EXPECT_EQ(locations(registry_endpoints(c, "registry.io/img", true, false)),
            (Strings{"m1.local/img mirror", "m2.local/img mirror", "registry.io/img insecure"}));
  EXPECT_EQ(locations(registry_endpoints(c, "registry.io/img", true, true)), (Strings{"registry.io/img insecure"}));
}

TEST(Registries, BlockedNamesTheFileAndLine) {
  auto c = parse("[[registry]]\nlocation = \"ok.io\"\n\n[[registry]]\nprefix = \"ok.io/bad\"\nlocation = \"ok.io/bad\"\nblocked = true\n",
                 "/etc/containers/registries.conf.d/50-block.conf");
  EXPECT_EQ(registry_endpoints(c, "ok.io/good/img", false, false).size(), 1u);
  for (bool push : {false, true}) {
    try {
      registry_endpoints(c, "ok.io/bad/img", false, push);
      ADD_FAILURE() << "not blocked";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kPermission);
      std::string m = e.what();
      EXPECT_NE(m.find("ok.io/bad/img"), std::string::npos) << m;
      EXPECT_NE(m.find("/etc/containers/registries.conf.d/50-block.conf:4"), std::string::npos) << m;
    }
  }
}

// ---- short names --------------------------------------------------------------------------------

TEST(Registries, ShortNamesTryEachSearchRegistry) {
  auto c = parse("unqualified-search-registries = [\"registry.fedoraproject.org\", \"quay.io\", \"docker.io\"]\n");
  EXPECT_EQ(resolve_short_name(c, "busybox"),
            (Strings{"registry.fedoraproject.org/busybox:latest", "quay.io/busybox:latest", "docker.io/library/busybox:latest"}));
  EXPECT_EQ(resolve_short_name(c, "busybox:1.36"),
            (Strings{"registry.fedoraproject.org/busybox:1.36", "quay.io/busybox:1.36", "docker.io/library/busybox:1.36"}));
  EXPECT_EQ(resolve_short_name(c, "library/busybox")[2], "docker.io/library/busybox:latest");
  EXPECT_EQ(resolve_short_name(c, "someone/tool")[2], "docker.io/someone/tool:latest");
  std::string d = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(resolve_short_name(c, "busybox@" + d)[0], "registry.fedoraproject.org/busybox@" + d);
  EXPECT_TRUE(resolve_short_name(RegistriesConf{}, "busybox").empty());
}

TEST(Registries, AliasesKeepTheTagOrDigest) {
  auto c = parse(R"(unqualified-search-registries = ["docker.io"]
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"tools/jq" = "quay.io/tools/jq"
)");
  EXPECT_EQ(resolve_short_name(c, "fedora"), (Strings{"registry.fedoraproject.org/fedora:latest"}));
  EXPECT_EQ(resolve_short_name(c, "fedora:40"), (Strings{"registry.fedoraproject.org/fedora:40"}));
  std::string d = "sha256:" + std::string(64, 'b');
  EXPECT_EQ(resolve_short_name(c, "fedora@" + d), (Strings{"registry.fedoraproject.org/fedora@" + d}));
  EXPECT_EQ(resolve_short_name(c, "tools/jq:1.7"), (Strings{"quay.io/tools/jq:1.7"}));
  EXPECT_EQ(resolve_short_name(c, "alpine"), (Strings{"docker.io/library/alpine:latest"}));  // no alias: search
}

TEST(Registries, QualifiedNamesAreReturnedAsTheyAre) {
  auto c = parse("unqualified-search-registries = [\"quay.io\"]\n");
  EXPECT_EQ(resolve_short_name(c, "localhost/img"), (Strings{"localhost/img:latest"}));
  EXPECT_EQ(resolve_short_name(c, "example.com:5000/ns/img:v1"), (Strings{"example.com:5000/ns/img:v1"}));
  EXPECT_THROW(resolve_short_name(c, "Bad Name"), Error);
}

// ---- the file chain -------------------------------------------------------------------------------

TEST(Registries, ChainPrefersTheUsersFileAndAddsDropIns) {
  test::TempDir tmp;
  ScopedEnv xdg("XDG_CONFIG_HOME", tmp.path().c_str());
  ScopedEnv own("HUTCH_REGISTRIES_CONF", nullptr);
  fs::path user = tmp.path() / "containers" / "registries.conf";
  write(user, "unqualified-search-registries = [\"user.io\"]\n");
  write(tmp.path() / "containers/registries.conf.d/20-b.conf", "[aliases]\n\"b\" = \"user.io/b\"\n");
  write(tmp.path() / "containers/registries.conf.d/10-a.conf", "unqualified-search-registries = [\"dropin.io\"]\n");
  write(tmp.path() / "containers/registries.conf.d/ignored.txt", "not toml at all [\n");
  make_dirs(tmp.path() / "containers/registries.conf.d/sub.conf");
  write(tmp.path() / "hutch/registries.conf", "short-name-mode = \"disabled\"\n");
  auto chain = registries_conf_chain(getuid());
  std::vector<fs::path> want{user, tmp.path() / "containers/registries.conf.d/10-a.conf",
                             tmp.path() / "containers/registries.conf.d/20-b.conf"};
  if (fs::exists("/etc/hutch/registries.conf")) want.push_back("/etc/hutch/registries.conf");
  want.push_back(tmp.path() / "hutch/registries.conf");
  EXPECT_EQ(chain, want);
  auto c = load_registries_conf(getuid());
  EXPECT_EQ(c.unqualified_search_registries, (Strings{"dropin.io"}));
  EXPECT_EQ(c.aliases.at("b"), "user.io/b");
  EXPECT_EQ(c.short_name_mode, "disabled");
  EXPECT_EQ(c.files_read, want);

  // Without the user's file, the system's files come first.
  fs::remove(user);
  chain = registries_conf_chain(getuid());
  size_t i = 0;
  if (fs::exists("/etc/containers/registries.conf")) {
    EXPECT_EQ(chain[i++], "/etc/containers/registries.conf");
  }
  while (i < chain.size() && chain[i].string().rfind("/etc/containers/registries.conf.d/", 0) == 0) ++i;
  ASSERT_LT(i, chain.size());
  EXPECT_EQ(chain[i], tmp.path() / "containers/registries.conf.d/10-a.conf");
}

TEST(Registries, HutchRegistriesConfIsReadAlone) {
  test::TempDir tmp;
  ScopedEnv xdg("XDG_CONFIG_HOME", tmp.path().c_str());
  write(tmp.path() / "containers" / "registries.conf", "unqualified-search-registries = [\"user.io\"]\n");
  fs::path only = tmp.path() / "only.conf";
  write(only, "unqualified-search-registries = [\"only.io\"]\n");
  ScopedEnv own("HUTCH_REGISTRIES_CONF", only.c_str());
  EXPECT_EQ(registries_conf_chain(getuid()), (std::vector<fs::path>{only}));
  EXPECT_EQ(load_registries_conf(getuid()).unqualified_search_registries, (Strings{"only.io"}));
  ScopedEnv missing("HUTCH_REGISTRIES_CONF", (tmp.path() / "missing.conf").c_str());
  try {
    load_registries_conf(getuid());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kConfig);
    EXPECT_NE(std::string(e.what()).find("HUTCH_REGISTRIES_CONF"), std::string::npos);
  }
}

TEST(Registries, ErrorsInADropInNameIt) {
  test::TempDir tmp;
  fs::path f = tmp.path() / "registries.conf.d" / "99-bad.conf";
  write(f, "\n\n[[registry]]\nlocation = \"a.io\"\nmirror_by_digest_only = true\n");
  RegistriesConf c;
  try {
    apply_registries_conf_file(c, f);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(f.string() + ":5: unknown key \"mirror_by_digest_only\""), std::string::npos)
        << e.what();
  }
}

// ---- auth.json ------------------------------------------------------------------------------------

// A home of its own: HOME, XDG_CONFIG_HOME and XDG_RUNTIME_DIR in a temporary directory.
class AuthFile : public ::testing::Test {
 protected:
  test::TempDir tmp;
  fs::path home = tmp.path() / "home";
  fs::path runtime = tmp.path() / "run";
  ScopedEnv home_env{"HOME", home.c_str()};
  ScopedEnv xdg_env{"XDG_CONFIG_HOME", (home / ".config").c_str()};
  ScopedEnv run_env{"XDG_RUNTIME_DIR", runtime.c_str()};
  ScopedEnv reg_env{"REGISTRY_AUTH_FILE", nullptr};
  ScopedEnv docker_env{"DOCKER_CONFIG", nullptr};
  AuthFileOptions opts{{}, getuid()};

  static Credentials creds(const std::string& u, const std::string& p) {
    Credentials c;
    c.username = u;
    c.password = p;
    return c;
  }
};

TEST_F(AuthFile, TheChainOfFiles) {
  EXPECT_EQ(auth_file_for_write(opts), runtime / "containers/auth.json");
  EXPECT_EQ(auth_files_for_read(opts), (std::vector<fs::path>{runtime / "containers/auth.json", home / ".config/containers/auth.json",
                                                               home / ".docker/config.json"}));
  {
    ScopedEnv no_run("XDG_RUNTIME_DIR", nullptr);
    EXPECT_EQ(auth_file_for_write(opts), home / ".config/containers/auth.json");
    EXPECT_EQ(auth_files_for_read(opts),
              (std::vector<fs::path>{home / ".config/containers/auth.json", home / ".docker/config.json"}));
  }
  {
    ScopedEnv reg("REGISTRY_AUTH_FILE", "/tmp/x/auth.json");
    ScopedEnv docker("DOCKER_CONFIG", "/tmp/dockercfg");
    EXPECT_EQ(auth_file_for_write(opts), "/tmp/x/auth.json");
    EXPECT_EQ(auth_files_for_read(opts), (std::vector<fs::path>{"/tmp/x/auth.json", home / ".config/containers/auth.json",
                                                                 "/tmp/dockercfg/config.json"}));
  }
  AuthFileOptions given{"/tmp/given.json", getuid()};
  EXPECT_EQ(auth_file_for_write(given), "/tmp/given.json");
  EXPECT_EQ(auth_files_for_read(given), (std::vector<fs::path>{"/tmp/given.json", home / ".docker/config.json"}));
}

TEST_F(AuthFile, StoreFindRemoveRoundTrip) {
  EXPECT_FALSE(find_credentials("quay.io/ns/img", opts));
  fs::path f = store_credentials("quay.io", creds("alice", "pa:ss w0rd"), opts);
  EXPECT_EQ(f, runtime / "containers/auth.json");
  struct stat st;
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(stat(f.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  std::string text = read_file(f);
  EXPECT_NE(text.find("\"auths\""), std::string::npos);
  EXPECT_NE(text.find("\"quay.io\""), std::string::npos);
  EXPECT_NE(text.find("YWxpY2U6cGE6c3MgdzByZA=="), std::string::npos) << text;  // base64("alice:pa:ss w0rd")
  EXPECT_EQ(text.find("w0rd"), std::string::npos);

  auto c = find_credentials("quay.io/ns/img", opts);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->username, "alice");
  EXPECT_EQ(c->password, "pa:ss w0rd");
  EXPECT_TRUE(c->identity_token.empty());
  EXPECT_TRUE(find_credentials("quay.io", opts));
  EXPECT_FALSE(find_credentials("quay.io:8443/ns/img", opts));
  EXPECT_FALSE(find_credentials("other.io/img", opts));

  // A more specific key wins; each length of password encodes (base64 padding).
  store_credentials("quay.io/ns", creds("bob", "x"), opts);
  store_credentials("quay.io/ns/img", creds("carol", "xy"), opts);
  store_credentials("quay.io/other/img", creds("dave", "xyz"), opts);
  EXPECT_EQ(find_credentials("quay.io/ns/img", opts)->username, "carol");
  EXPECT_EQ(find_credentials("quay.io/ns/img", opts)->password, "xy");
  EXPECT_EQ(find_credentials("quay.io/ns/img2", opts)->username, "bob");
  EXPECT_EQ(find_credentials("quay.io/ns/img2", opts)->password, "x");
  EXPECT_EQ(find_credentials("quay.io/other/img", opts)->password, "xyz");
  EXPECT_EQ(find_credentials("quay.io/else/img", opts)->username, "alice");

  EXPECT_TRUE(remove_credentials("quay.io/ns", false, opts));
  EXPECT_FALSE(remove_credentials("quay.io/ns", false, opts));
  EXPECT_EQ(find_credentials("quay.io/ns/img2", opts)->username, "alice");
  EXPECT_TRUE(remove_credentials("", true, opts));
  EXPECT_FALSE(find_credentials("quay.io/ns/img", opts));
  EXPECT_FALSE(remove_credentials("", true, opts));
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(AuthFile, WritingKeepsTheRestOfTheFile) {
  fs::path f = runtime / "containers/auth.json";
  write(f, R"({"auths": {"docker.io": {"auth": "b2xkOm9sZA==", "email": "me@example.com"}, "ghcr.io": {"auth": "Z2g6dG9r"}},
 "credHelpers": {"gcr.io": "gcloud"}, "HttpHeaders": {"User-Agent": "x"}})");
  chmod(f.c_str(), 0644);
  store_credentials("quay.io", creds("alice", "secret"), opts);
  std::string text = read_file(f);
  EXPECT_NE(text.find("\"credHelpers\""), std::string::npos);
  EXPECT_NE(text.find("\"gcloud\""), std::string::npos);
  EXPECT_NE(text.find("\"HttpHeaders\""), std::string::npos);
  EXPECT_NE(text.find("\"email\""), std::string::npos);
  EXPECT_EQ(find_credentials("docker.io/library/busybox", opts)->username, "old");
  EXPECT_EQ(find_credentials("ghcr.io/me/img", opts)->password, "tok");
  struct stat st;
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  EXPECT_TRUE(remove_credentials("ghcr.io", false, opts));
  text = read_file(f);
  EXPECT_EQ(text.find("ghcr.io"), std::string::npos);
  EXPECT_NE(text.find("quay.io"), std::string::npos);
  EXPECT_TRUE(remove_credentials("", true, opts));
  text = read_file(f);
  EXPECT_NE(text.find("\"credHelpers\""), std::string::npos);  // --all empties "auths" only
  EXPECT_EQ(text.find("quay.io"), std::string::npos);
}

TEST_F(AuthFile, IdentityTokens) {
  Credentials c;
  c.username = "<token>";
  c.identity_token = "refresh-me";
  store_credentials("registry.example.com:5000", c, opts);
  auto got = find_credentials("registry.example.com:5000/ns/img", opts);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->identity_token, "refresh-me");
  EXPECT_EQ(got->username, "<token>");
  write(runtime / "containers/auth.json", R"({"auths": {"tok.io": {"identitytoken": "only-a-token"}}})");
  got = find_credentials("tok.io/img", opts);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->identity_token, "only-a-token");
  EXPECT_TRUE(got->username.empty());
}

TEST_F(AuthFile, DockersLegacyKeys) {
  // base64: "hub:hubpw", "legacy:lpw", "plain:ppw"
  write(home / ".docker/config.json", R"({"auths": {
    "https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"},
    "https://legacy.example.com/v1/": {"auth": "bGVnYWN5Omxwdw=="},
    "http://plain.example.com": {"auth": "cGxhaW46cHB3"}
  }})");
  auto hub = find_credentials("docker.io/library/busybox", opts);
  ASSERT_TRUE(hub);
  EXPECT_EQ(hub->username, "hub");
  EXPECT_EQ(hub->password, "hubpw");
  EXPECT_EQ(find_credentials("legacy.example.com/ns/img", opts)->username, "legacy");
  EXPECT_EQ(find_credentials("plain.example.com/img", opts)->password, "ppw");
  EXPECT_FALSE(find_credentials("example.com/img", opts));
}

TEST_F(AuthFile, DockerConfigIsTheFallback) {
  // base64: "d:dpw", "c:cpw"
  write(home / ".docker/config.json", R"({"auths": {"docker.io": {"auth": "ZDpkcHc="}, "only-docker.io": {"auth": "ZDpkcHc="}}})");
  write(home / ".config/containers/auth.json", R"({"auths": {"docker.io": {"auth": "YzpjcHc="}}})");
  EXPECT_EQ(find_credentials("docker.io/library/alpine", opts)->username, "c");  // the containers file first
  EXPECT_EQ(find_credentials("only-docker.io/x", opts)->username, "d");
  {
    fs::path dc = tmp.path() / "dockercfg";
    write(dc / "config.json", R"({"auths": {"dc.io": {"auth": "ZDpkcHc="}}})");
    ScopedEnv docker("DOCKER_CONFIG", dc.c_str());
    EXPECT_TRUE(find_credentials("dc.io/x", opts));
    EXPECT_FALSE(find_credentials("only-docker.io/x", opts));
  }
  // An empty entry (what docker writes beside a credential store) is skipped.
  write(runtime / "containers/auth.json", R"({"auths": {"docker.io": {}}})");
  EXPECT_EQ(find_credentials("docker.io/library/alpine", opts)->username, "c");
}

TEST_F(AuthFile, CredentialHelpersAreUnsupported) {
  fs::path f = home / ".docker/config.json";
  write(f, R"({"auths": {"docker.io": {}, "plain.io": {"auth": "YzpjcHc="}}, "credsStore": "desktop",
              "credHelpers": {"gcr.io": "gcloud"}})");
  for (const std::string& repo : {std::string("gcr.io/project/img"), std::string("docker.io/library/alpine")}) {
    try {
      find_credentials(repo, opts);
      ADD_FAILURE() << "no error for " << repo;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUnsupported);
      std::string m = e.what();
      EXPECT_NE(m.find(f.string()), std::string::npos) << m;
      EXPECT_NE(m.find(repo.find("gcr") == 0 ? "\"credHelpers\" key \"gcr.io\"" : "\"credsStore\" \"desktop\""),
                std::string::npos)
          << m;
    }
  }
  EXPECT_EQ(find_credentials("plain.io/x", opts)->username, "c");
  EXPECT_FALSE(find_credentials("quay.io/x", opts));  // nothing stored for it: anonymous

  write(runtime / "containers/auth.json", R"({"auths": {}, "credHelpers": {"quay.io": "secretservice"}})");
  try {
    store_credentials("quay.io", creds("a", "b"), opts);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kUnsupported);
    EXPECT_NE(std::string(e.what()).find("\"credHelpers\" key \"quay.io\""), std::string::npos) << e.what();
  }
}

TEST_F(AuthFile, MalformedFilesNeverShowTheSecret) {
  fs::path f = runtime / "containers/auth.json";
  auto expect_config_error = [&](const std::string& text, const std::string& secret, const std::string& repo) {
    write(f, text);
    try {
      find_credentials(repo, opts);
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kConfig);
      std::string m = e.full_message();
      EXPECT_NE(m.find(f.string()), std::string::npos) << m;
      EXPECT_EQ(m.find(secret), std::string::npos) << m;
    }
  };
  expect_config_error("{\"auths\": {\"quay.io\": {\"auth\": \"c2VjcmV0LXRvcC1zZWNyZXQ=\"\n  TOPSECRETVALUE }}}", "TOPSECRETVALUE",
                      "quay.io/x");
  expect_config_error("{\"auths\": {\"quay.io\": {\"auth\": \"TOPSECRET*VALUE\"}}}", "TOPSECRET", "quay.io/x");
  // base64 of "TOPSECRETVALUE", no colon
  expect_config_error("{\"auths\": {\"quay.io\": {\"auth\": \"VE9QU0VDUkVUVkFMVUU=\"}}}", "VE9QU0VDUkVUVkFMVUU", "quay.io/x");
  expect_config_error("{\"auths\": {\"quay.io\": {\"auth\": 12345}}}", "12345", "quay.io/x");
  expect_config_error("{\"auths\": [\"TOPSECRETVALUE\"]}", "TOPSECRETVALUE", "quay.io/x");
  expect_config_error("[\"TOPSECRETVALUE\"]", "TOPSECRETVALUE", "quay.io/x");

  write(f, "{\n\"auths\": {\n\"quay.io\": {\"auth\": \"c2VjcmV0\"\n\"oops\"}}}");
  try {
    find_credentials("quay.io/x", opts);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(f.string() + ":4:"), std::string::npos) << e.what();
  }
  // A malformed file is not overwritten by login.
  EXPECT_THROW(store_credentials("quay.io", creds("a", "b"), opts), Error);
  EXPECT_NE(read_file(f).find("oops"), std::string::npos);

  // Unreadable (a directory where the file should be).
  fs::remove(f);
  make_dirs(f);
  try {
    find_credentials("quay.io/x", opts);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kConfig);
    EXPECT_NE(std::string(e.what()).find(f.string()), std::string::npos) << e.what();
  }
}

TEST_F(AuthFile, KeysAreChecked) {
  for (std::string bad : {"", "https://quay.io", "quay.io/ns/img:tag", "quay.io/img@sha256:00", "quay.io/"}) {
    try {
      store_credentials(bad, creds("a", "b"), opts);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUsage) << bad;
    }
  }
  EXPECT_FALSE(fs::exists(runtime / "containers/auth.json"));
  EXPECT_FALSE(remove_credentials("quay.io", false, opts));  // no file: nothing removed, nothing made
  EXPECT_FALSE(fs::exists(runtime / "containers/auth.json"));
}

TEST_F(AuthFile, LogoutOfAHostTakesItsLegacyKeys) {
  fs::path f = runtime / "containers/auth.json";
  write(f, R"({"auths": {"https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"}, "quay.io": {"auth": "aHViOmh1YnB3"}}})");
  EXPECT_TRUE(remove_credentials("docker.io", false, opts));
  EXPECT_FALSE(find_credentials("docker.io/library/x", opts));
  EXPECT_TRUE(find_credentials("quay.io/x", opts));
}

TEST(Creds, ParsesUserAndPassword) {
  Credentials c = parse_creds_flag("alice:pa:ss");
  EXPECT_EQ(c.username, "alice");
  EXPECT_EQ(c.password, "pa:ss");
  c = parse_creds_flag("alice");
  EXPECT_EQ(c.username, "alice");
  EXPECT_TRUE(c.password.empty());
  c = parse_creds_flag("alice:");
  EXPECT_TRUE(c.password.empty());
  for (const std::string& bad : {std::string(""), std::string(":TOPSECRET")}) {
    try {
      parse_creds_flag(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUsage);
      EXPECT_EQ(std::string(e.what()).find("TOPSECRET"), std::string::npos);
    }
  }
}

}  // namespace
