// docker: the OCI distribution API (registry v2) over libcurl.
//
// Per registry host and scheme one `Registry` object keeps the authentication state of the
// command: the challenge the registry answered /v2/ with and the bearer tokens it was given per
// scope, shared by the threads that move blobs, so that a pull asks the token server once per
// scope, not once per request. Requests are retried with backoff on 5xx, 429 and dropped
// connections; a blob download that breaks off resumes with a Range request.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "hutch/abi.hpp"
#include "hutch/digest.hpp"
#include "hutch/error.hpp"
#include "hutch/paths.hpp"
#include "hutch/transport.hpp"

namespace hutch::registry::docker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kMaxManifestBytes = 4u << 20;
const char* kManifestAccept =
    "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v1+prettyjws, application/vnd.docker.distribution.manifest.v1+json";

struct Challenge {
  std::string scheme;  // "bearer", "basic" (lower case)
  std::map<std::string, std::string> params;
};

// WWW-Authenticate: Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"
std::optional<Challenge> parse_challenge(const std::vector<std::string>& values) {
  for (const auto& v : values) {
    Challenge c;
    size_t sp = v.find(' ');
    c.scheme = v.substr(0, sp);
    for (char& ch : c.scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t i = sp == std::string::npos ? v.size() : sp + 1;
    while (i < v.size()) {
      while (i < v.size() && (v[i] == ' ' || v[i] == ',')) ++i;
      size_t eq = v.find('=', i);
      if (eq == std::string::npos) break;
      std::string key = v.substr(i, eq - i);
      for (char& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      i = eq + 1;
      std::string value;
      if (i < v.size() && v[i] == '"') {
        ++i;
        while (i < v.size() && v[i] != '"') {
          if (v[i] == '\\' && i + 1 < v.size()) ++i;
          value += v[i++];
        }
        ++i;
      } else {
        size_t end = v.find(',', i);
        value = v.substr(i, end == std::string::npos ? std::string::npos : end - i);
        i = end == std::string::npos ? v.size() : end;
      }
      c.params[key] = value;
    }
    if (c.scheme == "bearer" || c.scheme == "basic") return c;
  }
  return std::nullopt;
}

// The registry's own words from an error body: {"errors":[{"code":"...","message":"..."}]}.
std::string registry_message(const HttpResponse& r) {
  try {
    json j = json::parse(r.body);
    std::string out;
    for (const auto& e : j.at("errors")) {
      std::string m = e.value("code", "");
      std::string msg = e.value("message", "");
      if (!msg.empty()) m += (m.empty() ? "" : ": ") + msg;
      out += (out.empty() ? "" : "; ") + m;
    }
    if (!out.empty()) return out;
  } catch (const std::exception&) {
  }
  return "HTTP " + std::to_string(r.status);
}

struct RepoRef {
  std::string host;
  std::string repository;  // "ns/name"
  std::string tag;
  std::string digest;
  std::string reference() const { return digest.empty() ? tag : digest; }
};

RepoRef split_location(const std::string& location) {
  RepoRef r;
  auto slash = location.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == location.size())
    throw Error(Errc::kInvalidInput, "\"" + location + "\" is not a registry repository (HOST/NAME)");
  r.host = location.substr(0, slash);
  r.repository = location.substr(slash + 1);
  return r;
}

RepoRef parse_reference(const std::string& reference) {
  std::string rest = reference;
  std::string digest;
  if (auto at = rest.find('@'); at != std::string::npos) {
    digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
  }
  std::string tag;
  auto last_slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && last_slash != std::string::npos && colon > last_slash) {
    tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  RepoRef r = split_location(rest);
  r.tag = tag.empty() && digest.empty() ? "latest" : tag;
  r.digest = digest;
  return r;
}

struct Settings {
  std::uint64_t chunk_size = 0;  // 0: monolithic uploads
  int retries = 3;
  std::chrono::milliseconds backoff{200};
};

// One registry host reached over one scheme: its challenge and tokens.
class Registry {
 public:
  Registry(std::string host, std::string scheme, TlsSettings tls, std::optional<Credentials> creds, std::string agent,
           Settings settings, const Logger* logger)
      : host_(std::move(host)), scheme_(std::move(scheme)), tls_(std::move(tls)), creds_(std::move(creds)),
        agent_(std::move(agent)), settings_(settings), logger_(logger) {}

  const std::string& host() const { return host_; }
  std::string url(const std::string& path) const { return scheme_ + "://" + host_ + path; }

  // GET /v2/: the API version check, and the challenge to answer later.
  void ping() {
    HttpRequest req;
    req.url = url("/v2/");
    req.timeout_seconds = 60;
    // A host where nothing listens is said at once (a mirror that is down moves on to the next).
    req.retry_refused = false;
    auto r = send(req, "", false);
    std::string version = r.header("docker-distribution-api-version");
    if (!version.empty() && version.find("registry/2.0") == std::string::npos)
      throw Error(Errc::kUnsupported, host_ + " speaks registry API \"" + version + "\", not registry/2.0");
    if (r.status == 401) {
      std::lock_guard<std::mutex> g(mu_);
      challenge_ = parse_challenge(r.www_authenticate);
      if (!challenge_)
        throw Error(Errc::kUnauthorized, host_ + " asks for authentication hutch does not speak (" +
                                             (r.www_authenticate.empty() ? "no WWW-Authenticate" : r.www_authenticate[0]) + ")");
      return;
    }
    if (r.status == 404) throw Error(Errc::kUnsupported, host_ + " does not serve the registry API v2 (GET /v2/ is 404)");
    if (r.status != 200) throw Error(Errc::kNetwork, host_ + ": GET /v2/ answered " + registry_message(r));
  }

  // login: the credentials are good (a token is granted, or Basic is accepted).
  void check_login() {
    ping();
    std::optional<Challenge> c;
    {
      std::lock_guard<std::mutex> g(mu_);
      c = challenge_;
    }
    if (!c) return;  // no authentication needed
    if (!creds_ || creds_->empty())
      throw Error(Errc::kUnauthorized, host_ + " needs credentials: give a user name with -u");
    if (c->scheme == "bearer") {
      fetch_token(*c, {});
      return;
    }
    HttpRequest req;
    req.url = url("/v2/");
    req.timeout_seconds = 60;
    req.authorization = basic_header();
    auto r = send(req, "", false);
    if (r.status == 401) throw refused();
  }

  // A request with the authentication `scope` needs ("" for none), retried as the settings say.
  HttpResponse send(HttpRequest req, const std::string& scope, bool authenticate = true) {
    bool answered_challenge = false;
    // Once part of a body has gone to the sink, a retry here would repeat it: the caller resumes.
    std::uint64_t delivered = 0;
    if (req.sink) {
      auto inner = req.sink;
      req.sink = [inner, &delivered](const char* d, std::size_t n) {
        delivered += n;
        return inner(d, n);
      };
    }
    if (authenticate) ensure_token(scope);
    for (int attempt = 0;; ++attempt) {
      if (authenticate) req.authorization = authorization(scope);
      thread_local HttpClient client;
      TransportFailure failure;
      auto r = client.perform(req, tls_, agent_, &failure);
      if (!r) {
        if (failure.message == "aborted") throw Error(Errc::kNetwork, "the transfer from " + host_ + " was stopped");
        if (delivered > 0) throw Error(Errc::kNetwork, "the transfer from " + host_ + " broke off: " + failure.message);
        if (attempt < settings_.retries && !failure.tls && (req.retry_refused || !failure.refused)) {
          wait(attempt, req.method + " " + req.url + ": " + failure.message);
          continue;
        }
        if (failure.tls)
          throw Error(Errc::kNetwork, "cannot reach " + host_ + " over HTTPS: " + failure.message +
                                          " (a registry serving plain HTTP or a certificate of its own CA needs "
                                          "--tls-verify=false, --cert-dir DIR, or insecure = true in registries.conf)");
        throw Error(Errc::kNetwork, "cannot reach " + host_ + ": " + failure.message);
      }
      if (r->status == 401 && authenticate && !answered_challenge) {
        auto c = parse_challenge(r->www_authenticate);
        if (c) {
          answered_challenge = true;
          answer(*c, scope);
          continue;
        }
      }
      if ((r->status >= 500 || r->status == 429) && attempt < settings_.retries) {
        wait(attempt, req.method + " " + req.url + ": HTTP " + std::to_string(r->status));
        continue;
      }
      return *r;
    }
  }

  void wait(int attempt, const std::string& why) {
    auto delay = settings_.backoff * (1 << attempt);
    if (logger_) logger_->info("retrying in " + std::to_string(delay.count()) + " ms: " + why);
    std::this_thread::sleep_for(delay);
  }

  Error refused() const {
    return Error(Errc::kUnauthorized, host_ + " refused the credentials" +
                                          (creds_ && !creds_->username.empty() ? " of user \"" + creds_->username + "\"" : "") +
                                          "; check them, or log in again with \"hutch login " + host_ + "\"");
  }

  Error access_denied(const HttpResponse& r, const std::string& repository, const std::string& what) const {
    bool have = creds_ && !creds_->empty();
    return Error(Errc::kUnauthorized, host_ + " denied " + what + " " + repository + ": " + registry_message(r) +
                                          (have ? "" : "; log in with \"hutch login " + host_ + "\" (or give --creds)"));
  }

 private:
  std::string basic_header() const {
    return "Basic " + base64_encode((creds_ ? creds_->username : "") + ":" + (creds_ ? creds_->password : ""));
  }

  std::optional<std::string> authorization(const std::string& scope) {
    std::lock_guard<std::mutex> g(mu_);
    if (!challenge_) return std::nullopt;
    if (challenge_->scheme == "basic") {
      if (!creds_ || creds_->empty()) return std::nullopt;
      return basic_header();
    }
    auto it = tokens_.find(scope);
    if (it != tokens_.end()) return "Bearer " + it->second;
    return std::nullopt;
  }

  // With a bearer challenge known, the token for `scope` is fetched before the request rather
  // than after its 401; one thread fetches it while the others wait for it.
  void ensure_token(const std::string& scope) {
    std::optional<Challenge> c;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!challenge_ || challenge_->scheme != "bearer" || tokens_.count(scope)) return;
    }
    std::lock_guard<std::mutex> fetching(fetch_mu_);
    {
      std::lock_guard<std::mutex> g(mu_);
      if (tokens_.count(scope)) return;
      c = challenge_;
    }
    answer(*c, scope);
  }

  // A 401: remember the challenge and get what it asks for.
  void answer(const Challenge& c, const std::string& scope) {
    {
      std::lock_guard<std::mutex> g(mu_);
      challenge_ = c;
      if (c.scheme == "basic") {
        if (!creds_ || creds_->empty())
          throw Error(Errc::kUnauthorized, host_ + " needs credentials; log in with \"hutch login " + host_ + "\" (or give --creds)");
        return;
      }
      if (tokens_.count(scope)) {
        // A token we had was not enough (expired, or the scope was narrower): ask again.
        tokens_.erase(scope);
      }
    }
    std::vector<std::string> scopes;
    for (size_t i = 0; i < scope.size();) {
      size_t sp = scope.find(' ', i);
      if (sp == std::string::npos) sp = scope.size();
      if (sp > i) scopes.push_back(scope.substr(i, sp - i));
      i = sp + 1;
    }
    std::string token = fetch_token(c, scopes);
    std::lock_guard<std::mutex> g(mu_);
    tokens_[scope] = token;
  }

  std::string fetch_token(const Challenge& c, const std::vector<std::string>& scopes) {
    auto realm = c.params.find("realm");
    if (realm == c.params.end() || realm->second.empty())
      throw Error(Errc::kUnauthorized, host_ + " asks for a bearer token but names no realm");
    std::string service = c.params.count("service") ? c.params.at("service") : "";
    HttpRequest req;
    req.timeout_seconds = 60;
    std::string form;
    bool refresh = creds_ && !creds_->identity_token.empty();
    if (refresh) {
      // An OAuth2 refresh token (auth.json "identitytoken"): POST, as docker does.
      req.method = "POST";
      req.url = realm->second;
      form = "grant_type=refresh_token&client_id=hutch&refresh_token=" + url_escape(creds_->identity_token) +
             "&service=" + url_escape(service);
      for (const auto& s : scopes) form += "&scope=" + url_escape(s);
      req.body = &form;
      req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
    } else {
      std::string q = realm->second + (realm->second.find('?') == std::string::npos ? "?" : "&");
      q += "service=" + url_escape(service);
      for (const auto& s : scopes) q += "&scope=" + url_escape(s);
      if (creds_ && !creds_->username.empty()) {
        q += "&account=" + url_escape(creds_->username);
        req.authorization = basic_header();
      }
      req.url = q;
    }
    thread_local HttpClient client;
    HttpResponse r;
    for (int attempt = 0;; ++attempt) {
      TransportFailure failure;
      auto got = client.perform(req, tls_, agent_, &failure);
      if (!got) {
        if (attempt < settings_.retries) {
          wait(attempt, "token from " + url_host(req.url) + ": " + failure.message);
          continue;
        }
        throw Error(Errc::kNetwork, "cannot reach the token server " + url_host(req.url) + " of " + host_ + ": " +
                                        failure.message);
      }
      r = *got;
      if ((r.status >= 500 || r.status == 429) && attempt < settings_.retries) {
        wait(attempt, "token: HTTP " + std::to_string(r.status));
        continue;
      }
      break;
    }
    if (r.status == 401 || r.status == 403) {
      if (creds_ && !creds_->empty()) throw refused();
      throw Error(Errc::kUnauthorized, host_ + " needs credentials; log in with \"hutch login " + host_ + "\" (or give --creds)");
    }
    if (r.status != 200)
      throw Error(Errc::kUnauthorized, "the token server " + url_host(req.url) + " of " + host_ + " answered HTTP " +
                                           std::to_string(r.status));
    try {
      json j = json::parse(r.body);
      std::string token = j.value("token", "");
      if (token.empty()) token = j.value("access_token", "");
      if (token.empty()) throw Error(Errc::kUnauthorized, "no token");
      return token;
    } catch (const std::exception&) {
      throw Error(Errc::kUnauthorized, "the token server " + url_host(req.url) + " of " + host_ +
                                           " answered without a token");
    }
  }

  std::string host_, scheme_;
  TlsSettings tls_;
  std::optional<Credentials> creds_;
  std::string agent_;
  Settings settings_;
  const Logger* logger_;
  std::mutex mu_;
  std::mutex fetch_mu_;  // one token request at a time
  std::optional<Challenge> challenge_;
  std::map<std::string, std::string> tokens_;
};

// ---- where a host is reached, and how ----------------------------------------------------------

TlsSettings tls_for(const std::string& host, const TransportOptions& o, bool verify) {
  TlsSettings tls;
  tls.verify = verify;
  std::vector<fs::path> dirs;
  if (!o.cert_dir.empty()) {
    dirs.push_back(o.cert_dir);
  } else {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    const char* home = std::getenv("HOME");
    if (xdg && *xdg) dirs.push_back(fs::path(xdg) / "containers/certs.d" / host);
    else if (home && *home) dirs.push_back(fs::path(home) / ".config/containers/certs.d" / host);
    dirs.push_back(fs::path("/etc/containers/certs.d") / host);
    dirs.push_back(fs::path("/etc/docker/certs.d") / host);
  }
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    std::string extra;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      auto name = e.path().filename().string();
      auto ext = e.path().extension().string();
      if (ext == ".crt") extra += read_file(e.path()) + "\n";
      if (ext == ".cert") {
        fs::path key = e.path();
        key.replace_extension(".key");
        if (!fs::exists(key))
          throw Error(Errc::kConfig, "client certificate " + e.path().string() + " has no key " + key.string());
        tls.client_cert = e.path();
        tls.client_key = key;
      }
    }
    if (!extra.empty()) {
      // The system's CAs stay trusted besides the directory's.
      const fs::path bundle = "/etc/ssl/certs/ca-certificates.crt";
      std::string system = fs::exists(bundle, ec) ? read_file(bundle) : "";
      tls.ca_bundle = system + "\n" + extra;
    }
    break;  // the first directory that exists is the one
  }
  return tls;
}

class DockerTransport;

// An endpoint chosen for one image: the registry to talk to and the repository there.
struct Bound {
  std::shared_ptr<Registry> registry;
  std::string repository;
};

class DockerTransport final : public ImageTransport {
 public:
  explicit DockerTransport(const PluginContext& ctx) : ctx_(ctx) {
    const json& c = ctx.config;
    if (c.contains("chunk_size")) {
      if (!c["chunk_size"].is_number_integer() || c["chunk_size"].get<long long>() < 0)
        throw Error(Errc::kConfig, "[plugins.docker] chunk_size must be a number of bytes (0: monolithic uploads)");
      settings_.chunk_size = c["chunk_size"].get<std::uint64_t>();
    }
    if (c.contains("retries")) {
      if (!c["retries"].is_number_integer() || c["retries"].get<int>() < 0)
        throw Error(Errc::kConfig, "[plugins.docker] retries must be a number (0: no retries)");
      settings_.retries = c["retries"].get<int>();
    }
    if (c.contains("retry_delay_ms")) settings_.backoff = std::chrono::milliseconds(c["retry_delay_ms"].get<int>());
  }

  TransportCapabilities capabilities() const override {
    TransportCapabilities caps;
    caps.can_read = true;
    caps.can_write = true;
    caps.can_authenticate = true;
    caps.description = "registries over the OCI distribution API (HTTPS, or HTTP where insecure), libcurl " +
                       std::string(curl_version_info(CURLVERSION_NOW)->version);
    return caps;
  }
  std::vector<std::string> transports() const override { return {"docker"}; }

  std::unique_ptr<ImageSource> open_source(const std::string& transport, const std::string& reference,
                                           const TransportOptions& options) override;
  std::unique_ptr<ImageDestination> open_destination(const std::string& transport, const std::string& reference,
                                                     const TransportOptions& options) override;
  void authenticate(const std::string& registry, const TransportOptions& options) override {
    RegistryEndpoint ep{registry + "/x", false, false};
    if (!options.endpoints.empty()) ep.insecure = options.endpoints.front().insecure;
    connect(registry, ep, options, [](Registry& r) { r.check_login(); });
  }

  // The registry for `host` (cached for the command), pinged: https (verified unless insecure),
  // falling back to plain http only where that is allowed.
  std::shared_ptr<Registry> connect(const std::string& host, const RegistryEndpoint& ep, const TransportOptions& o,
                                    const std::function<void(Registry&)>& first_use = {}) {
    bool insecure = o.tls_verify ? !*o.tls_verify : ep.insecure;
    std::vector<std::pair<std::string, bool>> tries = {{"https", !insecure}};
    if (insecure) tries.push_back({"http", false});
    std::optional<Error> last;
    for (const auto& [scheme, verify] : tries) {
      std::string key = scheme + "://" + host + (verify ? "" : "#insecure");
      {
        std::lock_guard<std::mutex> g(mu_);
        auto it = registries_.find(key);
        if (it != registries_.end()) return it->second;
      }
      auto reg = std::make_shared<Registry>(host, scheme, tls_for(host, o, verify), o.credentials, o.user_agent,
                                            settings_, ctx_.logger);
      try {
        if (first_use) first_use(*reg);
        else reg->ping();
      } catch (Error& e) {
        // Over https to a plain-HTTP registry the handshake fails: that is when http is tried.
        if (e.code() == Errc::kNetwork && scheme == "https" && tries.size() > 1) {
          last = std::move(e);
          continue;
        }
        throw;
      }
      std::lock_guard<std::mutex> g(mu_);
      registries_[key] = reg;
      return reg;
    }
    throw std::move(*last);
  }

  std::vector<RegistryEndpoint> endpoints(const std::string& reference, const TransportOptions& o) const {
    if (!o.endpoints.empty()) return o.endpoints;
    RepoRef r = parse_reference(reference);
    return {{r.host + "/" + r.repository, false, false}};
  }

  const Settings& settings() const { return settings_; }
  const Logger* logger() const { return ctx_.logger; }

 private:
  PluginContext ctx_;
  Settings settings_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Registry>> registries_;
};

std::string pull_scope(const std::string& repository) { return "repository:" + repository + ":pull"; }
std::string push_scope(const std::string& repository) { return "repository:" + repository + ":pull,push"; }

class DockerSource final : public ImageSource {
 public:
  DockerSource(DockerTransport& t, std::vector<Bound> candidates, RepoRef ref)
      : transport_(t), candidates_(std::move(candidates)), ref_(std::move(ref)) {}

  Manifest get_manifest(const std::string& digest) override {
    std::string want = digest.empty() ? ref_.reference() : digest;
    std::optional<Error> last;
    // Mirrors first: a mirror that fails moves on to the next; what answers is used for the blobs.
    for (size_t i = bound_ ? *bound_ : 0; i < candidates_.size(); ++i) {
      try {
        Manifest m = fetch_manifest(candidates_[i], want);
        bound_ = i;
        return m;
      } catch (Error& e) {
        if (bound_ || i + 1 == candidates_.size()) throw;
        if (transport_.logger())
          transport_.logger()->info("mirror " + candidates_[i].registry->host() + " failed, trying the next: " + e.what());
        last = std::move(e);
      }
    }
    throw Error(Errc::kNotFound, "no endpoint to pull " + ref_.repository + " from");
  }

  void get_blob(const BlobInfo& blob, const fs::path& destination, const ProgressFn& progress) override {
    const Bound& b = candidates_[bound_ ? *bound_ : candidates_.size() - 1];
    std::string expected = digest_hex(blob.digest);
    std::string scope = pull_scope(b.repository);
    int fd = ::open(destination.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw system_error("cannot create " + destination.string(), errno);
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    auto hash = std::make_unique<Sha256>();
    std::uint64_t written = 0;
    bool too_big = false;
    bool rewrite_failed = false;
    auto fail = [&](Error e) {
      ::unlink(destination.c_str());
      throw std::move(e);
    };
    for (int attempt = 0;; ++attempt) {
      HttpRequest req;
      req.url = b.registry->url("/v2/" + b.repository + "/blobs/" + blob.digest);
      if (written > 0) req.headers.push_back("Range: bytes=" + std::to_string(written) + "-");
      req.begin_body = [&](long status) {
        if (status == 206 || written == 0) return;
        // The server ignored the Range: it sends from byte zero, so start the file again.
        if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) rewrite_failed = true;
        written = 0;
        hash = std::make_unique<Sha256>();
      };
      req.sink = [&](const char* data, std::size_t n) {
        if (rewrite_failed) return false;
        if (blob.size >= 0 && written + n > static_cast<std::uint64_t>(blob.size)) {
          too_big = true;
          return false;
        }
        if (!write_all(fd, data, n)) return false;
        hash->update(data, n);
        written += n;
        if (progress) progress(written, blob.size);
        return true;
      };
      // A 200 answer to a Range request starts from byte zero: handled below by starting again.
      HttpResponse r;
      std::uint64_t before = written;
      try {
        r = b.registry->send(req, scope);
      } catch (Error& e) {
        if (too_big)
          fail(Error(Errc::kCorrupt, "blob " + blob.digest + " from " + b.registry->host() + " is larger than the " +
                                         std::to_string(blob.size) + " bytes its manifest says"));
        // The connection broke off midway (send retried what failed before any byte): resume.
        if (e.code() == Errc::kNetwork && written > before && attempt < transport_.settings().retries + 3) {
          if (transport_.logger())
            transport_.logger()->info("blob " + blob.digest.substr(0, 19) + " broke off after " + std::to_string(written) +
                                      " bytes; resuming");
          continue;
        }
        ::unlink(destination.c_str());
        throw;
      }
      if (r.status == 404) {
        fail(Error(Errc::kNotFound, b.registry->host() + "/" + b.repository + " has no blob " + blob.digest));
      } else if (r.status == 401 || r.status == 403) {
        fail(b.registry->access_denied(r, b.repository, "pulling from"));
      } else if (r.status < 200 || r.status >= 300) {
        fail(Error(Errc::kNetwork, "fetching blob " + blob.digest + " from " + b.registry->host() + ": " + registry_message(r)));
      }
      break;
    }
    std::string actual = hash->hex();
    if (actual != expected)
      fail(Error(Errc::kCorrupt, "blob " + blob.digest + " from " + b.registry->host() + "/" + b.repository +
                                     " does not match its digest (its content hashes to sha256:" + actual + ")"));
    if (blob.size >= 0 && written != static_cast<std::uint64_t>(blob.size))
      fail(Error(Errc::kCorrupt, "blob " + blob.digest + " from " + b.registry->host() + " has " + std::to_string(written) +
                                     " bytes, not the " + std::to_string(blob.size) + " its manifest says"));
  }

 private:
  Manifest fetch_manifest(const Bound& b, const std::string& reference) {
    HttpRequest req;
    req.url = b.registry->url("/v2/" + b.repository + "/manifests/" + reference);
    req.headers.push_back(kManifestAccept);
    req.timeout_seconds = 120;
    std::string body;
    bool too_big = false;
    req.sink = [&](const char* d, std::size_t n) {
      if (body.size() + n > kMaxManifestBytes) {
        too_big = true;
        return false;
      }
      body.append(d, n);
      return true;
    };
    HttpResponse r;
    try {
      r = b.registry->send(req, pull_scope(b.repository));
    } catch (const Error&) {
      if (too_big)
        throw Error(Errc::kInvalidInput, "the manifest of " + b.registry->host() + "/" + b.repository + ":" + reference +
                                             " is larger than 4 MiB; refusing it");
      throw;
    }
    std::string where = b.registry->host() + "/" + b.repository + (reference.rfind("sha256:", 0) == 0 ? "@" : ":") + reference;
    if (r.status == 404)
      throw Error(Errc::kNotFound, "no manifest " + reference + " in " + b.registry->host() + "/" + b.repository + " (" +
                                       registry_message(r) + ")");
    if (r.status == 401 || r.status == 403) throw b.registry->access_denied(r, b.repository, "pulling from");
    if (r.status != 200) throw Error(Errc::kNetwork, "fetching the manifest of " + where + ": " + registry_message(r));
    Manifest m;
    m.content = std::move(body);
    m.media_type = r.header("content-type");
    if (auto semi = m.media_type.find(';'); semi != std::string::npos) m.media_type = m.media_type.substr(0, semi);
    if (reference.rfind("sha256:", 0) == 0 && "sha256:" + sha256_hex(m.content) != reference)
      throw Error(Errc::kCorrupt, where + ": the manifest served does not match its digest");
    return m;
  }

  DockerTransport& transport_;
  std::vector<Bound> candidates_;
  RepoRef ref_;
  std::optional<size_t> bound_;
};

class DockerDestination final : public ImageDestination {
 public:
  DockerDestination(DockerTransport& t, Bound bound, RepoRef ref) : transport_(t), b_(std::move(bound)), ref_(std::move(ref)) {}

  bool reuse_blob(const BlobInfo& blob, const std::string& from_repository) override {
    HttpRequest head;
    head.method = "HEAD";
    head.url = b_.registry->url("/v2/" + b_.repository + "/blobs/" + blob.digest);
    head.timeout_seconds = 60;
    auto r = b_.registry->send(head, push_scope(b_.repository));
    if (r.status == 200) return true;
    if (r.status == 401 || r.status == 403) throw b_.registry->access_denied(r, b_.repository, "pushing to");
    if (from_repository.empty() || from_repository == b_.repository) return false;
    // Cross-repository mount: the registry links the blob from the other repository.
    HttpRequest mount;
    mount.method = "POST";
    mount.url = b_.registry->url("/v2/" + b_.repository + "/blobs/uploads/?mount=" + url_escape(blob.digest) +
                                 "&from=" + url_escape(from_repository));
    mount.timeout_seconds = 60;
    auto m = b_.registry->send(mount, push_scope(b_.repository) + " " + pull_scope(from_repository));
    if (m.status == 201) return true;
    if (m.status == 202 && !m.header("location").empty()) {
      // Not mounted: an upload was started instead; cancel it (put_blob starts its own).
      HttpRequest cancel;
      cancel.method = "DELETE";
      cancel.url = resolve_url(m.url, m.header("location"));
      cancel.timeout_seconds = 30;
      try {
        b_.registry->send(cancel, push_scope(b_.repository));
      } catch (const Error&) {
      }
    }
    return false;
  }

  void put_blob(const BlobInfo& blob, const fs::path& source, const ProgressFn& progress) override {
    struct stat st{};
    if (::stat(source.c_str(), &st) != 0) throw system_error("cannot read " + source.string(), errno);
    auto size = static_cast<std::uint64_t>(st.st_size);
    std::string scope = push_scope(b_.repository);
    std::uint64_t chunk = transport_.settings().chunk_size;
    for (int attempt = 0;; ++attempt) {
      try {
        std::string location = start_upload(scope);
        std::uint64_t offset = 0;
        if (chunk > 0 && size > chunk) {
          // Chunked: PATCH each piece with its Content-Range, then PUT with the digest.
          while (offset < size) {
            std::uint64_t n = std::min(chunk, size - offset);
            HttpRequest patch;
            patch.method = "PATCH";
            patch.url = location;
            patch.body_file = source;
            patch.body_offset = offset;
            patch.body_length = n;
            patch.headers = {"Content-Type: application/octet-stream",
                             "Content-Range: " + std::to_string(offset) + "-" + std::to_string(offset + n - 1)};
            std::uint64_t base = offset;
            patch.upload_progress = [&](std::uint64_t sent) {
              if (progress) progress(base + sent, static_cast<std::int64_t>(size));
            };
            auto r = b_.registry->send(patch, scope);
            if (r.status != 202) throw upload_error(r, blob);
            location = resolve_url(r.url, r.header("location"));
            offset += n;
          }
          HttpRequest put;
          put.method = "PUT";
          put.url = location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=" + url_escape(blob.digest);
          std::string empty;
          put.body = &empty;
          put.headers = {"Content-Type: application/octet-stream"};
          auto r = b_.registry->send(put, scope);
          if (r.status != 201) throw upload_error(r, blob);
        } else {
          HttpRequest put;
          put.method = "PUT";
          put.url = location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=" + url_escape(blob.digest);
          put.body_file = source;
          put.body_length = size;
          put.headers = {"Content-Type: application/octet-stream"};
          put.upload_progress = [&](std::uint64_t sent) {
            if (progress) progress(sent, static_cast<std::int64_t>(size));
          };
          auto r = b_.registry->send(put, scope);
          if (r.status != 201) throw upload_error(r, blob);
        }
        return;
      } catch (const Error& e) {
        // An upload broken off midway starts again (a registry keeps no partial upload we can trust).
        if (e.code() == Errc::kNetwork && attempt < transport_.settings().retries) {
          b_.registry->wait(attempt, "uploading " + blob.digest.substr(0, 19) + ": " + e.what());
          continue;
        }
        throw;
      }
    }
  }

  void put_manifest(const Manifest& manifest, const std::vector<std::string>&) override {
    HttpRequest put;
    put.method = "PUT";
    put.url = b_.registry->url("/v2/" + b_.repository + "/manifests/" + ref_.reference());
    put.body = &manifest.content;
    put.headers = {"Content-Type: " + manifest.media_type};
    put.timeout_seconds = 120;
    auto r = b_.registry->send(put, push_scope(b_.repository));
    if (r.status == 401 || r.status == 403) throw b_.registry->access_denied(r, b_.repository, "pushing to");
    if (r.status != 201 && r.status != 200 && r.status != 202)
      throw Error(Errc::kInvalidInput, b_.registry->host() + "/" + b_.repository + ":" + ref_.reference() +
                                           " refused the manifest: " + registry_message(r));
  }

  void commit() override {}

 private:
  std::string start_upload(const std::string& scope) {
    HttpRequest post;
    post.method = "POST";
    post.url = b_.registry->url("/v2/" + b_.repository + "/blobs/uploads/");
    post.timeout_seconds = 60;
    auto r = b_.registry->send(post, scope);
    if (r.status == 401 || r.status == 403) throw b_.registry->access_denied(r, b_.repository, "pushing to");
    if (r.status != 202 || r.header("location").empty())
      throw Error(Errc::kNetwork, b_.registry->host() + " did not start an upload to " + b_.repository + ": " +
                                      registry_message(r));
    return resolve_url(r.url, r.header("location"));
  }

  Error upload_error(const HttpResponse& r, const BlobInfo& blob) const {
    if (r.status == 401 || r.status == 403) return b_.registry->access_denied(r, b_.repository, "pushing to");
    std::string said = registry_message(r);
    Errc code = r.status >= 500 ? Errc::kNetwork : Errc::kInvalidInput;
    // The registry found the bytes do not match the digest (or the size): corrupt, not a bad request.
    if (said.find("DIGEST_INVALID") != std::string::npos || said.find("SIZE_INVALID") != std::string::npos)
      code = Errc::kCorrupt;
    return Error(code, b_.registry->host() + " refused blob " + blob.digest + " for " + b_.repository + ": " +
                           registry_message(r));
  }

  DockerTransport& transport_;
  Bound b_;
  RepoRef ref_;
};

std::unique_ptr<ImageSource> DockerTransport::open_source(const std::string& transport, const std::string& reference,
                                                          const TransportOptions& options) {
  (void)transport;
  RepoRef ref = parse_reference(reference);
  std::vector<Bound> candidates;
  std::optional<Error> last;
  auto eps = endpoints(reference, options);
  for (size_t i = 0; i < eps.size(); ++i) {
    RepoRef at = split_location(eps[i].location);
    try {
      candidates.push_back({connect(at.host, eps[i], options), at.repository});
    } catch (Error& e) {
      // An endpoint that cannot be reached is skipped (the first that works serves the pull, as
      // in containers/image); when none can, the registry's own error is the one said.
      if (logger()) logger()->info((eps[i].mirror ? "mirror " : "registry ") + at.host + " is unreachable: " + e.what());
      if (!eps[i].mirror || !last) last = std::move(e);
    }
  }
  if (candidates.empty()) throw std::move(*last);
  return std::make_unique<DockerSource>(*this, std::move(candidates), ref);
}

std::unique_ptr<ImageDestination> DockerTransport::open_destination(const std::string& transport,
                                                                    const std::string& reference,
                                                                    const TransportOptions& options) {
  (void)transport;
  RepoRef ref = parse_reference(reference);
  auto eps = endpoints(reference, options);
  // Pushes go to the registry itself, never a mirror.
  const RegistryEndpoint* ep = &eps.back();
  for (const auto& e : eps)
    if (!e.mirror) {
      ep = &e;
      break;
    }
  RepoRef at = split_location(ep->location);
  return std::make_unique<DockerDestination>(*this, Bound{connect(at.host, *ep, options), at.repository}, ref);
}

std::unique_ptr<ImageTransport> make_docker_transport(const PluginContext& ctx) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::make_unique<DockerTransport>(ctx);
}

}  // namespace
}  // namespace hutch::registry::docker

HUTCH_PLUGIN(hutch::ImageTransport, "docker", "0.1.0", hutch::registry::docker::make_docker_transport);
