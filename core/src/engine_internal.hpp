// What the engine's source files share and nobody else sees.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hutch/engine.hpp"

namespace hutch::detail {

// Applies `--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE) to an
// image config's "config" section.
nlohmann::json apply_image_changes(nlohmann::json image_config, const std::vector<std::string>& changes);

// The OCI architecture name of this host ("amd64", "arm64", ...).
std::string host_architecture();

// `system df`'s volumes (engine_volumes.cpp): each with its size and the containers that mount
// it. The caller holds a store lock.
std::vector<DiskUsageReport::VolumeUsage> measure_volumes(const std::filesystem::path& store_root,
                                                          const std::vector<ContainerRecord>& containers,
                                                          const Logger& logger);

}  // namespace hutch::detail
