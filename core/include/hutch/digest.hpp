// sha256 digests in OCI form ("sha256:<64 hex>"), streamed.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "hutch/error.hpp"

namespace hutch {

class HUTCH_API Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex();  // finishes the digest

 private:
  struct State;
  std::unique_ptr<State> state_;
};

HUTCH_API std::string sha256_hex(std::string_view data);
HUTCH_API std::string sha256_file_hex(const std::filesystem::path& file);
// "sha256:<64 hex>" -> the hex; throws Errc::kInvalidInput for anything else.
HUTCH_API std::string digest_hex(const std::string& digest);
HUTCH_API bool is_hex64(std::string_view s);

// Standard base64 (RFC 4648, "+/", padded), as HTTP Basic auth and auth.json's "auth" use it.
HUTCH_API std::string base64_encode(const std::string& in);
// Padded or not; nullopt for anything that is not base64.
HUTCH_API std::optional<std::string> base64_decode(const std::string& in);

}  // namespace hutch
