// Seccomp profiles: docker's default allow-list, and docker-format profiles turned into the
// OCI spec's linux.seccomp for the runtimes (native loads it with libseccomp; crun and runc
// load it themselves).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hutch/context.hpp"

namespace hutch {

// docker's default profile, in docker's JSON format (what --security-opt seccomp=FILE
// takes): defaultAction SCMP_ACT_ERRNO, the allowed syscalls, the ones allowed only with
// a capability (includes/excludes caps), personality and clone argument rules.
HUTCH_API const nlohmann::json& default_seccomp_profile();

// Turns a docker-format profile into the OCI linux.seccomp object for a process whose
// bounding set is `capabilities` ("CAP_SYS_ADMIN", ...), on this host's architecture.
// Rules whose includes/excludes (caps, arches, minKernel) do not match are left out.
// Throws Errc::kInvalidInput naming the field on a bad profile; `source` names the file.
HUTCH_API nlohmann::json seccomp_for_spec(const nlohmann::json& profile, const std::vector<std::string>& capabilities,
                                          const std::string& source = "the default seccomp profile");

// Reads and checks a profile file (--security-opt seccomp=FILE); errors name the file.
HUTCH_API nlohmann::json read_seccomp_profile(const std::string& file);

}  // namespace hutch
