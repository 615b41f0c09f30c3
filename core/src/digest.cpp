#include "hutch/digest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

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

}  // namespace hutch
