// The image-transport family: read and write images where they live (registries, archives,
// OCI layout directories). Modelled on containers/image: a transport opens a *source* to read
// one image (its manifests and blobs) or a *destination* to write one or more; core does the
// rest (platform choice, verification of what it unpacks, the store, compression).
//
// References are what follows the transport's prefix, as podman and skopeo write them:
//   docker          "host[:port]/ns/name:tag" or "...@sha256:<hex>" (core fully qualifies it)
//   oci             "DIR[:REF]"      an OCI image layout directory (REF: a ref.name in index.json)
//   oci-archive     "FILE[:REF]"     the same as a tar
//   docker-archive  "FILE[:NAME:TAG|:@N]"  docker save's format (the Nth image, or by name)
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hutch/context.hpp"

namespace hutch {

struct TransportCapabilities {
  bool can_read = true;
  bool can_write = false;
  // Several images can be written to one destination (docker-archive, oci layouts).
  bool multi_image = false;
  // authenticate() checks credentials (registries).
  bool can_authenticate = false;
  std::string description;
};

struct Manifest {
  std::string media_type;
  std::string content;  // the bytes, exactly as served (digests are over these)
};

// A registry user's credentials: from --creds, auth.json or ~/.docker/config.json, found by
// core. Plugins must never print or log them.
struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  // auth.json "identitytoken": an OAuth2 refresh token
  bool empty() const { return username.empty() && password.empty() && identity_token.empty(); }
};

// One way to reach a registry (registries.conf): a mirror, or the registry's own location.
struct RegistryEndpoint {
  // The image's repository at this endpoint, "host[:port]/path/name": the reference's
  // repository with the matching registries.conf prefix replaced by this endpoint's location.
  std::string location;
  bool insecure = false;  // plain HTTP is allowed and TLS certificates are not verified
  bool mirror = false;    // a mirror: a failure moves on to the next endpoint
};

// Progress of one blob, from the thread that moves it: bytes so far and the total (-1: unknown).
using ProgressFn = std::function<void(std::uint64_t done, std::int64_t total)>;

struct TransportOptions {
  // docker: the endpoints to try in order (mirrors first, then the registry). Core fills this
  // from registries.conf; empty means the reference's own repository over TLS (plain HTTP too
  // when tls_verify is false).
  std::vector<RegistryEndpoint> endpoints;
  std::optional<Credentials> credentials;
  // --tls-verify: unset lets the endpoint's `insecure` decide; false allows plain HTTP and
  // unverified TLS; true insists on verified TLS.
  std::optional<bool> tls_verify;
  // --cert-dir: *.crt are extra CAs, NAME.cert with NAME.key a client certificate. Unset: the
  // first of $XDG_CONFIG_HOME/containers/certs.d/<host>, /etc/containers/certs.d/<host>,
  // /etc/docker/certs.d/<host> that exists.
  std::filesystem::path cert_dir;
  int retries = 3;  // attempts after the first for a 5xx, a 429 or a dropped connection
  std::string user_agent = "hutch";
};

struct BlobInfo {
  std::string digest;      // "sha256:<hex>"
  std::int64_t size = -1;  // -1: unknown
  std::string media_type;  // the manifest's mediaType for it (config, layer)
};

// One image of a source that holds several (an archive): its reference and the names it carries.
struct ListedImage {
  std::string reference;           // for open_source
  std::vector<std::string> names;  // docker-archive RepoTags, OCI "org.opencontainers.image.ref.name"
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The manifest the reference names (digest empty), or one it lists, by digest (an index's
  // child). The bytes exactly as stored or served; core checks a digest it asked for.
  virtual Manifest get_manifest(const std::string& digest = "") = 0;
  // Writes the blob to `destination` (created, or resumed when it exists and the source can),
  // verifying digest and size as it arrives: a mismatch throws Errc::kCorrupt naming the
  // digest and removes the file. Called from several threads at once.
  virtual void get_blob(const BlobInfo& blob, const std::filesystem::path& destination,
                        const ProgressFn& progress) = 0;
  // The names the image carries in the source (archives), else nothing.
  virtual std::vector<std::string> names() { return {}; }
};

class ImageDestination {
 public:
  virtual ~ImageDestination() = default;
  // Layers are to be handed over uncompressed (docker-archive, as docker save writes them).
  virtual bool wants_uncompressed_layers() const { return false; }
  // True when the destination has the blob already (a registry's HEAD), or has just taken it
  // from `from_repository` of the same registry (a cross-repository mount; empty: none).
  virtual bool reuse_blob(const BlobInfo& blob, const std::string& from_repository) = 0;
  // Stores the blob read from `source`; called from several threads at once.
  virtual void put_blob(const BlobInfo& blob, const std::filesystem::path& source, const ProgressFn& progress) = 0;
  // After all of its blobs: the image's manifest. A registry stores it under the reference's
  // tag (or digest); archives record `names` with it (docker-archive RepoTags, OCI ref.name).
  virtual void put_manifest(const Manifest& manifest, const std::vector<std::string>& names) = 0;
  // Finishes the destination (an archive is written out and renamed into place). Nothing is
  // visible at an archive's path before; destroying the object without commit leaves nothing.
  virtual void commit() = 0;
};

class ImageTransport {
 public:
  static constexpr const char* kFamily = "registry";
  virtual ~ImageTransport() = default;
  virtual TransportCapabilities capabilities() const = 0;
  // The transport prefixes this plugin serves ("docker", "oci-archive", ...).
  virtual std::vector<std::string> transports() const = 0;
  virtual std::unique_ptr<ImageSource> open_source(const std::string& transport, const std::string& reference,
                                                   const TransportOptions& options) = 0;
  virtual std::unique_ptr<ImageDestination> open_destination(const std::string& transport,
                                                             const std::string& reference,
                                                             const TransportOptions& options) = 0;
  // The images a reference holds: one for most, each image of a multi-image archive.
  virtual std::vector<ListedImage> list_images(const std::string& transport, const std::string& reference,
                                               const TransportOptions& options) {
    (void)transport;
    (void)options;
    return {{reference, {}}};
  }
  // `login`: checks the credentials in `options` against `registry` ("host[:port]"); throws
  // Errc::kUnauthorized naming the registry when they are refused.
  virtual void authenticate(const std::string& registry, const TransportOptions& options) = 0;
};

}  // namespace hutch
