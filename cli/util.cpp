#include <algorithm>
#include <ctime>
#include <iostream>

#include "command.hpp"

namespace hutch::cli {

void usage_error(const std::string& message) { throw Error(Errc::kUsage, message); }

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  std::cout << out << std::flush;
}

std::string human_size(std::uint64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0) snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string compact_size(std::uint64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 5) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  snprintf(buf, sizeof buf, "%.4g%s", v, units[u]);
  return buf;
}

bool confirm(const std::string& question) {
  std::cout << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  while (!answer.empty() && (answer.back() == ' ' || answer.back() == '\r')) answer.pop_back();
  return answer == "y" || answer == "Y" || answer == "yes" || answer == "Yes";
}

std::string human_ago(const std::string& rfc3339) {
  struct tm tm {};
  if (!strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return rfc3339;
  time_t then = timegm(&tm);
  long d = static_cast<long>(time(nullptr) - then);
  if (d < 1) return "Less than a second ago";
  auto fmt = [](long n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s") + " ago";
  };
  if (d < 60) return fmt(d, "second");
  if (d < 3600) return fmt(d / 60, "minute");
  if (d < 86400) return fmt(d / 3600, "hour");
  if (d < 86400 * 30) return fmt(d / 86400, "day");
  if (d < 86400 * 365) return fmt(d / (86400 * 30), "month");
  return fmt(d / (86400 * 365), "year");
}

std::string group_help(const std::string& group, const std::string& summary) {
  std::vector<std::pair<std::string, std::string>> verbs;
  for (const auto& c : make_all_commands())
    if (c->name().rfind(group + " ", 0) == 0) verbs.emplace_back(c->name().substr(group.size() + 1), c->summary());
  std::sort(verbs.begin(), verbs.end());
  std::string out = "Usage: hutch " + group + " COMMAND\n\n" + summary + "\n\nCommands:\n";
  size_t width = 0;
  for (const auto& [v, s] : verbs) width = std::max(width, v.size());
  for (const auto& [v, s] : verbs) out += "  " + v + std::string(width + 2 - v.size(), ' ') + s + "\n";
  return out + "\nRun 'hutch " + group + " COMMAND --help' for a command's options.\n";
}

}  // namespace hutch::cli
