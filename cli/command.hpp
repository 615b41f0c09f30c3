// One class per command: its name, summary, options, whether it needs the user namespace, run().
#pragma once

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "hutch/config.hpp"
#include "hutch/engine.hpp"
#include "hutch/logger.hpp"
#include "hutch/userns.hpp"

namespace hutch::cli {

namespace po = boost::program_options;

struct GlobalOptions {
  std::optional<std::string> root, runroot, storage_driver, network, runtime, log_level;
};

// What a command gets: the config, the logger and (made on first use) the engine.
class CommandContext {
 public:
  CommandContext(Config config, EnginePaths paths, RootlessInfo rootless, const Logger& logger, UsernsSession* session)
      : config_(std::move(config)), paths_(std::move(paths)), rootless_(rootless), logger_(logger), session_(session) {}

  const Config& config() const { return config_; }
  const EnginePaths& paths() const { return paths_; }
  const RootlessInfo& rootless() const { return rootless_; }
  const Logger& logger() const { return logger_; }
  UsernsSession* session() const { return session_; }
  Engine& engine() {
    if (!engine_) engine_ = std::make_unique<Engine>(config_, paths_, rootless_, logger_);
    return *engine_;
  }

 private:
  Config config_;
  EnginePaths paths_;
  RootlessInfo rootless_;
  const Logger& logger_;
  UsernsSession* session_;
  std::unique_ptr<Engine> engine_;
};

class Command {
 public:
  virtual ~Command() = default;
  // One word ("run"), or a group and a verb ("system df").
  virtual std::string name() const = 0;
  // Other names for it ("umount" for "unmount").
  virtual std::vector<std::string> aliases() const { return {}; }
  virtual std::string summary() const = 0;
  // "IMAGE [COMMAND [ARG...]]"
  virtual std::string usage() const = 0;
  virtual bool needs_user_namespace() const = 0;
  // Only reports on the setup (info, version): no single-ID warning, it shows the mode itself.
  virtual bool reports_only() const { return false; }
  // Options end at the first positional argument (run, unshare: the rest is the container's).
  virtual bool stops_at_first_positional() const { return false; }
  // -h means something else (run: --hostname); --help still works.
  virtual bool uses_short_h() const { return false; }
  virtual void add_options(po::options_description& options) = 0;
  // Positional arguments, after options are parsed; throws Errc::kUsage when they are wrong.
  virtual void set_arguments(const std::vector<std::string>& args) = 0;
  virtual int run(CommandContext& context) = 0;
};

std::vector<std::unique_ptr<Command>> make_all_commands();

// Helpers shared by commands.
[[noreturn]] void usage_error(const std::string& message);
void print_table(const std::vector<std::vector<std::string>>& rows);
std::string human_size(std::uint64_t bytes);
// docker's HumanSize, as `system df` prints it: "52.43MB", "0B".
std::string compact_size(std::uint64_t bytes);
// Asks on the terminal (stdin); true only for "y" or "yes".
bool confirm(const std::string& question);
std::string human_ago(const std::string& rfc3339);
// The help of a command group (`hutch volume`, `hutch network`): its commands and summaries.
std::string group_help(const std::string& group, const std::string& summary);

// Runs `each` for every name; an error does not stop the others. All but the last error are
// printed here, the last is thrown (and printed by main): the exit code says something failed.
template <typename F>
void for_each_name(const std::vector<std::string>& names, F each) {
  std::optional<Error> last;
  for (const auto& n : names) {
    try {
      each(n);
    } catch (const Error& e) {
      if (last) std::cerr << "Error: " << last->full_message() << std::endl;
      last = e;
    }
  }
  if (last) throw *last;
}

}  // namespace hutch::cli
