// TEMPORARY smoke-test stub; replaced by the logs branch.
#include "hutch/container_log.hpp"
#include <fcntl.h>
#include <unistd.h>
#include <fstream>
#include <sstream>
#include "hutch/paths.hpp"
#include "hutch/store.hpp"
namespace hutch {
static int g_fd = -1;
LogConfig parse_log_config(const std::string& driver, const std::vector<std::string>&, const std::filesystem::path& p) {
  LogConfig c; c.driver = driver; c.path = p; return c;
}
LogWriter::LogWriter(LogConfig c) { g_fd = ::open(c.path.c_str(), O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0600); }
LogWriter::~LogWriter() {}
void LogWriter::write(std::string_view stream, std::string_view data) {
  std::string out; std::string t = now_rfc3339();
  size_t s = 0;
  while (s < data.size()) { auto nl = data.find('\n', s); bool full = nl != std::string_view::npos;
    std::string_view line = data.substr(s, full ? nl - s : std::string_view::npos);
    out += t + " " + std::string(stream) + (full ? " F " : " P ") + std::string(line) + "\n"; s = full ? nl + 1 : data.size(); }
  (void)!::write(g_fd, out.data(), out.size());
}
void read_log(const LogConfig& c, const LogReadOptions& o, const std::function<bool(const LogEntry&)>& out, const std::function<bool()>& finished) {
  size_t done = 0;
  for (;;) {
    bool fin = finished();
    std::ifstream in(c.path); std::string line; size_t n = 0;
    while (std::getline(in, line)) { if (n++ < done) continue; std::istringstream ls(line); LogEntry e; std::string tag; ls >> e.time >> e.stream >> tag; e.partial = tag == "P"; std::getline(ls, e.text); if (!e.text.empty()) e.text.erase(0,1); if (!out(e)) return; done = n; }
    if (!o.follow || fin) return;
    usleep(100000);
  }
}
std::int64_t parse_log_time(const std::string&, const char*, std::int64_t now) { return now; }
std::string format_log_entry(const LogEntry& e, bool ts) { return (ts ? e.time + " " : "") + e.text + (e.partial ? "" : "\n"); }
}
