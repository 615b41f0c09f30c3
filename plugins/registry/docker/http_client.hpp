// A small HTTP client over libcurl for the registry transport: one request at a time per
// object, redirects followed by hand (an Authorization header never goes to another host),
// bodies to a string or streamed to a callback, uploads from a string or a file range.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hutch::registry::docker {

struct TlsSettings {
  bool verify = true;
  std::string ca_bundle;            // PEM: extra CAs (with the system's), empty: the system's only
  std::filesystem::path client_cert, client_key;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;           // "Name: value"
  std::optional<std::string> authorization;   // sent only to the host of `url`
  const std::string* body = nullptr;          // PUT/POST/PATCH from memory
  std::filesystem::path body_file;            // ... or from a file
  std::uint64_t body_offset = 0, body_length = 0;  // the part of body_file to send
  // Called with the response body as it arrives, only for a 2xx final response; return false to abort.
  std::function<bool(const char*, std::size_t)> sink;
  // Called with the status before the first byte of a 2xx body reaches the sink.
  std::function<void(long)> begin_body;
  std::function<void(std::uint64_t)> upload_progress;  // bytes of the body sent so far
  bool follow_redirects = true;
  long timeout_seconds = 0;  // 0: none (blobs), else for small requests
  bool retry_refused = true; // a refused connection is retried (not for the first contact)
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower case; the final response's
  std::vector<std::string> www_authenticate;   // every WWW-Authenticate of the final response
  std::string body;                            // when the request had no sink, or for errors
  std::string url;                             // the URL that answered (after redirects)
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// A transport failure (no HTTP answer): connection refused, reset, TLS, timeout.
struct TransportFailure {
  std::string message;
  bool tls = false;      // the TLS handshake failed (a plain HTTP server, a bad certificate)
  bool refused = false;  // nothing listens there (connection refused)
};

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs the request. Returns the response, or fills `failure` and returns nullopt when no
  // HTTP answer came (or the sink aborted: failure->message says "aborted").
  std::optional<HttpResponse> perform(const HttpRequest& request, const TlsSettings& tls, const std::string& user_agent,
                                      TransportFailure* failure);

 private:
  CURL* curl_;
};

// "https://host:port/path?x" -> "host:port"
std::string url_host(const std::string& url);
// `location` relative to `base`.
std::string resolve_url(const std::string& base, const std::string& location);
std::string url_escape(const std::string& text);

}  // namespace hutch::registry::docker
