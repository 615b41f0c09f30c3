#include "http_client.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace hutch::registry::docker {

namespace {

struct Transfer {
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  bool in_final_headers = false;
  bool aborted = false;
  bool body_started = false;
  // Upload from a file.
  int fd = -1;
  std::uint64_t remaining = 0;
  std::uint64_t sent = 0;
  // Upload from memory.
  std::size_t mem_off = 0;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a 100 Continue, or the next one): start its headers afresh.
    t->response->headers.clear();
    t->response->www_authenticate.clear();
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = lower(trim(line.substr(0, colon)));
    std::string value = trim(line.substr(colon + 1));
    if (name == "www-authenticate") t->response->www_authenticate.push_back(value);
    t->response->headers[name] = value;
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->request->sink && t->response->status >= 200 && t->response->status < 300) {
    if (!t->body_started) {
      t->body_started = true;
      if (t->request->begin_body) t->request->begin_body(t->response->status);
    }
    if (!t->request->sink(data, len)) {
      t->aborted = true;
      return 0;
    }
    return len;
  }
  // Error bodies (and bodies without a sink) are kept, within reason.
  if (t->response->body.size() < (8u << 20)) t->response->body.append(data, len);
  return len;
}

size_t on_read(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t want = size * n;
  if (t->request->body) {
    size_t left = t->request->body->size() - t->mem_off;
    size_t k = std::min(left, want);
    std::memcpy(buffer, t->request->body->data() + t->mem_off, k);
    t->mem_off += k;
    return k;
  }
  if (t->fd < 0 || t->remaining == 0) return 0;
  size_t k = static_cast<size_t>(std::min<std::uint64_t>(want, t->remaining));
  ssize_t r;
  do {
    r = ::read(t->fd, buffer, k);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return CURL_READFUNC_ABORT;
  t->remaining -= static_cast<std::uint64_t>(r);
  t->sent += static_cast<std::uint64_t>(r);
  if (t->request->upload_progress) t->request->upload_progress(t->sent);
  return static_cast<size_t>(r);
}

}  // namespace

std::string url_host(const std::string& url) {
  auto scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  auto end = url.find_first_of("/?#", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string resolve_url(const std::string& base, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  auto scheme = base.find("://");
  auto host_end = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  std::string origin = host_end == std::string::npos ? base : base.substr(0, host_end);
  if (!location.empty() && location[0] == '/') return origin + location;
  auto q = base.find('?');
  std::string path = base.substr(0, q);
  auto slash = path.rfind('/');
  return (slash == std::string::npos || slash < origin.size() ? origin + "/" : path.substr(0, slash + 1)) + location;
}

std::string url_escape(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

HttpClient::HttpClient() : curl_(curl_easy_init()) {}
HttpClient::~HttpClient() {
  if (curl_) curl_easy_cleanup(curl_);
}

std::optional<HttpResponse> HttpClient::perform(const HttpRequest& request, const TlsSettings& tls,
                                                const std::string& user_agent, TransportFailure* failure) {
  std::string url = request.url;
  const std::string first_host = url_host(url);
  for (int hop = 0; hop < 10; ++hop) {
    HttpResponse response;
    Transfer t;
    t.request = &request;
    t.response = &response;
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, user_agent.c_str());
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (under 1 KiB/s for a minute) is a dropped connection.
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, 60L);
    if (request.timeout_seconds > 0) curl_easy_setopt(curl_, CURLOPT_TIMEOUT, request.timeout_seconds);
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
    curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
    curl_blob ca{};
    if (!tls.ca_bundle.empty()) {
      ca.data = const_cast<char*>(tls.ca_bundle.data());
      ca.len = tls.ca_bundle.size();
      ca.flags = CURL_BLOB_NOCOPY;
      curl_easy_setopt(curl_, CURLOPT_CAINFO_BLOB, &ca);
    }
    if (!tls.client_cert.empty()) {
      curl_easy_setopt(curl_, CURLOPT_SSLCERT, tls.client_cert.c_str());
      curl_easy_setopt(curl_, CURLOPT_SSLKEY, tls.client_key.c_str());
    }
    struct curl_slist* headers = nullptr;
    for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());
    // The credentials go to the host they were meant for, never where a redirect points.
    if (request.authorization && url_host(url) == first_host)
      headers = curl_slist_append(headers, ("Authorization: " + *request.authorization).c_str());
    bool uploading = request.body || !request.body_file.empty();
    int fd = -1;
    if (uploading) {
      if (!request.body_file.empty()) {
        fd = ::open(request.body_file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::lseek(fd, static_cast<off_t>(request.body_offset), SEEK_SET) < 0) {
          if (fd >= 0) ::close(fd);
          if (failure) failure->message = "cannot read " + request.body_file.string() + ": " + std::strerror(errno);
          curl_slist_free_all(headers);
          return std::nullopt;
        }
        t.fd = fd;
        t.remaining = request.body_length;
      }
      std::uint64_t length = request.body ? request.body->size() : request.body_length;
      curl_easy_setopt(curl_, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl_, CURLOPT_READFUNCTION, on_read);
      curl_easy_setopt(curl_, CURLOPT_READDATA, &t);
      curl_easy_setopt(curl_, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(length));
      headers = curl_slist_append(headers, "Expect:");
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    } else if (request.method == "HEAD") {
      curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
    } else if (request.method != "GET") {
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      if (request.method == "POST") {
        curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, 0L);
      }
    }
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    // The status is needed by on_body before the first byte: take it from the header callback.
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, +[](char* d, size_t s, size_t n, void* u) -> size_t {
      auto* tr = static_cast<Transfer*>(u);
      std::string line(d, s * n);
      if (line.rfind("HTTP/", 0) == 0) {
        auto sp = line.find(' ');
        tr->response->status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
      }
      return on_header(d, s, n, u);
    });
    CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(headers);
    if (fd >= 0) ::close(fd);
    if (rc != CURLE_OK) {
      if (failure) {
        failure->message = t.aborted ? "aborted" : curl_easy_strerror(rc);
        failure->tls = rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
                       rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE;
        failure->refused = rc == CURLE_COULDNT_CONNECT;
      }
      return std::nullopt;
    }
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    response.status = status;
    response.url = url;
    bool redirect = status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    if (redirect && request.follow_redirects && !response.header("location").empty()) {
      url = resolve_url(url, response.header("location"));
      continue;
    }
    return response;
  }
  if (failure) failure->message = "too many redirects from " + request.url;
  return std::nullopt;
}

}  // namespace hutch::registry::docker
