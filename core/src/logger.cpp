#include "hutch/logger.hpp"

#include <unistd.h>

#include <string>

namespace hutch {

bool parse_log_level(std::string_view text, LogLevel& out) {
  if (text == "debug") out = LogLevel::kDebug;
  else if (text == "info") out = LogLevel::kInfo;
  else if (text == "warn" || text == "warning") out = LogLevel::kWarn;
  else if (text == "error") out = LogLevel::kError;
  else return false;
  return true;
}

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}

void Logger::log(LogLevel level, std::string_view message) const {
  std::string line = "hutch: ";
  if (level == LogLevel::kWarn) line += "warning: ";
  else if (level == LogLevel::kError) line += "error: ";
  else if (level == LogLevel::kDebug) line += "debug: ";
  line.append(message);
  line += '\n';
  // One write per line, so lines of concurrent processes do not interleave.
  ssize_t r = ::write(fd_, line.data(), line.size());
  (void)r;
}

}  // namespace hutch
