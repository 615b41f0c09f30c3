// The registry fixture proves itself with skopeo, curl and its own HTTP client: no hutch command
// beyond the harness's is needed.
#include "registry_fixture.hpp"

#include <thread>

namespace hit {
namespace {

using RegSetup = TestRegistry::Setup;

class RegistryFixtureTest : public FreshTest {
 protected:
  // A started registry (the test fails when it cannot start).
  std::unique_ptr<TestRegistry> start(RegSetup setup, const std::string& name = "reg") {
    auto reg = std::make_unique<TestRegistry>(setup, path(name));
    std::string e = reg->start();
    EXPECT_EQ(e, "") << "the registry did not start";
    if (!e.empty()) return nullptr;
    return reg;
  }
  TestImage image(const TestImageSpec& spec = {}, const std::string& name = "img") {
    TestImage img = make_test_image(path(name), spec);
    EXPECT_EQ(img.error, "");
    return img;
  }
};

class RegistryFixtureSetupTest : public RegistryFixtureTest, public ::testing::WithParamInterface<RegSetup> {};

TEST_P(RegistryFixtureSetupTest, SkopeoPushesAndInspects) {
  auto reg = start(GetParam());
  ASSERT_TRUE(reg);
  EXPECT_TRUE(contains(reg->url(), GetParam() == RegSetup::kTlsBasic ? "https://127.0.0.1:" : "http://127.0.0.1:")) << reg->url();
  TestImage img = image(TestImageSpec().with_tag("v1").with_layers(2));
  ASSERT_EQ(img.error, "");
  ASSERT_EQ(img.layer_digests.size(), 3u);

  Result p = reg->push_with_skopeo(img.ref(), "test/img:v1");
  ASSERT_OK(p) << reg->log();
  EXPECT_TRUE(reg->has_tag("test/img", "v1"));
  for (const auto& d : img.layer_digests) EXPECT_TRUE(fs::exists(reg->blob_data_path(d))) << d;

  Result i = reg->skopeo_inspect("test/img:v1");
  ASSERT_OK(i);
  auto j = nlohmann::json::parse(i.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << i;
  EXPECT_EQ(j["Digest"], img.platforms[0].manifest_digest) << "skopeo pushed the OCI manifest unchanged" << i;
  EXPECT_EQ(j["Architecture"], host_oci_arch()) << i;
  EXPECT_EQ(j["Os"], "linux") << i;
  ASSERT_TRUE(j["Layers"].is_array()) << i;
  EXPECT_EQ(j["Layers"].size(), 3u) << i;

  // And back out into a layout again.
  std::vector<std::string> a = {"copy", "--retry-times", "0"};
  auto s = reg->skopeo_src_args();
  a.insert(a.end(), s.begin(), s.end());
  a.push_back("docker://" + reg->host() + "/test/img:v1");
  a.push_back("oci:" + path("back") + ":v1");
  Result c = skopeo(a);
  ASSERT_OK(c);
  EXPECT_TRUE(fs::exists(path("back") + "/blobs/sha256/" + img.layer_digests[2].substr(7)));

  // A blob's file is where blob_data_path says, with the blob's bytes.
  EXPECT_EQ(sha256_file(reg->blob_data_path(img.layer_digests[1])), img.layer_digests[1]);
}

TEST_P(RegistryFixtureSetupTest, RefusesWithoutCredentialsWhenAuthenticated) {
  auto reg = start(GetParam());
  ASSERT_TRUE(reg);
  HttpRequestOptions o;
  o.ca_file = reg->tls() ? reg->ca_cert() : "";
  HttpResponse r = http_request(reg->url() + "/v2/", o);
  if (GetParam() == RegSetup::kPlain) {
    EXPECT_EQ(r.status, 200) << r.error;
    return;
  }
  EXPECT_EQ(r.status, 401) << r.error;
  std::string challenge = r.header("www-authenticate");
  if (GetParam() == RegSetup::kTlsBasic) {
    EXPECT_TRUE(icontains(challenge, "basic realm=")) << challenge;
  } else {
    EXPECT_TRUE(contains(challenge, "Bearer realm=\"" + reg->token_realm() + "\"")) << challenge;
    EXPECT_TRUE(contains(challenge, std::string("service=\"") + TestRegistry::kService + "\"")) << challenge;
  }
  TestImage img = image();
  ASSERT_EQ(img.error, "");
  Result p = reg->push_with_skopeo(img.ref(), "test/img:latest", {}, /*with_creds=*/false);
  EXPECT_NE(p.code, 0) << p;
  EXPECT_FALSE(reg->has_tag("test/img", "latest"));
}

INSTANTIATE_TEST_SUITE_P(RegistrySetups, RegistryFixtureSetupTest,
                         ::testing::Values(RegSetup::kPlain, RegSetup::kTlsBasic, RegSetup::kToken),
                         [](const auto& info) { return setup_name(info.param); });

TEST_F(RegistryFixtureTest, TlsBasicChecksCertificateAndPassword) {
  auto reg = start(RegSetup::kTlsBasic);
  ASSERT_TRUE(reg);
  // Our client verifies the server against the CA, for the IP and for localhost.
  HttpRequestOptions o;
  o.ca_file = reg->ca_cert();
  o.headers = {{"Authorization", "Basic " + base64_encode(reg->creds())}};
  HttpResponse r = http_request(reg->url() + "/v2/", o);
  EXPECT_EQ(r.status, 200) << r.error;
  r = http_request("https://localhost:" + std::to_string(reg->port()) + "/v2/", o);
  EXPECT_EQ(r.status, 200) << r.error;
  o.headers = {{"Authorization", "Basic " + base64_encode(reg->username() + ":wrong")}};
  r = http_request(reg->url() + "/v2/", o);
  EXPECT_EQ(r.status, 401) << r.error;
  EXPECT_TRUE(fs::exists(reg->cert_dir() + "/ca.crt"));

  TestImage img = image();
  ASSERT_EQ(img.error, "");
  // Without the CA, skopeo does not trust the server.
  Result untrusted = push_with_skopeo(img.ref(), "docker://" + reg->host() + "/test/img:latest",
                                      {"--dest-creds", reg->creds()});
  EXPECT_NE(untrusted.code, 0) << untrusted;
  EXPECT_TRUE(icontains(untrusted.err, "certificate")) << untrusted;
  // A wrong password is refused.
  Result wrong = push_with_skopeo(img.ref(), "docker://" + reg->host() + "/test/img:latest",
                                  {"--dest-cert-dir", reg->cert_dir(), "--dest-creds", reg->username() + ":wrong"});
  EXPECT_NE(wrong.code, 0) << wrong;
  EXPECT_TRUE(icontains(wrong.err, "unauthorized") || icontains(wrong.err, "authentication")) << wrong;
  EXPECT_FALSE(reg->has_tag("test/img", "latest"));
  // The right one works.
  ASSERT_OK(reg->push_with_skopeo(img.ref(), "test/img:latest"));
  Result in = reg->skopeo_inspect("test/img:latest", {"--creds", reg->username() + ":nope"}, false);
  EXPECT_NE(in.code, 0) << in;
}

TEST_F(RegistryFixtureTest, TokenIssuerCountsAndScopes) {
  auto reg = start(RegSetup::kToken);
  ASSERT_TRUE(reg);
  int before = reg->token_requests();
  TestImage img = image(TestImageSpec().with_layers(1));
  ASSERT_EQ(img.error, "");
  ASSERT_OK(reg->push_with_skopeo(img.ref(), "ns/tok:1")) << reg->log();
  int after_push = reg->token_requests();
  EXPECT_GT(after_push, before);
  bool saw_push_scope = false;
  for (const auto& t : reg->token_log()) {
    EXPECT_EQ(t.service, TestRegistry::kService);
    EXPECT_EQ(t.status, 200);
    EXPECT_EQ(t.user, "hutchuser");
    for (const auto& s : t.scopes)
      if (contains(s, "repository:ns/tok:") && contains(s, "push")) saw_push_scope = true;
  }
  EXPECT_TRUE(saw_push_scope) << "skopeo asked for repository:ns/tok:pull,push";

  // The issuer itself: a JWT with the access asked for.
  HttpRequestOptions o;
  o.headers = {{"Authorization", "Basic " + base64_encode(reg->creds())}};
  HttpResponse r = http_request(reg->token_realm() + "?service=hutch-test-registry&scope=repository%3Ans%2Ftok%3Apull%2Cpush&scope=repository:other:pull", o);
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_EQ(j["expires_in"], 300);
  EXPECT_TRUE(j["issued_at"].is_string());
  std::string tok = j["token"];
  EXPECT_EQ(j["access_token"], tok);
  auto dot1 = tok.find('.'), dot2 = tok.rfind('.');
  ASSERT_NE(dot1, dot2);
  auto hdr = nlohmann::json::parse(base64_decode(tok.substr(0, dot1)), nullptr, false);
  auto claims = nlohmann::json::parse(base64_decode(tok.substr(dot1 + 1, dot2 - dot1 - 1)), nullptr, false);
  EXPECT_EQ(hdr["alg"], "RS256") << hdr;
  EXPECT_TRUE(hdr["x5c"].is_array()) << hdr;
  EXPECT_EQ(claims["aud"], TestRegistry::kService) << claims;
  EXPECT_EQ(claims["iss"], TestRegistry::kIssuer) << claims;
  ASSERT_EQ(claims["access"].size(), 2u) << claims;
  EXPECT_EQ(claims["access"][0]["name"], "ns/tok") << claims;
  EXPECT_EQ(claims["access"][0]["actions"], nlohmann::json({"pull", "push"})) << claims;
  // ... which the registry takes.
  HttpRequestOptions use;
  use.headers = {{"Authorization", "Bearer " + tok}};
  HttpResponse tags = http_request(reg->url() + "/v2/ns/tok/tags/list", use);
  EXPECT_EQ(tags.status, 200) << tags.body << reg->log();
  EXPECT_TRUE(contains(tags.body, "\"1\"")) << tags.body;

  // Wrong credentials: 401 from the issuer itself, and skopeo fails.
  o.headers = {{"Authorization", "Basic " + base64_encode("hutchuser:wrong")}};
  r = http_request(reg->token_realm() + "?service=hutch-test-registry&scope=repository:ns/tok:pull", o);
  EXPECT_EQ(r.status, 401);
  Result wrong = reg->skopeo_inspect("ns/tok:1", {"--creds", "hutchuser:wrong"}, false);
  EXPECT_NE(wrong.code, 0) << wrong;
  EXPECT_EQ(reg->token_log().back().status, 401);

  // Anonymous: nothing, until anonymous pulls are allowed; never a push.
  Result anon = reg->skopeo_inspect("ns/tok:1", {"--no-creds"}, false);
  EXPECT_NE(anon.code, 0) << anon;
  reg->allow_anonymous_pull(true);
  Result anon2 = reg->skopeo_inspect("ns/tok:1", {"--no-creds"}, false);
  EXPECT_OK(anon2);
  EXPECT_EQ(reg->token_log().back().user, "");
  Result anon_push = reg->push_with_skopeo(img.ref(), "ns/tok:2", {}, false);
  EXPECT_NE(anon_push.code, 0) << anon_push;
  EXPECT_FALSE(reg->has_tag("ns/tok", "2"));
}

TEST_F(RegistryFixtureTest, MultiPlatformIndexAndZstd) {
  auto reg = start(RegSetup::kPlain);
  ASSERT_TRUE(reg);
  TestImage img = image(TestImageSpec().with_tag("multi").with_layers(1).with_platforms());
  ASSERT_EQ(img.error, "");
  ASSERT_EQ(img.platforms.size(), 2u);
  ASSERT_OK(reg->push_with_skopeo(img.ref(), "test/multi:1", {"--all"})) << reg->log();
  Result raw = reg->skopeo_inspect("test/multi:1", {"--raw"});
  ASSERT_OK(raw);
  auto idx = nlohmann::json::parse(raw.out, nullptr, false);
  EXPECT_EQ(idx["mediaType"], "application/vnd.oci.image.index.v1+json") << raw;
  ASSERT_EQ(idx["manifests"].size(), 2u) << raw;
  EXPECT_EQ("sha256:" + sha256_hex(raw.out), img.top_digest) << "the index went up unchanged";
  Result host = reg->skopeo_inspect("test/multi:1");
  ASSERT_OK(host);
  EXPECT_EQ(nlohmann::json::parse(host.out)["Architecture"], host_oci_arch()) << host;
  Result other = skopeo({"--override-arch", other_oci_arch(), "inspect", "--tls-verify=false",
                         "docker://" + reg->host() + "/test/multi:1"});
  ASSERT_OK(other);
  EXPECT_EQ(nlohmann::json::parse(other.out)["Architecture"], other_oci_arch()) << other;

  TestImage single = image(TestImageSpec().with_tag("z").with_layers(1).with_uncompressed(), "zimg");
  ASSERT_EQ(single.error, "");
  ASSERT_OK(reg->push_with_skopeo(single.ref(), "test/zstd:1", {"--dest-compress-format", "zstd"})) << reg->log();
  Result zraw = reg->skopeo_inspect("test/zstd:1", {"--raw"});
  ASSERT_OK(zraw);
  auto m = nlohmann::json::parse(zraw.out, nullptr, false);
  ASSERT_TRUE(m["layers"].is_array()) << zraw;
  // Only the top layer is sure to be zstd: skopeo (c/image's blob-info cache) puts a gzip blob
  // of the same content that the registry already has (busybox, pushed above) in its place.
  EXPECT_EQ(m["layers"].back()["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd") << zraw;
  // zstd magic on disk.
  std::string blob = read_file(reg->blob_data_path(m["layers"].back()["digest"]));
  ASSERT_GE(blob.size(), 4u);
  EXPECT_EQ(blob.substr(0, 4), std::string("\x28\xb5\x2f\xfd", 4));
}

TEST_F(RegistryFixtureTest, FaultProxyFailsDropsAndPassesRanges) {
  auto reg = start(RegSetup::kPlain);
  ASSERT_TRUE(reg);
  TestImage img = image(TestImageSpec().with_big_layer(300000));
  ASSERT_EQ(img.error, "");
  ASSERT_OK(reg->push_with_skopeo(img.ref(), "test/img:latest"));
  std::string big = img.layer_digests.back();
  std::string big_bytes = read_file(path("img") + "/blobs/sha256/" + big.substr(7));
  ASSERT_GT(big_bytes.size(), 300000u) << "random bytes do not compress";

  FaultProxy proxy(reg->host());
  ASSERT_EQ(proxy.start(), "");

  // 503 for the first two manifests GETs, then passed on; curl says what it got.
  proxy.fail_first("/manifests/", 2);
  auto curl_code = [&](const std::vector<std::string>& extra, const std::string& url) {
    std::vector<std::string> a = {"curl", "-s", "-o", path("curl.out"), "-w", "%{http_code}", "--noproxy", "*",
                                  "-H", "Accept: application/vnd.oci.image.manifest.v1+json"};
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back(url);
    return run(a);
  };
  std::string murl = proxy.url() + "/v2/test/img/manifests/latest";
  EXPECT_EQ(curl_code({}, murl).out, "503");
  EXPECT_EQ(curl_code({}, murl).out, "503");
  Result ok = curl_code({}, murl);
  EXPECT_EQ(ok.out, "200") << ok;
  EXPECT_EQ("sha256:" + sha256_hex(read_file(path("curl.out"))), img.platforms[0].manifest_digest);
  EXPECT_EQ(proxy.count("/manifests/"), 3);
  EXPECT_EQ(proxy.requests("/manifests/")[0].status, 503);
  EXPECT_EQ(proxy.requests("/manifests/")[2].status, 200);

  // A dropped blob download: the first GET ends after 100000 bytes, the next is whole.
  proxy.drop_after("/blobs/" + big, 100000);
  std::string burl = proxy.url() + "/v2/test/img/blobs/" + big;
  HttpResponse cut = http_request(burl);
  EXPECT_EQ(cut.status, 200);
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(cut.body.size(), 100000u);
  EXPECT_TRUE(cut.body == big_bytes.substr(0, 100000)) << "the first 100000 bytes of the blob";
  Result curl_cut = curl_code({"-H", "Range: bytes=100000-"}, burl);
  EXPECT_EQ(curl_cut.out, "206") << curl_cut << "a Range request after the drop is passed on";
  EXPECT_TRUE(read_file(path("curl.out")) == big_bytes.substr(100000)) << "the rest of the blob, from 100000";
  auto reqs = proxy.requests("/blobs/" + big);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_TRUE(reqs[0].dropped);
  EXPECT_EQ(reqs[0].body_bytes, 100000u);
  EXPECT_EQ(reqs[1].header("range"), "bytes=100000-");
  EXPECT_EQ(reqs[1].status, 206);
  HttpResponse whole = http_request(burl);
  EXPECT_EQ(whole.status, 200);
  EXPECT_FALSE(whole.truncated);
  EXPECT_TRUE(whole.body == big_bytes) << whole.body.size() << " bytes";

  // A throttled body takes its time.
  proxy.throttle("/blobs/" + big, 1000000);
  auto t0 = std::chrono::steady_clock::now();
  HttpResponse slow = http_request(burl);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(slow.body == big_bytes) << slow.body.size() << " bytes";
  EXPECT_GE(took, 250ms);
  proxy.clear_rules();

  // Uploads: the Location of a started upload names the proxy.
  HttpRequestOptions post;
  post.method = "POST";
  post.headers = {{"Content-Length", "0"}};
  HttpResponse up = http_request(proxy.url() + "/v2/test/up/blobs/uploads/", post);
  EXPECT_EQ(up.status, 202);
  EXPECT_TRUE(contains(up.header("location"), proxy.host())) << up.header("location");
  EXPECT_FALSE(contains(up.header("location"), reg->host())) << up.header("location");

  // skopeo through the proxy, surviving nothing injected; then a push through it (chunked bodies).
  Result through = skopeo({"copy", "--retry-times", "0", "--src-tls-verify=false", "docker://" + proxy.host() + "/test/img:latest",
                           "oci:" + path("via-proxy") + ":latest"});
  EXPECT_OK(through);
  Result push = push_with_skopeo(img.ref(), "docker://" + proxy.host() + "/test/pushed:1", {"--dest-tls-verify=false"});
  EXPECT_OK(push);
  EXPECT_TRUE(reg->has_tag("test/pushed", "1"));
  EXPECT_GT(proxy.count("/v2/test/pushed/blobs/uploads/"), 0);
}

TEST_F(RegistryFixtureTest, CorruptedBlobIsServedAsIs) {
  auto reg = start(RegSetup::kPlain);
  ASSERT_TRUE(reg);
  TestImage img = image(TestImageSpec().with_layers(1));
  ASSERT_EQ(img.error, "");
  ASSERT_OK(reg->push_with_skopeo(img.ref(), "test/img:latest"));
  std::string d = img.layer_digests[1];
  std::string f = reg->blob_data_path(d);
  std::string bytes = read_file(f);
  ASSERT_FALSE(bytes.empty());
  bytes[bytes.size() / 2] ^= 0x5a;
  write_file(f, bytes);
  // The registry serves the changed bytes (same size) under the old digest: a client must check.
  HttpResponse r = http_request(reg->url() + "/v2/test/img/blobs/" + d);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), img.layer_sizes[1]);
  EXPECT_NE("sha256:" + sha256_hex(r.body), d);
  Result c = skopeo({"copy", "--retry-times", "0", "--src-tls-verify=false", "docker://" + reg->host() + "/test/img:latest",
                     "oci:" + path("back") + ":latest"});
  EXPECT_NE(c.code, 0) << c;
  EXPECT_TRUE(contains(c.err, d.substr(7))) << c;
}

}  // namespace
}  // namespace hit
