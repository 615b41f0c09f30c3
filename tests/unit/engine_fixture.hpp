// An Engine on a fresh store in a temporary directory (vfs, the build tree's plugins), for the
// unit tests that drive the engine itself.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "hutch/engine.hpp"
#include "hutch/paths.hpp"
#include "test_support.hpp"

namespace hutch::test {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Config config;
    config.storage_driver = {"vfs", "test"};
    config.plugin_dirs = {HUTCH_BUILD_PLUGIN_DIR};
    EnginePaths paths{tmp_.path() / "root", tmp_.path() / "run", "test"};
    make_dirs(paths.run_root, 0700);
    engine_ = std::make_unique<Engine>(config, paths, RootlessInfo{}, quiet_);
  }

  Logger quiet_{LogLevel::kError};
  TempDir tmp_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace hutch::test
