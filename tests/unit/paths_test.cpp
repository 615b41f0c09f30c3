#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hutch/error.hpp"
#include "hutch/paths.hpp"
#include "test_support.hpp"

using namespace hutch;
namespace fs = std::filesystem;

namespace {

// Sets an environment variable for one test, restoring it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    value ? setenv(name, value, 1) : unsetenv(name);
  }
  ~ScopedEnv() { old_.empty() ? unsetenv(name_) : setenv(name_, old_.c_str(), 1); }

 private:
  const char* name_;
  std::string old_;
};

TEST(Paths, XdgDataHomeHoldsTheStore) {
  ScopedEnv data("XDG_DATA_HOME", "/data/me");
  EXPECT_EQ(default_store_root(1000), "/data/me/hutch");
  ScopedEnv none("XDG_DATA_HOME", nullptr);
  ScopedEnv home("HOME", "/home/me");
  EXPECT_EQ(default_store_root(1000), "/home/me/.local/share/hutch");
  EXPECT_EQ(default_store_root(0), "/var/lib/hutch");
}

TEST(Paths, RunRootFallsBackWhenXdgRuntimeDirIsUnsetOrNotOurs) {
  uid_t me = geteuid();
  {
    ScopedEnv unset("XDG_RUNTIME_DIR", nullptr);
    auto r = default_run_root(me == 0 ? 1234 : me);
    EXPECT_EQ(r.path, "/tmp/hutch-run-" + std::to_string(me == 0 ? 1234 : me));
    EXPECT_NE(r.why.find("not set"), std::string::npos) << r.why;
  }
  {
    test::TempDir tmp;
    ScopedEnv mine("XDG_RUNTIME_DIR", tmp.path().c_str());
    auto r = default_run_root(me);
    if (me != 0) EXPECT_EQ(r.path, tmp.path() / "hutch");
    // Owned by someone else (su, sudo, a batch job's leftover): not used.
    auto other = default_run_root(me + 4242);
    EXPECT_EQ(other.path, "/tmp/hutch-run-" + std::to_string(me + 4242));
    EXPECT_NE(other.why.find("not a writable directory"), std::string::npos) << other.why;
  }
}

TEST(Paths, PrivateDirIsMadeMode0700AndChecked) {
  test::TempDir tmp;
  fs::path dir = tmp.path() / "run";
  ensure_private_dir(dir, geteuid());
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  chmod(dir.c_str(), 0755);  // loosened: tightened again
  ensure_private_dir(dir, geteuid());
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // A symlink in its place is refused: it could lead anywhere.
  fs::path link = tmp.path() / "link";
  fs::create_symlink(dir, link);
  EXPECT_THROW(ensure_private_dir(link, geteuid()), Error);
  if (geteuid() == 0) {
    fs::path theirs = tmp.path() / "theirs";
    mkdir(theirs.c_str(), 0700);
    ASSERT_EQ(chown(theirs.c_str(), 65534, 65534), 0);
    try {
      ensure_private_dir(theirs, 0);
      ADD_FAILURE() << "a directory of another user was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("belongs to uid 65534"), std::string::npos) << e.what();
    }
  }
}

TEST(Paths, AtomicWriteLeavesNoTemporaryFiles) {
  test::TempDir tmp;
  fs::path f = tmp.path() / "state.json";
  write_file_atomic(f, "one");
  write_file_atomic(f, "two");
  EXPECT_EQ(read_file(f), "two");
  size_t n = 0;
  for (auto& e : fs::directory_iterator(tmp.path())) n += e.is_regular_file();
  EXPECT_EQ(n, 1u);
}

}  // namespace
