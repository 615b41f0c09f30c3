// A container's log: what its monitor writes from the container's stdout and stderr, and what
// `hutch logs` reads back, in the file formats podman (conmon's k8s-file) and docker (json-file)
// write, so their tools and habits carry over.
//
// k8s-file (the default), one entry a line, as conmon writes it:
//
//   2024-01-02T03:04:05.123456789+01:00 stdout F hello
//   2024-01-02T03:04:05.123456789+01:00 stderr P no newline yet
//   2024-01-02T03:04:05.123456789+01:00 stdout F 
//
//   <time> <stream> <tag> <text>\n: time is RFC 3339 with nanoseconds and the local offset; the tag
//   is F when the text ended with a newline (not stored), P when it is a piece of a line that goes
//   on in a later entry. An empty line of output is "<time> stdout F \n" (with the space). Text is
//   any bytes but newline.
//
// json-file, one JSON object a line, byte for byte as docker's json-file writes it (UTC time):
//
//   {"log":"hello\n","stream":"stdout","time":"2024-01-02T02:04:05.123456789Z"}
//   {"log":"no newline yet","stream":"stderr","time":"2024-01-02T02:04:05.123456789Z"}
//
// Rotation (max-size): <path> is the current file, <path>.1 the newest old one, ... and
// <path>.<max_file-1> the oldest; with max_file 1 the file starts over empty (a new file renamed
// over the old one, as conmon does), so a reader that has it open can still finish it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hutch/error.hpp"

namespace hutch {

struct LogConfig {
  std::string driver = "k8s-file";  // k8s-file, json-file, none, passthrough
  std::filesystem::path path;       // the log file (the caller's default: <container dir>/ctr.log)
  std::uint64_t max_size = 0;       // bytes a file may grow to before it is rotated; 0: unlimited
  int max_file = 1;                 // files kept, counting the current one (docker's json-file semantics)
};

// The config from --log-driver and --log-opt values as docker and podman take them:
//   max-size=10m   a positive size with an optional unit b, k, m, g, t, p (and "b" or "ib" after
//                  it), decimal as docker's and podman's (go-units FromHumanSize): 10m = 10000000
//   max-file=3     files kept, at least 1
//   path=/a/file   where the log goes (podman's k8s-file option; absolute)
// An empty driver is k8s-file. `default_path` is the path when no path= is given. An unknown
// driver, option or a bad value: Error(Errc::kUsage) naming the flag and what it accepts. The none
// and passthrough drivers take no options.
HUTCH_API LogConfig parse_log_config(const std::string& driver, const std::vector<std::string>& opts,
                                     const std::filesystem::path& default_path);

// Writes a container's output to its log. Made and used by one thread (the monitor's); each write
// is one write(2) of the whole chunk (two around a rotation) and never fsyncs.
class HUTCH_API LogWriter {
 public:
  // Unix time in ns; the real-time clock unless a test gives another.
  using Clock = std::int64_t (*)();

  // Opens the file (created 0600 if missing, appended to, as podman does when a container is
  // restarted); its directory must exist. none and passthrough open nothing and write nothing.
  // Throws Error(Errc::kSystem) when the file cannot be opened.
  explicit LogWriter(LogConfig config, Clock clock = nullptr);
  ~LogWriter();
  LogWriter(LogWriter&&) noexcept;
  LogWriter& operator=(LogWriter&&) noexcept;

  // What the container wrote on `stream` ("stdout" or "stderr") in one read(): one entry per
  // line, all with the time of this call; full lines tagged F, a trailing piece without its
  // newline tagged P at once (not held back for the rest of its line). Rotates before an entry
  // that would take the file beyond max_size (an entry larger than max_size gets a file of its
  // own). Throws Error(Errc::kSystem) when the file cannot be written or rotated (a full disk): the
  // caller decides whether to carry on.
  void write(std::string_view stream, std::string_view data);

  const LogConfig& config() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// One entry of a log, as stored.
struct LogEntry {
  std::string time;    // as stored (RFC 3339 with nanoseconds)
  std::string stream;  // stdout | stderr
  std::string text;    // without the newline
  bool partial = false;       // P: the line goes on in a later entry
  bool continuation = false;  // the entry delivered before it on this stream was a P piece of the
                              // same line (format_log_entry writes no timestamp before it)
};

struct LogReadOptions {
  // The last N lines, counted as podman counts them: each F entry ends a line and the P pieces
  // before it belong to it; an unfinished last line counts as one. 0: nothing (then follow).
  // Applied before since/until, as docker and podman do.
  std::optional<std::size_t> tail;
  // Entries with a time before since_ns are skipped; reading ends at the first entry after
  // until_ns (and, when following, once the clock passes it). Unix ns, both inclusive.
  std::optional<std::int64_t> since_ns, until_ns;
  bool follow = false;
};

// Reads the log (rotated files oldest first, then the current one) and calls `out` for each
// entry, in order. Lines that are not entries are skipped; a last line without its newline yet
// (the writer is mid-write) is not delivered until it is complete.
// With follow: at the end it waits (inotify on the file's directory, waking at least every 100 ms)
// for more. When the file is rotated or started over (its inode changes) it finishes the file it
// has open, then reads the newer rotated files it has not seen and the new current file, so it
// neither loses nor repeats entries unless it falls more than max_file rotations behind; a file
// truncated in place (it shrinks) is read again from its start. It returns once `finished()` has
// returned true and everything written before that call has been delivered. `out` returning false
// stops it at once (stdout closed).
// none and passthrough keep no log: Error(Errc::kUsage) saying so. A file that cannot be read:
// Error(Errc::kSystem); a log that does not exist yet is empty (and followed until it does).
HUTCH_API void read_log(const LogConfig& config, const LogReadOptions& options,
                        const std::function<bool(const LogEntry&)>& out,
                        const std::function<bool()>& finished = [] { return true; });

// docker's --since/--until value in unix ns:
//   a Go duration before `now_ns`: 10m, 1h30m, 45s, 1.5h, 300ms (not "0")
//   an RFC 3339 time: 2013-01-02T13:23:37Z, 2013-01-02T13:23:37.123+01:00, 2013-01-02T13:23,
//     2013-01-02T13, 2013-01-02 (midnight), 2013-01-02Z; without an offset it is local time, at
//     the offset the local zone has at `now_ns` (as docker takes it)
//   a unix timestamp: 1700000000, 1700000000.5
// Anything else: Error(Errc::kUsage) naming `flag` and the forms accepted.
HUTCH_API std::int64_t parse_log_time(const std::string& value, const char* flag, std::int64_t now_ns);

// How `hutch logs` prints an entry: its text, then "\n" unless it is a P piece; with `timestamps`,
// the stored time and a space before it, as docker -t does (not before a continuation, whose line
// already has one). The caller writes stdout entries to stdout and stderr ones to stderr.
HUTCH_API std::string format_log_entry(const LogEntry& entry, bool timestamps);

}  // namespace hutch
