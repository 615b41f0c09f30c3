// HUTCH_SKIP_OUTSIDE_CI, for every suite (unit, conformance, integration): it includes
// nothing of hutch's.
#pragma once

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

// A test that cannot run here skips, saying why; in CI (CI=true) it fails instead: CI runs
// on a machine where every test can run, so a skip there would hide a failure.
#define HUTCH_SKIP_OUTSIDE_CI(why)                                                           \
  do {                                                                                      \
    const char* ci_ = std::getenv("CI");                                                    \
    if (ci_ && std::string(ci_) == "true") GTEST_FAIL() << "cannot run in CI: " << why;     \
    GTEST_SKIP() << why;                                                                    \
  } while (0)
