// Image references as docker and podman take them: name, name:tag, host:port/ns/name:tag.
#pragma once

#include <optional>
#include <string>

#include "hutch/error.hpp"

namespace hutch {

struct ImageRef {
  std::string domain;      // "localhost" for names without a registry
  std::string path;        // "ns/name"
  std::string tag;         // "latest" when none given (and no digest)
  std::string digest;      // "sha256:..." when given
  std::string name() const { return domain + "/" + path; }
  // "localhost/busybox:latest"
  std::string full() const { return name() + (tag.empty() ? "" : ":" + tag) + (digest.empty() ? "" : "@" + digest); }
};

// Throws Errc::kInvalidInput with the rules when `text` is not a valid reference.
HUTCH_API ImageRef parse_image_ref(const std::string& text);
// nullopt instead of an exception.
HUTCH_API std::optional<ImageRef> try_parse_image_ref(const std::string& text);

}  // namespace hutch
