// archive: the image transports that live in files, as containers-transports(5) names them:
//   oci:DIR[:REF]                      an OCI image layout directory
//   oci-archive:FILE[:REF]             the same, as a tar
//   docker-archive:FILE[:NAME:TAG|:@N] docker save's format
// REF (or @N, the Nth image from 0) chooses an image of the index; when writing, REF is the
// org.opencontainers.image.ref.name recorded (and NAME:TAG the RepoTag), instead of the names
// the engine passes to put_manifest.
#include "hutch/abi.hpp"
#include "hutch/error.hpp"
#include "hutch/transport.hpp"

#include "archive_transports.hpp"

namespace hutch::registry::archive {
namespace {

ImageSelector selector_of(const std::string& rest) {
  ImageSelector s;
  if (rest.size() > 1 && rest[0] == '@' && rest.find_first_not_of("0123456789", 1) == std::string::npos &&
      rest.size() < 12) {
    s.index = std::stoul(rest.substr(1));
  } else {
    s.name = rest;
  }
  return s;
}

class ArchiveTransport final : public ImageTransport {
 public:
  TransportCapabilities capabilities() const override {
    TransportCapabilities c;
    c.can_read = true;
    c.can_write = true;
    // oci layouts keep layers as they are given; a docker-archive destination asks for them
    // uncompressed (wants_uncompressed_layers) and inflates a gzip one that comes anyway.
    c.multi_image = true;
    c.can_authenticate = false;
    c.description = "images in files: OCI image layouts (oci:DIR, oci-archive:FILE) and docker save archives "
                    "(docker-archive:FILE)";
    return c;
  }

  std::vector<std::string> transports() const override { return {"oci", "oci-archive", "docker-archive"}; }

  std::unique_ptr<ImageSource> open_source(const std::string& transport, const std::string& reference,
                                           const TransportOptions&) override {
    ArchiveReference ref = parse_archive_reference(transport, reference);
    return open_source_files(transport, ref);
  }

  std::unique_ptr<ImageDestination> open_destination(const std::string& transport, const std::string& reference,
                                                     const TransportOptions&) override {
    ArchiveReference ref = parse_archive_reference(transport, reference);
    if (ref.selector.index)
      throw Error(Errc::kInvalidInput, transport + ":" + reference + ": @N chooses an image to read; to write, name "
                                       "the image (" + (transport == "docker-archive" ? "NAME:TAG" : "REF") + ") or nothing");
    if (transport == "oci") return open_oci_directory_destination(ref.path, ref.selector.name);
    if (transport == "oci-archive") return open_oci_archive_destination(ref.path, ref.selector.name);
    return open_docker_archive_destination(ref.path, ref.selector.name);
  }

  std::vector<ListedImage> list_images(const std::string& transport, const std::string& reference,
                                       const TransportOptions&) override {
    ArchiveReference ref = parse_archive_reference(transport, reference);
    if (!ref.selector.empty()) {  // a reference naming one image lists that one
      auto source = open_source_files(transport, ref);
      return {{reference, source->names()}};
    }
    auto files = files_of(transport, ref);
    if (transport == "docker-archive") return list_docker_archive_images(*files, ref.path.string());
    return list_oci_images(*files, ref.path.string());
  }

  void authenticate(const std::string& registry, const TransportOptions&) override {
    throw Error(Errc::kUnsupported, "login is for registries: oci, oci-archive and docker-archive need no credentials (" +
                                        registry + ")");
  }

 private:
  static std::unique_ptr<ImageFiles> files_of(const std::string& transport, const ArchiveReference& ref) {
    if (transport == "oci") return directory_files(ref.path, "the OCI layout " + ref.path.string());
    return tar_files(ref.path, "the archive " + ref.path.string(),
                     transport == "docker-archive" ? LinkPolicy::kFollowInside : LinkPolicy::kReject);
  }
  static std::unique_ptr<ImageSource> open_source_files(const std::string& transport, const ArchiveReference& ref) {
    auto files = files_of(transport, ref);
    if (transport == "docker-archive") return open_docker_archive_source(std::move(files), ref.selector);
    return open_oci_source(std::move(files), ref.selector);
  }
};

std::unique_ptr<ImageTransport> make_archive_transport(const PluginContext&) {
  return std::make_unique<ArchiveTransport>();
}

}  // namespace

ArchiveReference parse_archive_reference(const std::string& transport, const std::string& reference) {
  if (transport != "oci" && transport != "oci-archive" && transport != "docker-archive")
    throw Error(Errc::kUnsupported, "the archive plugin serves oci, oci-archive and docker-archive, not \"" + transport + "\"");
  auto colon = reference.find(':');
  std::string path = reference.substr(0, colon);
  std::string rest = colon == std::string::npos ? "" : reference.substr(colon + 1);
  if (path.empty())
    throw Error(Errc::kInvalidInput, "\"" + transport + ":" + reference + "\" names no " +
                                         (transport == "oci" ? "directory" : "file") + " (" + transport +
                                         (transport == "oci" ? ":DIR[:REF]" : transport == "oci-archive" ? ":FILE[:REF]"
                                                                                                          : ":FILE[:NAME:TAG|:@N]") +
                                         ")");
  if (colon != std::string::npos && rest.empty())
    throw Error(Errc::kInvalidInput, "\"" + transport + ":" + reference + "\" ends with a colon and names nothing after it");
  return {path, selector_of(rest)};
}

}  // namespace hutch::registry::archive

HUTCH_PLUGIN(hutch::ImageTransport, "archive", "0.1.0", hutch::registry::archive::make_archive_transport);
