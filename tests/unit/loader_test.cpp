// The loader's failure paths, with fixture plugins that are broken on purpose.
#include <gtest/gtest.h>

#include <fstream>

#include "hutch/plugin_loader.hpp"
#include "hutch/storage.hpp"
#include "test_support.hpp"

using namespace hutch;

namespace {

PluginContext context() {
  static Logger logger(LogLevel::kError);
  PluginContext c;
  c.logger = &logger;
  return c;
}

std::string failure(PluginLoader& loader, const std::string& name, Errc expected) {
  try {
    loader.create<StorageDriver>(name, context());
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "plugin " << name << " loaded";
  return "";
}

TEST(Loader, DiscoversPluginsByFileName) {
  PluginLoader loader({HUTCH_BUILD_PLUGIN_DIR});
  auto all = loader.discover();
  bool vfs = false, native = false;
  for (const auto& f : all) {
    vfs |= f.family == "storage" && f.name == "vfs";
    native |= f.family == "runtime" && f.name == "native";
  }
  EXPECT_TRUE(vfs);
  EXPECT_TRUE(native);
  for (const auto& f : loader.discover("network")) EXPECT_EQ(f.family, "network");
}

TEST(Loader, LoadsARealPluginAndReportsIt) {
  PluginLoader loader({HUTCH_BUILD_PLUGIN_DIR});
  test::TempDir tmp;
  PluginContext ctx = context();
  ctx.plugin_state = tmp.path() / "vfs";
  LoadedPlugin info;
  auto driver = loader.create<StorageDriver>("vfs", ctx, &info);
  ASSERT_TRUE(driver);
  EXPECT_EQ(info.name, "vfs");
  EXPECT_EQ(info.family, "storage");
  EXPECT_EQ(info.path.filename(), "libhutch-storage-vfs.so");
  EXPECT_FALSE(info.version.empty());
}

TEST(Loader, NotFoundListsWhatWasFoundAndWhere) {
  PluginLoader loader({"/nonexistent-dir", HUTCH_BUILD_PLUGIN_DIR});
  std::string m = failure(loader, "zfs", Errc::kNotFound);
  EXPECT_NE(m.find("\"zfs\""), std::string::npos) << m;
  EXPECT_NE(m.find("vfs"), std::string::npos) << m;
  EXPECT_NE(m.find("/nonexistent-dir"), std::string::npos) << m;
}

TEST(Loader, WrongAbiIsRefusedNamingTheFile) {
  PluginLoader loader({HUTCH_FIXTURE_PLUGIN_DIR});
  std::string m = failure(loader, "badabi", Errc::kPlugin);
  EXPECT_NE(m.find("libhutch-storage-badabi.so"), std::string::npos) << m;
  EXPECT_NE(m.find("ABI 999"), std::string::npos) << m;
}

TEST(Loader, MissingFactoryIsRefused) {
  PluginLoader loader({HUTCH_FIXTURE_PLUGIN_DIR});
  std::string m = failure(loader, "nofactory", Errc::kPlugin);
  EXPECT_NE(m.find("no factory"), std::string::npos) << m;
  EXPECT_NE(m.find("libhutch-storage-nofactory.so"), std::string::npos) << m;
}

TEST(Loader, ThrowingFactoryIsAFactoryFailure) {
  PluginLoader loader({HUTCH_FIXTURE_PLUGIN_DIR});
  std::string m = failure(loader, "throwing", Errc::kPlugin);
  EXPECT_NE(m.find("failed to start"), std::string::npos) << m;
  EXPECT_NE(m.find("fixture failure"), std::string::npos) << m;
}

TEST(Loader, NameMismatchIsRefused) {
  PluginLoader loader({HUTCH_FIXTURE_PLUGIN_DIR});
  std::string m = failure(loader, "wrongname", Errc::kPlugin);
  EXPECT_NE(m.find("somethingelse"), std::string::npos) << m;
}

TEST(Loader, AFileThatIsNotASharedObjectIsNotLoadable) {
  test::TempDir tmp;
  std::ofstream(tmp.path() / "libhutch-storage-garbage.so") << "not an ELF file";
  PluginLoader loader({tmp.path()});
  std::string m = failure(loader, "garbage", Errc::kPlugin);
  EXPECT_NE(m.find("cannot load"), std::string::npos) << m;
  EXPECT_NE(m.find("libhutch-storage-garbage.so"), std::string::npos) << m;
}

TEST(Loader, EnvironmentPathComesFirst) {
  setenv("HUTCH_PLUGIN_PATH", "/first:/second", 1);
  auto path = PluginLoader::default_search_path({"/from-config"});
  unsetenv("HUTCH_PLUGIN_PATH");
  ASSERT_GE(path.size(), 4u);
  EXPECT_EQ(path[0], "/first");
  EXPECT_EQ(path[1], "/second");
  EXPECT_EQ(path[2], "/from-config");
  EXPECT_EQ(path.back().filename(), "plugins");  // the install prefix's lib/hutch/plugins
}

}  // namespace
