#pragma once
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "hutch/logger.hpp"
#include "hutch/paths.hpp"
#include "hutch/plugin_loader.hpp"
#include "hutch/userns.hpp"
#include "test_support.hpp"

namespace hutch::conformance {

// The build tree's plugins, or $HUTCH_CONFORMANCE_PLUGINS (the installed ones, when the suite
// runs as a user who cannot read the build tree).
inline PluginLoader& loader() {
  const char* dir = getenv("HUTCH_CONFORMANCE_PLUGINS");
  static PluginLoader l({dir && *dir ? dir : HUTCH_BUILD_PLUGIN_DIR});
  return l;
}

inline const Logger& quiet_logger() {
  static Logger l(LogLevel::kError);
  return l;
}

using Scratch = test::TempDir;

inline PluginContext context_in(const std::filesystem::path& dir, const std::string& name) {
  PluginContext c;
  c.store_root = dir / "store";
  c.run_root = dir / "run";
  c.plugin_state = dir / "store" / name;
  make_dirs(c.run_root, 0700);
  c.rootless = UsernsSession::current();
  c.logger = &quiet_logger();
  return c;
}

}  // namespace hutch::conformance
