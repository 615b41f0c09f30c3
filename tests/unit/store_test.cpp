#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hutch/digest.hpp"
#include "hutch/store.hpp"
#include "test_support.hpp"

using namespace hutch;
namespace fs = std::filesystem;

namespace {

Logger quiet(LogLevel::kError);

TEST(Store, BlobsAreContentAddressed) {
  test::TempDir tmp;
  Store st(tmp.path() / "s", quiet);
  std::string d = st.put_blob("hello");
  EXPECT_EQ(d, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_TRUE(st.has_blob(d));
  EXPECT_EQ(st.read_blob(d), "hello");
  EXPECT_EQ(st.put_blob("hello"), d);
  EXPECT_THROW(st.blob_path("sha256:xyz"), Error);
}

TEST(Store, ChainIdsFollowTheImageSpec) {
  std::string a = "sha256:" + std::string(64, 'a'), b = "sha256:" + std::string(64, 'b');
  EXPECT_EQ(chain_id("", a), std::string(64, 'a'));
  EXPECT_EQ(chain_id(std::string(64, 'a'), b), sha256_hex(a + " " + b));
}

TEST(Store, FindsImagesByNameIdAndPrefix) {
  test::TempDir tmp;
  Store st(tmp.path() / "s", quiet);
  std::string id1 = "abc1" + std::string(60, '0'), id2 = "abc2" + std::string(60, 'f');
  st.save_images({{id1, "", {"localhost/busybox:latest", "localhost/bb:1"}, {}, 0, ""},
                  {id2, "", {"registry.example.com/x/app:v1"}, {}, 0, ""}});
  EXPECT_EQ(st.find_image("busybox")->id, id1);
  EXPECT_EQ(st.find_image("bb:1")->id, id1);
  EXPECT_EQ(st.find_image("localhost/busybox:latest")->id, id1);
  EXPECT_EQ(st.find_image("registry.example.com/x/app:v1")->id, id2);
  EXPECT_EQ(st.find_image(id2)->id, id2);
  EXPECT_EQ(st.find_image("sha256:" + id2)->id, id2);
  EXPECT_EQ(st.find_image("abc1")->id, id1);
  EXPECT_THROW(st.find_image("abc"), Error);  // matches both
  EXPECT_FALSE(st.find_image("ab"));          // too short to be a prefix, and no such name
  EXPECT_FALSE(st.find_image("bb"));          // bb:latest is not bb:1
}

TEST(Store, RecordsSurviveAndCorruptionIsNamed) {
  test::TempDir tmp;
  {
    Store st(tmp.path() / "s", quiet);
    ContainerRecord c;
    c.id = std::string(64, 'c');
    c.name = "box";
    c.command = {"sh"};
    st.save_containers({c});
  }
  Store st(tmp.path() / "s", quiet);
  ASSERT_EQ(st.containers().size(), 1u);
  EXPECT_EQ(st.find_container("box")->id, std::string(64, 'c'));
  EXPECT_EQ(st.find_container("ccc")->name, "box");
  write_file_atomic(tmp.path() / "s" / "images.json", "{ not json");
  try {
    st.images();
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("images.json"), std::string::npos);
  }
}

TEST(Store, StagingOfADeadProcessIsCleanedAndALiveOneKept) {
  test::TempDir tmp;
  Store st(tmp.path() / "s", quiet);
  auto live = st.stage("live");
  pid_t pid = fork();
  if (pid == 0) {
    auto s = st.stage("dead");
    _exit(0);  // dies holding it, without cleaning up
  }
  waitpid(pid, nullptr, 0);
  size_t before = 0;
  for (auto& e : fs::directory_iterator(st.tmp_dir())) before += e.is_directory();
  EXPECT_EQ(before, 2u);
  st.clean_tmp();
  size_t after = 0;
  for (auto& e : fs::directory_iterator(st.tmp_dir())) after += e.is_directory();
  EXPECT_EQ(after, 1u);
  EXPECT_TRUE(fs::exists(live.dir()));
}

// A command killed after taking its staging lock and before making the directory (or after
// removing it and before the lock) leaves a lone lock file: the next clean-up removes it,
// and leaves a lock someone holds.
TEST(Store, ALoneLockOfADeadCommandIsRemovedAndAHeldOneKept) {
  test::TempDir tmp;
  Store st(tmp.path() / "s", quiet);
  fs::path lone = st.tmp_dir() / "import-dead.lock";
  { FileLock l(lone, FileLock::Mode::kExclusive); }  // taken and let go, no directory
  fs::path held_file = st.tmp_dir() / "import-live.lock";
  FileLock held(held_file, FileLock::Mode::kExclusive);
  EXPECT_TRUE(st.clean_tmp()) << "a lone lock says a command died midway";
  EXPECT_FALSE(fs::exists(lone));
  EXPECT_TRUE(fs::exists(held_file));
  auto staged = st.stage("after");  // staging still works after the clean-up
  EXPECT_TRUE(fs::is_directory(staged.dir()));
}

TEST(Store, ConcurrentWritersUnderTheLockLoseNothing) {
  test::TempDir tmp;
  fs::path root = tmp.path() / "s";
  { Store st(root, quiet); }
  std::vector<pid_t> kids;
  for (int i = 0; i < 8; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      Store st(root, quiet);
      for (int j = 0; j < 10; ++j) {
        auto lock = st.lock(FileLock::Mode::kExclusive);
        auto all = st.containers();
        ContainerRecord c;
        c.id = random_hex(32);
        all.push_back(c);
        st.save_containers(all);
      }
      _exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int status = 0;
    waitpid(k, &status, 0);
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  Store st(root, quiet);
  EXPECT_EQ(st.containers().size(), 80u);
}

}  // namespace
