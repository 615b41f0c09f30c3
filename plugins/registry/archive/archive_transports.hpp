// The sources and destinations of the archive plugin's transports: OCI image layouts (a
// directory, "oci", or a tar of one, "oci-archive") and docker save's format ("docker-archive").
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "archive_files.hpp"
#include "hutch/transport.hpp"

namespace hutch::registry::archive {

// What follows the path in a reference: an image by name ("REF", "NAME:TAG"), by position
// ("@N", from 0), or nothing.
struct ImageSelector {
  std::string name;
  std::optional<std::size_t> index;
  bool empty() const { return name.empty() && !index; }
  std::string text() const { return index ? "@" + std::to_string(*index) : name; }
};

// "PATH[:REST]", split at the first ':' as containers/image does (a path cannot hold one).
struct ArchiveReference {
  std::filesystem::path path;
  ImageSelector selector;
};
ArchiveReference parse_archive_reference(const std::string& transport, const std::string& reference);

// `location` is the reference's path as the user wrote it, for the references list_images makes.
std::unique_ptr<ImageSource> open_oci_source(std::unique_ptr<ImageFiles> files, const ImageSelector& selector);
std::vector<ListedImage> list_oci_images(const ImageFiles& files, const std::string& location);
std::unique_ptr<ImageDestination> open_oci_directory_destination(const std::filesystem::path& dir, const std::string& ref);
std::unique_ptr<ImageDestination> open_oci_archive_destination(const std::filesystem::path& file, const std::string& ref);

std::unique_ptr<ImageSource> open_docker_archive_source(std::unique_ptr<ImageFiles> files, const ImageSelector& selector);
std::vector<ListedImage> list_docker_archive_images(const ImageFiles& files, const std::string& location);
std::unique_ptr<ImageDestination> open_docker_archive_destination(const std::filesystem::path& file,
                                                                  const std::string& repo_tag);

// Media types.
inline constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr const char* kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";

}  // namespace hutch::registry::archive
