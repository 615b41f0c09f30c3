// A real registry for the integration suite: CNCF distribution (/usr/bin/docker-registry) on
// loopback in three setups (plain HTTP; TLS with a CA of our own and htpasswd Basic auth; a
// token-auth registry whose token issuer is a thread of this fixture), a fault-injecting reverse
// proxy, skopeo helpers and a builder of test images as OCI layout directories.
//
// Everything lives under a scratch dir given by the test and listens on 127.0.0.1 only; nothing
// is read from the source tree, so the suite can be copied elsewhere and run by any user.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace hit {

// ---- a small HTTP/1.1 client (plain or TLS), for readiness checks and direct probes ----------
struct HttpResponse {
  int status = 0;                                           // 0: no answer (see error)
  std::vector<std::pair<std::string, std::string>> headers; // names lower-cased, in order
  std::string body;
  std::string error;                                        // connect/TLS/parse failure
  bool truncated = false;                                   // the connection ended before Content-Length
  std::string header(const std::string& lower_name) const;  // first value, or ""
};
struct HttpRequestOptions {
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool tls = false;
  std::string ca_file;     // TLS: verify against this CA; empty: no verification
  int timeout_ms = 10000;
};
// `url`: http(s)://HOST:PORT/path?query (HOST an IPv4 literal or localhost).
HttpResponse http_request(const std::string& url, const HttpRequestOptions& opts = {});
std::string base64_encode(const std::string& data, bool url_safe = false, bool pad = true);
std::string base64_decode(const std::string& data);  // standard or url-safe alphabet, padding optional
std::string sha256_hex(const std::string& data);     // 64 hex

// ---- skopeo --------------------------------------------------------------------------------
// Runs skopeo ARGS... with an environment of its own: an empty registries.conf and auth file
// (so nothing of the host's configuration or credentials is used) and, for an unprivileged
// caller, HOME under `state_dir` (its blob-info cache). `state_dir` empty: the suite's dir.
Result skopeo(const std::vector<std::string>& args, const std::string& state_dir = "",
              std::chrono::milliseconds timeout = 180s);

// ---- the registry -----------------------------------------------------------------------------
class TestRegistry {
 public:
  enum class Setup { kPlain, kTlsBasic, kToken };

  // `scratch`: a directory of the test (created if missing); everything goes below it.
  TestRegistry(Setup setup, const std::string& scratch);
  ~TestRegistry();
  TestRegistry(const TestRegistry&) = delete;
  TestRegistry& operator=(const TestRegistry&) = delete;

  // Starts the registry (and the token issuer) and waits until GET /v2/ answers 200 or 401.
  // Returns an empty string on success, else what went wrong (with the registry's log).
  std::string start();
  void stop();
  bool running() const { return pid_ > 0; }

  Setup setup() const { return setup_; }
  bool tls() const { return setup_ == Setup::kTlsBasic; }
  int port() const { return port_; }
  std::string host() const;  // "127.0.0.1:PORT"
  std::string url() const;   // "http(s)://127.0.0.1:PORT"
  std::string log() const;   // the registry's log so far
  std::string storage_dir() const { return storage_; }

  // kTlsBasic: the CA that signed the server certificate, and a --cert-dir holding it as ca.crt.
  std::string ca_cert() const { return cert_dir_ + "/ca.crt"; }
  std::string cert_dir() const { return cert_dir_; }
  // kTlsBasic and kToken: the one valid account.
  std::string username() const { return "hutchuser"; }
  std::string password() const { return password_; }
  std::string creds() const { return username() + ":" + password(); }

  // The file the registry keeps a blob in: a test may change its bytes.
  std::string blob_data_path(const std::string& digest) const;
  // The registry's files for REPO's tag TAG link (for checks), and whether REPO:TAG exists.
  bool has_tag(const std::string& repo, const std::string& tag) const;

  // Args for skopeo to reach this registry as the destination / source with the valid account.
  std::vector<std::string> skopeo_dest_args(bool with_creds = true) const;
  std::vector<std::string> skopeo_src_args(bool with_creds = true) const;
  // skopeo copy [--all when src is a multi-platform layout] SRC docker://HOST/DEST_REPO_TAG EXTRA...
  Result push_with_skopeo(const std::string& src, const std::string& dest_repo_tag,
                          const std::vector<std::string>& extra = {}, bool with_creds = true) const;
  // skopeo inspect [--raw] docker://HOST/REPO_TAG
  Result skopeo_inspect(const std::string& repo_tag, const std::vector<std::string>& extra = {},
                        bool with_creds = true) const;
  std::string scratch() const { return scratch_; }

  // ---- kToken: the issuer -----------------------------------------------------------------------
  struct TokenRequest {
    std::string method;                // GET or POST
    std::string service;
    std::vector<std::string> scopes;   // as asked ("repository:ns/name:pull,push"), in order
    std::string user;                  // from Basic credentials (or the POST form); "" anonymous
    int status = 0;                    // what the issuer answered
  };
  void allow_anonymous_pull(bool allow) { anonymous_pull_ = allow; }
  int token_requests() const;
  std::vector<TokenRequest> token_log() const;
  std::string token_realm() const;   // http://127.0.0.1:IPORT/token
  static constexpr const char* kService = "hutch-test-registry";
  static constexpr const char* kIssuer = "hutch-test-issuer";

 private:
  std::string write_config();
  std::string make_tls_material();
  std::string make_token_material();
  std::string start_issuer();
  void issuer_loop();
  void issuer_serve(int fd);
  std::string make_jwt(const std::string& subject, const nlohmann::json& access);

  Setup setup_;
  std::string scratch_, storage_, cert_dir_, config_, log_file_;
  std::string password_;
  int port_ = 0;
  pid_t pid_ = -1;

  // issuer
  int issuer_fd_ = -1;
  int issuer_port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  std::thread issuer_thread_;
  std::atomic<bool> anonymous_pull_{false};
  mutable std::mutex mu_;
  std::vector<TokenRequest> token_log_;
  std::string token_key_pem_, token_cert_der_;
  void* token_key_ = nullptr;  // EVP_PKEY*
};

// ---- the fault proxy ------------------------------------------------------------------------------
// A plain-HTTP reverse proxy on 127.0.0.1 in front of a registry (HOST:PORT, plain HTTP). Each
// client connection is served by a thread of its own, one request per connection (every answer
// says Connection: close). Requests are passed on with their Host header (so the registry's
// Location URLs already name the proxy; any that name the registry are rewritten to it).
// "Plain", "TlsBasic", "Token": a setup's name in parameterised test names.
std::string setup_name(TestRegistry::Setup setup);

class FaultProxy {
 public:
  struct Request {
    std::string method, target;  // target: path?query
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    int status = 0;              // what the client got (0: nothing, e.g. the proxy failed)
    uint64_t body_bytes = 0;     // response body bytes passed on (so far, while it runs)
    bool dropped = false;        // cut by a drop rule
    std::string header(const std::string& lower_name) const;
  };

  explicit FaultProxy(const std::string& upstream_host);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::string start();  // empty on success
  void stop();
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return "http://" + host(); }

  // The first `n` requests whose target contains `path_substr` (and whose method is `method`,
  // when given) are answered `status` by the proxy itself (not passed on).
  void fail_first(const std::string& path_substr, int n, int status = 503, const std::string& method = "");
  // The first response to a request matching `path_substr` (and `method`) whose status is
  // 200 or 206 is cut (the connection closed) after `body_bytes` bytes of its body.
  void drop_after(const std::string& path_substr, uint64_t body_bytes, const std::string& method = "GET");
  // Response bodies of matching requests are passed on at about `bytes_per_second`.
  void throttle(const std::string& path_substr, uint64_t bytes_per_second, const std::string& method = "GET");
  // Matching requests are answered 307 to `base_url` + their target (a blob store elsewhere).
  void redirect(const std::string& path_substr, const std::string& base_url, const std::string& method = "GET");
  // Requests without "Authorization: Basic base64(user:password)" are answered 401 with a
  // Basic challenge (a registry with Basic auth in front of a plain one).
  void require_basic(const std::string& user, const std::string& password);
  void clear_rules();

  int count(const std::string& path_substr, const std::string& method = "") const;
  std::vector<Request> requests(const std::string& path_substr = "", const std::string& method = "") const;
  uint64_t body_bytes(const std::string& path_substr, const std::string& method = "GET") const;

 private:
  struct Rule {
    enum Kind { kFail, kDrop, kThrottle, kRedirect, kBasic } kind;
    std::string path, method;
    int remaining = 0;  // kFail: answers left; kDrop: 1 until used
    int status = 503;
    uint64_t bytes = 0;
    std::string text = "";  // kRedirect: the base URL; kBasic: the expected Authorization value
  };
  void accept_loop();
  void serve(int fd);

  std::string upstream_;
  int upstream_port_ = 0;
  int listen_fd_ = -1;
  int port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> open_fds_;
  std::vector<Rule> rules_;
  std::vector<Request> log_;
};

// ---- test images ------------------------------------------------------------------------------------
struct TestImageSpec {
  std::string tag = "latest";
  int extra_layers = 0;             // small gzip layers on top of busybox, each adding /layer<N>.txt
  uint64_t big_layer_bytes = 0;     // > 0: one more layer holding /big.bin of that many random bytes
  // Every layer a plain tar (no gzip). skopeo 1.9 compresses such layers when it pushes to a
  // registry (with --dest-compress-format's algorithm), but does not recompress gzip layers: a
  // zstd push needs this. The registry's digests then differ from the layout's.
  bool uncompressed = false;
  bool multi_platform = false;      // an index: the host's platform and one other (amd64 <-> arm64)
  std::string cmd_marker;           // non-empty: the image's Env gets HUTCH_TEST_MARKER=<it>

  TestImageSpec& with_tag(std::string t) { tag = std::move(t); return *this; }
  TestImageSpec& with_layers(int n) { extra_layers = n; return *this; }
  TestImageSpec& with_big_layer(uint64_t bytes) { big_layer_bytes = bytes; return *this; }
  TestImageSpec& with_uncompressed() { uncompressed = true; return *this; }
  TestImageSpec& with_platforms() { multi_platform = true; return *this; }
  TestImageSpec& with_marker(std::string m) { cmd_marker = std::move(m); return *this; }
};

struct TestImagePlatform {
  std::string os, architecture;
  std::string manifest_digest, config_digest;
  uint64_t manifest_size = 0;
};

struct TestImage {
  std::string dir;                        // the OCI layout
  std::string tag;
  std::string top_digest;                 // what index.json's entry points at (index or manifest)
  std::vector<TestImagePlatform> platforms;  // [0] is the host's
  std::vector<std::string> layer_digests; // blob digests, bottom first
  std::vector<std::string> diff_ids;
  std::vector<uint64_t> layer_sizes;
  bool multi = false;
  std::string error;                      // non-empty: building failed
  std::string ref() const { return "oci:" + dir + ":" + tag; }
};

std::string host_oci_arch();   // amd64, arm64, ...
std::string other_oci_arch();  // arm64 on amd64, amd64 elsewhere

// Builds an OCI image layout in `dir` from the suite's busybox tarball.
TestImage make_test_image(const std::string& dir, const TestImageSpec& spec = {});

// skopeo copy [--all] SRC DEST EXTRA... with tls and credentials options given by the caller.
Result push_with_skopeo(const std::string& src, const std::string& dest_ref, const std::vector<std::string>& extra = {});

}  // namespace hit
