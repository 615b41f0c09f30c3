// pull, push, login, logout, save, load against a real registry (registry_fixture.hpp): the
// three setups, registries.conf, credentials, corruption, a killed pull, multi-platform
// indexes, zstd, archives both ways, token reuse and retries.
#include <signal.h>
#include <sys/stat.h>

#include <regex>
#include <thread>

#include "registry_fixture.hpp"
#include "skip.hpp"

namespace hit {
namespace {

using RegSetup = TestRegistry::Setup;


class RegistryTest : public HutchTest {
 protected:
  void SetUp() override {
    HutchTest::SetUp();
    if (HasFatalFailure()) return;
    home_ = path("home");
    fs::create_directories(home_);
  }
  void TearDown() override {
    proxies_.clear();
    regs_.clear();
    HutchTest::TearDown();
  }

  TestRegistry& registry(RegSetup s, const std::string& name = "reg") {
    regs_.push_back(std::make_unique<TestRegistry>(s, path(name)));
    std::string e = regs_.back()->start();
    EXPECT_EQ(e, "") << "the test registry did not start";
    return *regs_.back();
  }
  FaultProxy& proxy(const TestRegistry& reg) {
    proxies_.push_back(std::make_unique<FaultProxy>(reg.host()));
    EXPECT_EQ(proxies_.back()->start(), "");
    return *proxies_.back();
  }
  TestImage image(const TestImageSpec& spec = TestImageSpec().with_layers(2), const std::string& name = "img") {
    TestImage img = make_test_image(path(name), spec);
    EXPECT_EQ(img.error, "");
    return img;
  }
  // Pushes a test image to REG as REPO_TAG with skopeo (fails the test when it cannot).
  TestImage seed(TestRegistry& reg, const std::string& repo_tag, const TestImageSpec& spec = TestImageSpec().with_layers(2),
                 const std::vector<std::string>& extra = {}, const std::string& name = "img") {
    TestImage img = image(spec, name);
    if (!img.error.empty()) return img;
    std::vector<std::string> x = extra;
    if (img.multi) x.push_back("--all");
    Result r = reg.push_with_skopeo(img.ref(), repo_tag, x);
    EXPECT_OK(r) << reg.log();
    if (r.code != 0) img.error = "skopeo could not push";
    return img;
  }

  // The environment of every hutch command of these tests: a home of the test's own, no
  // XDG_RUNTIME_DIR (so auth.json is $HOME/.config/containers/auth.json), registries.conf
  // when one was written.
  Options env(Options o = {}) const {
    o.env["HOME"] = home_;
    o.env["XDG_RUNTIME_DIR"] = std::nullopt;
    o.env["XDG_CONFIG_HOME"] = std::nullopt;
    o.env["REGISTRY_AUTH_FILE"] = std::nullopt;
    o.env["DOCKER_CONFIG"] = std::nullopt;
    if (!registries_conf_.empty()) o.env["HUTCH_REGISTRIES_CONF"] = registries_conf_;
    else o.env["HUTCH_REGISTRIES_CONF"] = std::nullopt;
    if (o.timeout == 60s) o.timeout = 180s;
    return o;
  }
  Result h(const std::vector<std::string>& args, Options o = {}) const { return hutch(args, env(std::move(o))); }
  void write_registries_conf(const std::string& text) {
    registries_conf_ = path("registries.conf");
    write_file(registries_conf_, text);
  }
  std::string default_auth_file() const { return home_ + "/.config/containers/auth.json"; }

  // What reaches REG: TLS verification and credentials as the setup needs.
  static std::vector<std::string> access(const TestRegistry& reg, bool with_creds = true) {
    std::vector<std::string> a;
    if (reg.setup() == RegSetup::kTlsBasic) a = {"--cert-dir", reg.cert_dir()};
    else a = {"--tls-verify=false"};
    if (with_creds && reg.setup() != RegSetup::kPlain) {
      a.push_back("--creds");
      a.push_back(reg.creds());
    }
    return a;
  }

  // hutch pull ARGS... REF: exit 0, stdout exactly one line, the 64-hex ID, stderr empty.
  std::string pull_ok(const std::string& ref, const std::vector<std::string>& args) {
    std::vector<std::string> a = {"pull"};
    a.insert(a.end(), args.begin(), args.end());
    a.push_back(ref);
    Result r = h(a);
    EXPECT_OK(r);
    auto ls = lines(r.out);
    if (r.code != 0 || ls.empty()) return "";
    EXPECT_EQ(ls.size(), 1u) << "with stdout not a terminal, pull prints the ID alone" << r;
    EXPECT_TRUE(is_hex(ls.back(), 64)) << "the last line of pull is the image ID" << r;
    EXPECT_EQ(r.err, "") << "with stdout not a terminal, pull is silent on stderr" << r;
    return is_hex(ls.back(), 64) ? ls.back() : "";
  }
  nlohmann::json inspect(const std::string& image) {
    Result r = h({"inspect", image});
    if (r.code != 0) {
      ADD_FAILURE() << "inspect " << image << r;
      return nullptr;
    }
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_array() || j.size() != 1) {
      ADD_FAILURE() << "inspect " << image << " is not a JSON array of one" << r;
      return nullptr;
    }
    return j[0];
  }
  std::vector<std::string> image_ids() const {
    Result r = h({"images", "-q", "--no-trunc"});
    EXPECT_OK(r);
    std::vector<std::string> out;
    for (const auto& l : lines(r.out)) out.push_back(strip_sha(trim(l)));
    return out;
  }

  std::string home_;
  std::string registries_conf_;
  std::vector<std::unique_ptr<TestRegistry>> regs_;
  std::vector<std::unique_ptr<FaultProxy>> proxies_;
};

// ---- every setup: pull, run, tag, push, pull back ----------------------------------------------

class RegistrySetupTest : public RegistryTest, public ::testing::WithParamInterface<RegSetup> {};

TEST_P(RegistrySetupTest, PullRunTagPushPullBack) {
  TestRegistry& reg = registry(GetParam());
  ASSERT_TRUE(reg.running());
  TestImage img = seed(reg, "test/app:v1");
  ASSERT_EQ(img.error, "");
  std::string ref = reg.host() + "/test/app:v1";

  std::string id = pull_ok(ref, access(reg));
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(id, strip_sha(img.platforms[0].config_digest)) << "the image ID is the config's digest";
  EXPECT_EQ(image_ids(), std::vector<std::string>{id});

  Result run = h({"run", "--rm", ref, "cat", "/layer1.txt", "/layer2.txt"});
  ASSERT_OK(run);
  EXPECT_EQ(run.out, "layer 1 of the test image latest\nlayer 2 of the test image latest\n") << run;
  ASSERT_OK(h({"run", "--rm", ref, "true"}));

  nlohmann::json j = inspect(ref);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["Architecture"], host_oci_arch()) << j.dump(2);
  EXPECT_EQ(j["Os"], "linux") << j.dump(2);
  EXPECT_EQ(j["RepoDigests"], nlohmann::json({reg.host() + "/test/app@" + img.platforms[0].manifest_digest})) << j.dump(2);
  ASSERT_TRUE(j["History"].is_array()) << j.dump(2);
  EXPECT_EQ(j["History"].size(), 3u) << j.dump(2);
  ASSERT_TRUE(j["RootFS"]["Layers"].is_array()) << j.dump(2);
  EXPECT_EQ(j["RootFS"]["Layers"], nlohmann::json(img.diff_ids)) << j.dump(2);

  Result dg = h({"images", "--digests"});
  ASSERT_OK(dg);
  EXPECT_TRUE(contains(dg.out, img.platforms[0].manifest_digest)) << dg;

  std::string other = reg.host() + "/other/app:v2";
  ASSERT_OK(h({"tag", ref, other}));
  std::vector<std::string> push = {"push"};
  auto acc = access(reg);
  push.insert(push.end(), acc.begin(), acc.end());
  push.push_back(other);
  Result p = h(push);
  ASSERT_OK(p) << reg.log();
  EXPECT_TRUE(reg.has_tag("other/app", "v2"));

  // What hutch pushed, skopeo reads and copies.
  Result si = reg.skopeo_inspect("other/app:v2");
  ASSERT_OK(si);
  auto sj = nlohmann::json::parse(si.out, nullptr, false);
  EXPECT_EQ(sj["Architecture"], host_oci_arch()) << si;
  EXPECT_EQ(sj["Layers"].size(), 3u) << si;
  std::vector<std::string> cp = {"copy", "--retry-times", "0"};
  auto src = reg.skopeo_src_args();
  cp.insert(cp.end(), src.begin(), src.end());
  cp.push_back("docker://" + reg.host() + "/other/app:v2");
  cp.push_back("oci:" + path("copied") + ":v2");
  ASSERT_OK(skopeo(cp));
  Result cfg = skopeo({"inspect", "--raw", "--config", "oci:" + path("copied") + ":v2"});
  ASSERT_OK(cfg);
  EXPECT_EQ("sha256:" + sha256_hex(cfg.out), "sha256:" + id) << "the config went up byte for byte" << cfg;

  // Gone from the store, back from the registry: the same image.
  ASSERT_OK(h({"rmi", ref, other}));
  EXPECT_TRUE(image_ids().empty());
  std::string again = pull_ok(other, access(reg));
  EXPECT_EQ(again, id);
  std::string by_digest = pull_ok("docker://" + reg.host() + "/test/app@" + img.platforms[0].manifest_digest, access(reg));
  EXPECT_EQ(by_digest, id);
}

INSTANTIATE_TEST_SUITE_P(RegistrySetups, RegistrySetupTest, ::testing::Values(RegSetup::kPlain, RegSetup::kTlsBasic, RegSetup::kToken),
                         [](const auto& info) { return setup_name(info.param); });

// The setups that take credentials.
class RegistryAuthTest : public RegistryTest, public ::testing::WithParamInterface<RegSetup> {};

TEST_P(RegistryAuthTest, WrongPasswordIsRefusedAndNeverShown) {
  TestRegistry& reg = registry(GetParam());
  ASSERT_TRUE(reg.running());
  ASSERT_EQ(seed(reg, "test/app:v1").error, "");
  const std::string wrong = "Wr0ngSecret-" + reg.password().substr(3, 6) + "-xyzzy";
  std::vector<std::string> tls = reg.tls() ? std::vector<std::string>{"--cert-dir", reg.cert_dir()}
                                           : std::vector<std::string>{"--tls-verify=false"};
  for (bool debug : {false, true}) {
    std::vector<std::string> a;
    if (debug) a = {"--log-level", "debug"};
    a.push_back("pull");
    a.insert(a.end(), tls.begin(), tls.end());
    a.insert(a.end(), {"--creds", reg.username() + ":" + wrong, reg.host() + "/test/app:v1"});
    Result r = h(a);
    EXPECT_TRUE(EngineError(r, {reg.host()})) << "debug=" << debug;
    EXPECT_TRUE(icontains(r.err, "unauthorized") || icontains(r.err, "authentication") || icontains(r.err, "credentials") ||
                icontains(r.err, "password"))
        << r;
    for (const std::string& secret : {wrong, reg.password(), base64_encode(reg.username() + ":" + wrong)}) {
      EXPECT_FALSE(contains(r.out, secret)) << "stdout shows a secret (debug=" << debug << ")" << r;
      EXPECT_FALSE(contains(r.err, secret)) << "stderr shows a secret (debug=" << debug << ")" << r;
    }
  }
  EXPECT_TRUE(image_ids().empty());

  // login with it: refused, nothing written, nothing shown.
  std::vector<std::string> login = {"login", "-u", reg.username(), "-p", wrong};
  login.insert(login.end(), tls.begin(), tls.end());
  login.push_back(reg.host());
  Result l = h(login);
  EXPECT_TRUE(EngineError(l, {reg.host()}));
  EXPECT_FALSE(contains(l.out + l.err, wrong)) << l;
  EXPECT_FALSE(fs::exists(default_auth_file()) && contains(read_file(default_auth_file()), reg.host()))
      << read_file(default_auth_file());
}

INSTANTIATE_TEST_SUITE_P(RegistrySetups, RegistryAuthTest, ::testing::Values(RegSetup::kTlsBasic, RegSetup::kToken),
                         [](const auto& info) { return setup_name(info.param); });

// ---- TLS -----------------------------------------------------------------------------------------

TEST_F(RegistryTest, TlsIsVerifiedAgainstCertsD) {
  TestRegistry& reg = registry(RegSetup::kTlsBasic);
  ASSERT_TRUE(reg.running());
  ASSERT_EQ(seed(reg, "test/app:v1").error, "");
  std::string ref = reg.host() + "/test/app:v1";
  // Our CA is nowhere hutch looks: the certificate is not trusted.
  Result untrusted = h({"pull", "--creds", reg.creds(), ref});
  EXPECT_TRUE(EngineError(untrusted, {reg.host()}));
  EXPECT_TRUE(icontains(untrusted.err, "certificate")) << untrusted;
  EXPECT_FALSE(contains(untrusted.err, reg.password())) << untrusted;
  // ~/.config/containers/certs.d/HOST:PORT/ca.crt is.
  std::string d = home_ + "/.config/containers/certs.d/" + reg.host();
  fs::create_directories(d);
  fs::copy_file(reg.ca_cert(), d + "/ca.crt");
  EXPECT_FALSE(pull_ok(ref, {"--creds", reg.creds()}).empty());
  // --tls-verify=false takes the server as it is, without any CA.
  fs::remove_all(home_ + "/.config/containers/certs.d");
  ASSERT_OK(h({"rmi", ref}));
  EXPECT_FALSE(pull_ok(ref, {"--tls-verify=false", "--creds", reg.creds()}).empty());
}

// ---- login / logout ------------------------------------------------------------------------------

TEST_F(RegistryTest, LoginWritesAuthFileThatPullAndPushUse) {
  TestRegistry& reg = registry(RegSetup::kTlsBasic);
  ASSERT_TRUE(reg.running());
  ASSERT_EQ(seed(reg, "test/app:v1").error, "");
  std::vector<std::string> tls = {"--cert-dir", reg.cert_dir()};

  Result l = h({"login", "-u", reg.username(), "--password-stdin", "--cert-dir", reg.cert_dir(), reg.host()},
               [&] { Options o; o.input = reg.password() + "\n"; return o; }());
  ASSERT_OK(l);
  EXPECT_TRUE(contains(l.out, "Login Succeeded!")) << l;
  EXPECT_FALSE(contains(l.out + l.err, reg.password())) << l;
  ASSERT_TRUE(fs::exists(default_auth_file())) << "login writes ~/.config/containers/auth.json";
  struct stat st{};
  ASSERT_EQ(stat(default_auth_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto auth = nlohmann::json::parse(read_file(default_auth_file()), nullptr, false);
  ASSERT_TRUE(auth.is_object()) << read_file(default_auth_file());
  EXPECT_EQ(auth["auths"][reg.host()]["auth"], base64_encode(reg.creds())) << auth.dump(2);

  // pull and push with no --creds: auth.json has them.
  std::string id = pull_ok(reg.host() + "/test/app:v1", tls);
  ASSERT_FALSE(id.empty());
  ASSERT_OK(h({"tag", reg.host() + "/test/app:v1", reg.host() + "/test/app:v2"}));
  ASSERT_OK(h({"push", "--cert-dir", reg.cert_dir(), reg.host() + "/test/app:v2"}));
  EXPECT_TRUE(reg.has_tag("test/app", "v2"));

  // logout: gone from the file, and pulls are refused again.
  Result lo = h({"logout", reg.host()});
  ASSERT_OK(lo);
  auth = nlohmann::json::parse(read_file(default_auth_file()), nullptr, false);
  EXPECT_FALSE(auth.is_object() && auth.contains("auths") && auth["auths"].contains(reg.host())) << auth.dump(2);
  ASSERT_OK(h({"rmi", reg.host() + "/test/app:v1", reg.host() + "/test/app:v2"}));
  Result refused = h({"pull", "--cert-dir", reg.cert_dir(), reg.host() + "/test/app:v1"});
  EXPECT_TRUE(EngineError(refused, {reg.host()}));
  Result again = h({"logout", reg.host()});
  EXPECT_NE(again.code, 0) << "logging out twice says it was not logged in" << again;
}

TEST_F(RegistryTest, LoginAuthfileAndEnvironment) {
  TestRegistry& reg = registry(RegSetup::kToken);
  ASSERT_TRUE(reg.running());
  ASSERT_EQ(seed(reg, "test/app:v1").error, "");
  std::string af = path("my-auth.json");
  Result l = h({"login", "--authfile", af, "-u", reg.username(), "-p", reg.password(), "--tls-verify=false", reg.host()});
  ASSERT_OK(l);
  EXPECT_TRUE(contains(l.out, "Login Succeeded!")) << l;
  EXPECT_TRUE(fs::exists(af));
  EXPECT_FALSE(fs::exists(default_auth_file()));
  EXPECT_FALSE(pull_ok(reg.host() + "/test/app:v1", {"--tls-verify=false", "--authfile", af}).empty());

  // REGISTRY_AUTH_FILE names it too.
  ASSERT_OK(h({"rmi", reg.host() + "/test/app:v1"}));
  Result p = hutch({"pull", "--tls-verify=false", reg.host() + "/test/app:v1"}, [&] {
    Options e = env();
    e.env["REGISTRY_AUTH_FILE"] = af;
    return e;
  }());
  EXPECT_OK(p);
  Result lo = h({"logout", "--authfile", af, "-a"});
  EXPECT_OK(lo);
  auto j = nlohmann::json::parse(read_file(af), nullptr, false);
  EXPECT_TRUE(!j.is_object() || !j.contains("auths") || j["auths"].empty()) << read_file(af);
}

// ---- registries.conf -------------------------------------------------------------------------------

TEST_F(RegistryTest, RegistriesConfInsecureSearchAliases) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  TestImage img = seed(reg, "test/app:v1");
  ASSERT_EQ(img.error, "");
  std::string want = strip_sha(img.platforms[0].config_digest);

  // Not insecure anywhere: TLS is tried against a plain-HTTP registry and fails.
  write_registries_conf("unqualified-search-registries = []\n");
  Result refused = h({"pull", reg.host() + "/test/app:v1"});
  EXPECT_TRUE(EngineError(refused, {reg.host()}));

  write_registries_conf("unqualified-search-registries = [\"" + reg.host() + "\"]\n\n"
                        "[[registry]]\nlocation = \"" + reg.host() + "\"\ninsecure = true\n\n"
                        "[aliases]\n\"myapp\" = \"" + reg.host() + "/test/app\"\n");
  EXPECT_EQ(pull_ok(reg.host() + "/test/app:v1", {}), want) << "insecure = true allows plain HTTP";
  ASSERT_OK(h({"rmi", reg.host() + "/test/app:v1"}));
  EXPECT_EQ(pull_ok("test/app:v1", {}), want) << "a short name through unqualified-search-registries";
  EXPECT_EQ(pull_ok("myapp:v1", {}), want) << "an alias";
  Result ls = h({"images"});
  ASSERT_OK(ls);
  EXPECT_TRUE(contains(ls.out, reg.host() + "/test/app")) << ls;
}

// A [[registry]] whose location has nothing, and a mirror that has the image: the mirror serves it,
// under the registry's name.
TEST_F(RegistryTest, RegistriesConfMirrorIsTriedFirst) {
  TestRegistry& mirror = registry(RegSetup::kPlain, "mirror");
  TestRegistry& primary = registry(RegSetup::kPlain, "primary");
  ASSERT_TRUE(mirror.running() && primary.running());
  TestImage img = seed(mirror, "mirrored/ns/app:v1");
  ASSERT_EQ(img.error, "");
  FaultProxy& px = proxy(mirror);
  write_registries_conf("[[registry]]\nprefix = \"" + primary.host() + "/ns\"\nlocation = \"" + primary.host() +
                        "/ns\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"" + px.host() +
                        "/mirrored/ns\"\ninsecure = true\n");
  std::string ref = primary.host() + "/ns/app:v1";
  EXPECT_EQ(pull_ok(ref, {}), strip_sha(img.platforms[0].config_digest));
  EXPECT_GE(px.count("/v2/mirrored/ns/app/manifests/v1"), 1) << "the manifest came from the mirror";
  Result ls = h({"images"});
  EXPECT_TRUE(contains(ls.out, primary.host() + "/ns/app")) << "named as asked, not as the mirror calls it" << ls;
  // Pushes go to the registry itself, never to a mirror.
  ASSERT_OK(h({"tag", ref, primary.host() + "/ns/app:v2"}));
  ASSERT_OK(h({"push", primary.host() + "/ns/app:v2"}));
  EXPECT_TRUE(primary.has_tag("ns/app", "v2"));
  EXPECT_FALSE(mirror.has_tag("mirrored/ns/app", "v2"));
}

// As containers/image does: the mirror is enough; the registry itself is only asked when no
// mirror has the image.
TEST_F(RegistryTest, RegistriesConfMirrorServesWhenTheRegistryIsDown) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  TestImage img = seed(reg, "test/app:v1");
  ASSERT_EQ(img.error, "");
  int closed = 0;
  {
    // A loopback port nothing listens on once this proxy is gone.
    FaultProxy tmp("127.0.0.1:1");
    ASSERT_EQ(tmp.start(), "");
    closed = tmp.port();
  }
  std::string down = "127.0.0.1:" + std::to_string(closed);
  write_registries_conf("[[registry]]\nprefix = \"" + down + "/mirrored\"\nlocation = \"" + down +
                        "/mirrored\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"" + reg.host() +
                        "/test\"\ninsecure = true\n");
  EXPECT_EQ(pull_ok(down + "/mirrored/app:v1", {}), strip_sha(img.platforms[0].config_digest));
  Result ls = h({"images"});
  EXPECT_TRUE(contains(ls.out, down + "/mirrored/app")) << ls;
}

// ---- integrity -----------------------------------------------------------------------------------------

TEST_F(RegistryTest, CorruptedBlobFailsNamingTheDigest) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  TestImage img = seed(reg, "test/app:v1");
  ASSERT_EQ(img.error, "");
  std::string d = img.layer_digests[1];
  std::string f = reg.blob_data_path(d);
  std::string bytes = read_file(f);
  ASSERT_FALSE(bytes.empty());
  bytes[bytes.size() / 2] ^= 0x01;  // same size, different bytes
  write_file(f, bytes);

  Result r = h({"pull", "--tls-verify=false", reg.host() + "/test/app:v1"});
  EXPECT_TRUE(EngineError(r, {d.substr(7)})) << "the error names the digest";
  EXPECT_TRUE(image_ids().empty()) << "no image from a failed pull";
  Result ls = h({"images"});
  EXPECT_FALSE(contains(ls.out, "test/app")) << ls;
  // A second try fails the same way (nothing bad was kept as good).
  Result r2 = h({"pull", "--tls-verify=false", reg.host() + "/test/app:v1"});
  EXPECT_TRUE(EngineError(r2, {d.substr(7)}));
}

TEST_F(RegistryTest, KilledPullLeavesNothingAndTheNextOneResumes) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  const uint64_t big_size = 24u << 20;
  TestImage img = seed(reg, "test/big:1", TestImageSpec().with_layers(2).with_big_layer(big_size));
  ASSERT_EQ(img.error, "");
  std::string big = img.layer_digests.back();
  FaultProxy& px = proxy(reg);
  px.throttle("/blobs/" + big, 2u << 20);  // ~12 s for the big layer
  std::string ref = px.host() + "/test/big:1";

  {
    Proc p(cmd({"pull", "--tls-verify=false", ref}), env());
    // Halfway: the small layers are in, the big one has started.
    auto small_done = [&] {
      for (size_t i = 0; i + 1 < img.layer_digests.size(); ++i) {
        bool done = false;
        for (const auto& rq : px.requests("/blobs/" + img.layer_digests[i], "GET"))
          if (rq.status == 200 && rq.body_bytes == img.layer_sizes[i]) done = true;
        if (!done) return false;
      }
      return true;
    };
    auto deadline = std::chrono::steady_clock::now() + 90s;
    while (std::chrono::steady_clock::now() < deadline && !(small_done() && px.body_bytes("/blobs/" + big) > (4u << 20)))
      std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(small_done()) << "the small layers never came through the proxy" << p.wait();
    ASSERT_GT(px.body_bytes("/blobs/" + big), 4u << 20) << "the big layer never started" << p.wait();
    ASSERT_LT(px.body_bytes("/blobs/" + big), big_size) << "the pull was too fast to be killed halfway";
    ::kill(-p.pid(), SIGKILL);
    Result killed = p.wait();
    EXPECT_EQ(killed.code, 128 + SIGKILL) << killed;
  }
  EXPECT_TRUE(image_ids().empty()) << "a killed pull leaves no image";
  Result ls = h({"images"});
  EXPECT_FALSE(contains(ls.out, "test/big")) << ls;

  std::vector<int> small_before;
  for (size_t i = 0; i + 1 < img.layer_digests.size(); ++i) small_before.push_back(px.count("/blobs/" + img.layer_digests[i], "GET"));
  px.clear_rules();
  std::string id = pull_ok(ref, {"--tls-verify=false"});
  EXPECT_EQ(id, strip_sha(img.platforms[0].config_digest));
  for (size_t i = 0; i + 1 < img.layer_digests.size(); ++i)
    EXPECT_EQ(px.count("/blobs/" + img.layer_digests[i], "GET"), small_before[i])
        << "layer " << i << " (" << img.layer_digests[i] << ") was fetched again after the kill";
  ASSERT_OK(h({"run", "--rm", ref, "sh", "-c", "test $(wc -c < /big.bin) -eq " + std::to_string(big_size)}));
}

// ---- platforms, compression ----------------------------------------------------------------------------

TEST_F(RegistryTest, MultiPlatformIndexPicksThePlatform) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  TestImage img = seed(reg, "test/multi:1", TestImageSpec().with_tag("multi").with_layers(1).with_platforms());
  ASSERT_EQ(img.error, "");
  ASSERT_EQ(img.platforms.size(), 2u);
  std::string ref = reg.host() + "/test/multi:1";

  std::string host_id = pull_ok(ref, {"--tls-verify=false"});
  EXPECT_EQ(host_id, strip_sha(img.platforms[0].config_digest)) << "the host's platform by default";
  auto j = inspect(host_id);
  EXPECT_EQ(j["Architecture"], host_oci_arch());
  // RepoDigests name the index it came through and its own manifest.
  for (const auto& d : {img.top_digest, img.platforms[0].manifest_digest})
    EXPECT_TRUE(contains(j["RepoDigests"].dump(), reg.host() + "/test/multi@" + d)) << d << j.dump(2);
  ASSERT_OK(h({"run", "--rm", ref, "true"}));

  std::string other = pull_ok(ref, {"--tls-verify=false", "--platform", "linux/" + other_oci_arch()});
  EXPECT_EQ(other, strip_sha(img.platforms[1].config_digest));
  auto jo = inspect(other);
  EXPECT_EQ(jo["Architecture"], other_oci_arch()) << jo.dump(2);
  EXPECT_EQ(jo["Os"], "linux");
  EXPECT_EQ(pull_ok(ref, {"--tls-verify=false", "--arch", other_oci_arch()}), other);

  Result unknown = h({"pull", "--tls-verify=false", "--platform", "linux/s390x", ref});
  EXPECT_TRUE(EngineError(unknown, {"linux/s390x", "linux/amd64", "linux/arm64"})) << "the error lists what there is";
}

TEST_F(RegistryTest, ZstdLayerPullsAndRuns) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  ASSERT_EQ(seed(reg, "test/z:1", TestImageSpec().with_layers(1).with_uncompressed(), {"--dest-compress-format", "zstd"}).error, "");
  Result raw = reg.skopeo_inspect("test/z:1", {"--raw"});
  ASSERT_OK(raw);
  ASSERT_TRUE(contains(raw.out, "tar+zstd")) << "the fixture pushed zstd layers" << raw;
  std::string ref = reg.host() + "/test/z:1";
  ASSERT_FALSE(pull_ok(ref, {"--tls-verify=false"}).empty());
  Result r = h({"run", "--rm", ref, "cat", "/layer1.txt"});
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "layer 1 of the test image latest\n");
}

TEST_F(RegistryTest, PushZstdAndToArchives) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  Result p = h({"push", "--tls-verify=false", "--compression-format", "zstd", "bb", reg.host() + "/test/bbz:1"});
  ASSERT_OK(p) << reg.log();
  Result raw = reg.skopeo_inspect("test/bbz:1", {"--raw"});
  ASSERT_OK(raw);
  EXPECT_TRUE(contains(raw.out, "application/vnd.oci.image.layer.v1.tar+zstd")) << raw;
  // And docker://, oci:, oci-archive:, docker-archive: destinations, all read by skopeo.
  ASSERT_OK(h({"push", "--tls-verify=false", "bb", "docker://" + reg.host() + "/test/bbgz:1"}));
  EXPECT_TRUE(reg.has_tag("test/bbgz", "1"));
  ASSERT_OK(h({"push", "bb", "oci:" + path("layout") + ":bb"}));
  ASSERT_OK(h({"push", "bb", "oci-archive:" + path("bb-oci.tar")}));
  ASSERT_OK(h({"push", "bb", "docker-archive:" + path("bb-docker.tar")}));
  for (const std::string& src : {"oci:" + path("layout") + ":bb", "oci-archive:" + path("bb-oci.tar"),
                                "docker-archive:" + path("bb-docker.tar")}) {
    Result c = skopeo({"inspect", "--raw", "--config", src});
    ASSERT_OK(c);
    EXPECT_EQ(sha256_hex(c.out), id) << src << c;
  }
}

// ---- save / load ----------------------------------------------------------------------------------------

TEST_F(RegistryTest, SavedArchivesAreReadBySkopeo) {
  std::string id = import_busybox("bb");
  ASSERT_FALSE(id.empty());
  ASSERT_OK(h({"tag", "bb", "localhost/test/saved:1"}));
  Result d = h({"save", "-o", path("d.tar"), "--format", "docker-archive", "localhost/test/saved:1"});
  ASSERT_OK(d);
  EXPECT_EQ(d.out, "") << d;
  Result c = skopeo({"copy", "docker-archive:" + path("d.tar"), "oci:" + path("from-docker") + ":x"});
  ASSERT_OK(c);
  // skopeo reads the archive's config as hutch wrote it...
  Result ci = skopeo({"inspect", "--raw", "--config", "docker-archive:" + path("d.tar")});
  ASSERT_OK(ci);
  EXPECT_EQ(sha256_hex(ci.out), id) << ci;
  // ... and its copy into a layout has the same layers (c/image re-marshals the config when it
  // converts a docker manifest to OCI, so the config's digest is not kept across that copy).
  Result co = skopeo({"inspect", "--raw", "--config", "oci:" + path("from-docker") + ":x"});
  ASSERT_OK(co);
  auto coj = nlohmann::json::parse(co.out, nullptr, false);
  EXPECT_EQ(coj["rootfs"]["diff_ids"], nlohmann::json({suite().tar_sha256})) << co;
  Result names = run({"tar", "-xOf", path("d.tar"), "manifest.json"});
  ASSERT_OK(names);
  auto mj = nlohmann::json::parse(names.out, nullptr, false);
  ASSERT_TRUE(mj.is_array() && mj.size() == 1) << names;
  EXPECT_EQ(mj[0]["RepoTags"], nlohmann::json({"localhost/test/saved:1"})) << names;

  ASSERT_OK(h({"save", "-o", path("o.tar"), "--format", "oci-archive", "localhost/test/saved:1"}));
  Result c2 = skopeo({"copy", "oci-archive:" + path("o.tar"), "oci:" + path("from-oci") + ":x"});
  ASSERT_OK(c2);
  Result ci2 = skopeo({"inspect", "--raw", "--config", "oci:" + path("from-oci") + ":x"});
  ASSERT_OK(ci2);
  EXPECT_EQ(sha256_hex(ci2.out), id) << ci2;

  ASSERT_OK(h({"save", "-o", path("dir"), "--format", "oci-dir", "localhost/test/saved:1"}));
  EXPECT_TRUE(fs::exists(path("dir") + "/index.json"));
  Result ci3 = skopeo({"inspect", "--raw", "--config", "oci:" + path("dir")});
  ASSERT_OK(ci3);
  EXPECT_EQ(sha256_hex(ci3.out), id) << ci3;

  // hutch reads its own back: same ID.
  ASSERT_OK(h({"rmi", "bb", "localhost/test/saved:1"}));
  Result l = h({"load", "-i", path("d.tar")});
  ASSERT_OK(l);
  EXPECT_TRUE(contains(l.out, "Loaded image: localhost/test/saved:1")) << l;
  EXPECT_EQ(image_ids(), std::vector<std::string>{id});
}

TEST_F(RegistryTest, LoadsArchivesMadeBySkopeo) {
  TestImage img = image(TestImageSpec().with_tag("v1").with_layers(1));
  ASSERT_EQ(img.error, "");
  std::string id = strip_sha(img.platforms[0].config_digest);
  ASSERT_OK(skopeo({"copy", img.ref(), "docker-archive:" + path("d.tar") + ":example.test/skopeo/made:v1"}));
  ASSERT_OK(skopeo({"copy", img.ref(), "oci-archive:" + path("o.tar") + ":v1"}));

  Result l = h({"load", "-i", path("d.tar")});
  ASSERT_OK(l);
  EXPECT_EQ(lines(l.out), std::vector<std::string>{"Loaded image: example.test/skopeo/made:v1"}) << l;
  EXPECT_EQ(image_ids(), std::vector<std::string>{id}) << "skopeo's docker-archive keeps the config";
  Result r = h({"run", "--rm", "example.test/skopeo/made:v1", "cat", "/layer1.txt"});
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "layer 1 of the test image v1\n");

  ASSERT_OK(h({"rmi", "example.test/skopeo/made:v1"}));
  Options in;
  in.input = read_file(path("o.tar"));
  Result l2 = h({"load"}, in);
  ASSERT_OK(l2);
  EXPECT_TRUE(contains(l2.out, "Loaded image: ")) << l2;
  EXPECT_EQ(image_ids(), std::vector<std::string>{id}) << l2;
  Result q = h({"load", "-q", "-i", path("o.tar")});
  ASSERT_OK(q);
}

// ---- token auth -----------------------------------------------------------------------------------------

TEST_F(RegistryTest, TokensAreReusedWithinOnePull) {
  TestRegistry& reg = registry(RegSetup::kToken);
  ASSERT_TRUE(reg.running());
  TestImage img = seed(reg, "test/app:v1", TestImageSpec().with_layers(4));
  ASSERT_EQ(img.error, "");
  int before = reg.token_requests();
  ASSERT_FALSE(pull_ok(reg.host() + "/test/app:v1", access(reg)).empty());
  auto log = reg.token_log();
  int made = reg.token_requests() - before;
  // 1 manifest + 1 config + 5 layers: a token each would be 7.
  EXPECT_GE(made, 1);
  EXPECT_LE(made, 2) << "one pull asks the issuer once or twice, not per blob";
  for (size_t i = static_cast<size_t>(before); i < log.size(); ++i) {
    EXPECT_EQ(log[i].user, reg.username());
    for (const auto& s : log[i].scopes) EXPECT_EQ(s, "repository:test/app:pull") << "a pull asks for pull only";
  }
}

TEST_F(RegistryTest, AnonymousPullOnlyWhenAllowed) {
  TestRegistry& reg = registry(RegSetup::kToken);
  ASSERT_TRUE(reg.running());
  ASSERT_EQ(seed(reg, "test/app:v1").error, "");
  std::string ref = reg.host() + "/test/app:v1";
  Result r = h({"pull", "--tls-verify=false", ref});
  EXPECT_TRUE(EngineError(r, {reg.host()}));
  EXPECT_TRUE(image_ids().empty());
  reg.allow_anonymous_pull(true);
  std::string id = pull_ok(ref, {"--tls-verify=false"});
  EXPECT_FALSE(id.empty());
  EXPECT_EQ(reg.token_log().back().user, "");
  ASSERT_OK(h({"tag", ref, reg.host() + "/test/app:v2"}));
  Result p = h({"push", "--tls-verify=false", reg.host() + "/test/app:v2"});
  EXPECT_TRUE(EngineError(p, {reg.host()})) << "anonymous users may not push";
  EXPECT_FALSE(reg.has_tag("test/app", "v2"));
}

// ---- retries --------------------------------------------------------------------------------------------

TEST_F(RegistryTest, SurvivesServerErrorsAndDroppedBlobs) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  TestImage img = seed(reg, "test/app:v1", TestImageSpec().with_layers(1).with_big_layer(3u << 20));
  ASSERT_EQ(img.error, "");
  FaultProxy& px = proxy(reg);
  std::string big = img.layer_digests.back();
  px.fail_first("/manifests/", 2);
  px.fail_first("/blobs/" + img.layer_digests[1], 2, 503, "GET");
  px.drop_after("/blobs/" + big, 1u << 20);
  std::string id = pull_ok(px.host() + "/test/app:v1", {"--tls-verify=false"});
  EXPECT_EQ(id, strip_sha(img.platforms[0].config_digest));

  auto m = px.requests("/manifests/");
  ASSERT_GE(m.size(), 3u);
  EXPECT_EQ(m[0].status, 503);
  EXPECT_EQ(m[1].status, 503);
  auto bl = px.requests("/blobs/" + big, "GET");
  ASSERT_GE(bl.size(), 2u) << "the dropped blob was asked again";
  EXPECT_TRUE(bl[0].dropped);
  std::string range = bl[1].header("range");
  std::smatch mt;
  ASSERT_TRUE(std::regex_match(range, mt, std::regex("bytes=([0-9]+)-"))) << "the resumed request carries Range: bytes=N- (got \"" << range << "\")";
  uint64_t from = std::stoull(mt[1]);
  EXPECT_GT(from, 0u);
  EXPECT_LE(from, 1u << 20);
  EXPECT_EQ(bl[1].status, 206);
  ASSERT_OK(h({"run", "--rm", px.host() + "/test/app:v1", "sh", "-c", "test $(wc -c < /big.bin) -eq " + std::to_string(3u << 20)}));
}

TEST_F(RegistryTest, TooManyFailuresGiveUpClearly) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  ASSERT_EQ(seed(reg, "test/app:v1").error, "");
  FaultProxy& px = proxy(reg);
  px.fail_first("/manifests/", 100);
  Result r = h({"pull", "--tls-verify=false", px.host() + "/test/app:v1"});
  EXPECT_TRUE(EngineError(r, {px.host()}));
  EXPECT_TRUE(icontains(r.err, "503") || icontains(r.err, "unavailable")) << "the error says what the registry answered" << r;
  EXPECT_LE(px.count("/manifests/"), 10) << "retries are bounded";
  EXPECT_TRUE(image_ids().empty());
}

TEST_F(RegistryTest, MissingTagIsAnError) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  ASSERT_EQ(seed(reg, "test/app:v1").error, "");
  Result r = h({"pull", "--tls-verify=false", reg.host() + "/test/app:nope"});
  EXPECT_TRUE(EngineError(r, {reg.host() + "/test/app:nope"}));
  EXPECT_EQ(r.out, "") << r;
}

// A registry that redirects blob downloads to storage on another host: the credentials go to the
// registry only, never to where it points.
TEST_F(RegistryTest, CredentialsDoNotFollowARedirectToAnotherHost) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  TestImage img = seed(reg, "test/app:v1", TestImageSpec().with_layers(2));
  ASSERT_EQ(img.error, "");
  FaultProxy& storage = proxy(reg);  // "blob storage": another host (port), logs what reaches it
  FaultProxy& front = proxy(reg);    // the registry users talk to, with Basic auth
  front.require_basic("alice", "s3cret-pw");
  front.redirect("/blobs/sha256:", storage.url(), "GET");
  std::string id = pull_ok(front.host() + "/test/app:v1", {"--tls-verify=false", "--creds", "alice:s3cret-pw"});
  EXPECT_EQ(id, strip_sha(img.platforms[0].config_digest));
  auto fronted = front.requests("/manifests/", "GET");
  ASSERT_FALSE(fronted.empty());
  EXPECT_TRUE(icontains(fronted.back().header("authorization"), "basic")) << "the registry got the credentials";
  auto blobs = storage.requests("/blobs/", "GET");
  ASSERT_GE(blobs.size(), 3u) << "config and layers were fetched from the storage host";
  for (const auto& b : blobs) EXPECT_EQ(b.header("authorization"), "") << "credentials leaked to the storage host: " << b.target;
  EXPECT_EQ(storage.count("/manifests/"), 0);
}

// [plugins.docker] chunk_size: a push in PATCHed chunks pulls back the same image.
TEST_F(RegistryTest, ChunkedUploadsPushTheSameImage) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  ASSERT_EQ(seed(reg, "test/app:v1", TestImageSpec().with_layers(1).with_big_layer(1u << 20)).error, "");
  std::string id = pull_ok(reg.host() + "/test/app:v1", {"--tls-verify=false"});
  ASSERT_FALSE(id.empty());
  FaultProxy& px = proxy(reg);
  std::string conf = path("hutch.conf");
  write_file(conf, "[plugins.docker]\nchunk_size = 300000\n");
  Options o;
  o.env["HUTCH_CONFIG"] = conf;
  ASSERT_OK(h({"push", "--tls-verify=false", reg.host() + "/test/app:v1", px.host() + "/chunked/app:v1"}, o));
  EXPECT_GE(px.count("/blobs/uploads/", "PATCH"), 4) << "a 1 MiB layer in 300 kB chunks is four PATCHes or more";
  ASSERT_OK(h({"rmi", "-f", id}));
  EXPECT_EQ(pull_ok(reg.host() + "/chunked/app:v1", {"--tls-verify=false"}), id);
}

// On a terminal, pull draws a line per blob with bytes, total and rate, then "done"; the image ID
// is still the last thing it prints.
TEST_F(RegistryTest, ProgressOnATerminal) {
  if (!Tmux::available()) {
    HUTCH_SKIP_OUTSIDE_CI("tmux is not installed (scripts/install-deps.sh installs it)");
  }
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  TestImage img = seed(reg, "test/app:v1", TestImageSpec().with_layers(1).with_big_layer(4u << 20));
  ASSERT_EQ(img.error, "");
  FaultProxy& px = proxy(reg);
  px.throttle("/blobs/" + img.layer_digests.back(), 1u << 20);  // about four seconds of progress
  Tmux tmux(path("tmux.sock"));
  std::vector<std::string> argv = {"env", "-u", "XDG_RUNTIME_DIR", "-u", "XDG_CONFIG_HOME", "-u", "HUTCH_REGISTRIES_CONF",
                                   "HOME=" + home_};
  for (const auto& a : cmd({"pull", "--tls-verify=false", px.host() + "/test/app:v1"})) argv.push_back(a);
  std::string line = Tmux::shell_line(argv) + "; echo pull-exit-$?; sleep 60";
  ASSERT_EQ(tmux.run({"new-session", "-d", "-s", "pull", "-x", "150", "-y", "20", line}).code, 0);
  std::string pane;
  std::string big = strip_sha(img.layer_digests.back()).substr(0, 12);
  ASSERT_TRUE(tmux.pane_shows("pull", "MiB/s", &pane, 100)) << "no progress with rate while the big layer came" << pane;
  EXPECT_TRUE(contains(pane, "Copying blob " + big)) << pane;
  EXPECT_TRUE(contains(pane, " / 4.0MiB")) << "the line shows the blob's total" << pane;
  ASSERT_TRUE(tmux.pane_shows("pull", "pull-exit-0", &pane, 300)) << pane;
  EXPECT_TRUE(contains(pane, "Copying blob " + big + " done")) << pane;
  EXPECT_TRUE(contains(pane, strip_sha(img.platforms[0].config_digest))) << "the image ID is printed" << pane;
  // -q: nothing but the ID, even on a terminal.
  ASSERT_OK(h({"rmi", "-f", px.host() + "/test/app:v1"}));
  std::vector<std::string> quiet = {"env", "-u", "XDG_RUNTIME_DIR", "-u", "XDG_CONFIG_HOME", "-u", "HUTCH_REGISTRIES_CONF",
                                    "HOME=" + home_};
  for (const auto& a : cmd({"pull", "-q", "--tls-verify=false", reg.host() + "/test/app:v1"})) quiet.push_back(a);
  ASSERT_EQ(tmux.run({"new-session", "-d", "-s", "quiet", "-x", "150", "-y", "20", Tmux::shell_line(quiet) + "; echo quiet-exit-$?; sleep 60"}).code, 0);
  ASSERT_TRUE(tmux.pane_shows("quiet", "quiet-exit-0", &pane, 300)) << pane;
  EXPECT_FALSE(contains(pane, "Copying")) << pane;
}

// A push to another repository of the registry the image came from mounts its blobs there
// (POST ?mount=&from=) instead of uploading them again.
TEST_F(RegistryTest, PushWithinARegistryMountsBlobs) {
  TestRegistry& reg = registry(RegSetup::kPlain);
  ASSERT_TRUE(reg.running());
  TestImage img = seed(reg, "team/app:v1", TestImageSpec().with_layers(2));
  ASSERT_EQ(img.error, "");
  FaultProxy& px = proxy(reg);
  std::string id = pull_ok(px.host() + "/team/app:v1", {"--tls-verify=false"});
  ASSERT_FALSE(id.empty());
  ASSERT_OK(h({"push", "--tls-verify=false", px.host() + "/team/app:v1", px.host() + "/other/app:v1"}));
  auto mounts = px.requests("mount=", "POST");
  ASSERT_GE(mounts.size(), img.layer_digests.size()) << "each layer was offered for a mount";
  for (const auto& m : mounts) {
    EXPECT_EQ(m.status, 201) << m.target;
    EXPECT_TRUE(contains(m.target, "from=team%2Fapp") || contains(m.target, "from=team/app")) << m.target;
  }
  for (const auto& d : img.layer_digests)
    EXPECT_EQ(px.count("digest=" + d, "PUT"), 0) << "layer " << d << " was uploaded, not mounted";
  EXPECT_TRUE(reg.has_tag("other/app", "v1"));
  ASSERT_OK(h({"rmi", "-f", id}));
  EXPECT_EQ(pull_ok(reg.host() + "/other/app:v1", {"--tls-verify=false"}), id);
}

// pull takes the archive transports too: an OCI layout directory and an oci-archive.
TEST_F(RegistryTest, PullFromOciLayoutAndArchive) {
  TestImage img = image(TestImageSpec().with_layers(1));
  ASSERT_EQ(img.error, "");
  std::string want = strip_sha(img.platforms[0].config_digest);
  Result r = h({"pull", "-q", img.ref()});
  ASSERT_OK(r);
  EXPECT_EQ(trim(r.out), want) << r;
  ASSERT_OK(h({"save", "--format", "oci-archive", "-o", path("img.oci.tar"), want}));
  ASSERT_OK(h({"rmi", "-f", want}));
  r = h({"pull", "-q", "oci-archive:" + path("img.oci.tar")});
  ASSERT_OK(r);
  EXPECT_EQ(trim(r.out), want) << r;
  ASSERT_OK(h({"run", "--rm", want, "true"}));
}

}  // namespace
}  // namespace hit
