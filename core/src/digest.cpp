#include "hutch/digest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

// OpenSSL's SHA256_* calls: deprecated in 3.0 in favour of EVP, but EVP's first use sets up
// the provider machinery, about 0.6 ms that every `hutch run` would pay; these run the same
// (SHA-NI) code with no set-up.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

namespace hutch {

struct Sha256::State {
  SHA256_CTX ctx;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  if (SHA256_Init(&state_->ctx) != 1) throw Error(Errc::kInternal, "cannot initialise sha256");
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t size) { SHA256_Update(&state_->ctx, data, size); }

std::string Sha256::hex() {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256_Final(md, &state_->ctx);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char b : md) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex();
}

std::string sha256_file_hex(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open " + file.string());
  Sha256 h;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw system_error("cannot read " + file.string(), e);
    }
    if (n == 0) break;
    h.update(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return h.hex();
}

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string digest_hex(const std::string& digest) {
  constexpr std::string_view prefix = "sha256:";
  if (digest.compare(0, prefix.size(), prefix) != 0 || !is_hex64(std::string_view(digest).substr(prefix.size())))
    throw Error(Errc::kInvalidInput, "\"" + digest + "\" is not a sha256 digest (sha256:<64 hex digits>)");
  return digest.substr(prefix.size());
}

namespace {
const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

std::string base64_encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(n >> s) & 63];
  }
  if (size_t left = in.size() - i; left > 0) {
    uint32_t n = uint8_t(in[i]) << 16;
    if (left == 2) n |= uint8_t(in[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += left == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(const std::string& in) {
  std::string s = in;
  while (!s.empty() && s.back() == '=') s.pop_back();
  if (in.size() - s.size() > 2 || s.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const char* p = c ? std::strchr(kAlphabet, c) : nullptr;
    if (!p) return std::nullopt;
    acc = (acc << 6) | uint32_t(p - kAlphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return out;
}

}  // namespace hutch
