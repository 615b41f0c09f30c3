// Storage: the drivers (vfs, overlay, fuse-overlayfs, auto), diff, commit, mount/unmount,
// system df, system/image prune, system check, crash safety, and layer tars with whiteouts,
// opaque directories, hardlinks, setuid bits and symlinks applied by each driver.
//
// Every test runs in the three modes (root, ranged, norange). Where a test needs to look
// into the store as its owner (du, corrupting a file, removing a layer), it does so inside
// `hutch unshare`, which is plain root in mode root and uid 0 of hutch's namespace otherwise.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "harness.hpp"

namespace hit {
namespace {

const std::vector<std::string> kDrivers = {"vfs", "overlay", "fuse-overlayfs"};

std::string driver_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

// Single-quoted for /bin/sh.
std::string sq(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string join(const std::vector<std::string>& v, const std::string& sep = "\n") {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// Words of a message: runs of [A-Za-z0-9_-], so that "fuse-overlayfs" is one word and does not
// count as a mention of "overlay".
std::set<std::string> words(const std::string& text) {
  std::set<std::string> out;
  std::string cur;
  for (char c : text) {
    if (isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
      cur += static_cast<char>(tolower(static_cast<unsigned char>(c)));
    } else {
      if (!cur.empty()) out.insert(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.insert(cur);
  return out;
}

// A size as docker prints it (units.HumanSize: 1000-based, B kB MB GB TB, the number with
// "%.4g", so "52.43MB", "4.096kB", "0B"), in bytes; nullopt for anything else.
std::optional<double> parse_size(const std::string& s) {
  static const std::regex re("^([0-9]+(\\.[0-9]+)?)(B|kB|MB|GB|TB)$");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return std::nullopt;
  double v = std::stod(m[1].str());
  char buf[64];
  snprintf(buf, sizeof buf, "%.4g", v);
  if (m[1].str() != buf) return std::nullopt;  // not 4 significant digits as docker prints them
  std::string u = m[3].str();
  if (u != "B" && v < 1) return std::nullopt;   // 0.5kB is 500B
  if (v >= 1000 && u != "TB") return std::nullopt;  // 1000kB is 1MB
  double mult = u == "B" ? 1 : u == "kB" ? 1e3 : u == "MB" ? 1e6 : u == "GB" ? 1e9 : 1e12;
  return v * mult;
}

// Output with docker's prompt ("... [y/N] " with no newline) ended, so that what follows it
// starts a line.
std::string after_prompt(const std::string& out) {
  std::string o = out;
  const std::string q = "[y/N] ";
  auto at = o.find(q);
  if (at != std::string::npos) o.replace(at, q.size(), "[y/N]\n");
  return o;
}

// The first word of a RECLAIMABLE cell ("12.3MB (45%)" -> "12.3MB").
std::string first_word(const std::string& s) {
  auto w = split_ws(s);
  return w.empty() ? "" : w[0];
}

// ---- the fixture ------------------------------------------------------------------------------

// A fresh store; every hutch command of the test gets `--storage-driver D` when driver() is
// not empty (empty: hutch's default, auto). The warm-up (`unshare true`, `images -q`) runs with
// the driver too, so that nothing of the test ever opens the store with another.
class StoreTest : public HutchTest {
 protected:
  StoreTest() : HutchTest(false) {}

  void SetUp() override {
    HutchTest::SetUp();
    if (HasFatalFailure()) return;
    Result u = h({"unshare", "true"});
    ASSERT_OK(u) << "(warm-up `unshare true` on a fresh runroot, driver " << driver_label() << ")";
    Result r = h({"images", "-q"});
    ASSERT_OK(r) << "(warm-up `images -q` on an empty store, driver " << driver_label() << ")";
    ASSERT_EQ(trim(r.out), "") << r;
  }

  void TearDown() override {
    if (!root_.empty()) {
      // No fuse-overlayfs of this store may outlive the commands (give them a moment).
      std::vector<pid_t> left;
      for (int i = 0; i < 30; ++i) {
        left = fuse_processes_of_store();
        if (left.empty()) break;
        std::this_thread::sleep_for(100ms);
      }
      if (!left.empty()) {
        std::string desc;
        for (pid_t p : left) desc += " " + std::to_string(p) + " (" + cmdline_of(p) + ")";
        ADD_FAILURE() << "fuse-overlayfs processes serving " << root_ << " are still running after the test:" << desc;
        for (pid_t p : left) kill(p, SIGKILL);
        std::this_thread::sleep_for(300ms);
      }
    }
    HutchTest::TearDown();
  }

  virtual std::string driver() const { return ""; }
  std::string driver_label() const { return driver().empty() ? std::string("default") : driver(); }

  std::vector<std::string> with_driver(const std::vector<std::string>& args) const {
    std::vector<std::string> a;
    if (!driver().empty()) a = {"--storage-driver", driver()};
    a.insert(a.end(), args.begin(), args.end());
    return a;
  }
  Result h(const std::vector<std::string>& args, Options opts = {}) const { return hutch(with_driver(args), std::move(opts)); }
  Result h_long(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 300s) const {
    Options o;
    o.timeout = timeout;
    return h(args, o);
  }
  std::vector<std::string> dcmd(const std::vector<std::string>& args) const { return cmd(with_driver(args)); }
  // The hutch command line of this test, for scripts run by `hutch unshare`.
  std::string hutch_sh() const {
    std::string s = sq(suite().hutch) + " --root " + sq(root_) + " --runroot " + sq(run_);
    if (!driver().empty()) s += " --storage-driver " + driver();
    return s;
  }
  // sh -c SCRIPT inside `hutch unshare`; the shell function H in the script is this test's
  // hutch command line.
  Result in_unshare(const std::string& script, std::chrono::milliseconds timeout = 120s) const {
    Options o;
    o.timeout = timeout;
    return h({"unshare", "sh", "-c", "H() { " + hutch_sh() + " \"$@\"; }; " + script}, o);
  }

  // Imports TARBALL as NAME; returns the 64-hex ID ("" and a failure otherwise).
  std::string import_tar(const std::string& tarball, const std::string& name) {
    Result r = h_long({"import", tarball, name});
    std::string out = trim(r.out);
    if (r.code != 0 || !std::regex_match(out, std::regex("sha256:[0-9a-f]{64}"))) {
      ADD_FAILURE() << "import of " << tarball << " as " << name << " (driver " << driver_label()
                    << ") failed: want exit 0 and stdout sha256:<64 hex>" << r;
      return "";
    }
    return out.substr(7);
  }
  std::string import_bb(const std::string& name = "bb") { return import_tar(suite().tar, name); }

  // hutch run --name NAME IMAGE sh -c SCRIPT (kept: no --rm), must exit 0.
  void run_kept(const std::string& name, const std::string& image, const std::string& script) {
    Result r = h_long({"run", "--name", name, image, "sh", "-c", script});
    ASSERT_OK(r) << "(run --name " << name << " " << image << ", driver " << driver_label() << ")";
  }
  // hutch run --rm IMAGE sh -c SCRIPT, returns its stdout (fails the test unless it exits 0).
  std::string run_rm(const std::string& image, const std::string& script) {
    Result r = h_long({"run", "--rm", image, "sh", "-c", script});
    EXPECT_OK(r) << "(run --rm " << image << ", driver " << driver_label() << ")";
    return r.out;
  }

  // hutch commit [EXTRA...] CONTAINER [IMAGE]: exit 0 and exactly one stdout line
  // sha256:<64 hex>; returns the hex.
  std::string commit(const std::string& container, const std::string& image, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> a = {"commit"};
    a.insert(a.end(), extra.begin(), extra.end());
    a.push_back(container);
    if (!image.empty()) a.push_back(image);
    Result r = h_long(a);
    auto ls = lines(r.out);
    if (r.code != 0 || ls.size() != 1 || !std::regex_match(ls[0], std::regex("sha256:[0-9a-f]{64}"))) {
      ADD_FAILURE() << "commit " << container << " " << image << " (driver " << driver_label()
                    << "): want exit 0 and exactly one stdout line sha256:<64 hex>" << r;
      return "";
    }
    return ls[0].substr(7);
  }

  // The full ID of the container NAME, from `ps -a --no-trunc`.
  std::string container_id(const std::string& name) {
    Result r = h({"ps", "-a", "--no-trunc"});
    EXPECT_OK(r);
    for (const auto& l : lines(r.out)) {
      auto w = split_ws(l);
      if (w.empty() || !is_hex(w[0], 64)) continue;
      if (!w.empty() && w.back() == name) return w[0];
    }
    ADD_FAILURE() << "no container named " << name << " in `ps -a --no-trunc`" << r;
    return "";
  }

  std::set<std::string> image_ids() {
    Result r = h({"images", "-q", "--no-trunc"});
    EXPECT_OK(r);
    std::set<std::string> out;
    for (const auto& l : lines(r.out)) out.insert(strip_sha(trim(l)));
    return out;
  }
  std::set<std::string> container_ids() {
    Result r = h({"ps", "-a", "-q", "--no-trunc"});
    EXPECT_OK(r);
    std::set<std::string> out;
    for (const auto& l : lines(r.out)) out.insert(trim(l));
    return out;
  }
  // The store remembers its driver: the harness' inspect (without --storage-driver) opens it.
  nlohmann::json inspect(const std::string& image) { return inspect_one(image); }
  std::vector<std::string> layers_of(const std::string& image) {
    nlohmann::json j = inspect(image);
    std::vector<std::string> out;
    if (!j.is_object() || !j["RootFS"].is_object() || !j["RootFS"]["Layers"].is_array()) {
      ADD_FAILURE() << "inspect " << image << ": no RootFS.Layers: " << j.dump(2);
      return out;
    }
    for (const auto& l : j["RootFS"]["Layers"]) out.push_back(l.is_string() ? l.get<std::string>() : l.dump());
    return out;
  }

  // `du -s --block-size=1 ROOT` as the store's owner (inside hutch unshare).
  long long store_du() {
    Result r = in_unshare("du -s --block-size=1 " + sq(root_));
    EXPECT_OK(r) << "(du of the store)";
    auto w = split_ws(r.out);
    if (w.empty()) return -1;
    try {
      return std::stoll(w[0]);
    } catch (...) {
      ADD_FAILURE() << "du printed no number" << r;
      return -1;
    }
  }

  // `system check`: exit 0 and a line saying "no problems".
  ::testing::AssertionResult CheckIsClean(const std::string& when) {
    Result r = h_long({"system", "check"});
    if (r.code != 0) return ::testing::AssertionFailure() << "system check " << when << ": want exit 0" << r;
    if (!icontains(r.out + r.err, "no problems"))
      return ::testing::AssertionFailure() << "system check " << when << ": want a line with \"no problems\"" << r;
    return ::testing::AssertionSuccess();
  }

  // Directories under the store (not blobs/, tmp/, containers/), at most `depth` deep, whose
  // name starts with `prefix`.
  std::vector<std::string> dirs_named(const std::string& prefix, int depth = 4) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root_, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      std::string rel = fs::relative(it->path(), root_, ec).string();
      if (it.depth() == 0 && (rel == "blobs" || rel == "tmp" || rel == "containers")) {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_symlink(ec)) continue;
      if (!it->is_directory(ec)) continue;
      std::string name = it->path().filename().string();
      if (name.rfind(prefix, 0) == 0) {
        out.push_back(it->path().string());
        it.disable_recursion_pending();
        continue;
      }
      if (it.depth() + 1 >= depth) it.disable_recursion_pending();
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // Names (relative to the store) of what is in tmp/, of blobs being written and of
  // `.incomplete-` entries anywhere up to 3 deep: traces of a command at work.
  std::set<std::string> work_in_progress_set() const {
    auto w = work_in_progress();
    return std::set<std::string>(w.begin(), w.end());
  }
  std::vector<std::string> work_in_progress() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ + "/tmp", ec)) out.push_back("tmp/" + e.path().filename().string());
    // A blob being written: a file under blobs/sha256/ not named by 64 hex digits.
    for (const auto& e : fs::directory_iterator(root_ + "/blobs/sha256", ec))
      if (!is_hex(e.path().filename().string(), 64)) out.push_back("blobs/sha256/" + e.path().filename().string());
    for (auto it = fs::recursive_directory_iterator(root_, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (it.depth() == 0 && it->path().filename() == "blobs") {
        it.disable_recursion_pending();
        continue;
      }
      if (it->path().filename().string().find("incomplete") != std::string::npos)
        out.push_back(fs::relative(it->path(), root_, ec).string());
      if (it.depth() >= 2) it.disable_recursion_pending();
    }
    return out;
  }

  // Waits until the store shows work in progress not in `before` (at most 20 s) or P has ended, then `extra`
  // more, then kills P with SIGKILL. True when P was killed before it finished; `seen` tells
  // what showed the work.
  // With `want` non-empty, only entries whose name contains it count (".incomplete-": a layer
  // being extracted).
  bool kill_mid_way(Proc& p, const std::set<std::string>& before, const std::string& want, std::chrono::milliseconds extra,
                    std::string& seen, Result& res) const {
    auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < 20s) {
      siginfo_t info{};
      if (waitid(P_PID, static_cast<id_t>(p.pid()), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid != 0) break;
      std::vector<std::string> fresh;
      for (const auto& w : work_in_progress())
        if (!before.count(w) && (want.empty() || contains(w, want))) fresh.push_back(w);
      if (!fresh.empty()) {
        seen = join(fresh, ", ");
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(extra);
    p.signal(SIGKILL);
    res = p.wait();
    return res.code == 128 + SIGKILL;
  }

  static std::string cmdline_of(pid_t pid) {
    std::string c = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    std::replace(c.begin(), c.end(), '\0', ' ');
    return trim(c);
  }
  std::vector<pid_t> fuse_processes_of_store() const {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
      std::string n = e.path().filename().string();
      if (n.empty() || !std::all_of(n.begin(), n.end(), ::isdigit)) continue;
      pid_t pid = static_cast<pid_t>(std::stol(n));
      std::string c = cmdline_of(pid);
      if (contains(c, "fuse-overlayfs") && contains(c, root_)) {
        std::string status = read_file("/proc/" + n + "/status");
        if (status.find("State:\tZ") != std::string::npos) continue;
        out.push_back(pid);
      }
    }
    return out;
  }
};

// A StoreTest per driver.
class DriverTest : public StoreTest, public ::testing::WithParamInterface<std::string> {
 protected:
  std::string driver() const override { return GetParam(); }
};

#define DRIVER_SUITE(name) \
  INSTANTIATE_TEST_SUITE_P(Drivers, name, ::testing::ValuesIn(kDrivers), driver_test_name)

// ---- 1. drivers: selection, recording, info -----------------------------------------------------

const nlohmann::json* storage_plugin(const nlohmann::json& info) {
  if (!info.is_object() || !info.contains("plugins") || !info["plugins"].is_array()) return nullptr;
  for (const auto& p : info["plugins"])
    if (p.is_object() && p.value("family", "") == "storage") return &p;
  return nullptr;
}

class DriverSelectionTest : public DriverTest {
 protected:
  nlohmann::json info_json(bool with_flag) {
    std::vector<std::string> a = {"info", "--format", "json"};
    Result r = with_flag ? h(a) : hutch(a);
    if (r.code != 0) {
      ADD_FAILURE() << r;
      return nullptr;
    }
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded()) ADD_FAILURE() << "info --format json printed no JSON" << r;
    return j;
  }
};

TEST_P(DriverSelectionTest, InfoNamesTheDriverWithAndWithoutTheFlag) {
  ASSERT_FALSE(import_bb().empty());
  for (bool flag : {true, false}) {
    Result r = flag ? h({"info"}) : hutch({"info"});
    ASSERT_OK(r);
    EXPECT_TRUE(words(r.out).count(driver())) << "`hutch info` (" << (flag ? "with" : "without")
                                              << " --storage-driver) must name the store's driver " << driver() << r;
    for (const auto& other : kDrivers) {
      if (other == driver()) continue;
      // Only the storage lines: the host checks may mention fuse-overlayfs for /dev/fuse.
      for (const auto& l : lines(r.out))
        if (l.rfind("  storage:", 0) == 0) {
          EXPECT_FALSE(words(l).count(other)) << "the storage line names " << other << " for a " << driver() << " store" << r;
        }
    }
    nlohmann::json j = info_json(flag);
    const nlohmann::json* p = storage_plugin(j);
    ASSERT_NE(p, nullptr) << "info --format json: no plugins entry of family storage: " << j.dump(2);
    EXPECT_EQ(p->value("name", ""), driver()) << p->dump(2);
    // The reason for the choice is given (the flag, or the store's record).
    std::string why = p->value("reason", p->value("why", ""));
    EXPECT_FALSE(trim(why).empty()) << "the storage driver's reason is empty: " << p->dump(2);
  }
  Result run = h({"run", "--rm", "bb", "echo", "driver-works"});
  EXPECT_OK(run);
  EXPECT_EQ(run.out, "driver-works\n") << run;
}

TEST_P(DriverSelectionTest, AnotherExplicitDriverIsRefused) {
  ASSERT_FALSE(import_bb().empty());
  for (const auto& other : kDrivers) {
    if (other == driver()) continue;
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"images"}, std::vector<std::string>{"run", "--rm", "bb", "true"},
          std::vector<std::string>{"import", suite().tar, "again"}}) {
      std::vector<std::string> a = {"--storage-driver", other};
      a.insert(a.end(), args.begin(), args.end());
      Result r = hutch(a);
      EXPECT_TRUE(EngineError(r)) << "a " << driver() << " store opened with --storage-driver " << other << " (" << args[0]
                                  << ")";
      auto w = words(r.err);
      EXPECT_TRUE(w.count(driver()) && w.count(other))
          << "the refusal must name both the store's driver (" << driver() << ") and the one asked for (" << other << ")"
          << r;
    }
  }
  // Nothing changed: the store opens with its own driver, with `auto` and with no flag.
  EXPECT_EQ(image_ids().size(), 1u);
  for (const std::vector<std::string>& pre : {std::vector<std::string>{"--storage-driver", driver()},
                                              std::vector<std::string>{"--storage-driver", "auto"},
                                              std::vector<std::string>{}}) {
    std::vector<std::string> a = pre;
    a.insert(a.end(), {"run", "--rm", "bb", "echo", "still-fine"});
    Result r = hutch(a);
    EXPECT_OK(r);
    EXPECT_EQ(r.out, "still-fine\n") << r;
  }
}

DRIVER_SUITE(DriverSelectionTest);

// `auto` (the default) takes the first driver that works: overlay, fuse-overlayfs, vfs.
class AutoDriverTest : public StoreTest {
 protected:
  // Whether DRIVER works here: a fresh store with it imports and runs.
  bool works(const std::string& driver) {
    std::string d = path("probe-" + driver);
    std::vector<std::string> g = {suite().hutch, "--root", d + "/root", "--runroot", d + "/run", "--storage-driver", driver};
    auto with = [&](std::vector<std::string> a) {
      std::vector<std::string> all = g;
      all.insert(all.end(), a.begin(), a.end());
      Options o;
      o.timeout = 120s;
      o.cwd = dir_;
      return run(all, o);
    };
    with({"unshare", "true"});
    bool ok = with({"import", suite().tar, "bb"}).code == 0 && with({"run", "--rm", "bb", "true"}).code == 0;
    // Its files may belong to subordinate IDs: remove them from inside its namespace.
    with({"unshare", "rm", "-rf", d + "/root"});
    return ok;
  }
};

TEST_F(AutoDriverTest, ChoosesTheFirstWorkingDriverAndRecordsIt) {
  ASSERT_FALSE(import_bb().empty());
  Result info = h({"info", "--format", "json"});
  ASSERT_OK(info);
  auto j = nlohmann::json::parse(info.out, nullptr, false);
  const nlohmann::json* p = storage_plugin(j);
  ASSERT_NE(p, nullptr) << info;
  std::string chosen = p->value("name", "");
  ASSERT_TRUE(std::count(kDrivers.begin(), kDrivers.end(), chosen)) << "auto chose \"" << chosen << "\"" << info;
  EXPECT_FALSE(trim(p->value("reason", p->value("why", ""))).empty()) << p->dump(2);
  Result text = h({"info"});
  ASSERT_OK(text);
  EXPECT_TRUE(words(text.out).count(chosen)) << text;

  std::string expected = "vfs";
  for (const std::string d : {"overlay", "fuse-overlayfs"})
    if (works(d)) {
      expected = d;
      break;
    }
  EXPECT_EQ(chosen, expected) << "auto must take the first of overlay, fuse-overlayfs, vfs that works here";

  // The choice is recorded: another explicit driver is refused, naming both.
  for (const auto& other : kDrivers) {
    if (other == chosen) continue;
    Result r = hutch({"--storage-driver", other, "run", "--rm", "bb", "true"});
    EXPECT_TRUE(EngineError(r));
    auto w = words(r.err);
    EXPECT_TRUE(w.count(chosen) && w.count(other)) << r;
  }
  Result same = hutch({"--storage-driver", chosen, "run", "--rm", "bb", "echo", "ok"});
  EXPECT_OK(same);
  EXPECT_EQ(same.out, "ok\n") << same;
}

// ---- 2. diff ----------------------------------------------------------------------------------

using DiffTest = DriverTest;

TEST_P(DiffTest, ControlledChangeSet) {
  ASSERT_FALSE(import_bb().empty());
  run_kept("c", "bb",
           "set -e; umask 022; mkdir /newdir; echo f > /newdir/f; echo x >> /etc/passwd; chmod 0600 /etc/group; "
           "rm /bin/notexec; rm -r /home/app; echo t > /tmp/t");
  Result r = h({"diff", "c"});
  ASSERT_OK(r);
  EXPECT_EQ(r.err, "") << r;
  std::vector<std::string> want = {
      "C /bin",       "D /bin/notexec", "C /etc",      "C /etc/group", "C /etc/passwd", "C /home",
      "D /home/app",  "A /newdir",      "A /newdir/f", "C /tmp",       "A /tmp/t",
  };
  EXPECT_EQ(lines(r.out), want) << "driver " << driver() << r;
  // By ID too.
  std::string id = container_id("c");
  Result byid = h({"diff", id.substr(0, 12)});
  ASSERT_OK(byid);
  EXPECT_EQ(lines(byid.out), want) << byid;
}

TEST_P(DiffTest, UnchangedContainerHasNoChanges) {
  ASSERT_FALSE(import_bb().empty());
  // The runtime's mount points (/etc/hosts, /etc/hostname, /etc/resolv.conf, /dev, /proc,
  // /sys) are not the container's changes.
  run_kept("c", "bb", "cat /etc/passwd > /dev/null");
  Result r = h({"diff", "c"});
  ASSERT_OK(r);
  EXPECT_EQ(r.out, "") << "driver " << driver() << r;
}

TEST_P(DiffTest, NewFileInANewDeepDirectory) {
  ASSERT_FALSE(import_bb().empty());
  run_kept("c", "bb", "mkdir -p /a/b/c && echo deep > /a/b/c/f && ln -s /a/b/c/f /etc/deeplink");
  Result r = h({"diff", "c"});
  ASSERT_OK(r);
  EXPECT_EQ(lines(r.out), (std::vector<std::string>{"A /a", "A /a/b", "A /a/b/c", "A /a/b/c/f", "C /etc", "A /etc/deeplink"}))
      << r;
}

TEST_P(DiffTest, UnknownContainer) {
  ASSERT_FALSE(import_bb().empty());
  EXPECT_TRUE(OneLineError(h({"diff", "nosuchcontainer"}), {"nosuchcontainer"}));
}

DRIVER_SUITE(DiffTest);

// ---- 3. commit --------------------------------------------------------------------------------

using CommitTest = DriverTest;

TEST_P(CommitTest, NewImageHasTheChanges) {
  std::string base = import_bb();
  ASSERT_FALSE(base.empty());
  run_kept("c", "bb", "set -e; echo hello > /added; rm /bin/notexec; echo extra:x:7:7::/:/bin/sh >> /etc/passwd");
  std::string id = commit("c", "snap");
  ASSERT_FALSE(id.empty());
  EXPECT_NE(id, base);

  // Listed under its normalised name.
  Result imgs = h({"images"});
  ASSERT_OK(imgs);
  bool listed = false;
  for (const auto& l : lines(imgs.out)) {
    auto c = split_columns(l);
    if (c.size() >= 3 && c[0] == "localhost/snap") {
      listed = true;
      EXPECT_EQ(c[1], "latest") << imgs;
      EXPECT_EQ(c[2], id.substr(0, 12)) << imgs;
    }
  }
  EXPECT_TRUE(listed) << "`images` does not list localhost/snap" << imgs;
  EXPECT_EQ(image_ids(), (std::set<std::string>{base, id}));

  nlohmann::json jb = inspect("bb"), js = inspect("snap");
  ASSERT_TRUE(jb.is_object() && js.is_object());
  EXPECT_EQ(js["Id"], id);
  EXPECT_EQ(js["RepoTags"], nlohmann::json::array({"localhost/snap:latest"})) << js.dump(2);
  auto lb = layers_of("bb"), ls = layers_of("snap");
  ASSERT_EQ(ls.size(), lb.size() + 1) << "one more layer than the base: " << js.dump(2);
  EXPECT_TRUE(std::equal(lb.begin(), lb.end(), ls.begin())) << "the base's layers come first: " << js.dump(2);
  EXPECT_TRUE(std::regex_match(ls.back(), std::regex("sha256:[0-9a-f]{64}"))) << ls.back();
  ASSERT_TRUE(js["History"].is_array()) << js.dump(2);
  size_t hb = jb["History"].is_array() ? jb["History"].size() : 0;
  EXPECT_EQ(js["History"].size(), hb + 1) << "one more History entry than the base: " << js.dump(2);
  EXPECT_EQ(js["Config"]["Env"], jb["Config"]["Env"]) << "the commit keeps the image's configuration";

  // The new layer, as stored: the changes only, the deletion as an OCI whiteout, none of the
  // runtime's mount points.
  std::string layer_list;
  for (const auto& f : blob_files()) {
    Result t = run({"tar", "-tf", f});
    if (t.code == 0 && std::regex_search(t.out, std::regex("(^|/)added$", std::regex::multiline))) layer_list = t.out;
  }
  ASSERT_FALSE(layer_list.empty()) << "no blob under " << root_ << "/blobs is a tar holding /added";
  std::set<std::string> entries;
  for (auto l : lines(layer_list)) {
    if (l.rfind("./", 0) == 0) l = l.substr(2);
    while (!l.empty() && l.back() == '/') l.pop_back();
    if (!l.empty() && l != ".") entries.insert(l);
  }
  EXPECT_EQ(entries, (std::set<std::string>{"added", "bin", "bin/.wh.notexec", "etc", "etc/passwd"}))
      << "the committed layer holds exactly the changes:\n" << layer_list;

  // It runs: the new file is there, the deleted one is gone, the base's files are there.
  std::string out = run_rm("snap",
                           "cat /added; test -e /bin/notexec && echo notexec-still-there; tail -n 1 /etc/passwd; "
                           "head -n 1 /etc/passwd; test -x /bin/busybox && echo busybox-ok");
  EXPECT_EQ(out, "hello\nextra:x:7:7::/:/bin/sh\nroot:x:0:0:root:/root:/bin/sh\nbusybox-ok\n");
  // The base image is untouched.
  EXPECT_EQ(run_rm("bb", "test -e /added || echo no-added; test -e /bin/notexec && echo has-notexec; grep -c extra /etc/passwd || true"),
            "no-added\nhas-notexec\n0\n");
  // A container of the committed image shows only its own changes.
  run_kept("c2", "snap", "echo y > /y");
  Result d = h({"diff", "c2"});
  ASSERT_OK(d);
  EXPECT_EQ(lines(d.out), std::vector<std::string>{"A /y"}) << d;
}

TEST_P(CommitTest, MessageAuthorChangeAndQuiet) {
  std::string base = import_bb();
  ASSERT_FALSE(base.empty());
  run_kept("c", "bb", "echo content > /marker");
  std::string id = commit("c", "withcmd:v1",
                          {"-m", "the commit message", "-a", "Some Author <a@example.com>", "-c", "CMD [\"cat\", \"/marker\"]", "-q"});
  ASSERT_FALSE(id.empty());
  nlohmann::json j = inspect("withcmd:v1");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["Id"], id);
  EXPECT_EQ(j["RepoTags"], nlohmann::json::array({"localhost/withcmd:v1"}));
  EXPECT_EQ(j["Config"]["Cmd"], nlohmann::json::array({"cat", "/marker"})) << j.dump(2);
  ASSERT_TRUE(j["History"].is_array() && !j["History"].empty()) << j.dump(2);
  std::string last = j["History"].back().dump();
  EXPECT_TRUE(contains(last, "the commit message")) << "the last History entry carries -m: " << j.dump(2);
  EXPECT_TRUE(contains(last, "Some Author <a@example.com>")) << "the last History entry carries -a: " << j.dump(2);
  Result r = h({"run", "--rm", "withcmd:v1"});
  EXPECT_OK(r);
  EXPECT_EQ(r.out, "content\n") << "the image's CMD is the one given with -c" << r;

  // The long form, the shell form of CMD.
  std::string id2 = commit("c", "shellform", {"--change", "CMD echo shell-form $((6*7))"});
  ASSERT_FALSE(id2.empty());
  nlohmann::json j2 = inspect("shellform");
  ASSERT_TRUE(j2.is_object());
  EXPECT_EQ(j2["Config"]["Cmd"], nlohmann::json::array({"/bin/sh", "-c", "echo shell-form $((6*7))"})) << j2.dump(2);
  Result r2 = h({"run", "--rm", "shellform"});
  EXPECT_OK(r2);
  EXPECT_EQ(r2.out, "shell-form 42\n") << r2;
}

TEST_P(CommitTest, TwiceAndDeepChains) {
  std::string base = import_bb();
  ASSERT_FALSE(base.empty());
  run_kept("c1", "bb", "echo one > /level1");
  std::string a = commit("c1", "lvl1");
  std::string a2 = commit("c1", "lvl1:again");  // the same container, twice
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(a2.empty());
  EXPECT_EQ(layers_of("lvl1"), layers_of("lvl1:again")) << "the same changes make the same layer";

  run_kept("c2", "lvl1", "set -e; echo two > /level2; rm /level1");
  std::string b = commit("c2", "lvl2");
  ASSERT_FALSE(b.empty());
  run_kept("c3", "lvl2", "set -e; echo three > /level3; echo one-again > /level1");
  std::string c = commit("c3", "lvl3");
  ASSERT_FALSE(c.empty());
  run_kept("c4", "lvl3", "set -e; rm /level2; mkdir /d4; echo four > /d4/f");
  std::string d = commit("c4", "lvl4");
  ASSERT_FALSE(d.empty());

  auto l0 = layers_of("bb"), l1 = layers_of("lvl1"), l2 = layers_of("lvl2"), l3 = layers_of("lvl3"), l4 = layers_of("lvl4");
  ASSERT_EQ(l1.size(), l0.size() + 1);
  ASSERT_EQ(l2.size(), l0.size() + 2);
  ASSERT_EQ(l3.size(), l0.size() + 3);
  ASSERT_EQ(l4.size(), l0.size() + 4);
  EXPECT_TRUE(std::equal(l3.begin(), l3.end(), l4.begin()));
  EXPECT_TRUE(std::equal(l2.begin(), l2.end(), l3.begin()));
  EXPECT_TRUE(std::equal(l1.begin(), l1.end(), l2.begin()));
  EXPECT_EQ(std::set<std::string>(l4.begin(), l4.end()).size(), l4.size()) << "every layer differs";

  const std::string probe = "for f in /level1 /level2 /level3 /d4/f; do if [ -e $f ]; then echo \"$f=$(cat $f)\"; else echo \"$f-\"; fi; done";
  EXPECT_EQ(run_rm("lvl1", probe), "/level1=one\n/level2-\n/level3-\n/d4/f-\n");
  EXPECT_EQ(run_rm("lvl2", probe), "/level1-\n/level2=two\n/level3-\n/d4/f-\n");
  EXPECT_EQ(run_rm("lvl3", probe), "/level1=one-again\n/level2=two\n/level3=three\n/d4/f-\n");
  EXPECT_EQ(run_rm("lvl4", probe), "/level1=one-again\n/level2-\n/level3=three\n/d4/f=four\n");
  EXPECT_EQ(run_rm("lvl4", "busybox true && echo base-ok"), "base-ok\n");
  EXPECT_EQ(image_ids().size(), 6u);
}

TEST_P(CommitTest, RemovingTheBaseImageKeepsTheChildWhole) {
  std::string base = import_bb();
  ASSERT_FALSE(base.empty());
  run_kept("c", "bb", "echo child > /child");
  std::string child = commit("c", "child");
  ASSERT_FALSE(child.empty());
  ASSERT_OK(h({"rm", "c"}));
  Result rmi = h({"rmi", "bb"});
  ASSERT_OK(rmi);
  EXPECT_TRUE(contains(rmi.out, "Deleted")) << rmi;
  EXPECT_EQ(image_ids(), std::set<std::string>{child});
  EXPECT_EQ(run_rm("child", "cat /child; head -n 1 /etc/passwd"), "child\nroot:x:0:0:root:/root:/bin/sh\n")
      << "the child's layers below lost their content (driver " << driver() << ")";
  EXPECT_TRUE(CheckIsClean("after removing the base image"));
  // Once the last image is gone, so is the base layer's content.
  ASSERT_OK(h({"rmi", "child"}));
  EXPECT_EQ(image_ids(), std::set<std::string>{});
  std::string chain = strip_sha(suite().tar_sha256);
  EXPECT_EQ(dirs_named(chain), std::vector<std::string>{}) << "the base layer is still on disk with no image using it";
  EXPECT_TRUE(CheckIsClean("after removing every image"));
}

TEST_P(CommitTest, WithoutNameMakesADanglingImage) {
  ASSERT_FALSE(import_bb().empty());
  run_kept("c", "bb", "echo x > /x");
  std::string id = commit("c", "");
  ASSERT_FALSE(id.empty());
  EXPECT_TRUE(image_ids().count(id));
  nlohmann::json j = inspect(id);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["RepoTags"], nlohmann::json::array()) << j.dump(2);
  EXPECT_EQ(run_rm(id.substr(0, 12), "cat /x"), "x\n");
}

TEST_P(CommitTest, UnknownContainer) {
  ASSERT_FALSE(import_bb().empty());
  EXPECT_TRUE(EngineError(h({"commit", "nosuchcontainer", "img"}), {"nosuchcontainer"}));
  EXPECT_EQ(image_ids().size(), 1u);
}

DRIVER_SUITE(CommitTest);

// ---- 4. mount / unmount -----------------------------------------------------------------------

using MountTest = DriverTest;

TEST_P(MountTest, MountInsideUnshareShowsTheContainersFiles) {
  ASSERT_FALSE(import_bb().empty());
  run_kept("c", "bb", "set -e; echo hello > /added; rm /bin/notexec");
  std::string id = container_id("c");
  ASSERT_FALSE(id.empty());
  Result r = in_unshare(
      "set -e; p=$(H mount c); echo \"path=$p\"; cat \"$p/added\"; test -x \"$p/bin/busybox\" && echo has-busybox; "
      "test -e \"$p/bin/notexec\" || echo no-notexec; echo '-- list'; H mount; echo '-- unmount'; H unmount c; "
      "echo '-- list'; H mount; echo '-- again'; p2=$(H mount c); test \"$p2\" = \"$p\" && echo same-path; "
      "echo '-- umount'; H umount c; echo '-- end'");
  ASSERT_OK(r);
  auto ls = lines(r.out);
  ASSERT_GE(ls.size(), 1u) << r;
  ASSERT_EQ(ls[0].rfind("path=/", 0), 0u) << "`mount` prints an absolute path" << r;
  std::string p = ls[0].substr(5);
  // The listing while mounted: one line with the container's ID (full or 12) and the path.
  std::vector<std::string> want_prefix = {"path=" + p, "hello", "has-busybox", "no-notexec", "-- list"};
  ASSERT_GE(ls.size(), want_prefix.size() + 1) << r;
  EXPECT_EQ(std::vector<std::string>(ls.begin(), ls.begin() + want_prefix.size()), want_prefix) << r;
  size_t i = want_prefix.size();
  std::vector<std::string> listed;
  while (i < ls.size() && ls[i] != "-- unmount") listed.push_back(ls[i++]);
  ASSERT_EQ(listed.size(), 1u) << "`mount` lists the one mounted container" << r;
  auto w = split_ws(listed[0]);
  ASSERT_EQ(w.size(), 2u) << "a listing line is ID and path" << r;
  EXPECT_TRUE(w[0] == id || w[0] == id.substr(0, 12)) << r;
  EXPECT_EQ(w[1], p) << r;
  std::vector<std::string> rest(ls.begin() + static_cast<long>(i), ls.end());
  EXPECT_EQ(rest, (std::vector<std::string>{"-- unmount", id, "-- list", "-- again", "same-path", "-- umount", id, "-- end"}))
      << "unmount/umount print the container's ID; nothing is listed once unmounted" << r;
  // The container still runs-able and intact afterwards.
  Result d = h({"diff", "c"});
  ASSERT_OK(d);
  EXPECT_EQ(lines(d.out), (std::vector<std::string>{"A /added", "C /bin", "D /bin/notexec"})) << d;
}

TEST_P(MountTest, OutsideUnshare) {
  ASSERT_FALSE(import_bb().empty());
  run_kept("c", "bb", "echo hello > /added");
  std::string id = container_id("c");
  Result r = h({"mount", "c"});
  if (suite().mode == Mode::kRoot) {
    // Real root needs no namespace: the path is usable by the caller itself.
    ASSERT_OK(r);
    std::string p = trim(r.out);
    ASSERT_EQ(lines(r.out).size(), 1u) << r;
    EXPECT_EQ(read_file(p + "/added"), "hello\n") << "mount path " << p;
    Result u = h({"unmount", "c"});
    EXPECT_OK(u);
    EXPECT_EQ(trim(u.out), id) << u;
    Result l = h({"mount"});
    EXPECT_OK(l);
    EXPECT_EQ(l.out, "") << "nothing is mounted any more" << l;
  } else {
    EXPECT_TRUE(EngineError(r, {"hutch unshare"})) << "rootless, mount must be run inside `hutch unshare`";
    EXPECT_EQ(r.out, "") << r;
  }
}

TEST_P(MountTest, UnknownContainer) {
  ASSERT_FALSE(import_bb().empty());
  Result r = in_unshare("H mount nosuchcontainer; echo \"rc=$?\"; H unmount nosuchcontainer; echo \"rc=$?\"");
  ASSERT_OK(r);
  EXPECT_EQ(lines(r.out), (std::vector<std::string>{"rc=125", "rc=125"})) << r;
  EXPECT_TRUE(icontains(r.err, "nosuchcontainer")) << r;
}

DRIVER_SUITE(MountTest);

// ---- 5. system df -----------------------------------------------------------------------------

struct DfRow {
  std::string type, total, active, size, reclaimable;
};

::testing::AssertionResult ParseDf(const Result& r, std::map<std::string, DfRow>& rows) {
  if (r.code != 0) return ::testing::AssertionFailure() << "system df failed" << r;
  auto ls = lines(r.out);
  if (ls.size() != 4) return ::testing::AssertionFailure() << "system df: want a header and 3 rows" << r;
  if (split_columns(ls[0]) != std::vector<std::string>{"TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"})
    return ::testing::AssertionFailure() << "system df header" << r;
  std::vector<std::string> types;
  for (size_t i = 1; i < ls.size(); ++i) {
    auto c = split_columns(ls[i]);
    if (c.size() != 5) return ::testing::AssertionFailure() << "system df row " << i << " has not 5 columns" << r;
    rows[c[0]] = {c[0], c[1], c[2], c[3], c[4]};
    types.push_back(c[0]);
    if (!parse_size(c[3])) return ::testing::AssertionFailure() << "SIZE \"" << c[3] << "\" is not in docker's units" << r;
    if (!parse_size(first_word(c[4])))
      return ::testing::AssertionFailure() << "RECLAIMABLE \"" << c[4] << "\" does not start with a size" << r;
  }
  if (types != std::vector<std::string>{"Images", "Containers", "Local Volumes"})
    return ::testing::AssertionFailure() << "system df rows must be Images, Containers, Local Volumes" << r;
  return ::testing::AssertionSuccess();
}

// The table of `system df -v` whose header has the given first column: rows as column maps.
std::vector<std::map<std::string, std::string>> df_v_table(const Result& r, const std::string& first_col) {
  std::vector<std::map<std::string, std::string>> out;
  auto ls = raw_lines(r.out);
  for (size_t i = 0; i < ls.size(); ++i) {
    auto head = split_columns(ls[i]);
    if (head.empty() || head[0] != first_col) continue;
    for (size_t k = i + 1; k < ls.size(); ++k) {
      if (trim(ls[k]).empty() || trim(ls[k]).back() == ':') break;
      auto c = split_columns(ls[k]);
      std::map<std::string, std::string> row;
      for (size_t n = 0; n < head.size() && n < c.size(); ++n) row[head[n]] = c[n];
      row["#columns"] = std::to_string(c.size());
      out.push_back(row);
    }
    break;
  }
  return out;
}

using SystemDfTest = StoreTest;

TEST_F(SystemDfTest, EmptyStore) {
  std::map<std::string, DfRow> rows;
  ASSERT_TRUE(ParseDf(h({"system", "df"}), rows));
  for (const char* t : {"Images", "Containers", "Local Volumes"}) {
    EXPECT_EQ(rows[t].total, "0") << t;
    EXPECT_EQ(rows[t].active, "0") << t;
    EXPECT_EQ(rows[t].size, "0B") << t;
    EXPECT_EQ(first_word(rows[t].reclaimable), "0B") << t;
  }
}

TEST_F(SystemDfTest, OneImageOneStoppedContainer) {
  ASSERT_FALSE(import_bb().empty());
  run_kept("c", "bb", "echo x > /f");
  Result r = h({"system", "df"});
  std::map<std::string, DfRow> rows;
  ASSERT_TRUE(ParseDf(r, rows));
  EXPECT_EQ(rows["Images"].total, "1") << r;
  EXPECT_EQ(rows["Images"].active, "1") << "the image is used by a container" << r;
  double img = *parse_size(rows["Images"].size);
  EXPECT_GE(img, static_cast<double>(suite().busybox_size) * 0.99) << "the image holds at least busybox" << r;
  EXPECT_LE(img, static_cast<double>(suite().busybox_size) + 1e6) << r;
  EXPECT_EQ(first_word(rows["Images"].reclaimable), "0B") << "an image in use is not reclaimable" << r;
  EXPECT_EQ(rows["Containers"].total, "1") << r;
  EXPECT_EQ(rows["Containers"].active, "0") << "an exited container is not active" << r;
  EXPECT_LT(*parse_size(rows["Containers"].size), 100e3) << "a container's size is its own changes (one small file)" << r;
  EXPECT_EQ(first_word(rows["Containers"].reclaimable), rows["Containers"].size) << "a stopped container is reclaimable" << r;
  EXPECT_EQ(rows["Local Volumes"].total, "0") << r;
  EXPECT_EQ(rows["Local Volumes"].active, "0") << r;
  EXPECT_EQ(rows["Local Volumes"].size, "0B") << r;
  EXPECT_EQ(rows["Local Volumes"].reclaimable, "0B") << r;
}

// Two images sharing a 50 MB base layer: counted once by df, stored once on disk.
using SharedLayerTest = DriverTest;

TEST_P(SharedLayerTest, FiftyMegabyteBaseIsCountedAndStoredOnce) {
  std::string src = path("bigsrc");
  fs::create_directories(src);
  ASSERT_OK(run({"sh", "-c", "head -c 50000000 /dev/urandom > " + sq(src + "/big") + " && chmod 0644 " + sq(src + "/big")}));
  std::string tarball = path("base.tar");
  fs::copy_file(suite().tar, tarball);
  ASSERT_OK(run({"tar", "--numeric-owner", "--owner=0", "--group=0", "-C", src, "-rf", tarball, "./big"}));
  fs::remove_all(src);
  std::string base = import_tar(tarball, "base");
  ASSERT_FALSE(base.empty());
  fs::remove(tarball);
  long long du0 = store_du();

  run_kept("c", "base", "echo x > /f");
  std::string second = commit("c", "second");
  ASSERT_FALSE(second.empty());
  long long du_with_container = store_du();
  ASSERT_OK(h({"rm", "c"}));
  long long du1 = store_du();
  ASSERT_GT(du0, 50000000) << "the store holds the 50 MB layer";
  EXPECT_LT(du1 - du0, 10000000) << "driver " << driver() << ": making the second image grew the store by " << (du1 - du0)
                                 << " bytes; the 50 MB base layer must not be stored twice";
  RecordProperty("store_growth_bytes_" + driver(), std::to_string(du1 - du0));
  RecordProperty("container_bytes_" + driver(), std::to_string(du_with_container - du1));

  // The second image has the file of the commit and the big file.
  EXPECT_EQ(run_rm("second", "cat /f; wc -c < /big"), "x\n50000000\n");

  Result r = h({"system", "df"});
  std::map<std::string, DfRow> rows;
  ASSERT_TRUE(ParseDf(r, rows));
  EXPECT_EQ(rows["Images"].total, "2") << r;
  EXPECT_EQ(rows["Images"].active, "0") << r;
  double size = *parse_size(rows["Images"].size);
  EXPECT_GE(size, 50e6) << "Images SIZE holds the 50 MB layer" << r;
  EXPECT_LT(size, 60e6) << "Images SIZE counts the shared 50 MB layer once (about 52 MB, not 100)" << r;
  EXPECT_EQ(rows["Containers"].total, "0") << r;

  Result v = h({"system", "df", "-v"});
  ASSERT_OK(v);
  auto imgs = df_v_table(v, "REPOSITORY");
  ASSERT_EQ(imgs.size(), 2u) << "system df -v: an images table (header starting with REPOSITORY) with 2 rows" << v;
  std::map<std::string, std::map<std::string, std::string>> by_repo;
  for (const auto& row : imgs) {
    ASSERT_TRUE(row.count("SIZE") && row.count("SHARED SIZE") && row.count("UNIQUE SIZE"))
        << "the images table has SIZE, SHARED SIZE, UNIQUE SIZE columns" << v;
    by_repo[row.at("REPOSITORY")] = row;
  }
  ASSERT_TRUE(by_repo.count("localhost/base") && by_repo.count("localhost/second")) << v;
  for (const char* repo : {"localhost/base", "localhost/second"}) {
    auto& row = by_repo[repo];
    auto s = parse_size(row["SIZE"]), sh = parse_size(row["SHARED SIZE"]), u = parse_size(row["UNIQUE SIZE"]);
    ASSERT_TRUE(s && sh && u) << repo << ": sizes in docker's units" << v;
    EXPECT_GE(*s, 50e6) << repo << v;
    EXPECT_LT(*s, 60e6) << repo << v;
    EXPECT_GE(*sh, 50e6) << repo << ": the base layer is shared" << v;
    EXPECT_LE(*sh, *s) << repo << v;
    EXPECT_LT(*u, 1e6) << repo << ": little is unique" << v;
  }
  EXPECT_EQ(by_repo["localhost/base"]["UNIQUE SIZE"], "0B") << "every layer of base is shared with second" << v;
  EXPECT_EQ(by_repo["localhost/base"]["SHARED SIZE"], by_repo["localhost/base"]["SIZE"]) << v;
}

DRIVER_SUITE(SharedLayerTest);

// ---- 6. prune -----------------------------------------------------------------------------------

// A store with: bb (named, used by the stopped container "stopped"), a dangling image (a
// commit without a name) and "unused" (named, used by no container).
class PruneTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    bb_ = import_bb();
    ASSERT_FALSE(bb_.empty());
    ASSERT_NO_FATAL_FAILURE(run_kept("stopped", "bb", "echo s > /s"));
    stopped_ = container_id("stopped");
    dangling_ = commit("stopped", "");
    ASSERT_NO_FATAL_FAILURE(run_kept("tmp", "bb", "echo u > /u"));
    unused_ = commit("tmp", "unused");
    ASSERT_OK(h({"rm", "tmp"}));
    ASSERT_FALSE(stopped_.empty() || dangling_.empty() || unused_.empty());
    ASSERT_EQ(image_ids(), (std::set<std::string>{bb_, dangling_, unused_}));
    ASSERT_EQ(container_ids(), std::set<std::string>{stopped_});
  }
  // The lines of a section ("Deleted Containers:") up to the next blank line or section.
  static std::vector<std::string> section(const std::string& out, const std::string& title) {
    std::vector<std::string> got;
    auto ls = raw_lines(after_prompt(out));
    bool in = false;
    for (const auto& l : ls) {
      if (contains(l, title)) {
        in = true;
        continue;
      }
      if (!in) continue;
      if (trim(l).empty() || (trim(l).back() == ':' && !contains(l, "sha256:")) || contains(l, "Total reclaimed space"))
        break;
      got.push_back(trim(l));
    }
    return got;
  }
  static bool mentions(const std::vector<std::string>& ls, const std::string& id) {
    return std::any_of(ls.begin(), ls.end(), [&](const std::string& l) { return contains(l, id.substr(0, 12)); });
  }
  static ::testing::AssertionResult TotalLine(const Result& r) {
    const std::string head = "Total reclaimed space: ";
    for (const auto& l : lines(after_prompt(r.out)))
      if (l.rfind(head, 0) == 0 && parse_size(l.substr(head.size()))) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "no line \"Total reclaimed space: SIZE\"" << r;
  }

  std::string bb_, stopped_, dangling_, unused_;
};

TEST_F(PruneTest, SystemPruneAsksAndAnythingButYesAborts) {
  for (const std::string answer : {"n\n", "N\n", "\n", "", "no\n", "x\n"}) {
    Options o;
    o.input = answer;
    Result r = h({"system", "prune"}, o);
    EXPECT_TRUE(contains(r.out + r.err, "Are you sure you want to continue? [y/N]"))
        << "answer \"" << answer << "\": the question is asked" << r;
    EXPECT_FALSE(contains(r.out, "Deleted")) << "answer \"" << answer << "\"" << r;
    EXPECT_EQ(image_ids(), (std::set<std::string>{bb_, dangling_, unused_})) << "answer \"" << answer << "\" removed images";
    EXPECT_EQ(container_ids(), std::set<std::string>{stopped_}) << "answer \"" << answer << "\" removed containers";
  }
}

TEST_F(PruneTest, SystemPruneYesRemovesStoppedContainersAndDanglingImages) {
  for (const std::string answer : {"y\n", "Y\n"}) {
    Options o;
    o.input = answer;
    Result r = h({"system", "prune"}, o);
    ASSERT_OK(r);
    EXPECT_TRUE(contains(r.out + r.err, "Are you sure you want to continue? [y/N]")) << r;
    if (answer == "y\n") {
      auto dc = section(r.out, "Deleted Containers:");
      auto di = section(r.out, "Deleted Images:");
      EXPECT_TRUE(mentions(dc, stopped_)) << "Deleted Containers: names the stopped container" << r;
      EXPECT_TRUE(mentions(di, dangling_)) << "Deleted Images: names the dangling image" << r;
      EXPECT_FALSE(mentions(di, bb_)) << r;
      EXPECT_FALSE(mentions(di, unused_)) << "without -a, named images stay" << r;
      EXPECT_TRUE(TotalLine(r));
      std::string total = lines(after_prompt(r.out)).back();
      EXPECT_NE(total, "Total reclaimed space: 0B") << r;
    } else {
      // Nothing left to prune.
      EXPECT_FALSE(contains(r.out, "Deleted Containers:") && !section(r.out, "Deleted Containers:").empty()) << r;
      EXPECT_TRUE(TotalLine(r));
      EXPECT_TRUE(contains(r.out, "Total reclaimed space: 0B")) << r;
    }
    EXPECT_EQ(container_ids(), std::set<std::string>{}) << answer;
    EXPECT_EQ(image_ids(), (std::set<std::string>{bb_, unused_})) << answer;
  }
  EXPECT_TRUE(CheckIsClean("after system prune"));
  EXPECT_EQ(run_rm("unused", "cat /u"), "u\n");
}

TEST_F(PruneTest, SystemPruneAllForceKeepsImagesOfRunningContainers) {
  Options o;
  o.timeout = 120s;
  Proc runner(dcmd({"run", "--rm", "--name", "runner", "bb", "sh", "-c",
                    "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done"}),
              o);
  ASSERT_TRUE(runner.wait_for_stdout("ready\n", 60s)) << runner.wait();
  std::string runner_id = container_id("runner");
  Result r = h({"system", "prune", "-a", "-f"});  // stdin is /dev/null: -f asks nothing
  runner.signal(SIGTERM);
  Result rr = runner.wait();
  EXPECT_OK(rr) << "the running container was disturbed by the prune";
  ASSERT_OK(r);
  EXPECT_FALSE(contains(r.out, "[y/N]")) << "-f does not ask" << r;
  auto dc = section(r.out, "Deleted Containers:");
  auto di = section(r.out, "Deleted Images:");
  EXPECT_TRUE(mentions(dc, stopped_)) << r;
  EXPECT_FALSE(mentions(dc, runner_id)) << "a running container is not pruned" << r;
  EXPECT_TRUE(mentions(di, dangling_)) << r;
  EXPECT_TRUE(mentions(di, unused_)) << "-a removes images no container uses" << r;
  EXPECT_FALSE(mentions(di, bb_)) << "bb is used by the running container" << r;
  EXPECT_TRUE(TotalLine(r));
  EXPECT_EQ(image_ids(), std::set<std::string>{bb_});
  EXPECT_EQ(container_ids(), std::set<std::string>{}) << "--rm removed the runner";
  // With nothing running, -a removes the last image too.
  Result again = h({"system", "prune", "-a", "-f"});
  ASSERT_OK(again);
  EXPECT_TRUE(mentions(section(again.out, "Deleted Images:"), bb_)) << again;
  EXPECT_EQ(image_ids(), std::set<std::string>{});
  EXPECT_TRUE(CheckIsClean("after system prune -a"));
}

TEST_F(PruneTest, ImagePrune) {
  // Without -f it asks; "n" keeps everything.
  Options no;
  no.input = "n\n";
  Result asked = h({"image", "prune"}, no);
  EXPECT_TRUE(contains(asked.out + asked.err, "Are you sure you want to continue? [y/N]")) << asked;
  EXPECT_EQ(image_ids(), (std::set<std::string>{bb_, dangling_, unused_}));

  Result r = h({"image", "prune", "-f"});
  ASSERT_OK(r);
  auto di = section(r.out, "Deleted Images:");
  EXPECT_TRUE(mentions(di, dangling_)) << r;
  EXPECT_FALSE(mentions(di, unused_) || mentions(di, bb_)) << "image prune without -a removes dangling images only" << r;
  EXPECT_TRUE(TotalLine(r));
  EXPECT_EQ(image_ids(), (std::set<std::string>{bb_, unused_}));
  EXPECT_EQ(container_ids(), std::set<std::string>{stopped_}) << "image prune leaves containers alone";

  Result a = h({"image", "prune", "-a", "-f"});
  ASSERT_OK(a);
  auto da = section(a.out, "Deleted Images:");
  EXPECT_TRUE(mentions(da, unused_)) << a;
  EXPECT_FALSE(mentions(da, bb_)) << "bb is used by the stopped container" << a;
  EXPECT_EQ(image_ids(), std::set<std::string>{bb_});

  Result none = h({"image", "prune", "-a", "-f"});
  ASSERT_OK(none);
  EXPECT_TRUE(contains(none.out, "Total reclaimed space: 0B")) << none;
  EXPECT_EQ(image_ids(), std::set<std::string>{bb_});
  EXPECT_TRUE(CheckIsClean("after image prune"));
  EXPECT_OK(h({"run", "--rm", "bb", "true"}));
}

// ---- 7. system check ----------------------------------------------------------------------------

using CheckTest = DriverTest;

TEST_P(CheckTest, CleanStores) {
  EXPECT_TRUE(CheckIsClean("of an empty store"));
  ASSERT_FALSE(import_bb().empty());
  run_kept("c", "bb", "echo x > /x; rm /bin/notexec");
  ASSERT_FALSE(commit("c", "snap").empty());
  run_kept("c2", "snap", "echo y > /y");
  EXPECT_TRUE(CheckIsClean("of a store with images, commits and containers"));
  // Checking changes nothing.
  EXPECT_EQ(image_ids().size(), 2u);
  EXPECT_EQ(container_ids().size(), 2u);
  Result rep = h_long({"system", "check", "--repair"});
  EXPECT_OK(rep);
  EXPECT_EQ(image_ids().size(), 2u);
  EXPECT_EQ(container_ids().size(), 2u);
}

TEST_P(CheckTest, CorruptLayerBlobIsFoundAndRepaired) {
  std::string id = import_bb();
  ASSERT_FALSE(id.empty());
  // The layer's blob: the largest file under blobs/.
  std::string victim;
  std::uintmax_t best = 0;
  for (const auto& f : blob_files()) {
    std::error_code ec;
    auto s = fs::file_size(f, ec);
    if (!ec && s > best) best = s, victim = f;
  }
  ASSERT_GT(best, suite().busybox_size / 2) << "no layer blob under " << root_ << "/blobs";
  std::string hex = fs::path(victim).filename().string();
  ASSERT_TRUE(is_hex(hex, 64)) << victim;
  ASSERT_OK(in_unshare("printf 'garbage' >> " + sq(victim)));

  Result bad = h_long({"system", "check"});
  EXPECT_EQ(bad.code, 125) << "a corrupt blob is a problem" << bad;
  EXPECT_TRUE(contains(bad.out + bad.err, hex.substr(0, 12))) << "the report names the damaged blob " << hex << bad;

  Result rep = h_long({"system", "check", "--repair"});
  EXPECT_OK(rep);
  EXPECT_TRUE(CheckIsClean("after --repair"));
  auto ids = image_ids();
  if (ids.count(id)) {
    // Kept: then whole.
    EXPECT_EQ(run_rm("bb", "head -n 1 /etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
    if (fs::exists(victim)) {
      EXPECT_EQ(sha256_file(victim), "sha256:" + hex) << "a kept blob must match its digest";
    }
  } else {
    EXPECT_TRUE(ids.empty());
    EXPECT_TRUE(OneLineError(h({"inspect", "bb"}), {"no such image"}));
  }
  // The store takes the same content again.
  EXPECT_FALSE(import_bb("bb2").empty());
  EXPECT_EQ(run_rm("bb2", "echo ok"), "ok\n");
  EXPECT_TRUE(CheckIsClean("after importing again"));
}

TEST_P(CheckTest, CorruptConfigBlobLosesTheImage) {
  std::string id = import_bb();
  ASSERT_FALSE(id.empty());
  std::string victim = root_ + "/blobs/sha256/" + id;
  ASSERT_TRUE(fs::exists(victim)) << "the image's config is not at " << victim;
  ASSERT_OK(in_unshare("printf '{}' >> " + sq(victim)));

  Result bad = h_long({"system", "check"});
  EXPECT_EQ(bad.code, 125) << bad;
  EXPECT_TRUE(contains(bad.out + bad.err, id.substr(0, 12))) << "the report names the damaged config " << id << bad;
  Result rep = h_long({"system", "check", "--repair"});
  EXPECT_OK(rep);
  EXPECT_TRUE(CheckIsClean("after --repair"));
  EXPECT_EQ(image_ids(), std::set<std::string>{}) << "an image whose config is lost is removed";
  EXPECT_FALSE(import_bb().empty());
  EXPECT_EQ(run_rm("bb", "echo ok"), "ok\n");
}

TEST_P(CheckTest, CorruptManifestBlobIsFound) {
  std::string id = import_bb();
  ASSERT_FALSE(id.empty());
  nlohmann::json j = inspect("bb");
  ASSERT_TRUE(j.is_object() && j["Digest"].is_string()) << j.dump(2);
  std::string hex = strip_sha(j["Digest"].get<std::string>());
  ASSERT_TRUE(is_hex(hex, 64)) << j.dump(2);
  std::string victim = root_ + "/blobs/sha256/" + hex;
  ASSERT_TRUE(fs::exists(victim)) << "the image's manifest is not at " << victim;
  ASSERT_OK(in_unshare("printf ' ' >> " + sq(victim)));

  Result bad = h_long({"system", "check"});
  EXPECT_EQ(bad.code, 125) << bad;
  EXPECT_TRUE(contains(bad.out + bad.err, hex.substr(0, 12))) << "the report names the damaged manifest " << hex << bad;
  Result rep = h_long({"system", "check", "--repair"});
  EXPECT_OK(rep);
  EXPECT_TRUE(CheckIsClean("after --repair"));
  auto ids = image_ids();
  if (ids.count(id)) {
    // Kept (a manifest can be rebuilt from the config and layers): then whole and consistent.
    nlohmann::json k = inspect("bb");
    ASSERT_TRUE(k.is_object());
    std::string digest = k["Digest"].get<std::string>();
    std::string path = root_ + "/blobs/sha256/" + strip_sha(digest);
    EXPECT_EQ(sha256_file(path), digest) << "the kept image's manifest must match its digest";
    EXPECT_EQ(run_rm("bb", "echo ok"), "ok\n");
  } else {
    EXPECT_TRUE(ids.empty());
  }
}

TEST_P(CheckTest, MissingLayerDirectoryIsFoundAndRepaired) {
  std::string id = import_bb();
  ASSERT_FALSE(id.empty());
  // The base layer's chain ID is its diff ID, the sha256 of the tarball.
  std::string chain = strip_sha(suite().tar_sha256);
  auto dirs = dirs_named(chain);
  ASSERT_EQ(dirs.size(), 1u) << "want exactly one directory named after the layer " << chain << " under " << root_
                             << " (outside blobs/, tmp/, containers/); found: " << join(dirs, ", ");
  ASSERT_OK(in_unshare("rm -rf " + sq(dirs[0])));

  Result bad = h_long({"system", "check"});
  EXPECT_EQ(bad.code, 125) << "a lost layer is a problem" << bad;
  EXPECT_TRUE(contains(bad.out + bad.err, chain.substr(0, 12))) << "the report names the layer " << chain << bad;

  Result rep = h_long({"system", "check", "--repair"});
  EXPECT_OK(rep);
  EXPECT_TRUE(CheckIsClean("after --repair"));
  auto ids = image_ids();
  if (ids.count(id)) {
    // Rebuilt from its blob: then whole.
    EXPECT_EQ(run_rm("bb", "head -n 1 /etc/passwd; test -x /bin/busybox && echo ok"), "root:x:0:0:root:/root:/bin/sh\nok\n");
  } else {
    EXPECT_TRUE(ids.empty());
  }
  EXPECT_FALSE(import_bb("bb2").empty());
  EXPECT_EQ(run_rm("bb2", "echo ok"), "ok\n");
}

TEST_P(CheckTest, ALayerFileChangedBehindHutchsBackIsFound) {
  std::string id = import_bb();
  ASSERT_FALSE(id.empty());
  std::string chain = strip_sha(suite().tar_sha256);
  auto dirs = dirs_named(chain);
  ASSERT_EQ(dirs.size(), 1u) << join(dirs, ", ");
  // Same size and time, other bytes: only reading the files again can tell.
  ASSERT_OK(in_unshare("f=$(find " + sq(dirs[0]) + " -name passwd -path '*etc*' | head -n 1); test -n \"$f\" && "
                       "t=$(stat -c %Y \"$f\") && printf X | dd of=\"$f\" bs=1 count=1 conv=notrunc 2>/dev/null && "
                       "touch -d @$t \"$f\""));
  Result quick = h_long({"system", "check", "--quick"});
  EXPECT_OK(quick) << "--quick does not read the layers' files";
  Result bad = h_long({"system", "check"});
  EXPECT_EQ(bad.code, 125) << bad;
  EXPECT_TRUE(contains(bad.out, chain.substr(0, 12))) << "the report names the layer" << bad;
  EXPECT_TRUE(contains(bad.out, "etc/passwd")) << "and the file" << bad;
  ASSERT_OK(h_long({"system", "check", "--repair"}));
  EXPECT_TRUE(CheckIsClean("after --repair"));
  EXPECT_TRUE(image_ids().empty()) << "the damaged image is removed";
}

TEST_P(CheckTest, MissingContainerFilesystemIsFound) {
  ASSERT_FALSE(import_bb().empty());
  run_kept("c", "bb", "echo x > /x");
  std::string cid = container_id("c");
  ASSERT_FALSE(cid.empty());
  // The container's filesystem under the driver's directory (not its bundle in containers/).
  auto dirs = dirs_named(cid);
  ASSERT_EQ(dirs.size(), 1u) << "want exactly one directory named after the container " << cid << " under " << root_
                             << " (outside containers/); found: " << join(dirs, ", ");
  ASSERT_OK(in_unshare("rm -rf " + sq(dirs[0])));
  Result bad = h_long({"system", "check"});
  EXPECT_EQ(bad.code, 125) << bad;
  EXPECT_TRUE(contains(bad.out + bad.err, cid.substr(0, 12))) << "the report names the container" << bad;
  Result rep = h_long({"system", "check", "--repair"});
  EXPECT_OK(rep);
  EXPECT_TRUE(CheckIsClean("after --repair"));
  EXPECT_OK(h({"run", "--rm", "bb", "true"}));
}

DRIVER_SUITE(CheckTest);

// ---- 8. crash safety --------------------------------------------------------------------------

class StorageCrashTest : public DriverTest {
 protected:
  // Runs `argv`, which makes the image "big", once per kill point and kills it there. After
  // each crash: a clean check, and either no image "big" (then `after_crash` checks the rest)
  // or, when the kill landed after the last record, a whole one: `probe` in it prints
  // `probe_out`. `what` names the command in messages.
  void kill_at_every_point(const std::string& what, const std::vector<std::string>& argv,
                           const std::string& probe, const std::string& probe_out,
                           const std::function<void(const std::string& when)>& after_crash);
};

// A tarball of a few hundred MB of random data (made once per suite run).
const std::string& big_tarball() {
  static std::string made;
  if (!made.empty()) return made;
  std::string dir = suite().dir + "/bigimport";
  std::string tarball = suite().dir + "/bigimport.tar";
  fs::create_directories(dir);
  Result r = run({"sh", "-c",
                  "set -e; cd " + sq(dir) +
                      "; for i in 1 2 3; do head -c 100000000 /dev/urandom > part$i; done; chmod 0644 part*; cp " +
                      sq(suite().tar) + " " + sq(tarball) + ".tmp; tar --numeric-owner --owner=0 --group=0 -rf " +
                      sq(tarball) + ".tmp ./part1 ./part2 ./part3; mv " + sq(tarball) + ".tmp " + sq(tarball)},
                 Options{std::nullopt, {}, 180s, ""});
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (r.code == 0) made = tarball;
  else ADD_FAILURE() << "could not make the large tarball" << r;
  return made;
}


// Kills P and everything of its process group: a crash of hutch and of whatever it started.
void crash(Proc& p) {
  ::kill(-p.pid(), SIGKILL);
  p.signal(SIGKILL);
}

// When to kill: at the first sign of work (staging in tmp/), while a layer is extracted (an
// ".incomplete-" directory of the driver), at once and a little later, and while a blob is
// written into blobs/ (a file there not yet named by its digest).
struct KillPoint {
  std::string want;
  std::chrono::milliseconds extra;
};
const std::vector<KillPoint> kKillPoints = {
    {"", 150ms}, {"incomplete", 0ms}, {"incomplete", 300ms}, {"blobs/", 0ms}, {"blobs/", 50ms}};

void StorageCrashTest::kill_at_every_point(const std::string& what, const std::vector<std::string>& argv,
                                           const std::string& probe, const std::string& probe_out,
                                           const std::function<void(const std::string& when)>& after_crash) {
  Options o;
  o.timeout = 180s;
  int killed = 0, killed_extracting = 0;
  std::string traces;
  for (const auto& kp : kKillPoints) {
    auto before = work_in_progress_set();
    Proc p(dcmd(argv), o);
    std::string seen;
    Result r;
    bool mid = kill_mid_way(p, before, kp.want, kp.extra, seen, r);
    crash(p);
    if (!mid) {
      // It finished first: take the image away for the next try.
      ASSERT_OK(r) << "a " << what << " that was not killed must succeed";
      ASSERT_OK(h({"rmi", "big"}));
      continue;
    }
    ++killed;
    if (contains(seen, "incomplete")) ++killed_extracting;
    traces += " [" + seen + "]";
    // The first command after the crash: a clean check, no partial image.
    std::string when = "after a " + what + " killed " + std::to_string(kp.extra.count()) + " ms after " + seen + " appeared";
    EXPECT_TRUE(CheckIsClean(when));
    if (image_ids().size() > 1) {
      // The kill landed after the last record was written: then the image is whole.
      EXPECT_EQ(run_rm("big", probe), probe_out) << when << ": a killed " << what << " left a partial image";
      ASSERT_OK(h({"rmi", "big"}));
      continue;
    }
    after_crash(when);
  }
  EXPECT_GE(killed, 1) << "every " << what << " finished before it could be killed";
  EXPECT_GE(killed_extracting, 1) << "no " << what << " was killed while its layer was made (no .incomplete- entry seen):"
                                  << traces;
  RecordProperty("work_seen", traces);
}

TEST_P(StorageCrashTest, KilledImportLeavesACleanStore) {
  const std::string& tarball = big_tarball();
  ASSERT_FALSE(tarball.empty());
  std::string bb = import_bb();
  ASSERT_FALSE(bb.empty());
  kill_at_every_point("import", {"import", tarball, "big"}, "wc -c < /part3; test -x /bin/busybox && echo ok",
                      "100000000\nok\n", [&](const std::string& when) {
                        EXPECT_EQ(image_ids(), std::set<std::string>{bb}) << when;
                        EXPECT_TRUE(OneLineError(h({"inspect", "big"}), {"no such image"}));
                      });
  if (HasFatalFailure()) return;
  std::string id = import_tar(tarball, "big");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(run_rm("big", "wc -c < /part3; test -x /bin/busybox && echo ok"), "100000000\nok\n");
  EXPECT_TRUE(CheckIsClean("after the repeated import"));
  EXPECT_TRUE(work_in_progress().empty()) << "left behind: " << join(work_in_progress(), ", ");
}

TEST_P(StorageCrashTest, KilledCommitLeavesACleanStore) {
  std::string bb = import_bb();
  ASSERT_FALSE(bb.empty());
  run_kept("c", "bb", "head -c 200000000 /dev/urandom > /big && echo done > /marker");
  std::string cid = container_id("c");
  kill_at_every_point("commit", {"commit", "c", "big"}, "wc -c < /big; cat /marker", "200000000\ndone\n",
                      [&](const std::string& when) {
                        EXPECT_EQ(image_ids(), std::set<std::string>{bb}) << when;
                        EXPECT_EQ(container_ids(), std::set<std::string>{cid}) << when << ": the container stays";
                      });
  if (HasFatalFailure()) return;
  std::string id = commit("c", "big");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(run_rm("big", "wc -c < /big; cat /marker"), "200000000\ndone\n");
  Result d = h({"diff", "c"});
  ASSERT_OK(d);
  EXPECT_EQ(lines(d.out), (std::vector<std::string>{"A /big", "A /marker"})) << d;
  EXPECT_TRUE(CheckIsClean("after the repeated commit"));
  EXPECT_TRUE(work_in_progress().empty()) << "left behind: " << join(work_in_progress(), ", ");
}

DRIVER_SUITE(StorageCrashTest);

// ---- 9. layer tars: whiteouts, opaque directories, hardlinks, setuid, symlinks ---------------

class LayerTarTest : public DriverTest {
 protected:
  // What /data of an image holds, one line per entry.
  static constexpr const char* kProbe = R"SH(cd /data || exit 1
echo "ls:" $(ls -A)
echo "opq:" $(ls -A opq 2>/dev/null)
echo "dir:" $(ls -A dir 2>/dev/null)
echo "deep:" $(cat new/deep/f 2>/dev/null)
for f in $(ls -A); do
  if [ -L "$f" ]; then echo "$f -> $(readlink "$f"): $(cat "$f" 2>&1 | tr '\n' '|')"
  elif [ -d "$f" ]; then echo "$f/ $(stat -c '%a %u:%g' "$f")"
  else echo "$f $(stat -c '%a %u:%g' "$f"): $(tr '\n' '|' < "$f")"; fi
done
for p in h1:h2 l2:l2hard; do
  a=${p%:*}; b=${p#*:}
  if [ -e $a ] && [ -e $b ]; then
    if [ "$(stat -c %i $a)" = "$(stat -c %i $b)" ]; then echo "$a=$b"; else echo "$a!=$b"; fi
  fi
done
)SH";

  std::string owner() const { return suite().mode == Mode::kNoRange ? "0:0" : "1000:1000"; }

  // The first layer: busybox plus /data with a hardlink pair, a setuid file, a symlink, a
  // file of uid 1000, and whiteouts (which, in a base layer, hide nothing and are not files).
  std::string make_l1_tar() {
    std::string s1 = path("l1"), s2 = path("l1owned");
    std::string script =
        "set -e; umask 022; d=" + sq(s1) + "/data; mkdir -p $d/dir $d/opq; "
        "echo keep-1 > $d/keep; echo gone-1 > $d/gone; echo a > $d/dir/a; echo b > $d/dir/b; "
        "echo x > $d/opq/x; echo y > $d/opq/y; : > $d/opq/.wh..wh..opq; : > $d/.wh.ghost; "
        "echo hard-1 > $d/h1; ln $d/h1 $d/h2; echo suid > $d/suid; chmod 4755 $d/suid; ln -s h1 $d/link; "
        "chmod 0644 $d/keep $d/gone $d/dir/a $d/dir/b $d/opq/x $d/opq/y $d/h1; chmod 0755 $d $d/dir $d/opq; "
        "mkdir -p " + sq(s2) + "/data; echo owned > " + sq(s2) + "/data/owned; chmod 0640 " + sq(s2) + "/data/owned";
    EXPECT_OK(run({"sh", "-c", script}));
    std::string tarball = path("l1.tar");
    fs::copy_file(suite().tar, tarball);
    EXPECT_OK(run({"tar", "--numeric-owner", "--owner=0", "--group=0", "--sort=name", "-C", s1, "-rf", tarball, "./data"}));
    EXPECT_OK(run({"tar", "--numeric-owner", "--owner=1000", "--group=1000", "-C", s2, "-rf", tarball, "./data/owned"}));
    // The tarball holds what the test means: a hardlink entry, the setuid bit, the whiteouts.
    Result tv = run({"tar", "-tvf", tarball, "./data"});
    EXPECT_OK(tv);
    EXPECT_TRUE(std::regex_search(tv.out, std::regex("\\./data/h2 link to \\./data/h1"))) << tv;
    EXPECT_TRUE(std::regex_search(tv.out, std::regex("-rwsr-xr-x 0/0 .* \\./data/suid"))) << tv;
    EXPECT_TRUE(contains(tv.out, "./data/.wh.ghost") && contains(tv.out, "./data/opq/.wh..wh..opq")) << tv;
    return tarball;
  }

  std::string probe(const std::string& image) { return run_rm(image, kProbe); }

  std::string want_l1() const {
    return "ls: dir gone h1 h2 keep link opq owned suid\n"
           "opq: x y\n"
           "dir: a b\n"
           "deep:\n"
           "dir/ 755 0:0\n"
           "gone 644 0:0: gone-1|\n"
           "h1 644 0:0: hard-1|\n"
           "h2 644 0:0: hard-1|\n"
           "keep 644 0:0: keep-1|\n"
           "link -> h1: hard-1|\n"
           "opq/ 755 0:0\n"
           "owned 640 " + owner() + ": owned|\n"
           "suid 4755 0:0: suid|\n"
           "h1=h2\n";
  }
  std::string want_l2() const {
    return "ls: dir h1 keep l2 l2hard link opq owned suid\n"
           "opq: z\n"
           "dir: a b\n"
           "deep:\n"
           "dir/ 755 0:0\n"
           "h1 644 0:0: hard-1|\n"
           "keep 644 0:0: keep-2|\n"
           "l2 4711 0:0: l2|\n"
           "l2hard 4711 0:0: l2|\n"
           "link -> h1: hard-1|\n"
           "opq/ 755 0:0\n"
           "owned 640 " + owner() + ": owned|owned-2|\n"
           "suid 4755 0:0: suid|\n"
           "l2=l2hard\n";
  }
  std::string want_l3() const {
    return "ls: gone h1 keep l2 l2hard l3link link new opq owned suid\n"
           "opq: w\n"
           "dir:\n"
           "deep: deep\n"
           "gone 644 0:0: gone-3|\n"
           "h1 644 0:0: hard-1|\n"
           "keep 644 0:0: keep-2|\n"
           "l2 4711 0:0: l2|\n"
           "l2hard 4711 0:0: l2|\n"
           "l3link -> /data/opq/w: w|\n"
           "link -> h1: hard-1|\n"
           "new/ 755 0:0\n"
           "opq/ 755 0:0\n"
           "owned 640 " + owner() + ": owned|owned-2|\n"
           "suid 4755 0:0: suid|\n"
           "l2=l2hard\n";
  }
};

TEST_P(LayerTarTest, ImportedLayer) {
  std::string tarball = make_l1_tar();
  ASSERT_FALSE(HasFailure());
  ASSERT_FALSE(import_tar(tarball, "l1").empty());
  EXPECT_EQ(probe("l1"), want_l1()) << "driver " << driver();
  // The setuid file as `ls -la` shows it.
  std::string ls = run_rm("l1", "ls -la /data/suid /data/link");
  EXPECT_TRUE(std::regex_search(ls, std::regex("^-rwsr-xr-x +1 +root +root .*/data/suid", std::regex::multiline))) << ls;
  EXPECT_TRUE(std::regex_search(ls, std::regex("^lrwxrwxrwx .*/data/link -> h1", std::regex::multiline))) << ls;
  // A container's write to a file of the layer stays in the container.
  EXPECT_EQ(run_rm("l1", "echo scribble > /data/keep; echo more >> /data/h1; cat /data/keep"), "scribble\n");
  EXPECT_EQ(probe("l1"), want_l1()) << "a container changed the image (driver " << driver() << ")";
}

TEST_P(LayerTarTest, CommitChainOfThreeLayers) {
  std::string tarball = make_l1_tar();
  ASSERT_FALSE(HasFailure());
  ASSERT_FALSE(import_tar(tarball, "l1").empty());

  run_kept("mk2", "l1",
           "set -e; umask 022; cd /data; rm gone; rm -rf opq; mkdir opq; echo z > opq/z; echo keep-2 > keep; "
           "echo l2 > l2; ln l2 l2hard; chmod 4711 l2; rm h2; echo owned-2 >> owned");
  Result d2 = h({"diff", "mk2"});
  ASSERT_OK(d2);
  EXPECT_EQ(lines(d2.out), (std::vector<std::string>{"C /data", "D /data/gone", "D /data/h2", "C /data/keep", "A /data/l2",
                                                     "A /data/l2hard", "C /data/opq", "D /data/opq/x", "D /data/opq/y",
                                                     "A /data/opq/z", "C /data/owned"}))
      << d2;
  ASSERT_FALSE(commit("mk2", "l2").empty());
  EXPECT_EQ(probe("l2"), want_l2()) << "driver " << driver();

  run_kept("mk3", "l2",
           "set -e; umask 022; cd /data; echo gone-3 > gone; rm -rf dir; rm opq/z; echo w > opq/w; "
           "ln -s /data/opq/w l3link; mkdir -p new/deep; echo deep > new/deep/f");
  Result d3 = h({"diff", "mk3"});
  ASSERT_OK(d3);
  EXPECT_EQ(lines(d3.out), (std::vector<std::string>{"C /data", "D /data/dir", "A /data/gone", "A /data/l3link", "A /data/new",
                                                     "A /data/new/deep", "A /data/new/deep/f", "C /data/opq", "A /data/opq/w",
                                                     "D /data/opq/z"}))
      << d3;
  ASSERT_FALSE(commit("mk3", "l3").empty());
  EXPECT_EQ(probe("l3"), want_l3()) << "driver " << driver();

  auto l1 = layers_of("l1"), l2 = layers_of("l2"), l3 = layers_of("l3");
  EXPECT_EQ(l1.size(), 1u);
  EXPECT_EQ(l2.size(), 2u);
  EXPECT_EQ(l3.size(), 3u);
  // The layers below are untouched by what was made on top of them.
  EXPECT_EQ(probe("l1"), want_l1()) << "making l2 and l3 changed l1 (driver " << driver() << ")";
  EXPECT_EQ(probe("l2"), want_l2()) << "making l3 changed l2 (driver " << driver() << ")";
  EXPECT_TRUE(CheckIsClean("after the chain"));
  // Removing the top images leaves the lower ones whole.
  ASSERT_OK(h({"rm", "mk3"}));
  ASSERT_OK(h({"rmi", "l3"}));
  EXPECT_EQ(probe("l2"), want_l2()) << "removing l3 changed l2 (driver " << driver() << ")";
}

DRIVER_SUITE(LayerTarTest);

// ---- 10. a --rm container's writes are not synced -------------------------------------------

// As podman does: `run --rm` mounts the container's overlay `volatile`, so that tearing it down
// does not sync the store's whole filesystem; a container that stays is mounted durable.
class EphemeralMountTest : public StoreTest {
 protected:
  std::string driver() const override { return "overlay"; }
};

TEST_F(EphemeralMountTest, RunRmMountsVolatileAndAKeptContainerDoesNot) {
  ASSERT_FALSE(import_bb().empty());
  const std::string root_options = "awk '$5 == \"/\" { print $NF }' /proc/self/mountinfo";
  std::string rm = run_rm("bb", root_options);
  EXPECT_TRUE(contains(rm, "volatile")) << rm;
  EXPECT_TRUE(contains(rm, "userxattr")) << rm;
  Result kept = h({"run", "--name", "kept", "bb", "sh", "-c", root_options});
  ASSERT_OK(kept);
  EXPECT_TRUE(contains(kept.out, "userxattr")) << kept;
  EXPECT_FALSE(contains(kept.out, "volatile")) << kept;
}

}  // namespace
}  // namespace hit
