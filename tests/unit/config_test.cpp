#include <gtest/gtest.h>

#include "hutch/config.hpp"
#include "hutch/error.hpp"

using namespace hutch;

TEST(Config, DefaultsAreAutoStorageNativeSlirp) {
  Config c;
  EXPECT_EQ(c.storage_driver.value, "auto");
  EXPECT_EQ(c.runtime.value, "native");
  EXPECT_EQ(c.network.value, "slirp");
  EXPECT_EQ(c.storage_driver.source, "default");
}

TEST(Config, ReadsEverySectionAndRecordsWhere) {
  Config c;
  apply_config_text(c,
                    "[engine]\nruntime = \"crun\"\nlog_level = \"debug\"\nplugin_dirs = [\"/opt/p\"]\n"
                    "[storage]\ndriver = \"overlay\"\nroot = \"/data/s\"\nrunroot = \"/run/x\"\n"
                    "[network]\ndefault = \"none\"\n"
                    "[plugins.overlay]\nmount_program = \"/usr/bin/fuse-overlayfs\"\nsize = 3\n",
                    "/etc/hutch/hutch.conf");
  EXPECT_EQ(c.runtime.value, "crun");
  EXPECT_EQ(c.runtime.source, "/etc/hutch/hutch.conf:2");
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  ASSERT_EQ(c.plugin_dirs.size(), 1u);
  EXPECT_EQ(c.plugin_dirs[0], "/opt/p");
  EXPECT_EQ(c.storage_driver.value, "overlay");
  EXPECT_EQ(c.root->string(), "/data/s");
  EXPECT_EQ(c.runroot->string(), "/run/x");
  EXPECT_EQ(c.network.value, "none");
  EXPECT_EQ(c.plugins["overlay"]["mount_program"], "/usr/bin/fuse-overlayfs");
  EXPECT_EQ(c.plugins["overlay"]["size"], 3);
}

TEST(Config, LaterFilesOverrideEarlierOnes) {
  Config c;
  apply_config_text(c, "[engine]\nruntime = \"crun\"\n", "a.conf");
  apply_config_text(c, "[storage]\ndriver = \"overlay\"\n", "b.conf");
  apply_config_text(c, "[engine]\nruntime = \"runc\"\n", "c.conf");
  EXPECT_EQ(c.runtime.value, "runc");
  EXPECT_EQ(c.runtime.source, "c.conf:2");
  EXPECT_EQ(c.storage_driver.value, "overlay");
}

static std::string config_error(const std::string& text) {
  Config c;
  try {
    apply_config_text(c, text, "/home/u/.config/hutch/hutch.conf");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kConfig);
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << text;
  return "";
}

TEST(Config, UnknownKeyNamesFileAndLine) {
  std::string m = config_error("[engine]\nruntime = \"native\"\nruntim = \"crun\"\n");
  EXPECT_NE(m.find("/home/u/.config/hutch/hutch.conf:3"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown key \"runtim\""), std::string::npos) << m;
  EXPECT_NE(m.find("runtime"), std::string::npos) << m;  // lists the known keys
}

TEST(Config, UnknownSectionIsAnError) {
  std::string m = config_error("\n[storag]\ndriver = \"vfs\"\n");
  EXPECT_NE(m.find(":2"), std::string::npos) << m;
  EXPECT_NE(m.find("storag"), std::string::npos) << m;
}

TEST(Config, BadValuesAreErrors) {
  EXPECT_NE(config_error("[engine]\nlog_level = \"loud\"\n").find(":2: log_level \"loud\""), std::string::npos);
  EXPECT_NE(config_error("[storage]\ndriver = 3\n").find("must be a string"), std::string::npos);
  EXPECT_NE(config_error("[storage]\nroot = \"relative/path\"\n").find("absolute path"), std::string::npos);
  EXPECT_NE(config_error("[storage]\ndriver = \"a b\"\n").find("not a backend name"), std::string::npos);
  EXPECT_NE(config_error("[engine]\nplugin_dirs = \"/x\"\n").find("array"), std::string::npos);
}

TEST(Config, SyntaxErrorNamesLine) {
  std::string m = config_error("[engine]\n\nruntime = \n");
  EXPECT_NE(m.find("hutch.conf:3"), std::string::npos) << m;
}
