#include <gtest/gtest.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "hutch/container_log.hpp"
#include "hutch/error.hpp"
#include "test_support.hpp"

using namespace hutch;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kSec = 1'000'000'000;
// 2024-01-02T02:04:05.123456789Z
constexpr std::int64_t kT0 = 1704161045 * kSec + 123456789;

std::atomic<std::int64_t> g_now{kT0};
std::int64_t test_clock() { return g_now.load(); }

// Sets TZ (a POSIX zone without DST, e.g. "HUT-1" for UTC+1) for one test.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = getenv("TZ")) old_ = old, had_ = true;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    had_ ? setenv("TZ", old_.c_str(), 1) : unsetenv("TZ");
    tzset();
  }

 private:
  std::string old_;
  bool had_ = false;
};

LogConfig file_config(const fs::path& path, const std::string& driver = "k8s-file", std::uint64_t max_size = 0,
                      int max_file = 1) {
  LogConfig c;
  c.driver = driver;
  c.path = path;
  c.max_size = max_size;
  c.max_file = max_file;
  return c;
}

std::vector<LogEntry> read_all(const LogConfig& c, LogReadOptions o = {}) {
  std::vector<LogEntry> got;
  read_log(c, o, [&](const LogEntry& e) {
    got.push_back(e);
    return true;
  });
  return got;
}

std::vector<std::string> texts(const std::vector<LogEntry>& es) {
  std::vector<std::string> t;
  for (const auto& e : es) t.push_back(e.text);
  return t;
}

// What the entries say the container wrote on `stream`.
std::string output_of(const std::vector<LogEntry>& es, const std::string& stream = "stdout") {
  std::string s;
  for (const auto& e : es)
    if (e.stream == stream) s += format_log_entry(e, false);
  return s;
}

// Where two long outputs part, for a failure message a reader can use.
std::string first_difference(const std::string& got, const std::string& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  size_t from = i > 60 ? i - 60 : 0;
  return "differ at byte " + std::to_string(i) + " of " + std::to_string(got.size()) + " got / " +
         std::to_string(want.size()) + " wanted:\n  got:    " + got.substr(from, 140) + "\n  wanted: " +
         want.substr(from, 140);
}

void append_raw(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::app | std::ios::binary);
  f << s;
}

std::uintmax_t size_of(const fs::path& p) { return fs::file_size(p); }

// ---- Writer format ---------------------------------------------------------------------

TEST(ContainerLogWriter, K8sFileIsWrittenAsConmonWritesIt) {
  ScopedTz tz("HUT-1");
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  g_now = kT0;
  LogWriter w(file_config(p), test_clock);
  w.write("stdout", "hello\nworld\n");
  w.write("stderr", "\n");
  w.write("stdout", "par");
  w.write("stdout", "tial\na\nb");
  w.write("stdout", "");  // nothing
  const std::string t = "2024-01-02T03:04:05.123456789+01:00";
  EXPECT_EQ(test::slurp(p), t + " stdout F hello\n" + t + " stdout F world\n" + t + " stderr F \n" + t +
                                " stdout P par\n" + t + " stdout F tial\n" + t + " stdout F a\n" + t +
                                " stdout P b\n");
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(ContainerLogWriter, K8sFileTimesCarryTheLocalOffset) {
  test::TempDir tmp;
  {
    ScopedTz tz("HUT+5");
    g_now = kT0;
    LogWriter w(file_config(tmp.path() / "a.log"), test_clock);
    w.write("stdout", "x\n");
    EXPECT_EQ(test::slurp(tmp.path() / "a.log"), "2024-01-01T21:04:05.123456789-05:00 stdout F x\n");
  }
  {
    ScopedTz tz("HUT-5:30");
    g_now = 1704161045 * kSec + 7;  // a small fraction keeps its zeros
    LogWriter w(file_config(tmp.path() / "b.log"), test_clock);
    w.write("stdout", "x\n");
    g_now = 1704161046 * kSec;  // the next second
    w.write("stdout", "y\n");
    EXPECT_EQ(test::slurp(tmp.path() / "b.log"),
              "2024-01-02T07:34:05.000000007+05:30 stdout F x\n2024-01-02T07:34:06.000000000+05:30 stdout F y\n");
  }
}

TEST(ContainerLogWriter, JsonFileIsWrittenAsDockerWritesIt) {
  ScopedTz tz("HUT-1");  // json-file times are UTC whatever the zone
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  g_now = kT0;
  LogWriter w(file_config(p, "json-file"), test_clock);
  w.write("stdout", "hello\n");
  w.write("stderr", "no newline");
  w.write("stdout", "<a&b>\t\"\\\r\x01\x7f \xc3\xa9 \xe2\x80\xa8 \xff\n");
  const std::string t = "\"time\":\"2024-01-02T02:04:05.123456789Z\"}\n";
  EXPECT_EQ(test::slurp(p), "{\"log\":\"hello\\n\",\"stream\":\"stdout\"," + t +
                                "{\"log\":\"no newline\",\"stream\":\"stderr\"," + t +
                                "{\"log\":\"\\u003ca\\u0026b\\u003e\\u0009\\\"\\\\\\r\\u0001\x7f \xc3\xa9 \\u2028 "
                                "\\ufffd\\n\",\"stream\":\"stdout\"," +
                                t);
  // And it reads back as written.
  auto got = read_all(file_config(p, "json-file"));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].text, "hello");
  EXPECT_FALSE(got[0].partial);
  EXPECT_EQ(got[1].text, "no newline");
  EXPECT_EQ(got[1].stream, "stderr");
  EXPECT_TRUE(got[1].partial);
  EXPECT_EQ(got[2].text, "<a&b>\t\"\\\r\x01\x7f \xc3\xa9 \xe2\x80\xa8 \xef\xbf\xbd");
  EXPECT_EQ(got[2].time, "2024-01-02T02:04:05.123456789Z");
}

TEST(ContainerLogWriter, NoneAndPassthroughWriteNothing) {
  test::TempDir tmp;
  for (const char* d : {"none", "passthrough"}) {
    LogWriter w(file_config(tmp.path() / "ctr.log", d));
    w.write("stdout", "hello\n");
    EXPECT_FALSE(fs::exists(tmp.path() / "ctr.log"));
    EXPECT_THROW(read_all(file_config(tmp.path() / "ctr.log", d)), Error);
  }
}

TEST(ContainerLogWriter, AppendsToALogThatExists) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  { LogWriter(file_config(p)).write("stdout", "first run\n"); }
  { LogWriter(file_config(p)).write("stdout", "second run\n"); }
  EXPECT_EQ(texts(read_all(file_config(p))), (std::vector<std::string>{"first run", "second run"}));
}

TEST(ContainerLogWriter, AFileThatCannotBeOpenedIsAnError) {
  test::TempDir tmp;
  EXPECT_THROW(LogWriter(file_config(tmp.path() / "no" / "such" / "ctr.log")), Error);
}

// ---- Rotation --------------------------------------------------------------------------

TEST(ContainerLogRotation, KeepsMaxFileFilesAndReadsThemInOrder) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  auto c = file_config(p, "k8s-file", 500, 3);
  LogWriter w(c);
  std::string all;
  for (int i = 0; i < 100; ++i) {
    std::string line = "line " + std::to_string(i) + "\n";
    w.write(i % 2 ? "stdout" : "stderr", line);
  }
  EXPECT_TRUE(fs::exists(p));
  EXPECT_TRUE(fs::exists(tmp.path() / "ctr.log.1"));
  EXPECT_TRUE(fs::exists(tmp.path() / "ctr.log.2"));
  EXPECT_FALSE(fs::exists(tmp.path() / "ctr.log.3"));
  EXPECT_FALSE(fs::exists(tmp.path() / "ctr.log.tmp"));
  for (const char* f : {"ctr.log", "ctr.log.1", "ctr.log.2"}) EXPECT_LE(size_of(tmp.path() / f), 500u) << f;
  // The full old files are full: the next entry would not have fit.
  EXPECT_GT(size_of(tmp.path() / "ctr.log.1") + 60, 500u);
  auto got = texts(read_all(c));
  ASSERT_FALSE(got.empty());
  ASSERT_LT(got.size(), 100u);
  // The newest entries, consecutive, in order, the last one last.
  int first = 100 - static_cast<int>(got.size());
  for (size_t k = 0; k < got.size(); ++k) EXPECT_EQ(got[k], "line " + std::to_string(first + static_cast<int>(k)));
}

TEST(ContainerLogRotation, AChunkSpanningARotationIsSplitAtAnEntry) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  auto c = file_config(p, "json-file", 300, 20);
  LogWriter w(c);
  std::string chunk;
  for (int i = 0; i < 20; ++i) chunk += "entry " + std::to_string(i) + "\n";
  w.write("stdout", chunk + "and a piece");
  ASSERT_TRUE(fs::exists(tmp.path() / "ctr.log.4"));
  // Every file holds whole entries and stays within max-size; together they hold the chunk.
  for (int i = 1; fs::exists(tmp.path() / ("ctr.log." + std::to_string(i))); ++i) {
    fs::path f = tmp.path() / ("ctr.log." + std::to_string(i));
    EXPECT_LE(size_of(f), 300u);
    std::string content = test::slurp(f);
    EXPECT_EQ(content.substr(0, 8), "{\"log\":\"") << f;
    EXPECT_EQ(content.back(), '\n') << f;
  }
  auto got = read_all(c);
  EXPECT_EQ(output_of(got), chunk + "and a piece");
  EXPECT_TRUE(got.back().partial);
}

TEST(ContainerLogRotation, MaxFileOneStartsTheFileOver) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  auto c = file_config(p, "k8s-file", 400, 1);
  LogWriter w(c);
  for (int i = 0; i < 50; ++i) w.write("stdout", "line " + std::to_string(i) + "\n");
  EXPECT_LE(size_of(p), 400u);
  EXPECT_FALSE(fs::exists(tmp.path() / "ctr.log.1"));
  EXPECT_FALSE(fs::exists(tmp.path() / "ctr.log.tmp"));
  auto got = texts(read_all(c));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back(), "line 49");
  int first = 50 - static_cast<int>(got.size());
  EXPECT_GT(first, 0);
  for (size_t k = 0; k < got.size(); ++k) EXPECT_EQ(got[k], "line " + std::to_string(first + static_cast<int>(k)));
}

TEST(ContainerLogRotation, AnEntryLargerThanMaxSizeGetsAFileOfItsOwn) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  auto c = file_config(p, "k8s-file", 100, 3);
  LogWriter w(c);
  w.write("stdout", "small\n");
  w.write("stdout", std::string(500, 'x') + "\n");
  w.write("stdout", "after\n");
  EXPECT_EQ(texts(read_all(c)), (std::vector<std::string>{"small", std::string(500, 'x'), "after"}));
  EXPECT_EQ(texts(read_all(file_config(tmp.path() / "ctr.log.1"))), (std::vector<std::string>{std::string(500, 'x')}));
}

// ---- Reading ---------------------------------------------------------------------------

TEST(ContainerLogReader, SkipsMalformedLinesAndHoldsBackATornLastLine) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  const std::string t = "2024-01-02T03:04:05.123456789+01:00";
  append_raw(p, t + " stdout F one\n"
                    "garbage\n"
                    "\n" +
                    t + " stdout X bad tag\n" + t + " stdin F wrong stream\n" +
                    "2024-13-02T03:04:05Z stdout F bad month\n" + t + " stdout Fx no space\n" + t +
                    " stderr F\n" +  // an empty line from a writer that drops the space
                    t + " stdout F  two spaces \n" + t + " stdout P torn, no newl");
  auto got = read_all(file_config(p));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].text, "one");
  EXPECT_EQ(got[0].time, t);
  EXPECT_EQ(got[1].text, "");
  EXPECT_EQ(got[1].stream, "stderr");
  EXPECT_EQ(got[2].text, " two spaces ");
}

TEST(ContainerLogReader, AMissingLogIsEmpty) {
  test::TempDir tmp;
  EXPECT_TRUE(read_all(file_config(tmp.path() / "ctr.log")).empty());
  LogReadOptions tail;
  tail.tail = 5;
  EXPECT_TRUE(read_all(file_config(tmp.path() / "ctr.log"), tail).empty());
}

TEST(ContainerLogReader, HugeLinesRoundTrip) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  std::string big(3 * 1024 * 1024 + 17, 'a');
  for (size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('b' + i % 20);
  {
    LogWriter w(file_config(p));
    w.write("stdout", "before\n");
    w.write("stdout", big + "\n");
    w.write("stdout", big);
    w.write("stdout", "\nafter\n");
  }
  auto got = read_all(file_config(p));
  EXPECT_EQ(output_of(got), "before\n" + big + "\n" + big + "\nafter\n");
  LogReadOptions o;
  o.tail = 2;
  EXPECT_EQ(output_of(read_all(file_config(p), o)), big + "\nafter\n");
}

TEST(ContainerLogReader, ContinuationsAreMarkedPerStream) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  {
    LogWriter w(file_config(p), test_clock);
    w.write("stdout", "abc");
    w.write("stderr", "err\n");
    w.write("stdout", "def\n");
    w.write("stdout", "next\n");
  }
  auto got = read_all(file_config(p));
  ASSERT_EQ(got.size(), 4u);
  EXPECT_FALSE(got[0].continuation);
  EXPECT_FALSE(got[1].continuation);
  EXPECT_TRUE(got[2].continuation);
  EXPECT_FALSE(got[3].continuation);
  std::string out;
  for (const auto& e : got)
    if (e.stream == "stdout") out += format_log_entry(e, true);
  EXPECT_EQ(out, got[0].time + " abcdef\n" + got[3].time + " next\n");
}

TEST(ContainerLogReader, TailCountsLinesAcrossRotatedFiles) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  auto c = file_config(p, "k8s-file", 300, 10);
  {
    LogWriter w(c);
    for (int i = 0; i < 40; ++i) w.write("stdout", "line " + std::to_string(i) + "\n");
  }
  ASSERT_TRUE(fs::exists(tmp.path() / "ctr.log.3"));
  LogReadOptions o;
  o.tail = 25;  // more than the current file holds
  auto got = texts(read_all(c, o));
  ASSERT_EQ(got.size(), 25u);
  for (int k = 0; k < 25; ++k) EXPECT_EQ(got[k], "line " + std::to_string(15 + k));
  o.tail = 1000;
  EXPECT_EQ(read_all(c, o).size(), 40u);
  o.tail = 0;
  EXPECT_TRUE(read_all(c, o).empty());
  o.tail = 1;
  EXPECT_EQ(texts(read_all(c, o)), (std::vector<std::string>{"line 39"}));
}

TEST(ContainerLogReader, TailTakesPartialPiecesWithTheirLine) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  {
    LogWriter w(file_config(p, "json-file"));
    w.write("stdout", "one\n");
    w.write("stdout", "tw");
    w.write("stdout", "o");
    w.write("stdout", "\nthree\nfour, unfinished");
  }
  LogReadOptions o;
  o.tail = 1;  // the unfinished last line counts as one
  EXPECT_EQ(output_of(read_all(file_config(p, "json-file"), o)), "four, unfinished");
  o.tail = 3;
  EXPECT_EQ(output_of(read_all(file_config(p, "json-file"), o)), "two\nthree\nfour, unfinished");
  o.tail = 4;
  EXPECT_EQ(output_of(read_all(file_config(p, "json-file"), o)), "one\ntwo\nthree\nfour, unfinished");
}

TEST(ContainerLogReader, SinceAndUntilFilterOnTheEntryTime) {
  ScopedTz tz("HUT-2");
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  {
    LogWriter w(file_config(p), test_clock);
    for (int i = 0; i < 10; ++i) {
      g_now = kT0 + i * kSec;
      w.write("stdout", "at " + std::to_string(i) + "\n");
    }
  }
  LogReadOptions o;
  o.since_ns = kT0 + 3 * kSec;
  o.until_ns = kT0 + 6 * kSec;
  EXPECT_EQ(texts(read_all(file_config(p), o)), (std::vector<std::string>{"at 3", "at 4", "at 5", "at 6"}));
  // The values as the user gives them.
  std::int64_t now = kT0 + 10 * kSec;
  o.since_ns = parse_log_time("4s", "--since", now);
  o.until_ns = parse_log_time("2024-01-02T02:04:12.5Z", "--until", now);
  EXPECT_EQ(texts(read_all(file_config(p), o)), (std::vector<std::string>{"at 6", "at 7"}));
  // Tail is taken first, as docker does.
  o = {};
  o.tail = 2;
  o.since_ns = kT0 + 9 * kSec;
  EXPECT_EQ(texts(read_all(file_config(p), o)), (std::vector<std::string>{"at 9"}));
}

TEST(ContainerLogReader, OutReturningFalseStops) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  LogWriter w(file_config(p));
  w.write("stdout", "a\nb\nc\n");
  int n = 0;
  LogReadOptions o;
  o.follow = true;
  read_log(file_config(p), o, [&](const LogEntry&) { return ++n < 2; }, [] { return false; });
  EXPECT_EQ(n, 2);
}

// ---- Following -------------------------------------------------------------------------

// Stops a follower that would otherwise wait forever when a test fails.
struct Deadline {
  std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool passed() const { return std::chrono::steady_clock::now() > at; }
};

TEST(ContainerLogFollow, GetsEveryEntryOnceThroughRotations) {
  for (const char* driver : {"k8s-file", "json-file"}) {
    SCOPED_TRACE(driver);
    test::TempDir tmp;
    fs::path p = tmp.path() / "ctr.log";
    // Enough files that none is dropped: the follower may fall several rotations behind.
    auto c = file_config(p, driver, 4096, 500);
    LogWriter w(c);
    w.write("stdout", "before the follower\n");
    std::atomic<bool> writer_done{false};
    std::string written_out = "before the follower\n", written_err;
    std::thread writer([&] {
      for (int i = 0; i < 3000; ++i) {
        // Chunks that end mid-line, and both streams.
        std::string chunk = "line " + std::to_string(i) + " " + std::string(i % 37, '.') + "\nhalf of " +
                            std::to_string(i) + (i % 3 == 0 ? "\n" : "");
        w.write("stdout", chunk);
        written_out += chunk;
        if (i % 7 == 0) {
          std::string e = "err " + std::to_string(i) + "\n";
          w.write("stderr", e);
          written_err += e;
        }
        if (i % 200 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      writer_done = true;
    });
    std::vector<LogEntry> got;
    Deadline deadline;
    LogReadOptions o;
    o.follow = true;
    read_log(
        c, o,
        [&](const LogEntry& e) {
          got.push_back(e);
          return true;
        },
        [&] { return writer_done.load() || deadline.passed(); });
    writer.join();
    EXPECT_FALSE(deadline.passed());
    EXPECT_TRUE(fs::exists(tmp.path() / "ctr.log.20"));
    EXPECT_EQ(first_difference(output_of(got, "stdout"), written_out), "");
    EXPECT_EQ(first_difference(output_of(got, "stderr"), written_err), "");
  }
}

// Waits until `n` entries have arrived.
bool wait_for(const std::atomic<size_t>& count, size_t n) {
  Deadline d;
  while (count.load() < n && !d.passed()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return count.load() >= n;
}

TEST(ContainerLogFollow, FinishesTheOldFileWhenMaxFileOneStartsOver) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  auto c = file_config(p, "k8s-file", 2000, 1);
  LogWriter w(c);
  std::atomic<size_t> count{0};
  std::atomic<bool> writer_done{false};
  std::vector<std::string> expected;
  std::thread writer([&] {
    // A batch at a time, never more than a file ahead of the follower: in batches of 10 lines of
    // ~60 bytes the file starts over every third or fourth batch, while the follower has its end
    // still to read.
    for (int b = 0; b < 30; ++b) {
      for (int i = 0; i < 10; ++i) {
        std::string text = "batch " + std::to_string(b) + " line " + std::to_string(i) + std::string(20, '-');
        w.write("stdout", text + "\n");
        expected.push_back(text);
      }
      if (!wait_for(count, expected.size())) break;
    }
    writer_done = true;
  });
  std::vector<std::string> got;
  Deadline deadline;
  LogReadOptions o;
  o.follow = true;
  read_log(
      c, o,
      [&](const LogEntry& e) {
        got.push_back(e.text);
        ++count;
        return true;
      },
      [&] { return writer_done.load() || deadline.passed(); });
  writer.join();
  EXPECT_EQ(got, expected);
  EXPECT_LE(size_of(p), 2000u);
}

TEST(ContainerLogFollow, ReadsAFileTruncatedInPlaceFromItsStart) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  auto c = file_config(p);
  LogWriter w(c);
  std::atomic<size_t> count{0};
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    w.write("stdout", "a long first line before the truncation\nand a second one\n");
    if (wait_for(count, 2)) {
      EXPECT_EQ(truncate(p.c_str(), 0), 0);  // as logrotate's copytruncate does
      w.write("stdout", "after\n");
      wait_for(count, 3);
    }
    writer_done = true;
  });
  std::vector<std::string> got;
  Deadline deadline;
  LogReadOptions o;
  o.follow = true;
  read_log(
      c, o,
      [&](const LogEntry& e) {
        got.push_back(e.text);
        ++count;
        return true;
      },
      [&] { return writer_done.load() || deadline.passed(); });
  writer.join();
  EXPECT_EQ(got, (std::vector<std::string>{"a long first line before the truncation", "and a second one", "after"}));
}

TEST(ContainerLogFollow, TailZeroPrintsOnlyWhatComesAfter) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  auto c = file_config(p);
  LogWriter w(c);
  w.write("stdout", "old 1\nold 2\n");
  std::atomic<bool> writer_done{false};
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    w.write("stdout", "new 1\n");
    w.write("stderr", "new 2\n");
    writer_done = true;
  });
  std::vector<std::string> got;
  LogReadOptions o;
  o.follow = true;
  o.tail = 0;
  Deadline deadline;
  read_log(
      c, o,
      [&](const LogEntry& e) {
        got.push_back(e.text);
        return true;
      },
      [&] { return writer_done.load() || deadline.passed(); });
  writer.join();
  EXPECT_EQ(got, (std::vector<std::string>{"new 1", "new 2"}));
}

TEST(ContainerLogFollow, WaitsForALogThatDoesNotExistYetAndForTornLines) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  auto c = file_config(p);
  std::atomic<size_t> count{0};
  std::atomic<bool> writer_done{false};
  std::atomic<bool> torn_delivered_early{false};
  const std::string t = "2024-01-02T03:04:05.123456789+01:00";
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    append_raw(p, t + " stdout F first\n" + t + " stdout F sec");  // mid-write
    wait_for(count, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));  // a follower wakes meanwhile
    torn_delivered_early = count.load() > 1;
    append_raw(p, "ond\n");
    writer_done = true;
  });
  std::vector<std::string> got;
  LogReadOptions o;
  o.follow = true;
  Deadline deadline;
  read_log(
      c, o,
      [&](const LogEntry& e) {
        got.push_back(e.text);
        ++count;
        return true;
      },
      [&] { return writer_done.load() || deadline.passed(); });
  writer.join();
  EXPECT_FALSE(torn_delivered_early.load());
  EXPECT_EQ(got, (std::vector<std::string>{"first", "second"}));
}

TEST(ContainerLogFollow, EndsOnceUntilHasPassed) {
  test::TempDir tmp;
  fs::path p = tmp.path() / "ctr.log";
  LogWriter w(file_config(p));
  w.write("stdout", "x\n");
  LogReadOptions o;
  o.follow = true;
  o.until_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() +
               200'000'000;
  size_t n = 0;
  auto start = std::chrono::steady_clock::now();
  read_log(file_config(p), o, [&](const LogEntry&) { return ++n > 0; }, [] { return false; });
  EXPECT_EQ(n, 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// ---- Options and times -----------------------------------------------------------------

TEST(ContainerLogConfig, ParsesDockerAndPodmanOptions) {
  auto c = parse_log_config("", {}, "/c/ctr.log");
  EXPECT_EQ(c.driver, "k8s-file");
  EXPECT_EQ(c.path, "/c/ctr.log");
  EXPECT_EQ(c.max_size, 0u);
  EXPECT_EQ(c.max_file, 1);
  c = parse_log_config("json-file", {"max-size=10m", "max-file=3"}, "/c/ctr.log");
  EXPECT_EQ(c.driver, "json-file");
  EXPECT_EQ(c.max_size, 10'000'000u);
  EXPECT_EQ(c.max_file, 3);
  c = parse_log_config("k8s-file", {"path=/var/log/x.log", "max-size=1.5k"}, "/c/ctr.log");
  EXPECT_EQ(c.path, "/var/log/x.log");
  EXPECT_EQ(c.max_size, 1500u);
  EXPECT_EQ(parse_log_config("k8s-file", {"max-size=100"}, "/p").max_size, 100u);
  EXPECT_EQ(parse_log_config("k8s-file", {"max-size=2 GB"}, "/p").max_size, 2'000'000'000u);
  EXPECT_EQ(parse_log_config("k8s-file", {"max-size=3MiB"}, "/p").max_size, 3'000'000u);
  EXPECT_EQ(parse_log_config("k8s-file", {"max-size=7b"}, "/p").max_size, 7u);
  EXPECT_EQ(parse_log_config("k8s-file", {"max-size=.5m"}, "/p").max_size, 500'000u);
  EXPECT_EQ(parse_log_config("none", {}, "/p").driver, "none");
  EXPECT_EQ(parse_log_config("passthrough", {}, "/p").driver, "passthrough");
}

void expect_usage_error(const std::function<void()>& f, const std::string& mentions) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << mentions;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kUsage);
    EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
  }
}

TEST(ContainerLogConfig, RefusesWhatItDoesNotKnow) {
  expect_usage_error([] { parse_log_config("journald", {}, "/p"); }, "--log-driver \"journald\"");
  expect_usage_error([] { parse_log_config("journald", {}, "/p"); }, "k8s-file");
  expect_usage_error([] { parse_log_config("k8s-file", {"tag=x"}, "/p"); }, "--log-opt \"tag\"");
  expect_usage_error([] { parse_log_config("k8s-file", {"tag=x"}, "/p"); }, "max-size=SIZE");
  expect_usage_error([] { parse_log_config("k8s-file", {"max-size"}, "/p"); }, "KEY=VALUE");
  expect_usage_error([] { parse_log_config("k8s-file", {"=3"}, "/p"); }, "KEY=VALUE");
  for (const char* bad : {"max-size=", "max-size=ten", "max-size=10x", "max-size=10mbb", "max-size=0",
                          "max-size=-1m", "max-size=.", "max-size=1..2k", "max-size=k"})
    expect_usage_error([&] { parse_log_config("json-file", {bad}, "/p"); }, "--log-opt max-size");
  for (const char* bad : {"max-file=0", "max-file=-2", "max-file=x", "max-file=", "max-file=3.5"})
    expect_usage_error([&] { parse_log_config("json-file", {bad}, "/p"); }, "--log-opt max-file");
  expect_usage_error([] { parse_log_config("k8s-file", {"path=relative.log"}, "/p"); }, "absolute");
  expect_usage_error([] { parse_log_config("none", {"max-size=1m"}, "/p"); }, "takes no options");
  expect_usage_error([] { parse_log_config("passthrough", {"path=/x"}, "/p"); }, "takes no options");
}

TEST(ContainerLogTime, TakesDurationsBeforeNow) {
  const std::int64_t now = 1'700'000'000 * kSec;
  EXPECT_EQ(parse_log_time("10m", "--since", now), now - 600 * kSec);
  EXPECT_EQ(parse_log_time("1h30m", "--since", now), now - 5400 * kSec);
  EXPECT_EQ(parse_log_time("45s", "--since", now), now - 45 * kSec);
  EXPECT_EQ(parse_log_time("1.5h", "--since", now), now - 5400 * kSec);
  EXPECT_EQ(parse_log_time("300ms", "--since", now), now - 300'000'000);
  EXPECT_EQ(parse_log_time("2us", "--since", now), now - 2000);
  EXPECT_EQ(parse_log_time("2\xC2\xB5s", "--since", now), now - 2000);
  EXPECT_EQ(parse_log_time("7ns", "--since", now), now - 7);
  EXPECT_EQ(parse_log_time("-1m", "--until", now), now + 60 * kSec);
  EXPECT_EQ(parse_log_time("1h0m0.5s", "--since", now), now - 3600 * kSec - 500'000'000);
}

TEST(ContainerLogTime, TakesRfc3339TimesAndDates) {
  ScopedTz tz("HUT-1");  // UTC+1 for the times given without an offset
  const std::int64_t now = 1'700'000'000 * kSec;
  const std::int64_t t = 1357133017 * kSec;  // 2013-01-02T13:23:37Z
  EXPECT_EQ(parse_log_time("2013-01-02T13:23:37Z", "--since", now), t);
  EXPECT_EQ(parse_log_time("2013-01-02T13:23:37.5Z", "--since", now), t + 500'000'000);
  EXPECT_EQ(parse_log_time("2013-01-02T13:23:37.123456789123z", "--since", now), t + 123456789);
  EXPECT_EQ(parse_log_time("2013-01-02T14:23:37+01:00", "--since", now), t);
  EXPECT_EQ(parse_log_time("2013-01-02T08:23:37-05:00", "--since", now), t);
  EXPECT_EQ(parse_log_time("2013-01-02T14:23:37", "--since", now), t);  // local: UTC+1
  EXPECT_EQ(parse_log_time("2013-01-02T14:23:37.25", "--since", now), t + 250'000'000);
  EXPECT_EQ(parse_log_time("2013-01-02T14:23", "--since", now), t - 37 * kSec);
  EXPECT_EQ(parse_log_time("2013-01-02T14", "--since", now), t - (23 * 60 + 37) * kSec);
  EXPECT_EQ(parse_log_time("2013-01-02", "--since", now), (1357084800 - 3600) * kSec);
  EXPECT_EQ(parse_log_time("2013-01-02Z", "--since", now), 1357084800 * kSec);
  EXPECT_EQ(parse_log_time("2013-01-02+02:00", "--since", now), (1357084800 - 7200) * kSec);
  // As conmon writes them.
  EXPECT_EQ(parse_log_time("2024-01-02T03:04:05.123456789+01:00", "--since", now), kT0);
}

TEST(ContainerLogTime, TakesUnixTimestamps) {
  const std::int64_t now = 1'700'000'000 * kSec;
  EXPECT_EQ(parse_log_time("1700000000", "--since", now), 1'700'000'000 * kSec);
  EXPECT_EQ(parse_log_time("1700000000.5", "--since", now), 1'700'000'000 * kSec + 500'000'000);
  EXPECT_EQ(parse_log_time("1700000000.000000001", "--since", now), 1'700'000'000 * kSec + 1);
  EXPECT_EQ(parse_log_time("10", "--since", now), 10 * kSec);  // a number without a unit is a time
  EXPECT_EQ(parse_log_time("0", "--since", now), 0);  // not a duration: docker reads it as a time
}

TEST(ContainerLogTime, RefusesAnythingElseNamingTheFlag) {
  for (const char* bad : {"", "yesterday", "10x", "1h30", "2013-01-02T25:00:00Z", "2013-02-30",
                          "2013-01-02T13:23:37+0100", "2013-01-02 13:23:37", "-5", "1700000000.", ".5",
                          "1700000000.5x", "h", "1.5.5h", "99999999999999999999h"})
    expect_usage_error([&] { parse_log_time(bad, "--until", 0); }, "--until");
  expect_usage_error([] { parse_log_time("soon", "--since", 0); }, "invalid --since \"soon\"");
}

TEST(ContainerLogFormat, PrintsAsDockerLogsDoes) {
  LogEntry e{"2024-01-02T03:04:05.123456789+01:00", "stdout", "hello", false, false};
  EXPECT_EQ(format_log_entry(e, false), "hello\n");
  EXPECT_EQ(format_log_entry(e, true), "2024-01-02T03:04:05.123456789+01:00 hello\n");
  e.partial = true;
  EXPECT_EQ(format_log_entry(e, false), "hello");
  EXPECT_EQ(format_log_entry(e, true), "2024-01-02T03:04:05.123456789+01:00 hello");
  e.partial = false;
  e.continuation = true;
  EXPECT_EQ(format_log_entry(e, true), "hello\n");
  e.text.clear();
  e.continuation = false;
  EXPECT_EQ(format_log_entry(e, false), "\n");
}

}  // namespace
