// The image-transport family: read and write images where they live (registries, archives).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "hutch/context.hpp"

namespace hutch {

struct TransportCapabilities {
  bool can_read = true;
  bool can_write = false;
  std::string description;
};

struct Manifest {
  std::string media_type;
  std::string content;  // the bytes, exactly as served (digests are over these)
};

class ImageTransport {
 public:
  static constexpr const char* kFamily = "registry";
  virtual ~ImageTransport() = default;
  virtual TransportCapabilities capabilities() const = 0;
  // The transport prefixes this plugin serves ("docker", "oci-archive", ...).
  virtual std::vector<std::string> transports() const = 0;
  virtual Manifest get_manifest(const std::string& reference) = 0;
  virtual void get_blob(const std::string& reference, const std::string& digest,
                        const std::filesystem::path& destination) = 0;
  virtual void put_blob(const std::string& reference, const std::string& digest,
                        const std::filesystem::path& source) = 0;
  virtual void put_manifest(const std::string& reference, const Manifest& manifest) = 0;
};

}  // namespace hutch
