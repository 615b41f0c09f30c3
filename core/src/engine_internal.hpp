// What the engine's source files share and nobody else sees.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hutch::detail {

// Applies `--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE) to an
// image config's "config" section.
nlohmann::json apply_image_changes(nlohmann::json image_config, const std::vector<std::string>& changes);

// The OCI architecture name of this host ("amd64", "arm64", ...).
std::string host_architecture();

}  // namespace hutch::detail
