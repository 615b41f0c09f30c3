// hutch cp: docker cp's rules for files, directories, DIR/. and existing or missing
// destinations, both ways; tar streams with "-"; owners in and out (-a); symlinks in the
// container that point outside it; errors; a running container (its volume and tmpfs); and,
// for every storage driver, that a stopped container is unmounted after the copy.
//
// Every test runs in the three modes (root, ranged, norange). What a container holds is read
// back through hutch itself (`cp CONTAINER:PATH -` and tar, or commit and run).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <thread>

#include "harness.hpp"

namespace hit {
namespace {

// Single-quoted for /bin/sh.
std::string sq(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

// What the stopped container c1 holds besides the image: /data (a file, a directory with a
// 0640 file, an empty directory, a relative symlink), symlinks that point out of the
// container (/evil to /etc/passwd, /evildir to /tmp), and /owned, uid 1000 where the mode
// has such an ID.
std::string c1_script() {
  std::string s =
      "set -e; umask 022; mkdir -p /data/sub /data/empty; echo hello > /data/f; echo deep > /data/sub/g; "
      "chmod 0640 /data/sub/g; ln -s f /data/rel; ln -s /../../../../etc/passwd /evil; "
      "ln -s /../../../../tmp /evildir; echo owned > /owned";
  if (suite().mode != Mode::kNoRange) s += "; chown 1000:1000 /owned";
  return s;
}

class CpTest : public HutchTest {
 protected:
  void SetUp() override {
    HutchTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_FALSE(import_busybox("bb").empty());
  }

  // hutch run --name NAME bb sh -c SCRIPT: a stopped container that keeps its files.
  void make_container(const std::string& name, const std::string& script) {
    Result r = hutch({"run", "--name", name, "bb", "sh", "-c", script});
    ASSERT_OK(r) << "(run --name " << name << ")";
  }
  void make_c1() { make_container("c1", c1_script()); }

  // `tar -t` (verbose: `-tv --numeric-owner`) of a tar held in memory, one entry a line.
  std::vector<std::string> tar_list(const std::string& tar, bool verbose = false) {
    std::string file = path("list-" + std::to_string(++tars_) + ".tar");
    write_file(file, tar);
    Result r = verbose ? run({"tar", "-tv", "--numeric-owner", "-f", file}) : run({"tar", "-tf", file});
    EXPECT_OK(r) << "(tar -t of what hutch cp wrote)";
    return lines(r.out);
  }
  // The entries of CONTAINER:PATH, from `hutch cp CONTAINER:PATH -`.
  std::vector<std::string> listing(const std::string& where, bool verbose = false) {
    Result r = hutch({"cp", where, "-"});
    EXPECT_OK(r) << "(cp " << where << " -)";
    if (r.code != 0) return {};
    return tar_list(r.out, verbose);
  }
  // The content of the file CONTAINER:PATH.
  std::string content(const std::string& where) {
    Result r = hutch({"cp", where, "-"});
    EXPECT_OK(r) << "(cp " << where << " -)";
    std::string file = path("content-" + std::to_string(++tars_) + ".tar");
    write_file(file, r.out);
    Result x = run({"tar", "-xOf", file});
    EXPECT_OK(x);
    return x.out;
  }
  // "uid/gid" of the one entry of CONTAINER:PATH (a file), as hutch's namespace sees it.
  std::string owner_in(const std::string& where) {
    auto l = listing(where, true);
    if (l.size() != 1) {
      ADD_FAILURE() << "want one entry for " << where << ", got:\n" << join(l);
      return "";
    }
    auto w = split_ws(l[0]);
    return w.size() > 1 ? w[1] : "";
  }
  // The sorted relative paths under a host directory (directories with a trailing "/").
  std::vector<std::string> tree(const std::string& dir) {
    std::vector<std::string> out;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
      std::string rel = it->path().lexically_relative(dir).string();
      out.push_back(rel + (it->is_directory() && !it->is_symlink() ? "/" : ""));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // The host uid that a file of uid `u` in hutch's namespace has.
  uid_t host_uid_of(unsigned long u) const {
    const Suite& s = suite();
    if (s.mode == Mode::kRoot) return static_cast<uid_t>(u);
    if (u == 0) return s.uid;
    return static_cast<uid_t>(s.subuid.at(0).start + u - 1);
  }
  std::string hutch_sh() const { return sq(suite().hutch) + " --root " + sq(root_) + " --runroot " + sq(run_); }
  // sh -c SCRIPT inside `hutch unshare` (plain root in mode root); H is this test's hutch.
  Result in_unshare(const std::string& script) const {
    return hutch({"unshare", "sh", "-c", "H() { " + hutch_sh() + " \"$@\"; }; " + script});
  }

  int tars_ = 0;
};

// ---- copying out ------------------------------------------------------------------------------

TEST_F(CpTest, OutAFileToANewNameIntoADirectoryAndOverAFile) {
  make_c1();
  if (HasFatalFailure()) return;
  EXPECT_OK(hutch({"cp", "c1:/data/f", "new"}));
  EXPECT_EQ(read_file(path("new")), "hello\n");
  // Without the leading slash the path is the same.
  EXPECT_OK(hutch({"cp", "c1:data/f", "new2"}));
  EXPECT_EQ(read_file(path("new2")), "hello\n");
  fs::create_directory(path("dir"));
  EXPECT_OK(hutch({"cp", "c1:/data/f", "dir"}));
  EXPECT_EQ(read_file(path("dir/f")), "hello\n");
  write_file(path("existing"), "old content, longer than the new\n");
  EXPECT_OK(hutch({"cp", "c1:/data/f", path("existing")}));
  EXPECT_EQ(read_file(path("existing")), "hello\n");
  // A file keeps its mode.
  EXPECT_OK(hutch({"cp", "c1:/data/sub/g", "g"}));
  struct stat st;
  ASSERT_EQ(::lstat(path("g").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(CpTest, OutADirectoryAndItsContents) {
  make_c1();
  if (HasFatalFailure()) return;
  const std::vector<std::string> data = {"empty/", "f", "rel", "sub/", "sub/g"};
  // A missing destination becomes the directory.
  EXPECT_OK(hutch({"cp", "c1:/data", "copy"}));
  EXPECT_EQ(tree(path("copy")), data);
  EXPECT_EQ(fs::read_symlink(path("copy/rel")), "f");
  // An existing one receives it under its name.
  fs::create_directory(path("into"));
  EXPECT_OK(hutch({"cp", "c1:/data", "into"}));
  std::vector<std::string> nested = {"data/"};
  for (const auto& e : data) nested.push_back("data/" + e);
  EXPECT_EQ(tree(path("into")), nested);
  // DIR/. : what it holds, merged with what is there.
  fs::create_directory(path("merge"));
  write_file(path("merge/mine"), "mine\n");
  EXPECT_OK(hutch({"cp", "c1:/data/.", "merge"}));
  std::vector<std::string> merged = data;
  merged.push_back("mine");
  std::sort(merged.begin(), merged.end());
  EXPECT_EQ(tree(path("merge")), merged);
  EXPECT_EQ(read_file(path("merge/sub/g")), "deep\n");
  // A trailing slash on a missing destination is fine for a directory.
  EXPECT_OK(hutch({"cp", "c1:/data/sub", "newdir/"}));
  EXPECT_EQ(tree(path("newdir")), std::vector<std::string>{"g"});
}

TEST_F(CpTest, OutToATarStreamOnStdout) {
  make_c1();
  if (HasFatalFailure()) return;
  EXPECT_EQ(listing("c1:/data"),
            (std::vector<std::string>{"data/", "data/empty/", "data/f", "data/rel", "data/sub/", "data/sub/g"}));
  EXPECT_EQ(listing("c1:/data/."), (std::vector<std::string>{"./", "./empty/", "./f", "./rel", "./sub/", "./sub/g"}));
  EXPECT_EQ(listing("c1:/data/f"), std::vector<std::string>{"f"});
  EXPECT_EQ(content("c1:/data/sub/g"), "deep\n");
  // The tar keeps the container's owners and modes.
  auto v = listing("c1:/data/sub/g", true);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(std::regex_search(v[0], std::regex("^-rw-r----- 0/0 "))) << v[0];
}

TEST_F(CpTest, OutFilesBelongToTheCallerUnlessArchive) {
  make_c1();
  if (HasFatalFailure()) return;
  EXPECT_OK(hutch({"cp", "c1:/owned", "plain"}));
  struct stat st;
  ASSERT_EQ(::lstat(path("plain").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, suite().uid) << "a file copied out belongs to the caller";
  EXPECT_EQ(st.st_gid, suite().gid);
  EXPECT_OK(hutch({"cp", "-a", "c1:/owned", "kept"}));
  ASSERT_EQ(::lstat(path("kept").c_str(), &st), 0);
  if (suite().mode == Mode::kNoRange) {
    EXPECT_EQ(st.st_uid, suite().uid) << "single-ID mode: every file is the caller's";
  } else {
    EXPECT_EQ(st.st_uid, host_uid_of(1000)) << "-a keeps the container's uid 1000";
  }
  EXPECT_EQ(read_file(path("kept")), "owned\n");
}

// ---- copying in -------------------------------------------------------------------------------

TEST_F(CpTest, InAFileADirectoryAndItsContents) {
  make_c1();
  if (HasFatalFailure()) return;
  write_file(path("hf"), "host file\n");
  fs::create_directories(path("hd/sub"));
  write_file(path("hd/a"), "a\n");
  write_file(path("hd/sub/b"), "b\n");
  // A file: to a new name, into a directory, over a file.
  EXPECT_OK(hutch({"cp", "hf", "c1:/data/newname"}));
  EXPECT_EQ(content("c1:/data/newname"), "host file\n");
  EXPECT_OK(hutch({"cp", "hf", "c1:/data/"}));
  EXPECT_EQ(content("c1:/data/hf"), "host file\n");
  EXPECT_OK(hutch({"cp", path("hf"), "c1:/data/f"}));
  EXPECT_EQ(content("c1:/data/f"), "host file\n");
  // A directory: to a missing path (it becomes the directory), into an existing one.
  EXPECT_OK(hutch({"cp", "hd", "c1:/newdir"}));
  EXPECT_EQ(listing("c1:/newdir"), (std::vector<std::string>{"newdir/", "newdir/a", "newdir/sub/", "newdir/sub/b"}));
  EXPECT_OK(hutch({"cp", "hd", "c1:/data"}));
  EXPECT_EQ(content("c1:/data/hd/sub/b"), "b\n");
  // DIR/. : merged into what is there.
  EXPECT_OK(hutch({"cp", "hd/.", "c1:/data/sub"}));
  EXPECT_EQ(listing("c1:/data/sub"), (std::vector<std::string>{"sub/", "sub/a", "sub/g", "sub/sub/", "sub/sub/b"}));
  // The files are in the container for its processes too.
  Result commit = hutch({"commit", "c1", "c1img"});
  ASSERT_OK(commit);
  Result r = hutch({"run", "--rm", "c1img", "cat", "/data/hf", "/newdir/sub/b", "/data/sub/a"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "host file\nb\na\n");
}

TEST_F(CpTest, InFromATarStreamOnStdin) {
  make_c1();
  if (HasFatalFailure()) return;
  fs::create_directories(path("src/d"));
  write_file(path("src/x"), "x\n");
  write_file(path("src/d/y"), "y\n");
  ASSERT_OK(run({"tar", "-C", path("src"), "-cf", path("in.tar"), "."}));
  Options o;
  o.input = read_file(path("in.tar"));
  EXPECT_OK(hutch({"cp", "-", "c1:/data"}, o));
  EXPECT_EQ(content("c1:/data/d/y"), "y\n");
  EXPECT_EQ(content("c1:/data/x"), "x\n");
  EXPECT_EQ(owner_in("c1:/data/x"), "0/0") << "a file from the stream belongs to the container's root";
  // The stream goes into a directory: not a file, not a missing path.
  EXPECT_TRUE(OneLineError(hutch({"cp", "-", "c1:/data/f"}, o), {"/data/f", "c1", "not a directory"}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "-", "c1:/missing"}, o), {"could not find the file /missing in container c1"}));
  // Not a tar at all.
  Options bad;
  bad.input = std::string("this is not a tar archive, not at all; ") + std::string(2000, 'x');
  EXPECT_TRUE(EngineError(hutch({"cp", "-", "c1:/data"}, bad), {"standard input"}));
}

TEST_F(CpTest, InFilesBelongToTheContainersRootUnlessArchive) {
  make_c1();
  if (HasFatalFailure()) return;
  // A file of uid 1234 on the host side (made inside the namespace in the rootless modes,
  // where that is the ID the namespace maps; single-ID mode has only the caller).
  std::string script = "echo mine > " + sq(path("theirs")) + "; mkdir " + sq(path("td")) + "; echo t > " +
                       sq(path("td/t"));
  if (suite().mode != Mode::kNoRange) script += "; chown -R 1234:1234 " + sq(path("theirs")) + " " + sq(path("td"));
  ASSERT_OK(in_unshare(script));
  EXPECT_OK(hutch({"cp", "theirs", "c1:/plain"}));
  EXPECT_EQ(owner_in("c1:/plain"), "0/0");
  EXPECT_OK(hutch({"cp", "-a", "theirs", "c1:/kept"}));
  EXPECT_OK(hutch({"cp", "--archive", "td", "c1:/keptdir"}));
  std::string want = suite().mode == Mode::kNoRange ? "0/0" : "1234/1234";
  EXPECT_EQ(owner_in("c1:/kept"), want);
  EXPECT_EQ(owner_in("c1:/keptdir/t"), want);
  // As the container's processes see them.
  ASSERT_OK(hutch({"commit", "c1", "owners"}));
  Result r = hutch({"run", "--rm", "owners", "stat", "-c", "%u:%g", "/plain", "/kept", "/keptdir/t"});
  EXPECT_OK(r);
  std::string k = suite().mode == Mode::kNoRange ? "0:0" : "1234:1234";
  EXPECT_EQ(r.out, "0:0\n" + k + "\n" + k + "\n");
}

// ---- symlinks that point outside the container ---------------------------------------------------

TEST_F(CpTest, SymlinksInTheContainerNeverLeadOutOfIt) {
  make_c1();
  if (HasFatalFailure()) return;
  // Out: the link itself, or with -L what it points to in the container, never the host's.
  EXPECT_OK(hutch({"cp", "c1:/evil", "link"}));
  std::error_code ec;
  EXPECT_TRUE(fs::is_symlink(path("link")));
  EXPECT_EQ(fs::read_symlink(path("link"), ec).string(), "/../../../../etc/passwd");
  EXPECT_OK(hutch({"cp", "-L", "c1:/evil", "followed"}));
  EXPECT_FALSE(fs::is_symlink(path("followed")));
  std::string image_passwd = content("c1:/etc/passwd");
  EXPECT_TRUE(contains(image_passwd, "app:x:1000:1000:app:/home/app:/bin/sh")) << image_passwd;
  EXPECT_EQ(read_file(path("followed")), image_passwd);
  EXPECT_NE(read_file(path("followed")), read_file("/etc/passwd"));
  // A directory reached through /evildir (-> /../../../../tmp) is the container's /tmp.
  std::string unique = "hutch-cp-escape-" + fs::path(dir_).filename().string();
  make_container("c2", "echo container-tmp > /tmp/" + unique + "; ln -s /../../../../tmp /evildir");
  if (HasFatalFailure()) return;
  EXPECT_OK(hutch({"cp", "c2:/evildir/" + unique, "fromtmp"}));
  EXPECT_EQ(read_file(path("fromtmp")), "container-tmp\n");

  // In: through the symlinked directory, the file lands in the container's /tmp.
  write_file(path(unique), "copied in\n");
  EXPECT_OK(hutch({"cp", unique, "c1:/evildir/"}));
  EXPECT_FALSE(fs::exists("/tmp/" + unique)) << "the copy went to the host's /tmp";
  EXPECT_EQ(content("c1:/tmp/" + unique), "copied in\n");
  // A symlink in the container that names a file of the host: the copy goes to that path in
  // the container (missing there: an error), the host's file stays as it was.
  std::string decoy = path("decoy");
  write_file(decoy, "host decoy\n");
  make_container("c3", "ln -s /../../../.." + decoy + " /decoylink; mkdir /data; ln -s /../../../.." + dir_ +
                           " /data/decoydir");
  if (HasFatalFailure()) return;
  EXPECT_TRUE(EngineError(hutch({"cp", unique, "c3:/decoylink"}), {"c3"}));
  EXPECT_TRUE(EngineError(hutch({"cp", unique, "c3:/data/decoydir/decoy"}), {"c3"}));
  EXPECT_EQ(read_file(decoy), "host decoy\n");
  make_container("c4", "mkdir -p /in" + dir_ + "; ln -s /../../../../in" + dir_ + "/decoy /decoylink");
  if (HasFatalFailure()) return;
  EXPECT_OK(hutch({"cp", unique, "c4:/decoylink"}));
  EXPECT_EQ(read_file(decoy), "host decoy\n");
  EXPECT_EQ(content("c4:/in" + dir_ + "/decoy"), "copied in\n");

  // A tar stream with a symlink out and an entry through it: refused, nothing outside.
  fs::create_directories(path("t1"));
  fs::create_directories(path("t2/out"));
  fs::create_symlink("/../../../../tmp", path("t1/out"));
  write_file(path("t2/out/" + unique + "-tar"), "through the link\n");
  ASSERT_OK(run({"tar", "-C", path("t1"), "-cf", path("evil.tar"), "out"}));
  ASSERT_OK(run({"tar", "-C", path("t2"), "-rf", path("evil.tar"), "out/" + unique + "-tar"}));
  Options o;
  o.input = read_file(path("evil.tar"));
  EXPECT_TRUE(EngineError(hutch({"cp", "-", "c1:/data"}, o), {"out"}));
  EXPECT_FALSE(fs::exists("/tmp/" + unique + "-tar"));
  EXPECT_FALSE(fs::exists(path("t1/" + unique + "-tar")));
}

// ---- errors -------------------------------------------------------------------------------------

TEST_F(CpTest, ErrorsNameThePathAndTheContainer) {
  make_c1();
  if (HasFatalFailure()) return;
  write_file(path("hf"), "x\n");
  fs::create_directory(path("hd"));
  EXPECT_TRUE(OneLineError(hutch({"cp", "c1:/nosuch", "x"}), {"could not find the file /nosuch in container c1"}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "c1:/nosuch/deeper", "x"}), {"could not find the file", "in container c1"}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "c1:/data/f/", "x"}), {"/data/f", "c1", "not a directory"}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "c1:/data/f", "missingdir/"}), {"no such directory", "missingdir"}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "c1:/data/f", "nodir/x"}), {"could not find the file", "nodir"}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "c1:/data", "hf"}), {"cannot copy a directory to a file", "hf"}));
  // A FIFO (or a device: think of /dev/null) is not replaced by the file, as in docker.
  ASSERT_OK(run({"mkfifo", path("fifo")}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "c1:/data/f", "fifo"}), {"fifo", "a FIFO"}));
  struct stat st;
  ASSERT_EQ(::lstat(path("fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced";
  EXPECT_TRUE(OneLineError(hutch({"cp", "nosuch", "c1:/data"}), {"could not find the file", "nosuch"}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "hf", "c1:/nosuchdir/"}), {"no such directory", "/nosuchdir", "c1"}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "hf", "c1:/nosuchdir/x"}), {"could not find the file /nosuchdir in container c1"}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "hd", "c1:/data/f"}), {"cannot copy a directory to a file", "/data/f", "c1"}));
  // docker's rule: a directory is not replaced by a file, nor a file by a directory.
  fs::create_directory(path("hd/f"));
  EXPECT_TRUE(OneLineError(hutch({"cp", "hd/.", "c1:/data"}), {"f", "cannot overwrite"}));
  EXPECT_EQ(content("c1:/data/f"), "hello\n");
  EXPECT_TRUE(OneLineError(hutch({"cp", "hf", "nosuchcontainer:/x"}), {"no such container", "nosuchcontainer"}));
  // The command line: one side must be a container, and only one (usage errors, with a
  // pointer to --help).
  EXPECT_TRUE(EngineError(hutch({"cp", "hf", "elsewhere"}), {"CONTAINER:PATH", "cp --help"}));
  EXPECT_TRUE(EngineError(hutch({"cp", "c1:/data/f", "c1:/data/g"}), {"two containers"}));
  EXPECT_TRUE(EngineError(hutch({"cp", "c1:/data/f"}), {"two arguments"}));
  // A local path with a colon is written ./a:b, as in docker.
  write_file(path("a:b"), "colon\n");
  EXPECT_OK(hutch({"cp", "./a:b", "c1:/colon"}));
  EXPECT_EQ(content("c1:/colon"), "colon\n");
}

// ---- a running container ------------------------------------------------------------------------

TEST_F(CpTest, ARunningContainerIsCopiedAsItsProcessesSeeIt) {
  ASSERT_OK(hutch({"volume", "create", "v1"}));
  std::string script =
      "echo ready; i=0; while [ ! -e /vol/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; "
      "cat /vol/go /scratch/s /rootfs-file; stat -c %u:%g /vol/go";
  Options o;
  o.timeout = 60s;
  Proc p(cmd({"run", "--name", "r1", "-v", "v1:/vol", "--tmpfs", "/scratch", "bb", "sh", "-c", script}), o);
  ASSERT_TRUE(p.wait_for_stdout("ready", 30s)) << "the container did not start: " << p.out_so_far();
  write_file(path("s"), "into its tmpfs\n");
  write_file(path("rf"), "into its root filesystem\n");
  write_file(path("go"), "into its volume\n");
  EXPECT_OK(hutch({"cp", "s", "r1:/scratch/s"}));
  EXPECT_OK(hutch({"cp", "rf", "r1:/rootfs-file"}));
  EXPECT_EQ(content("r1:/scratch/s"), "into its tmpfs\n");
  EXPECT_OK(hutch({"cp", "go", "r1:/vol/go"}));
  Result r = p.wait();
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "ready\ninto its volume\ninto its tmpfs\ninto its root filesystem\n0:0\n");
  // The volume kept the file; the tmpfs went with the container, its root filesystem stays.
  Result v = hutch({"volume", "inspect", "v1", "--format", "{{.Mountpoint}}"});
  ASSERT_OK(v);
  EXPECT_EQ(read_file(trim(v.out) + "/go"), "into its volume\n");
  EXPECT_EQ(content("r1:/rootfs-file"), "into its root filesystem\n");
  EXPECT_TRUE(OneLineError(hutch({"cp", "r1:/scratch/s", "x"}), {"could not find the file /scratch/s in container r1"}));
}

TEST_F(CpTest, ADetachedContainerStoppedAndStartedAgain) {
  Options slow;
  slow.timeout = 60s;
  Result d = hutch({"run", "-d", "--name", "d1", "--tmpfs", "/scratch", "bb", "sleep", "300"}, slow);
  ASSERT_OK(d);
  write_file(path("f"), "while it runs\n");
  EXPECT_OK(hutch({"cp", "f", "d1:/scratch/"}));
  Result e = hutch({"exec", "d1", "cat", "/scratch/f"});
  EXPECT_OK(e);
  EXPECT_EQ(e.out, "while it runs\n");
  ASSERT_OK(hutch({"stop", "-t", "1", "d1"}, slow));
  // Stopped: its own filesystem, mounted for the copy and unmounted after; it starts again.
  write_file(path("g"), "while it is stopped\n");
  EXPECT_OK(hutch({"cp", "g", "d1:/g"}));
  EXPECT_TRUE(OneLineError(hutch({"cp", "d1:/scratch/f", "x"}), {"could not find the file /scratch/f in container d1"}));
  ASSERT_OK(hutch({"start", "d1"}, slow));
  Result g = hutch({"exec", "d1", "cat", "/g"});
  EXPECT_OK(g);
  EXPECT_EQ(g.out, "while it is stopped\n");
  EXPECT_OK(hutch({"rm", "-f", "d1"}, slow));
}

// ---- every storage driver: a stopped container is mounted for the copy and unmounted after -----

class CpDriverTest : public HutchTest, public ::testing::WithParamInterface<std::string> {
 protected:
  CpDriverTest() : HutchTest(false) {}
  std::vector<std::string> d(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--storage-driver", GetParam()});
    return args;
  }
  // The containers `hutch mount` lists (inside `hutch unshare`, where rootless mounts live).
  std::string mounted() const {
    Result r = hutch(d({"unshare", suite().hutch, "--root", root_, "--runroot", run_, "--storage-driver", GetParam(),
                        "mount"}));
    EXPECT_OK(r);
    return r.out;
  }
};

TEST_P(CpDriverTest, AStoppedContainerIsUnmountedAfterTheCopy) {
  ASSERT_OK(hutch(d({"unshare", "true"})));
  Result imp = hutch(d({"import", suite().tar, "bb"}));
  ASSERT_OK(imp);
  ASSERT_OK(hutch(d({"run", "--name", "c1", "bb", "sh", "-c", "mkdir /data; echo hello > /data/f"})));
  EXPECT_EQ(mounted(), "") << "nothing is mounted before the copy";
  write_file(path("in"), "in\n");
  EXPECT_OK(hutch(d({"cp", "in", "c1:/data/in"})));
  EXPECT_OK(hutch(d({"cp", "c1:/data", "out"})));
  EXPECT_EQ(read_file(path("out/f")), "hello\n");
  EXPECT_EQ(read_file(path("out/in")), "in\n");
  EXPECT_TRUE(OneLineError(hutch(d({"cp", "c1:/nosuch", "x"})), {"could not find the file /nosuch in container c1"}));
  EXPECT_EQ(mounted(), "") << "the copies unmounted what they mounted";
  // What someone else mounted stays mounted (inside one `hutch unshare`, where it is seen).
  std::string h = sq(suite().hutch) + " --root " + sq(root_) + " --runroot " + sq(run_) + " --storage-driver " + GetParam();
  Result r = hutch(d({"unshare", "sh", "-c",
                      h + " mount c1 >/dev/null && " + h + " cp c1:/data/f " + sq(path("again")) + " && " + h +
                          " mount | wc -l && " + h + " unmount c1 >/dev/null"}));
  EXPECT_OK(r);
  EXPECT_EQ(trim(r.out), "1") << "a container mounted before the copy is still mounted after it";
  EXPECT_EQ(read_file(path("again")), "hello\n");
  EXPECT_OK(hutch(d({"rm", "c1"})));
}

INSTANTIATE_TEST_SUITE_P(Drivers, CpDriverTest, ::testing::Values("vfs", "overlay", "fuse-overlayfs"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace hit
