#include "registry_fixture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

extern char** environ;

namespace hit {

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_str(const std::string& what) { return what + ": " + strerror(errno); }

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  static const char* hx = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hx[c >> 4];
    out += hx[c & 15];
  }
  return out;
}

std::string openssl_error() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// A listening socket on 127.0.0.1 (port 0: any free one).
int listen_loopback(int port, int* bound_port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  if (bound_port) *bound_port = ntohs(a.sin_port);
  return fd;
}

int free_port() {
  int port = 0;
  int fd = listen_loopback(0, &port);
  if (fd < 0) return 0;
  ::close(fd);
  return port;
}

void set_timeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int connect_loopback(const std::string& host, int port, int timeout_ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  if (inet_pton(AF_INET, h.c_str(), &a.sin_addr) != 1) {
    ::close(fd);
    errno = EINVAL;
    return -1;
  }
  set_timeouts(fd, timeout_ms);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// One end of a connection, plain or TLS, blocking with the socket's timeouts.
struct Io {
  int fd = -1;
  SSL* ssl = nullptr;
  ssize_t read(char* buf, size_t n) {
    if (ssl) {
      int r = SSL_read(ssl, buf, static_cast<int>(std::min<size_t>(n, 1 << 30)));
      if (r > 0) return r;
      int e = SSL_get_error(ssl, r);
      return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    for (;;) {
      ssize_t r = ::recv(fd, buf, n, 0);
      if (r < 0 && errno == EINTR) continue;
      return r;
    }
  }
  bool write_all(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w;
      if (ssl) {
        int r = SSL_write(ssl, p, static_cast<int>(std::min<size_t>(n, 1 << 30)));
        w = r > 0 ? r : -1;
      } else {
        w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
      }
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  bool write_all(const std::string& s) { return write_all(s.data(), s.size()); }
};

struct Head {
  std::string start_line;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-cased names
  std::string get(const std::string& name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return v;
    return "";
  }
  bool has(const std::string& name) const {
    return std::any_of(headers.begin(), headers.end(), [&](const auto& kv) { return kv.first == name; });
  }
};

// Reads up to the end of the head; `buf` keeps what came after it (the start of the body).
// `tls_hello` (servers): set when the peer opened with a TLS handshake record instead.
bool read_head(Io& io, std::string& buf, Head& head, bool* tls_hello = nullptr) {
  size_t end;
  char tmp[16384];
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > 1 << 20) return false;
    ssize_t n = io.read(tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    if (tls_hello && buf[0] == '\x16') {
      *tls_hello = true;
      return false;
    }
  }
  std::string text = buf.substr(0, end);
  buf.erase(0, end + 4);
  std::istringstream in(text);
  std::string l;
  bool first = true;
  while (std::getline(in, l)) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (first) {
      head.start_line = l;
      first = false;
      continue;
    }
    auto colon = l.find(':');
    if (colon == std::string::npos) continue;
    head.headers.push_back({lower(trim(l.substr(0, colon))), trim(l.substr(colon + 1))});
  }
  return !head.start_line.empty();
}

// Reads exactly n bytes (buffer first); false on EOF/error before.
bool read_exact(Io& io, std::string& buf, size_t n, std::string& out) {
  char tmp[65536];
  while (buf.size() < n) {
    ssize_t r = io.read(tmp, sizeof tmp);
    if (r <= 0) {
      out += buf;
      buf.clear();
      return false;
    }
    buf.append(tmp, static_cast<size_t>(r));
  }
  out += buf.substr(0, n);
  buf.erase(0, n);
  return true;
}

bool read_line(Io& io, std::string& buf, std::string& line) {
  char tmp[4096];
  size_t pos;
  while ((pos = buf.find("\r\n")) == std::string::npos) {
    ssize_t r = io.read(tmp, sizeof tmp);
    if (r <= 0) return false;
    buf.append(tmp, static_cast<size_t>(r));
  }
  line = buf.substr(0, pos);
  buf.erase(0, pos + 2);
  return true;
}

// A chunked body: decoded into `decoded` when non-null, its raw framing into `raw` when non-null.
bool read_chunked(Io& io, std::string& buf, std::string* decoded, std::string* raw) {
  for (;;) {
    std::string line;
    if (!read_line(io, buf, line)) return false;
    if (raw) *raw += line + "\r\n";
    size_t size = std::strtoul(line.c_str(), nullptr, 16);
    if (size == 0) {
      for (;;) {  // trailers up to an empty line
        if (!read_line(io, buf, line)) return false;
        if (raw) *raw += line + "\r\n";
        if (line.empty()) return true;
      }
    }
    std::string data;
    if (!read_exact(io, buf, size + 2, data)) return false;
    if (decoded) *decoded += data.substr(0, size);
    if (raw) *raw += data;
  }
}

// Reads a request body (Content-Length or chunked) into `body` (decoded).
bool read_body(Io& io, std::string& buf, const Head& head, std::string& body) {
  if (icontains(head.get("transfer-encoding"), "chunked")) return read_chunked(io, buf, &body, nullptr);
  std::string cl = head.get("content-length");
  if (cl.empty()) return true;
  return read_exact(io, buf, std::stoull(cl), body);
}

struct Url {
  bool tls = false;
  std::string host;
  int port = 80;
  std::string target = "/";
};

bool parse_url(const std::string& url, Url& u) {
  std::string rest;
  if (url.rfind("http://", 0) == 0) rest = url.substr(7);
  else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
    u.tls = true;
    u.port = 443;
  } else {
    return false;
  }
  auto slash = rest.find('/');
  std::string hp = rest.substr(0, slash);
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = hp.rfind(':');
  if (colon != std::string::npos) {
    u.host = hp.substr(0, colon);
    u.port = std::atoi(hp.substr(colon + 1).c_str());
  } else {
    u.host = hp;
  }
  return !u.host.empty() && u.port > 0;
}

std::string url_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') out += ' ';
    else if (s[i] == '%' && i + 2 < s.size() && isxdigit(static_cast<unsigned char>(s[i + 1])) &&
             isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(const std::string& q) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(q);
  std::string part;
  while (std::getline(in, part, '&')) {
    if (part.empty()) continue;
    auto eq = part.find('=');
    out.push_back({url_decode(part.substr(0, eq)), eq == std::string::npos ? "" : url_decode(part.substr(eq + 1))});
  }
  return out;
}

std::string reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string simple_response(int status, const std::string& body, const std::string& extra_headers = "",
                            const std::string& content_type = "application/json") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "Connection: close\r\n\r\n" + body;
}

std::string rfc3339_now() {
  time_t t = time(nullptr);
  tm g{};
  gmtime_r(&t, &g);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &g);
  return buf;
}

// Runs a tool (argv), its output in the Result; used for openssl, htpasswd, tar, gzip.
Result tool(const std::vector<std::string>& argv, const std::string& cwd = "", std::chrono::milliseconds timeout = 120s) {
  Options o;
  o.cwd = cwd;
  o.timeout = timeout;
  return run(argv, o);
}

std::string describe(const Result& r) {
  std::ostringstream os;
  os << r;
  return os.str();
}

void mkdirs(const std::string& d) {
  std::error_code ec;
  fs::create_directories(d, ec);
  if (ec) throw std::runtime_error("mkdir " + d + ": " + ec.message());
}

std::string sha256_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[32];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static const char* hx = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hx[md[i] >> 4];
    out += hx[md[i] & 15];
  }
  return out;
}

}  // namespace

// ---- small public helpers ------------------------------------------------------------------------

std::string base64_encode(const std::string& data, bool url_safe, bool pad) {
  static const char* std_abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char* url_abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* abc = url_safe ? url_abc : std_abc;
  std::string out;
  size_t i = 0;
  auto b = [&](size_t k) { return static_cast<unsigned char>(data[k]); };
  for (; i + 2 < data.size(); i += 3) {
    unsigned v = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    out += abc[v & 63];
  }
  if (i + 1 == data.size()) {
    unsigned v = b(i) << 16;
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (i + 2 == data.size()) {
    unsigned v = (b(i) << 16) | (b(i + 1) << 8);
    out += abc[(v >> 18) & 63];
    out += abc[(v >> 12) & 63];
    out += abc[(v >> 6) & 63];
    if (pad) out += "=";
  }
  return out;
}

std::string base64_decode(const std::string& data) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : data) {
    int v = val(c);
    if (v < 0) continue;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string sha256_hex(const std::string& data) {
  unsigned char md[32];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hx = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hx[md[i] >> 4];
    out += hx[md[i] & 15];
  }
  return out;
}

std::string HttpResponse::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

HttpResponse http_request(const std::string& url, const HttpRequestOptions& opts) {
  HttpResponse res;
  Url u;
  if (!parse_url(url, u)) {
    res.error = "bad URL " + url;
    return res;
  }
  int fd = connect_loopback(u.host, u.port, opts.timeout_ms);
  if (fd < 0) {
    res.error = errno_str("connect " + u.host + ":" + std::to_string(u.port));
    return res;
  }
  Io io{fd, nullptr};
  SSL_CTX* ctx = nullptr;
  auto cleanup = [&] {
    if (io.ssl) {
      SSL_shutdown(io.ssl);
      SSL_free(io.ssl);
    }
    if (ctx) SSL_CTX_free(ctx);
    ::close(fd);
  };
  if (u.tls || opts.tls) {
    ctx = SSL_CTX_new(TLS_client_method());
    if (!opts.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, opts.ca_file.c_str(), nullptr) != 1) {
        res.error = "loading CA " + opts.ca_file + ": " + openssl_error();
        cleanup();
        return res;
      }
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    io.ssl = SSL_new(ctx);
    SSL_set_fd(io.ssl, fd);
    if (!opts.ca_file.empty()) {
      X509_VERIFY_PARAM* p = SSL_get0_param(io.ssl);
      if (u.host == "localhost") X509_VERIFY_PARAM_set1_host(p, "localhost", 0);
      else X509_VERIFY_PARAM_set1_ip_asc(p, u.host.c_str());
    }
    if (u.host == "localhost") SSL_set_tlsext_host_name(io.ssl, "localhost");
    if (SSL_connect(io.ssl) != 1) {
      res.error = "TLS handshake with " + u.host + ":" + std::to_string(u.port) + ": " + openssl_error();
      cleanup();
      return res;
    }
  }
  std::string req = opts.method + " " + u.target + " HTTP/1.1\r\nHost: " + u.host + ":" + std::to_string(u.port) +
                    "\r\nUser-Agent: hutch-integration-tests\r\nConnection: close\r\n";
  bool has_cl = false;
  for (const auto& [k, v] : opts.headers) {
    req += k + ": " + v + "\r\n";
    if (lower(k) == "content-length") has_cl = true;
  }
  if (!opts.body.empty() && !has_cl) req += "Content-Length: " + std::to_string(opts.body.size()) + "\r\n";
  req += "\r\n" + opts.body;
  if (!io.write_all(req)) {
    res.error = errno_str("sending the request");
    cleanup();
    return res;
  }
  std::string buf;
  Head head;
  if (!read_head(io, buf, head)) {
    res.error = "no response head from " + url;
    cleanup();
    return res;
  }
  res.headers = head.headers;
  auto sp = split_ws(head.start_line);
  res.status = sp.size() >= 2 ? std::atoi(sp[1].c_str()) : 0;
  bool no_body = opts.method == "HEAD" || res.status == 204 || res.status == 304 || (res.status >= 100 && res.status < 200);
  if (!no_body) {
    if (icontains(head.get("transfer-encoding"), "chunked")) {
      if (!read_chunked(io, buf, &res.body, nullptr)) res.truncated = true;
    } else if (!head.get("content-length").empty()) {
      if (!read_exact(io, buf, std::stoull(head.get("content-length")), res.body)) res.truncated = true;
    } else {
      res.body = buf;
      char tmp[65536];
      ssize_t n;
      while ((n = io.read(tmp, sizeof tmp)) > 0) res.body.append(tmp, static_cast<size_t>(n));
    }
  }
  cleanup();
  return res;
}

// ---- skopeo --------------------------------------------------------------------------------------

Result skopeo(const std::vector<std::string>& args, const std::string& state_dir, std::chrono::milliseconds timeout) {
  std::string st = state_dir.empty() ? suite().dir + "/skopeo-state" : state_dir;
  mkdirs(st + "/home");
  mkdirs(st + "/tmp");
  if (!fs::exists(st + "/registries.conf")) write_file(st + "/registries.conf", "# empty: nothing of the host's\n");
  Options o;
  o.timeout = timeout;
  o.env["HOME"] = st + "/home";
  o.env["TMPDIR"] = st + "/tmp";
  o.env["CONTAINERS_REGISTRIES_CONF"] = st + "/registries.conf";
  o.env["REGISTRY_AUTH_FILE"] = st + "/auth.json";
  o.env["XDG_RUNTIME_DIR"] = std::nullopt;
  o.env["XDG_CONFIG_HOME"] = std::nullopt;
  o.env["DOCKER_CONFIG"] = st + "/docker";
  o.cwd = st;
  std::vector<std::string> a = {"skopeo", "--insecure-policy"};
  a.insert(a.end(), args.begin(), args.end());
  return run(a, o);
}

Result push_with_skopeo(const std::string& src, const std::string& dest_ref, const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"copy", "--retry-times", "0"};
  a.insert(a.end(), extra.begin(), extra.end());
  a.push_back(src);
  a.push_back(dest_ref);
  return skopeo(a);
}

// ---- the registry ------------------------------------------------------------------------------------

TestRegistry::TestRegistry(Setup setup, const std::string& scratch) : setup_(setup), scratch_(scratch) {
  mkdirs(scratch_);
  storage_ = scratch_ + "/storage";
  cert_dir_ = scratch_ + "/certs";
  config_ = scratch_ + "/config.yml";
  log_file_ = scratch_ + "/registry.log";
  password_ = "pw-" + random_hex(12);
}

TestRegistry::~TestRegistry() { stop(); }

std::string TestRegistry::host() const { return "127.0.0.1:" + std::to_string(port_); }
std::string TestRegistry::url() const { return std::string(tls() ? "https://" : "http://") + host(); }
std::string TestRegistry::log() const { return read_file(log_file_); }
std::string TestRegistry::token_realm() const { return "http://127.0.0.1:" + std::to_string(issuer_port_) + "/token"; }

std::string TestRegistry::blob_data_path(const std::string& digest) const {
  std::string hex = digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : digest;
  return storage_ + "/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
}

bool TestRegistry::has_tag(const std::string& repo, const std::string& tag) const {
  return fs::exists(storage_ + "/docker/registry/v2/repositories/" + repo + "/_manifests/tags/" + tag + "/current/link");
}

std::string TestRegistry::make_tls_material() {
  mkdirs(cert_dir_);
  std::string d = scratch_ + "/tls";
  mkdirs(d);
  Result r = tool({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key", "-out",
                   cert_dir_ + "/ca.crt", "-days", "3", "-subj", "/CN=hutch integration test CA", "-addext",
                   "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"},
                  d);
  if (r.code != 0) return "making the CA:" + describe(r);
  r = tool({"openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/server.key", "-out",
            d + "/server.csr", "-subj", "/CN=127.0.0.1"},
           d);
  if (r.code != 0) return "making the server key:" + describe(r);
  write_file(d + "/server.ext",
             "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
             "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  r = tool({"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", cert_dir_ + "/ca.crt", "-CAkey", d + "/ca.key",
            "-CAcreateserial", "-out", d + "/server.crt", "-days", "3", "-sha256", "-extfile", d + "/server.ext"},
           d);
  if (r.code != 0) return "signing the server certificate:" + describe(r);
  r = tool({"htpasswd", "-Bbn", username(), password_}, d);
  if (r.code != 0 || !contains(r.out, username() + ":")) return "htpasswd:" + describe(r);
  write_file(d + "/htpasswd", trim(r.out) + "\n");
  return "";
}

std::string TestRegistry::make_token_material() {
  std::string d = scratch_ + "/token";
  mkdirs(d);
  Result r = tool({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/signer.key", "-out",
                   d + "/signer.crt", "-days", "3", "-subj", "/CN=hutch-test-issuer"},
                  d);
  if (r.code != 0) return "making the token signing certificate:" + describe(r);
  token_key_pem_ = read_file(d + "/signer.key");
  BIO* kb = BIO_new_mem_buf(token_key_pem_.data(), static_cast<int>(token_key_pem_.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  BIO_free(kb);
  if (!key) return "reading the token signing key: " + openssl_error();
  token_key_ = key;
  std::string pem = read_file(d + "/signer.crt");
  BIO* cb = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  if (!cert) return "reading the token signing certificate: " + openssl_error();
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  X509_free(cert);
  if (len <= 0) return "encoding the token signing certificate: " + openssl_error();
  token_cert_der_.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return "";
}

std::string TestRegistry::write_config() {
  std::ostringstream y;
  y << "version: 0.1\n"
    << "log:\n  level: warn\n  formatter: text\n  accesslog:\n    disabled: true\n"
    << "storage:\n  filesystem:\n    rootdirectory: " << storage_ << "\n"
    << "  delete:\n    enabled: true\n"
    << "  maintenance:\n    uploadpurging:\n      enabled: false\n"
    << "http:\n  addr: 127.0.0.1:" << port_ << "\n  secret: " << random_hex(16) << "\n";
  if (setup_ == Setup::kTlsBasic) {
    y << "  tls:\n    certificate: " << scratch_ << "/tls/server.crt\n    key: " << scratch_ << "/tls/server.key\n";
    y << "auth:\n  htpasswd:\n    realm: hutch-test-registry\n    path: " << scratch_ << "/tls/htpasswd\n";
  } else if (setup_ == Setup::kToken) {
    y << "auth:\n  token:\n    realm: " << token_realm() << "\n    service: " << kService << "\n    issuer: " << kIssuer
      << "\n    rootcertbundle: " << scratch_ << "/token/signer.crt\n";
  }
  write_file(config_, y.str());
  return "";
}

std::string TestRegistry::start() {
  if (pid_ > 0) return "";
  try {
    mkdirs(storage_);
    std::string e;
    if (setup_ == Setup::kTlsBasic && !fs::exists(scratch_ + "/tls/htpasswd")) e = make_tls_material();
    if (e.empty() && setup_ == Setup::kToken && !token_key_) e = make_token_material();
    if (e.empty() && setup_ == Setup::kToken && issuer_fd_ < 0) e = start_issuer();
    if (!e.empty()) return e;
  } catch (const std::exception& ex) {
    return ex.what();
  }
  if (access("/usr/bin/docker-registry", X_OK) != 0) return "/usr/bin/docker-registry is not installed";
  std::string last;
  for (int attempt = 0; attempt < 6; ++attempt) {
    port_ = free_port();
    if (port_ == 0) return errno_str("finding a free port");
    write_config();
    int logfd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) return errno_str("open " + log_file_);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, logfd, 1);
    posix_spawn_file_actions_adddup2(&fa, logfd, 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setpgroup(&at, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    sigset_t def;
    sigfillset(&def);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::string bin = "/usr/bin/docker-registry", serve = "serve";
    std::vector<char*> argv = {bin.data(), serve.data(), config_.data(), nullptr};
    // Through setpriv --pdeathsig: a test binary that dies leaves no registry behind.
    std::string setpriv = "/usr/bin/setpriv", pd = "--pdeathsig", sig = "KILL", dd = "--";
    if (access(setpriv.c_str(), X_OK) == 0) {
      argv = {setpriv.data(), pd.data(), sig.data(), dd.data(), bin.data(), serve.data(), config_.data(), nullptr};
    }
    std::string exe = argv[0];
    // The registry reads REGISTRY_* variables as configuration: give it none of the caller's.
    std::vector<std::string> env_strs;
    for (char** e = environ; *e; ++e)
      if (std::string(*e).rfind("REGISTRY_", 0) != 0) env_strs.push_back(*e);
    std::vector<char*> envp;
    for (auto& s : env_strs) envp.push_back(s.data());
    envp.push_back(nullptr);
    pid_t pid;
    int rc = posix_spawn(&pid, exe.c_str(), &fa, &at, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    ::close(logfd);
    if (rc != 0) return "posix_spawn docker-registry: " + std::string(strerror(rc));
    pid_ = pid;
    auto deadline = Clock::now() + 30s;
    bool exited = false;
    while (Clock::now() < deadline) {
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        exited = true;
        pid_ = -1;
        break;
      }
      HttpRequestOptions o;
      o.timeout_ms = 2000;
      o.ca_file = tls() ? ca_cert() : "";
      HttpResponse r = http_request(url() + "/v2/", o);
      if (r.status == 200 || r.status == 401) return "";
      if (r.status != 0) last = "GET /v2/ answered " + std::to_string(r.status);
      else last = r.error;
      std::this_thread::sleep_for(50ms);
    }
    std::string lg = log();
    if (exited && contains(lg, "address already in use")) {
      last = "port " + std::to_string(port_) + " was taken";
      continue;
    }
    stop();
    return "docker-registry did not become ready on " + url() + " (" + (exited ? "it exited" : "timed out") +
           "; last: " + last + "); its log " + log_file_ + ":\n" + lg;
  }
  return "docker-registry could not get a port: " + last;
}

void TestRegistry::stop() {
  if (pid_ > 0) {
    ::kill(-pid_, SIGTERM);
    ::kill(pid_, SIGTERM);
    auto deadline = Clock::now() + 5s;
    int st;
    bool gone = false;
    while (Clock::now() < deadline) {
      pid_t w = waitpid(pid_, &st, WNOHANG);
      if (w == pid_ || (w < 0 && errno == ECHILD)) {
        gone = true;
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    if (!gone) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
    }
    pid_ = -1;
  }
  if (issuer_fd_ >= 0) {
    if (stop_pipe_[1] >= 0) (void)!::write(stop_pipe_[1], "x", 1);
    if (issuer_thread_.joinable()) issuer_thread_.join();
    ::close(issuer_fd_);
    issuer_fd_ = -1;
    for (int& fd : stop_pipe_) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }
  if (token_key_) {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(token_key_));
    token_key_ = nullptr;
  }
}

static std::vector<std::string> skopeo_registry_args(const TestRegistry& reg, const std::string& prefix, bool with_creds) {
  std::vector<std::string> a;
  if (reg.setup() == TestRegistry::Setup::kTlsBasic) {
    a = {"--" + prefix + "cert-dir", reg.cert_dir()};
  } else {
    a = {"--" + prefix + "tls-verify=false"};
  }
  if (with_creds && reg.setup() != TestRegistry::Setup::kPlain) {
    a.push_back("--" + prefix + "creds");
    a.push_back(reg.creds());
  }
  return a;
}

std::vector<std::string> TestRegistry::skopeo_dest_args(bool with_creds) const {
  return skopeo_registry_args(*this, "dest-", with_creds);
}
std::vector<std::string> TestRegistry::skopeo_src_args(bool with_creds) const {
  return skopeo_registry_args(*this, "src-", with_creds);
}

Result TestRegistry::push_with_skopeo(const std::string& src, const std::string& dest_repo_tag,
                                      const std::vector<std::string>& extra, bool with_creds) const {
  std::vector<std::string> a = skopeo_dest_args(with_creds);
  a.insert(a.end(), extra.begin(), extra.end());
  return hit::push_with_skopeo(src, "docker://" + host() + "/" + dest_repo_tag, a);
}

Result TestRegistry::skopeo_inspect(const std::string& repo_tag, const std::vector<std::string>& extra,
                                    bool with_creds) const {
  std::vector<std::string> a = {"inspect", "--retry-times", "0"};
  auto r = skopeo_registry_args(*this, "", with_creds);
  a.insert(a.end(), r.begin(), r.end());
  a.insert(a.end(), extra.begin(), extra.end());
  a.push_back("docker://" + host() + "/" + repo_tag);
  return skopeo(a);
}

// ---- the token issuer ------------------------------------------------------------------------

int TestRegistry::token_requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<int>(token_log_.size());
}

std::vector<TestRegistry::TokenRequest> TestRegistry::token_log() const {
  std::lock_guard<std::mutex> l(mu_);
  return token_log_;
}

std::string TestRegistry::start_issuer() {
  issuer_fd_ = listen_loopback(0, &issuer_port_);
  if (issuer_fd_ < 0) return errno_str("listening for the token issuer");
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) return errno_str("pipe");
  issuer_thread_ = std::thread([this] { issuer_loop(); });
  return "";
}

void TestRegistry::issuer_loop() {
  for (;;) {
    pollfd p[2] = {{issuer_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (p[1].revents & POLLIN)) return;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = ::accept4(issuer_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    set_timeouts(fd, 10000);
    // Token requests are small and quick: served one after the other on this thread.
    try {
      issuer_serve(fd);
    } catch (...) {
    }
    ::close(fd);
  }
}

std::string TestRegistry::make_jwt(const std::string& subject, const nlohmann::json& access) {
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}, {"x5c", {base64_encode(token_cert_der_)}}};
  long now = static_cast<long>(time(nullptr));
  nlohmann::json claims = {{"iss", kIssuer}, {"sub", subject}, {"aud", kService}, {"exp", now + 300},
                           {"nbf", now - 10}, {"iat", now}, {"jti", random_hex(16)}, {"access", access}};
  std::string input = base64_encode(header.dump(), true, false) + "." + base64_encode(claims.dump(), true, false);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, static_cast<EVP_PKEY*>(token_key_)) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1) {
    sig.resize(len);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
      sig.clear();
    else
      sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  return input + "." + base64_encode(sig, true, false);
}

void TestRegistry::issuer_serve(int fd) {
  Io io{fd, nullptr};
  std::string buf;
  Head head;
  bool tls_hello = false;
  if (!read_head(io, buf, head, &tls_hello)) {
    if (tls_hello) io.write_all(simple_response(400, "Client sent an HTTPS request to a plain HTTP server.\n", "", "text/plain"));
    return;
  }
  std::string body;
  if (!read_body(io, buf, head, body)) return;
  auto sl = split_ws(head.start_line);
  if (sl.size() < 2) return;
  TokenRequest tr;
  tr.method = sl[0];
  std::string target = sl[1];
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::pair<std::string, std::string>> params;
  if (target.find('?') != std::string::npos) params = parse_query(target.substr(target.find('?') + 1));
  std::string user, pass;
  bool have_creds = false;
  std::string authz = head.get("authorization");
  if (authz.rfind("Basic ", 0) == 0) {
    std::string up = base64_decode(trim(authz.substr(6)));
    auto colon = up.find(':');
    user = up.substr(0, colon);
    pass = colon == std::string::npos ? "" : up.substr(colon + 1);
    have_creds = true;
  }
  if (tr.method == "POST") {  // OAuth2 form: grant_type=password (refresh tokens are not issued)
    auto form = parse_query(body);
    std::string grant;
    for (const auto& [k, v] : form) {
      if (k == "grant_type") grant = v;
      else if (k == "username") user = v, have_creds = true;
      else if (k == "password") pass = v;
      else params.push_back({k, v});
    }
    if (grant != "password") have_creds = true, user = "", pass = "\x01";  // refused below
  }
  for (const auto& [k, v] : params) {
    if (k == "service") tr.service = v;
    if (k == "scope")
      for (const auto& s : split_ws(v)) tr.scopes.push_back(s);
  }
  tr.user = user;
  std::string reply;
  if (path != "/token" || (tr.method != "GET" && tr.method != "POST")) {
    tr.status = 404;
    reply = simple_response(404, R"({"errors":[{"code":"NOT_FOUND","message":"no such endpoint"}]})");
  } else if (tr.service != kService) {
    tr.status = 400;
    reply = simple_response(400, R"({"errors":[{"code":"UNSUPPORTED","message":"unknown service"}]})");
  } else if (have_creds && (user != username() || pass != password_)) {
    tr.status = 401;
    reply = simple_response(401, R"({"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]})",
                            "WWW-Authenticate: Basic realm=\"hutch-test-issuer\"\r\n");
  } else {
    nlohmann::json access = nlohmann::json::array();
    for (const auto& s : tr.scopes) {
      auto c1 = s.find(':');
      auto c2 = s.rfind(':');
      if (c1 == std::string::npos || c2 == c1) continue;
      std::string type = s.substr(0, c1), name = s.substr(c1 + 1, c2 - c1 - 1);
      nlohmann::json actions = nlohmann::json::array();
      std::istringstream in(s.substr(c2 + 1));
      std::string a;
      while (std::getline(in, a, ',')) {
        if (a.empty()) continue;
        if (have_creds || (anonymous_pull_ && type == "repository" && a == "pull")) actions.push_back(a);
      }
      if (!actions.empty()) access.push_back({{"type", type}, {"name", name}, {"actions", actions}});
    }
    std::string jwt = make_jwt(have_creds ? user : "", access);
    nlohmann::json j = {{"token", jwt}, {"access_token", jwt}, {"expires_in", 300}, {"issued_at", rfc3339_now()}};
    tr.status = 200;
    reply = simple_response(200, j.dump());
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    token_log_.push_back(tr);
  }
  io.write_all(reply);
  ::shutdown(fd, SHUT_WR);
}

// ---- the fault proxy ---------------------------------------------------------------------------------

std::string FaultProxy::Request::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return "";
}

FaultProxy::FaultProxy(const std::string& upstream_host) : upstream_(upstream_host) {
  auto colon = upstream_.rfind(':');
  upstream_port_ = colon == std::string::npos ? 80 : std::atoi(upstream_.substr(colon + 1).c_str());
}

FaultProxy::~FaultProxy() { stop(); }

std::string FaultProxy::start() {
  if (listen_fd_ >= 0) return "";
  listen_fd_ = listen_loopback(0, &port_);
  if (listen_fd_ < 0) return errno_str("listening for the proxy");
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) return errno_str("pipe");
  accept_thread_ = std::thread([this] { accept_loop(); });
  return "";
}

void FaultProxy::stop() {
  if (listen_fd_ < 0) return;
  stopping_ = true;
  (void)!::write(stop_pipe_[1], "x", 1);
  if (accept_thread_.joinable()) accept_thread_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& t : workers)
    if (t.joinable()) t.join();
  ::close(listen_fd_);
  listen_fd_ = -1;
  for (int& fd : stop_pipe_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

void FaultProxy::accept_loop() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (p[1].revents & POLLIN)) return;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    set_timeouts(fd, 60000);
    std::lock_guard<std::mutex> l(mu_);
    open_fds_.push_back(fd);
    workers_.emplace_back([this, fd] {
      try {
        serve(fd);
      } catch (...) {
      }
      std::lock_guard<std::mutex> l2(mu_);
      open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
      ::close(fd);
    });
  }
}

void FaultProxy::fail_first(const std::string& path_substr, int n, int status, const std::string& method) {
  std::lock_guard<std::mutex> l(mu_);
  rules_.push_back({Rule::kFail, path_substr, method, n, status, 0});
}

void FaultProxy::drop_after(const std::string& path_substr, uint64_t body_bytes, const std::string& method) {
  std::lock_guard<std::mutex> l(mu_);
  rules_.push_back({Rule::kDrop, path_substr, method, 1, 0, body_bytes});
}

void FaultProxy::throttle(const std::string& path_substr, uint64_t bytes_per_second, const std::string& method) {
  std::lock_guard<std::mutex> l(mu_);
  rules_.push_back({Rule::kThrottle, path_substr, method, 0, 0, std::max<uint64_t>(bytes_per_second, 1)});
}

std::string setup_name(TestRegistry::Setup setup) {
  switch (setup) {
    case TestRegistry::Setup::kPlain: return "Plain";
    case TestRegistry::Setup::kTlsBasic: return "TlsBasic";
    case TestRegistry::Setup::kToken: return "Token";
  }
  return "?";
}

void FaultProxy::redirect(const std::string& path_substr, const std::string& base_url, const std::string& method) {
  std::lock_guard<std::mutex> l(mu_);
  Rule r{Rule::kRedirect, path_substr, method};
  r.text = base_url;
  rules_.push_back(r);
}

void FaultProxy::require_basic(const std::string& user, const std::string& password) {
  std::lock_guard<std::mutex> l(mu_);
  Rule r{Rule::kBasic, "", ""};
  r.text = "Basic " + base64_encode(user + ":" + password, false, true);
  rules_.push_back(r);
}

void FaultProxy::clear_rules() {
  std::lock_guard<std::mutex> l(mu_);
  rules_.clear();
}

int FaultProxy::count(const std::string& path_substr, const std::string& method) const {
  return static_cast<int>(requests(path_substr, method).size());
}

std::vector<FaultProxy::Request> FaultProxy::requests(const std::string& path_substr, const std::string& method) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Request> out;
  for (const auto& r : log_)
    if (contains(r.target, path_substr) && (method.empty() || r.method == method)) out.push_back(r);
  return out;
}

uint64_t FaultProxy::body_bytes(const std::string& path_substr, const std::string& method) const {
  uint64_t n = 0;
  for (const auto& r : requests(path_substr, method)) n += r.body_bytes;
  return n;
}

void FaultProxy::serve(int fd) {
  Io client{fd, nullptr};
  std::string cbuf;
  Head req;
  bool tls_hello = false;
  if (!read_head(client, cbuf, req, &tls_hello)) {
    // A client trying TLS first (as containers/image does before falling back to plain HTTP):
    // answered as Go's plain HTTP server does, at once, so the client moves on.
    if (tls_hello) client.write_all(simple_response(400, "Client sent an HTTPS request to a plain HTTP server.\n", "", "text/plain"));
    return;
  }
  auto sl = split_ws(req.start_line);
  if (sl.size() < 3) return;
  Request rec{sl[0], sl[1], req.headers, 0, 0, false};
  size_t index;
  int fail_status = 0;
  std::string redirect_to;
  bool unauthorized = false;
  uint64_t drop_at = UINT64_MAX, rate = 0;
  bool drop_rule = false;
  size_t drop_rule_index = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    index = log_.size();
    log_.push_back(rec);
    for (size_t i = 0; i < rules_.size(); ++i) {
      Rule& r = rules_[i];
      if (!contains(rec.target, r.path) || (!r.method.empty() && r.method != rec.method)) continue;
      if (r.kind == Rule::kFail && r.remaining > 0 && fail_status == 0) {
        --r.remaining;
        fail_status = r.status;
      } else if (r.kind == Rule::kDrop && r.remaining > 0 && !drop_rule) {
        drop_rule = true;
        drop_rule_index = i;
        drop_at = r.bytes;
      } else if (r.kind == Rule::kThrottle) {
        rate = r.bytes;
      } else if (r.kind == Rule::kRedirect && redirect_to.empty()) {
        redirect_to = r.text + rec.target;
      } else if (r.kind == Rule::kBasic && rec.header("authorization") != r.text) {
        unauthorized = true;
      }
    }
  }
  auto set_result = [&](int status, uint64_t bytes, bool dropped) {
    std::lock_guard<std::mutex> l(mu_);
    log_[index].status = status;
    log_[index].body_bytes = bytes;
    log_[index].dropped = dropped;
  };

  if (unauthorized || !redirect_to.empty()) {
    std::string body;
    read_body(client, cbuf, req, body);
    int status = unauthorized ? 401 : 307;
    std::string msg = unauthorized ? R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})" : "";
    std::string head = "HTTP/1.1 " + std::to_string(status) + (unauthorized ? " Unauthorized" : " Temporary Redirect") +
                       "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(msg.size()) +
                       (unauthorized ? "\r\nWWW-Authenticate: Basic realm=\"hutch-test\"" : "\r\nLocation: " + redirect_to) +
                       "\r\nConnection: close\r\n\r\n";
    client.write_all(head + (rec.method == "HEAD" ? "" : msg));
    set_result(status, 0, false);
    ::shutdown(fd, SHUT_WR);
    return;
  }

  if (fail_status != 0) {
    std::string body;
    read_body(client, cbuf, req, body);  // taken in full so the client sees the answer, not a reset
    std::string msg = R"({"errors":[{"code":"UNAVAILABLE","message":"injected by the test proxy"}]})";
    std::string head = "HTTP/1.1 " + std::to_string(fail_status) + " " + reason(fail_status) +
                       "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(msg.size()) +
                       "\r\nConnection: close\r\n\r\n";
    client.write_all(head + (rec.method == "HEAD" ? "" : msg));
    set_result(fail_status, 0, false);
    ::shutdown(fd, SHUT_WR);
    return;
  }

  int ufd = connect_loopback("127.0.0.1", upstream_port_, 60000);
  if (ufd < 0) {
    client.write_all(simple_response(502, R"({"errors":[{"code":"UNAVAILABLE","message":"upstream unreachable"}]})"));
    set_result(502, 0, false);
    return;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{ufd};
  Io up{ufd, nullptr};
  std::string out = req.start_line + "\r\n";
  for (const auto& [k, v] : req.headers) {
    if (k == "connection" || k == "keep-alive" || k == "proxy-connection" || k == "expect") continue;
    out += k + ": " + v + "\r\n";
  }
  out += "connection: close\r\n\r\n";
  if (!up.write_all(out)) return;
  // The request body, passed on as it comes.
  if (icontains(req.get("transfer-encoding"), "chunked")) {
    // Chunk by chunk: raw framing forwarded.
    for (;;) {
      std::string raw;
      std::string line;
      if (!read_line(client, cbuf, line)) return;
      raw = line + "\r\n";
      size_t size = std::strtoul(line.c_str(), nullptr, 16);
      if (size == 0) {
        for (;;) {
          if (!read_line(client, cbuf, line)) return;
          raw += line + "\r\n";
          if (line.empty()) break;
        }
        if (!up.write_all(raw)) return;
        break;
      }
      std::string data;
      if (!read_exact(client, cbuf, size + 2, data)) return;
      if (!up.write_all(raw + data)) return;
    }
  } else if (!req.get("content-length").empty()) {
    uint64_t left = std::stoull(req.get("content-length"));
    char tmp[65536];
    while (left > 0) {
      if (cbuf.empty()) {
        ssize_t n = client.read(tmp, sizeof tmp);
        if (n <= 0) return;
        cbuf.assign(tmp, static_cast<size_t>(n));
      }
      size_t take = static_cast<size_t>(std::min<uint64_t>(left, cbuf.size()));
      if (!up.write_all(cbuf.data(), take)) return;
      cbuf.erase(0, take);
      left -= take;
    }
  }

  std::string ubuf;
  Head resp;
  if (!read_head(up, ubuf, resp)) {
    client.write_all(simple_response(502, R"({"errors":[{"code":"UNAVAILABLE","message":"no answer upstream"}]})"));
    set_result(502, 0, false);
    return;
  }
  auto rl = split_ws(resp.start_line);
  int status = rl.size() >= 2 ? std::atoi(rl[1].c_str()) : 0;
  std::string self = "127.0.0.1:" + std::to_string(port_);
  std::string rh = resp.start_line + "\r\n";
  for (auto [k, v] : resp.headers) {
    if (k == "connection" || k == "keep-alive") continue;
    if (k == "location") {
      for (const std::string& from : {"127.0.0.1:" + std::to_string(upstream_port_), "localhost:" + std::to_string(upstream_port_)}) {
        auto pos = v.find("//" + from);
        if (pos != std::string::npos) v.replace(pos + 2, from.size(), self);
      }
    }
    rh += k + ": " + v + "\r\n";
  }
  rh += "connection: close\r\n\r\n";
  if (!client.write_all(rh)) {
    set_result(status, 0, false);
    return;
  }
  bool no_body = rec.method == "HEAD" || status == 204 || status == 304 || (status >= 100 && status < 200);
  bool cut = drop_rule && (status == 200 || status == 206);
  if (cut) {
    std::lock_guard<std::mutex> l(mu_);
    if (drop_rule_index < rules_.size() && rules_[drop_rule_index].remaining > 0) rules_[drop_rule_index].remaining = 0;
    else cut = false;  // another connection took it meanwhile
  }
  uint64_t sent = 0;
  bool dropped = false;
  if (!no_body) {
    std::string cl = resp.get("content-length");
    uint64_t left = cl.empty() ? UINT64_MAX : std::stoull(cl);
    auto t0 = Clock::now();
    std::vector<char> tmp(65536);
    for (;;) {
      if (left == 0) break;
      if (cut && sent >= drop_at) {
        dropped = true;
        break;
      }
      size_t want = tmp.size();
      if (rate > 0) want = static_cast<size_t>(std::clamp<uint64_t>(rate / 20, 1, tmp.size()));
      if (cut) want = static_cast<size_t>(std::min<uint64_t>(want, drop_at - sent));
      if (left != UINT64_MAX) want = static_cast<size_t>(std::min<uint64_t>(want, left));
      std::string chunk;
      if (!ubuf.empty()) {
        size_t take = std::min(want, ubuf.size());
        chunk = ubuf.substr(0, take);
        ubuf.erase(0, take);
      } else {
        ssize_t n = up.read(tmp.data(), want);
        if (n <= 0) break;
        chunk.assign(tmp.data(), static_cast<size_t>(n));
      }
      if (!client.write_all(chunk)) break;
      sent += chunk.size();
      {
        std::lock_guard<std::mutex> l(mu_);  // live, so a test can watch a download go
        log_[index].body_bytes = sent;
      }
      if (left != UINT64_MAX) left -= chunk.size();
      if (rate > 0) {
        auto due = t0 + std::chrono::microseconds(static_cast<int64_t>(sent * 1000000.0 / static_cast<double>(rate)));
        while (Clock::now() < due && !stopping_) std::this_thread::sleep_for(std::min<Clock::duration>(due - Clock::now(), 50ms));
        if (stopping_) break;
      }
    }
  }
  set_result(status, sent, dropped);
  // A drop is a clean close (FIN) before Content-Length: everything sent reaches the client
  // (an RST could discard bytes it has not read yet), which sees the body end early.
  ::shutdown(fd, SHUT_WR);
}

// ---- test images ------------------------------------------------------------------------------------------

std::string host_oci_arch() {
  utsname u{};
  uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (m == "armv7l") return "arm";
  if (m == "i686" || m == "i386") return "386";
  return m;
}

std::string other_oci_arch() { return host_oci_arch() == "amd64" ? "arm64" : "amd64"; }

namespace {

struct Blob {
  std::string digest;
  uint64_t size = 0;
};

// Moves (or copies) `file` into DIR/blobs/sha256/<hex>.
Blob add_blob_file(const std::string& dir, const std::string& file, bool move) {
  std::string hex = sha256_of_file(file);
  if (hex.empty()) throw std::runtime_error("reading " + file);
  std::string dest = dir + "/blobs/sha256/" + hex;
  std::error_code ec;
  if (!fs::exists(dest)) {
    if (move) fs::rename(file, dest, ec);
    else fs::copy_file(file, dest, ec);
    if (ec) throw std::runtime_error("storing blob " + file + ": " + ec.message());
  } else if (move) {
    fs::remove(file, ec);
  }
  return {"sha256:" + hex, fs::file_size(dest)};
}

Blob add_blob_text(const std::string& dir, const std::string& text) {
  std::string hex = sha256_hex(text);
  write_file(dir + "/blobs/sha256/" + hex, text);
  return {"sha256:" + hex, text.size()};
}

void must(const Result& r, const std::string& what) {
  if (r.code != 0) throw std::runtime_error(what + ":" + describe(r));
}

}  // namespace

TestImage make_test_image(const std::string& dir, const TestImageSpec& spec) {
  TestImage img;
  img.dir = dir;
  img.tag = spec.tag;
  img.multi = spec.multi_platform;
  try {
    const Suite& s = suite();
    if (!s.error.empty()) throw std::runtime_error(s.error);
    std::error_code ec;
    fs::remove_all(dir, ec);
    mkdirs(dir + "/blobs/sha256");
    std::string work = dir + ".work";
    fs::remove_all(work, ec);
    mkdirs(work);

    std::vector<std::string> media;
    std::vector<std::string> history;
    // The base: busybox, gzip.
    std::string gz = spec.uncompressed ? s.tar : s.tar_gz;
    if (gz.empty()) {
      gz = work + "/base.tar.gz";
      must(run({"/bin/sh", "-c", "gzip -n -c <\"$1\" >\"$2\"", "gz", s.tar, gz}), "gzip of the busybox tar");
    }
    Blob base = add_blob_file(dir, gz, false);
    img.layer_digests.push_back(base.digest);
    img.layer_sizes.push_back(base.size);
    img.diff_ids.push_back(s.tar_sha256);
    media.push_back(spec.uncompressed ? "application/vnd.oci.image.layer.v1.tar" : "application/vnd.oci.image.layer.v1.tar+gzip");
    history.push_back("busybox rootfs (hutch integration tests)");

    auto add_tar_layer = [&](const std::string& name, const std::string& make_content_cmd, bool compress,
                             const std::string& created_by) {
      std::string ld = work + "/" + name;
      mkdirs(ld);
      must(run({"/bin/sh", "-c", make_content_cmd, "content", ld}), "making the content of " + name);
      std::string tar = work + "/" + name + ".tar";
      must(tool({"tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C", ld, "-cf", tar,
                 "."}),
           "tar of " + name);
      std::string diff = "sha256:" + sha256_of_file(tar);
      std::string blobfile = tar;
      if (compress) {
        blobfile = tar + ".gz";
        must(run({"/bin/sh", "-c", "gzip -n -1 -c <\"$1\" >\"$2\"", "gz", tar, blobfile}), "gzip of " + name);
      }
      Blob b = add_blob_file(dir, blobfile, true);
      img.layer_digests.push_back(b.digest);
      img.layer_sizes.push_back(b.size);
      img.diff_ids.push_back(diff);
      media.push_back(compress ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar");
      history.push_back(created_by);
    };
    for (int i = 1; i <= spec.extra_layers; ++i) {
      std::string n = std::to_string(i);
      add_tar_layer("layer" + n, "printf 'layer %s of the test image %s\\n' " + n + " '" + spec.tag + "' > \"$1/layer" + n + ".txt\"",
                    !spec.uncompressed, "/bin/sh -c echo layer " + n + " > /layer" + n + ".txt");
    }
    if (spec.big_layer_bytes > 0) {
      add_tar_layer("big", "head -c " + std::to_string(spec.big_layer_bytes) + " /dev/urandom > \"$1/big.bin\"",
                    !spec.uncompressed, "/bin/sh -c head -c N /dev/urandom > /big.bin");
    }

    std::vector<std::string> archs = {host_oci_arch()};
    if (spec.multi_platform) archs.push_back(other_oci_arch());
    for (const auto& arch : archs) {
      nlohmann::json env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
      if (!spec.cmd_marker.empty()) env.push_back("HUTCH_TEST_MARKER=" + spec.cmd_marker);
      nlohmann::json hist = nlohmann::json::array();
      for (const auto& h : history) hist.push_back({{"created", "2024-01-01T00:00:00Z"}, {"created_by", h}});
      nlohmann::json config = {
          {"created", "2024-01-01T00:00:00Z"},
          {"architecture", arch},
          {"os", "linux"},
          {"config", {{"Env", env}, {"Cmd", {"/bin/sh"}}, {"WorkingDir", "/"}}},
          {"rootfs", {{"type", "layers"}, {"diff_ids", img.diff_ids}}},
          {"history", hist}};
      Blob cb = add_blob_text(dir, config.dump());
      nlohmann::json layers = nlohmann::json::array();
      for (size_t i = 0; i < img.layer_digests.size(); ++i)
        layers.push_back({{"mediaType", media[i]}, {"digest", img.layer_digests[i]}, {"size", img.layer_sizes[i]}});
      nlohmann::json manifest = {
          {"schemaVersion", 2},
          {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
          {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", cb.digest}, {"size", cb.size}}},
          {"layers", layers}};
      Blob mb = add_blob_text(dir, manifest.dump());
      img.platforms.push_back({"linux", arch, mb.digest, cb.digest, mb.size});
    }
    nlohmann::json top;
    if (spec.multi_platform) {
      nlohmann::json ms = nlohmann::json::array();
      for (const auto& p : img.platforms)
        ms.push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                      {"digest", p.manifest_digest},
                      {"size", p.manifest_size},
                      {"platform", {{"architecture", p.architecture}, {"os", p.os}}}});
      nlohmann::json index = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", ms}};
      Blob ib = add_blob_text(dir, index.dump());
      img.top_digest = ib.digest;
      top = {{"mediaType", "application/vnd.oci.image.index.v1+json"}, {"digest", ib.digest}, {"size", ib.size}};
    } else {
      img.top_digest = img.platforms[0].manifest_digest;
      top = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
             {"digest", img.platforms[0].manifest_digest},
             {"size", img.platforms[0].manifest_size}};
    }
    top["annotations"] = {{"org.opencontainers.image.ref.name", spec.tag}};
    nlohmann::json index_json = {{"schemaVersion", 2}, {"manifests", {top}}};
    write_file(dir + "/index.json", index_json.dump());
    write_file(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    fs::remove_all(work, ec);
  } catch (const std::exception& e) {
    img.error = std::string("building the test image in ") + dir + ": " + e.what();
  }
  return img;
}

}  // namespace hit
