// A logger handed down to every part and plugin; never a global, never stdout.
#pragma once

#include <string>
#include <string_view>

#include "hutch/error.hpp"

namespace hutch {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

HUTCH_API bool parse_log_level(std::string_view text, LogLevel& out);
HUTCH_API const char* log_level_name(LogLevel level);

class HUTCH_API Logger {
 public:
  explicit Logger(LogLevel level = LogLevel::kWarn, int fd = 2) : level_(level), fd_(fd) {}
  virtual ~Logger() = default;
  LogLevel level() const { return level_; }
  void set_level(LogLevel level) { level_ = level; }
  bool enabled(LogLevel level) const { return level >= level_; }
  virtual void log(LogLevel level, std::string_view message) const;
  void debug(std::string_view m) const { if (enabled(LogLevel::kDebug)) log(LogLevel::kDebug, m); }
  void info(std::string_view m) const { if (enabled(LogLevel::kInfo)) log(LogLevel::kInfo, m); }
  void warn(std::string_view m) const { if (enabled(LogLevel::kWarn)) log(LogLevel::kWarn, m); }
  void error(std::string_view m) const { if (enabled(LogLevel::kError)) log(LogLevel::kError, m); }

 private:
  LogLevel level_;
  int fd_;
};

}  // namespace hutch
