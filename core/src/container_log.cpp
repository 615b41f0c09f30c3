#include "hutch/container_log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <limits>

#include <nlohmann/json.hpp>

#include "hutch/unique_fd.hpp"

namespace hutch {
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kNsPerSec = 1'000'000'000;
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kFollowWakeMs = 100;  // how often a follower asks finished() (and polls without inotify)
constexpr int kPollMs = 50;         // between looks at the file when there is no inotify

bool is_file_driver(const std::string& d) { return d == "k8s-file" || d == "json-file"; }

std::int64_t realtime_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard Hinnant's algorithms).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

unsigned days_in_month(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

void put_digits(char* p, std::int64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

// "YYYY-MM-DDTHH:MM:SS" of a time `offset_s` east of UTC (19 characters).
void format_date_time(char* out, std::int64_t sec, long offset_s) {
  std::int64_t local = sec + offset_s;
  std::int64_t days = floor_div(local, 86400), rem = local - days * 86400;
  std::int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  put_digits(out, y, 4);
  out[4] = '-';
  put_digits(out + 5, m, 2);
  out[7] = '-';
  put_digits(out + 8, d, 2);
  out[10] = 'T';
  put_digits(out + 11, rem / 3600, 2);
  out[13] = ':';
  put_digits(out + 14, rem / 60 % 60, 2);
  out[16] = ':';
  put_digits(out + 17, rem % 60, 2);
}

long local_offset_at(std::int64_t sec) {
  time_t t = static_cast<time_t>(sec);
  struct tm tm;
  if (!localtime_r(&t, &tm)) return 0;
  return tm.tm_gmtoff;
}

// ---- Parsing times -------------------------------------------------------------------------

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}
  bool done() const { return i_ == s_.size(); }
  bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  bool eat(char c) {
    if (!peek(c)) return false;
    ++i_;
    return true;
  }
  bool eat_any(std::string_view cs, char* which = nullptr) {
    if (i_ < s_.size() && cs.find(s_[i_]) != std::string_view::npos) {
      if (which) *which = s_[i_];
      ++i_;
      return true;
    }
    return false;
  }
  // Exactly n digits.
  bool digits(int n, std::int64_t& v) {
    if (s_.size() - i_ < static_cast<size_t>(n)) return false;
    v = 0;
    for (int k = 0; k < n; ++k) {
      char c = s_[i_ + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    i_ += n;
    return true;
  }
  // One or more digits as nanoseconds of a fraction (digits beyond the ninth are dropped).
  bool fraction(std::int64_t& ns) {
    size_t start = i_;
    ns = 0;
    int n = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (n < 9) {
        ns = ns * 10 + (s_[i_] - '0');
        ++n;
      }
      ++i_;
    }
    for (; n < 9; ++n) ns *= 10;
    return i_ > start;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

// An RFC 3339 time or a shortening of it that docker takes: a date, then optionally T and the
// hour, minutes, seconds and fraction, then optionally Z or +hh:mm. Without a zone, it is
// `default_offset` seconds east of UTC; `need_zone`: without one it is not a time.
std::optional<std::int64_t> parse_time_point(std::string_view s, long default_offset, bool need_zone) {
  Cursor c(s);
  std::int64_t y, mo, d, h = 0, mi = 0, se = 0, ns = 0;
  if (!c.digits(4, y) || !c.eat('-') || !c.digits(2, mo) || !c.eat('-') || !c.digits(2, d)) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, static_cast<unsigned>(mo))) return std::nullopt;
  if (c.eat_any("Tt")) {
    if (!c.digits(2, h)) return std::nullopt;
    if (c.eat(':')) {
      if (!c.digits(2, mi)) return std::nullopt;
      if (c.eat(':')) {
        if (!c.digits(2, se)) return std::nullopt;
        if (c.eat('.') && !c.fraction(ns)) return std::nullopt;
      }
    }
    if (h > 23 || mi > 59 || se > 59) return std::nullopt;
  }
  long offset = default_offset;
  char sign = 0;
  if (c.eat_any("Zz")) {
    offset = 0;
  } else if (c.eat_any("+-", &sign)) {
    std::int64_t oh, om;
    if (!c.digits(2, oh) || !c.eat(':') || !c.digits(2, om) || oh > 23 || om > 59) return std::nullopt;
    offset = static_cast<long>((oh * 3600 + om * 60) * (sign == '-' ? -1 : 1));
  } else if (need_zone) {
    return std::nullopt;
  }
  if (!c.done()) return std::nullopt;
  std::int64_t sec = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
                     mi * 60 + se - offset;
  return sec * kNsPerSec + ns;
}

// Go's time.ParseDuration: [+-] then one or more <number><unit>, units ns us µs ms s m h; "0".
std::optional<std::int64_t> parse_go_duration(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  static const std::pair<std::string_view, std::int64_t> kUnits[] = {
      {"ns", 1},           {"us", 1000},          {"\xC2\xB5s", 1000}, {"\xCE\xBCs", 1000},
      {"ms", 1000'000},    {"s", kNsPerSec},      {"m", 60 * kNsPerSec}, {"h", 3600 * kNsPerSec}};
  __int128 total = 0;
  size_t i = 0;
  auto is_digit = [&](size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '9'; };
  while (i < s.size()) {
    __int128 whole = 0;
    bool any = false;
    while (is_digit(i)) {
      whole = whole * 10 + (s[i++] - '0');
      any = true;
      if (whole > std::numeric_limits<std::int64_t>::max()) return std::nullopt;
    }
    __int128 frac = 0, scale = 1;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (is_digit(i)) {
        if (scale < 1'000'000'000'000'000'000LL) {
          frac = frac * 10 + (s[i] - '0');
          scale *= 10;
        }
        ++i;
        any = true;
      }
    }
    if (!any) return std::nullopt;
    size_t u = i;
    while (i < s.size() && !is_digit(i) && s[i] != '.') ++i;
    std::string_view unit = s.substr(u, i - u);
    std::int64_t mul = 0;
    for (const auto& [name, m] : kUnits)
      if (unit == name) mul = m;
    if (mul == 0) return std::nullopt;
    total += whole * mul + frac * mul / scale;
    if (total > std::numeric_limits<std::int64_t>::max()) return std::nullopt;
  }
  return static_cast<std::int64_t>(negative ? -total : total);
}

// A unix timestamp with an optional fraction: 1700000000, 1700000000.5.
std::optional<std::int64_t> parse_unix_time(std::string_view s) {
  size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  std::int64_t sec = 0;
  if (whole.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), sec);
  if (ec != std::errc() || end != whole.data() + whole.size()) return std::nullopt;
  if (whole[0] == '-' || sec > std::numeric_limits<std::int64_t>::max() / kNsPerSec - 1) return std::nullopt;
  std::int64_t ns = 0;
  if (dot != std::string_view::npos) {
    Cursor f(s.substr(dot + 1));
    if (!f.fraction(ns) || !f.done()) return std::nullopt;
  }
  return sec * kNsPerSec + ns;
}

// go-units FromHumanSize: a number, an optional space, then b, or k m g t p optionally
// followed by "b" or "ib", any case; decimal multiples.
std::optional<std::uint64_t> parse_human_size(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  std::string num(s.substr(0, i));
  if (num == "." || num.empty() || std::count(num.begin(), num.end(), '.') > 1) return std::nullopt;
  std::string_view sfx = s.substr(i);
  if (!sfx.empty() && sfx[0] == ' ') sfx.remove_prefix(1);
  std::string lower(sfx);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  double mul = 1;
  if (!lower.empty()) {
    if (lower == "b") {
      mul = 1;
    } else {
      static constexpr std::string_view kLetters = "kmgtp";
      size_t k = kLetters.find(lower[0]);
      if (k == std::string_view::npos) return std::nullopt;
      std::string_view rest = std::string_view(lower).substr(1);
      if (!rest.empty() && rest != "b" && rest != "ib") return std::nullopt;
      for (size_t n = 0; n <= k; ++n) mul *= 1000;
    }
  }
  double v = std::strtod(num.c_str(), nullptr) * mul;
  if (!(v >= 0) || v > 9.2e18) return std::nullopt;
  return static_cast<std::uint64_t>(v);
}

// ---- Writing -------------------------------------------------------------------------------

// docker's JSON string encoding of a log line (ffjsonWriteJSONBytesAsString): ", \\, \n, \r
// escaped, other control characters and < > & as \u00XX, U+2028 and U+2029 escaped, bytes that
// are not UTF-8 as \ufffd.
void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t start = 0, i = 0;
  auto flush = [&] {
    if (start < i) out.append(s.data() + start, i - start);
  };
  while (i < s.size()) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      if (b >= 0x20 && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&') {
        ++i;
        continue;
      }
      flush();
      switch (b) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        default:
          out += "\\u00";
          out += kHex[b >> 4];
          out += kHex[b & 0xF];
      }
      start = ++i;
      continue;
    }
    // A UTF-8 sequence: its length from the lead byte, then continuation bytes, no overlongs,
    // no surrogates, nothing beyond U+10FFFF (Go's utf8.DecodeRune).
    size_t len = 0;
    std::uint32_t cp = 0;
    if (b >= 0xC2 && b <= 0xDF) len = 2, cp = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF) len = 3, cp = b & 0x0F;
    else if (b >= 0xF0 && b <= 0xF4) len = 4, cp = b & 0x07;
    bool ok = len != 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      unsigned char cb = static_cast<unsigned char>(s[i + k]);
      if ((cb & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cb & 0x3F);
    }
    if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
      ok = false;
    if (!ok) {
      flush();
      out += "\\ufffd";
      start = ++i;
      continue;
    }
    if (cp == 0x2028 || cp == 0x2029) {
      flush();
      out += cp == 0x2028 ? "\\u2028" : "\\u2029";
      i += len;
      start = i;
      continue;
    }
    i += len;
  }
  flush();
  out += '"';
}

void write_all(int fd, const char* p, size_t n, const fs::path& file) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write the container log " + file.string());
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

fs::path rotated_name(const fs::path& path, int i) { return fs::path(path.string() + "." + std::to_string(i)); }

UniqueFd open_for_append(const fs::path& file, int extra_flags) {
  int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | extra_flags, 0600);
  if (fd < 0) throw_errno("cannot open the container log " + file.string());
  return UniqueFd(fd);
}

}  // namespace

struct LogWriter::State {
  LogConfig config;
  Clock clock = nullptr;
  bool json = false;
  UniqueFd fd;
  std::uint64_t size = 0;  // of the current file
  std::string buf;         // the chunk being built, kept to reuse its memory
  // The time of the last call, formatted, for the calls within the same second.
  std::int64_t cached_sec = std::numeric_limits<std::int64_t>::min();
  char date_time[19] = {};
  char zone[6] = {};  // "+01:00", or "Z" for json-file
  size_t zone_len = 0;

  // "<date>T<time>.<ns><zone>" into `out` (at most 35 characters); returns the length.
  size_t format_time(char* out, std::int64_t now) {
    std::int64_t sec = floor_div(now, kNsPerSec), ns = now - sec * kNsPerSec;
    if (sec != cached_sec) {
      long offset = json ? 0 : local_offset_at(sec);
      format_date_time(date_time, sec, offset);
      if (json) {
        zone[0] = 'Z';
        zone_len = 1;
      } else {
        long a = offset < 0 ? -offset : offset;
        zone[0] = offset < 0 ? '-' : '+';
        put_digits(zone + 1, a / 3600, 2);
        zone[3] = ':';
        put_digits(zone + 4, a % 3600 / 60, 2);
        zone_len = 6;
      }
      cached_sec = sec;
    }
    std::memcpy(out, date_time, 19);
    out[19] = '.';
    put_digits(out + 20, ns, 9);
    std::memcpy(out + 29, zone, zone_len);
    return 29 + zone_len;
  }

  void rotate() {
    const fs::path& path = config.path;
    if (config.max_file > 1) {
      for (int i = config.max_file - 1; i >= 2; --i) {
        fs::path from = rotated_name(path, i - 1);
        if (::rename(from.c_str(), rotated_name(path, i).c_str()) != 0 && errno != ENOENT)
          throw_errno("cannot rotate the container log " + from.string());
      }
      // The new file is made aside and renamed over <path>, after <path>.1 is linked to the old
      // one, so that <path> always exists for a reader; rename where links are not possible.
      fs::path tmp = path.string() + ".tmp";
      UniqueFd next = open_for_append(tmp, O_TRUNC);
      fs::path first = rotated_name(path, 1);
      ::unlink(first.c_str());
      if (::link(path.c_str(), first.c_str()) != 0) {
        if (::rename(path.c_str(), first.c_str()) != 0 && errno != ENOENT)
          throw_errno("cannot rotate the container log " + path.string());
      }
      if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("cannot rotate the container log " + path.string());
      fd = std::move(next);
    } else {
      // As conmon: a new empty file renamed over the old one.
      fs::path tmp = path.string() + ".tmp";
      UniqueFd next = open_for_append(tmp, O_TRUNC);
      if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("cannot start the container log " + path.string() + " over");
      fd = std::move(next);
    }
    size = 0;
  }
};

LogWriter::LogWriter(LogConfig config, Clock clock) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.config = std::move(config);
  s.clock = clock;
  s.json = s.config.driver == "json-file";
  if (!is_file_driver(s.config.driver)) return;
  if (s.config.path.empty()) throw Error(Errc::kInternal, "the container log has no path");
  tzset();
  s.fd = open_for_append(s.config.path, 0);
  struct stat st;
  if (::fstat(s.fd.get(), &st) != 0) throw_errno("cannot inspect the container log " + s.config.path.string());
  s.size = static_cast<std::uint64_t>(st.st_size);
}

LogWriter::~LogWriter() = default;
LogWriter::LogWriter(LogWriter&&) noexcept = default;
LogWriter& LogWriter::operator=(LogWriter&&) noexcept = default;

const LogConfig& LogWriter::config() const { return state_->config; }

void LogWriter::write(std::string_view stream, std::string_view data) {
  if (!state_ || data.empty()) return;  // moved from, or nothing to write
  State& s = *state_;
  if (s.fd.get() < 0) return;              // none, passthrough
  if (stream != "stdout" && stream != "stderr")
    throw Error(Errc::kInternal, "a container log entry on stream \"" + std::string(stream) + "\"");
  char ts[40];
  size_t ts_len = s.format_time(ts, s.clock ? s.clock() : realtime_ns());
  std::string_view time(ts, ts_len);

  std::string& buf = s.buf;
  buf.clear();
  size_t i = 0;
  while (i < data.size()) {
    const char* nl = static_cast<const char*>(std::memchr(data.data() + i, '\n', data.size() - i));
    bool partial = nl == nullptr;
    size_t len = partial ? data.size() - i : static_cast<size_t>(nl - (data.data() + i));
    std::string_view text = data.substr(i, len);
    size_t entry_start = buf.size();
    if (s.json) {
      buf += "{\"log\":";
      std::string_view with_newline = data.substr(i, partial ? len : len + 1);
      append_json_string(buf, with_newline);
      buf += ",\"stream\":\"";
      buf += stream;
      buf += "\",\"time\":\"";
      buf += time;
      buf += "\"}\n";
    } else {
      buf += time;
      buf += ' ';
      buf += stream;
      buf += partial ? " P " : " F ";
      buf += text;
      buf += '\n';
    }
    size_t entry_len = buf.size() - entry_start;
    std::uint64_t before = s.size + entry_start;
    if (s.config.max_size > 0 && before > 0 && before + entry_len > s.config.max_size) {
      // The entry would take the file beyond max_size: what is before it goes to this file, the
      // entry starts the next one.
      write_all(s.fd.get(), buf.data(), entry_start, s.config.path);
      s.rotate();
      buf.erase(0, entry_start);
    }
    i += partial ? len : len + 1;
  }
  write_all(s.fd.get(), buf.data(), buf.size(), s.config.path);
  s.size += buf.size();
}

// ---- Reading -------------------------------------------------------------------------------

namespace {

struct ParsedEntry {
  LogEntry entry;
  std::int64_t time_ns = 0;
};

std::optional<ParsedEntry> parse_k8s_line(std::string_view line) {
  size_t a = line.find(' ');
  if (a == std::string_view::npos) return std::nullopt;
  size_t b = line.find(' ', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  std::string_view time = line.substr(0, a), stream = line.substr(a + 1, b - a - 1);
  if (stream != "stdout" && stream != "stderr") return std::nullopt;
  std::string_view rest = line.substr(b + 1);
  // "F text", "F " (an empty line) or "F" (an empty line, from a writer that drops the space).
  if (rest.empty() || (rest[0] != 'F' && rest[0] != 'P') || (rest.size() > 1 && rest[1] != ' ')) return std::nullopt;
  auto ns = parse_time_point(time, 0, true);
  if (!ns) return std::nullopt;
  ParsedEntry p;
  p.time_ns = *ns;
  p.entry.time = std::string(time);
  p.entry.stream = std::string(stream);
  p.entry.partial = rest[0] == 'P';
  if (rest.size() > 2) p.entry.text = std::string(rest.substr(2));
  return p;
}

std::optional<ParsedEntry> parse_json_line(std::string_view line) {
  auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto log = j.find("log"), stream = j.find("stream"), time = j.find("time");
  if (log == j.end() || stream == j.end() || time == j.end() || !log->is_string() || !stream->is_string() ||
      !time->is_string())
    return std::nullopt;
  ParsedEntry p;
  p.entry.stream = stream->get<std::string>();
  if (p.entry.stream != "stdout" && p.entry.stream != "stderr") return std::nullopt;
  p.entry.time = time->get<std::string>();
  auto ns = parse_time_point(p.entry.time, 0, true);
  if (!ns) return std::nullopt;
  p.time_ns = *ns;
  p.entry.text = log->get<std::string>();
  if (!p.entry.text.empty() && p.entry.text.back() == '\n') {
    p.entry.text.pop_back();
  } else {
    p.entry.partial = true;
  }
  return p;
}

// A log file open for reading: what of it has been read, and the start of a line not complete
// yet.
struct Source {
  UniqueFd fd;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t pos = 0;    // of the next read
  std::string buf;  // bytes read after the last complete line

  bool same_file(const struct stat& st) const { return st.st_dev == dev && st.st_ino == ino; }
  bool same_file(const Source& o) const { return o.dev == dev && o.ino == ino; }
};

std::optional<Source> open_source(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("cannot open the container log " + file.string());
  }
  Source s;
  s.fd.reset(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) throw_errno("cannot inspect the container log " + file.string());
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  return s;
}

ssize_t pread_retry(int fd, char* p, size_t n, off_t at) {
  for (;;) {
    ssize_t r = ::pread(fd, p, n, at);
    if (r >= 0 || errno != EINTR) return r;
  }
}

void pread_exact(int fd, char* p, size_t n, off_t at) {
  while (n > 0) {
    ssize_t r = pread_retry(fd, p, n, at);
    if (r < 0) throw_errno("cannot read the container log");
    if (r == 0) throw Error(Errc::kSystem, "the container log shrank while it was read");
    p += r;
    n -= static_cast<size_t>(r);
    at += r;
  }
}

// The offset just past the last newline before `size`, 0 if there is none.
off_t complete_end(int fd, off_t size) {
  std::string block;
  off_t end = size;
  while (end > 0) {
    off_t n = std::min<off_t>(kReadChunk, end);
    block.resize(static_cast<size_t>(n));
    pread_exact(fd, block.data(), block.size(), end - n);
    if (const void* nl = ::memrchr(block.data(), '\n', block.size()))
      return end - n + (static_cast<const char*>(nl) - block.data()) + 1;
    end -= n;
  }
  return 0;
}

// The lines of [0, end) of a file, the last first: fn(line, offset just past its newline), which
// returns true to stop (then this does too). `end` is 0 or just past a newline.
template <class Fn>
bool each_line_backwards(int fd, off_t end, Fn&& fn) {
  if (end <= 0) return false;
  std::vector<std::string> later_parts;  // of the line being put together, the last first
  auto assemble = [&](std::string_view head) {
    std::string line(head);
    for (auto it = later_parts.rbegin(); it != later_parts.rend(); ++it) line += *it;
    later_parts.clear();
    return line;
  };
  off_t line_next = end;     // just past the newline of the line being put together
  off_t unread = end - 1;    // [0, unread) is not read yet; the byte at end - 1 is a newline
  std::string block;
  while (unread > 0) {
    off_t n = std::min<off_t>(kReadChunk, unread), block_start = unread - n;
    block.resize(static_cast<size_t>(n));
    pread_exact(fd, block.data(), block.size(), block_start);
    size_t right = block.size();
    for (;;) {
      const void* nlp = ::memrchr(block.data(), '\n', right);
      if (!nlp) {
        later_parts.emplace_back(block.data(), right);
        break;
      }
      size_t p = static_cast<size_t>(static_cast<const char*>(nlp) - block.data());
      std::string line = assemble(std::string_view(block.data() + p + 1, right - p - 1));
      if (fn(std::string_view(line), line_next)) return true;
      line_next = block_start + static_cast<off_t>(p) + 1;
      right = p;
    }
    unread = block_start;
  }
  std::string first = assemble("");
  return fn(std::string_view(first), line_next);
}

// The log's files at one moment: <path>.N ... <path>.1 (oldest first), then <path>.
//
// The writer's rotation renames <path>.N-1 to <path>.N down to <path>.1 to <path>.2, then links
// <path>.1 to <path> and renames the new file over <path>: while it does, one name at a time is
// missing, and a single look at the names may see a file twice or not at all. But a name only ever
// changes to a newer file, so two looks that agree, with <path> looked at first in the first and
// last in the second (no rotation finished in between), describe the directory as it was at a
// moment between them. Names are tried until two in a row are missing (one may be, mid-rotation).
struct FileListing {
  std::vector<Source> rotated;  // oldest first
  std::optional<Source> current;
};

struct FileId {
  dev_t dev;
  ino_t ino;
  bool operator==(const FileId&) const = default;
};

FileListing list_log_files(const fs::path& path, int max_file) {
  auto stat_id = [](const fs::path& f) -> std::optional<FileId> {
    struct stat st;
    if (::stat(f.c_str(), &st) != 0) {
      if (errno == ENOENT) return std::nullopt;
      throw_errno("cannot inspect the container log " + f.string());
    }
    return FileId{st.st_dev, st.st_ino};
  };
  auto source_id = [](const std::optional<Source>& s) -> std::optional<FileId> {
    if (!s) return std::nullopt;
    return FileId{s->dev, s->ino};
  };
  FileListing listing;
  for (int attempt = 0;; ++attempt) {
    std::vector<std::optional<FileId>> first;  // [0]: <path>, [i]: <path>.i
    first.push_back(stat_id(path));
    for (int i = 1, missing = 0; i < max_file && missing < 2; ++i) {
      first.push_back(stat_id(rotated_name(path, i)));
      missing = first.back() ? 0 : missing + 1;
    }
    std::vector<std::optional<Source>> opened(first.size());
    std::vector<std::optional<FileId>> second(first.size());
    for (size_t i = 1; i < first.size(); ++i) {
      opened[i] = open_source(rotated_name(path, static_cast<int>(i)));
      second[i] = source_id(opened[i]);
    }
    opened[0] = open_source(path);
    second[0] = source_id(opened[0]);
    // A name beyond the ones looked at that has appeared meanwhile shows in the next look.
    bool agree = first == second;
    if (agree || attempt >= 100) {
      for (size_t i = opened.size(); i > 1; --i)
        if (opened[i - 1]) listing.rotated.push_back(std::move(*opened[i - 1]));
      listing.current = std::move(opened[0]);
      return listing;
    }
    struct timespec ts = {0, 200'000};
    nanosleep(&ts, nullptr);
  }
}

class LogSession {
 public:
  LogSession(const LogConfig& config, const LogReadOptions& options, const std::function<bool(const LogEntry&)>& out)
      : config_(config), options_(options), out_(out), json_(config.driver == "json-file") {}

  // The files as they are now: rotated ones oldest first, then the current one.
  void open_all() {
    FileListing files = list_log_files(config_.path, config_.max_file);
    for (auto& r : files.rotated) {
      // Between the link and the rename of a rotation, <path>.1 is <path>.
      if (files.current && r.same_file(*files.current)) continue;
      queue_.push_back(std::move(r));
    }
    if (files.current) queue_.push_back(std::move(*files.current));
  }

  // Starts reading at the first entry of the last `n` lines.
  void skip_to_tail(size_t n) {
    size_t count = 0;
    bool first = true;
    for (size_t i = queue_.size(); i > 0; --i) {
      Source& s = queue_[i - 1];
      struct stat st;
      if (::fstat(s.fd.get(), &st) != 0) throw_errno("cannot inspect the container log " + config_.path.string());
      off_t end = complete_end(s.fd.get(), st.st_size);
      std::optional<off_t> start;
      each_line_backwards(s.fd.get(), end, [&](std::string_view line, off_t next) {
        auto p = parse(line);
        if (!p) return false;
        if (!p->entry.partial || first) {
          ++count;
          first = false;
        }
        if (count > n) start = next;
        return count > n;
      });
      if (start) {
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(i - 1));
        queue_.front().pos = *start;
        return;
      }
    }
  }

  void run(const std::function<bool()>& finished) {
    bool done = false;
    for (;;) {
      if (!drain_all()) return;
      if (!options_.follow || done) return;
      if (options_.until_ns && realtime_ns() > *options_.until_ns) return;
      done = finished();
      if (!done) wait();
    }
  }

 private:
  std::optional<ParsedEntry> parse(std::string_view line) const {
    return json_ ? parse_json_line(line) : parse_k8s_line(line);
  }

  // false: stop reading (out said so, or until is passed).
  bool deliver(std::string_view line) {
    auto p = parse(line);
    if (!p) return true;  // not an entry: skipped
    size_t stream = p->entry.stream == "stderr";
    if (options_.until_ns && p->time_ns > *options_.until_ns) return false;
    if (options_.since_ns && p->time_ns < *options_.since_ns) {
      last_partial_[stream] = false;
      return true;
    }
    p->entry.continuation = last_partial_[stream];
    last_partial_[stream] = p->entry.partial;
    return out_(p->entry);
  }

  // Delivers the complete lines of `s` up to its end as it is now.
  bool drain(Source& s) {
    size_t searched = 0;  // the start of s.buf holds no newline up to here
    for (;;) {
      size_t begin = 0;
      while (const void* nl = std::memchr(s.buf.data() + searched, '\n', s.buf.size() - searched)) {
        size_t end = static_cast<size_t>(static_cast<const char*>(nl) - s.buf.data());
        if (!deliver(std::string_view(s.buf.data() + begin, end - begin))) return false;
        begin = searched = end + 1;
      }
      if (begin > 0) s.buf.erase(0, begin);
      searched = s.buf.size();
      size_t old = s.buf.size();
      s.buf.resize(old + kReadChunk);
      ssize_t n = pread_retry(s.fd.get(), s.buf.data() + old, kReadChunk, s.pos);
      if (n < 0) {
        int e = errno;
        throw system_error("cannot read the container log " + config_.path.string(), e);
      }
      s.buf.resize(old + static_cast<size_t>(n));
      if (n == 0) return true;
      s.pos += n;
    }
  }

  // Reads everything there is now, through rotations. false: stop.
  bool drain_all() {
    for (;;) {
      if (queue_.empty()) {
        open_all();  // there was no log yet: it may have been rotated already
        if (queue_.empty()) return true;
      }
      Source& s = queue_.front();
      if (!drain(s)) return false;
      if (queue_.size() > 1) {
        queue_.pop_front();
        continue;
      }
      // The newest file known: is it still <path>?
      struct stat st;
      if (::stat(config_.path.c_str(), &st) != 0) {
        if (errno == ENOENT) return true;  // removed; a new one may come
        throw_errno("cannot inspect the container log " + config_.path.string());
      }
      if (s.same_file(st)) {
        if (st.st_size >= s.pos) return true;
        // Truncated in place: read it again from its start.
        s.pos = 0;
        s.buf.clear();
        continue;
      }
      // Replaced: what was written to it before is there now.
      if (!drain(s)) return false;
      if (!queue_newer_than(s)) return true;  // raced with another rotation: look again later
      queue_.pop_front();
    }
  }

  // After `old` was rotated away: the rotated files newer than it, oldest first, then <path>.
  // When it is not among the rotated files it was dropped (the reader fell max_file rotations
  // behind, or max_file is 1) and all of them are newer than it.
  bool queue_newer_than(const Source& old) {
    FileListing files = list_log_files(config_.path, config_.max_file);
    auto at = std::find_if(files.rotated.begin(), files.rotated.end(), [&](const Source& r) { return r.same_file(old); });
    size_t before = queue_.size();
    auto add = [&](Source&& s) {
      if (s.same_file(old)) return;
      for (const auto& q : queue_)
        if (q.same_file(s)) return;
      queue_.push_back(std::move(s));
    };
    for (auto it = at == files.rotated.end() ? files.rotated.begin() : at + 1; it != files.rotated.end(); ++it)
      add(std::move(*it));
    if (files.current) add(std::move(*files.current));
    return queue_.size() > before;
  }

  void wait() {
    if (!watch_tried_) {
      watch_tried_ = true;
      int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      if (fd >= 0) {
        fs::path dir = config_.path.parent_path();
        if (dir.empty()) dir = ".";
        if (::inotify_add_watch(fd, dir.c_str(),
                                IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB) >= 0)
          inotify_.reset(fd);
        else
          ::close(fd);
      }
    }
    if (inotify_.get() < 0) {
      struct timespec ts = {0, kPollMs * 1'000'000L};
      nanosleep(&ts, nullptr);
      return;
    }
    struct pollfd pfd = {inotify_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, kFollowWakeMs) > 0) {
      char events[4096];
      while (::read(inotify_.get(), events, sizeof events) > 0) {
      }
    }
  }

  const LogConfig& config_;
  const LogReadOptions& options_;
  const std::function<bool(const LogEntry&)>& out_;
  bool json_;
  std::deque<Source> queue_;  // the file being read, then the newer ones known
  bool last_partial_[2] = {false, false};
  bool watch_tried_ = false;
  UniqueFd inotify_;
};

}  // namespace

void read_log(const LogConfig& config, const LogReadOptions& options, const std::function<bool(const LogEntry&)>& out,
              const std::function<bool()>& finished) {
  if (!is_file_driver(config.driver))
    throw Error(Errc::kUsage, "the container's log driver is " + config.driver +
                                  ", which keeps no log to read; run it with --log-driver k8s-file or json-file");
  LogSession session(config, options, out);
  session.open_all();
  if (options.tail) session.skip_to_tail(*options.tail);
  session.run(finished);
}

// ---- Options, times, output ----------------------------------------------------------------

LogConfig parse_log_config(const std::string& driver, const std::vector<std::string>& opts,
                           const fs::path& default_path) {
  LogConfig config;
  config.driver = driver.empty() ? "k8s-file" : driver;
  if (!is_file_driver(config.driver) && config.driver != "none" && config.driver != "passthrough")
    throw Error(Errc::kUsage, "unknown --log-driver \"" + driver +
                                  "\"; hutch supports k8s-file (the default), json-file, none and passthrough");
  static const std::string kAccepted = "max-size=SIZE (10m, in b, k, m or g), max-file=N and path=FILE";
  for (const auto& opt : opts) {
    size_t eq = opt.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(Errc::kUsage, "--log-opt \"" + opt + "\" is not KEY=VALUE; the " + config.driver +
                                    " log driver takes " + kAccepted);
    std::string key = opt.substr(0, eq), value = opt.substr(eq + 1);
    if (!is_file_driver(config.driver))
      throw Error(Errc::kUsage, "--log-opt " + opt + ": the " + config.driver + " log driver takes no options");
    if (key == "max-size") {
      auto size = parse_human_size(value);
      if (!size || *size == 0)
        throw Error(Errc::kUsage, "--log-opt max-size=" + value +
                                      ": give a positive size in bytes, with an optional unit k, m or g (10m)");
      config.max_size = *size;
    } else if (key == "max-file") {
      int n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() || n < 1)
        throw Error(Errc::kUsage, "--log-opt max-file=" + value + ": give the number of files to keep, at least 1");
      config.max_file = n;
    } else if (key == "path") {
      if (value.empty() || value[0] != '/')
        throw Error(Errc::kUsage, "--log-opt path=" + value + ": give an absolute path for the log file");
      config.path = value;
    } else {
      throw Error(Errc::kUsage, "unknown --log-opt \"" + key + "\" for the " + config.driver + " log driver; it takes " +
                                    kAccepted);
    }
  }
  if (config.path.empty()) config.path = default_path;
  return config;
}

std::int64_t parse_log_time(const std::string& value, const char* flag, std::int64_t now_ns) {
  if (value != "0") {
    if (auto d = parse_go_duration(value)) return now_ns - *d;
  }
  if (auto t = parse_time_point(value, local_offset_at(floor_div(now_ns, kNsPerSec)), false)) return *t;
  if (value.find('-') == std::string::npos) {
    if (auto t = parse_unix_time(value)) return *t;
  }
  throw Error(Errc::kUsage, std::string("invalid ") + flag + " \"" + value +
                                "\": give a time (2013-01-02T13:23:37Z, 2013-01-02T13:23:37.5+01:00, 2013-01-02; "
                                "local time without an offset), a unix timestamp (1700000000.5) or a duration "
                                "before now (10m, 1h30m)");
}

std::string format_log_entry(const LogEntry& entry, bool timestamps) {
  std::string out;
  out.reserve(entry.text.size() + entry.time.size() + 2);
  if (timestamps && !entry.continuation) {
    out += entry.time;
    out += ' ';
  }
  out += entry.text;
  if (!entry.partial) out += '\n';
  return out;
}

}  // namespace hutch
