// PLACEHOLDER until the logs branch merges: declarations only.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include "hutch/error.hpp"
namespace hutch {
struct LogConfig {
  std::string driver = "k8s-file";
  std::filesystem::path path;
  std::uint64_t max_size = 0;
  int max_file = 1;
};
HUTCH_API LogConfig parse_log_config(const std::string& driver, const std::vector<std::string>& opts,
                                     const std::filesystem::path& default_path);
class HUTCH_API LogWriter {
 public:
  explicit LogWriter(LogConfig config);
  ~LogWriter();
  void write(std::string_view stream, std::string_view data);
};
struct LogEntry {
  std::string time, stream, text;
  bool partial = false;
};
struct LogReadOptions {
  std::optional<std::size_t> tail;
  std::optional<std::int64_t> since_ns, until_ns;
  bool follow = false;
};
HUTCH_API void read_log(const LogConfig& config, const LogReadOptions& options,
                        const std::function<bool(const LogEntry&)>& out,
                        const std::function<bool()>& finished = [] { return true; });
HUTCH_API std::int64_t parse_log_time(const std::string& value, const char* flag, std::int64_t now_ns);
HUTCH_API std::string format_log_entry(const LogEntry& entry, bool timestamps);
}  // namespace hutch
