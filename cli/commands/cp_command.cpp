// hutch cp: copy files between a container and the host (docker cp).
#include <unistd.h>

#include <iostream>

#include "../command.hpp"

namespace hutch::cli {
namespace {

// One argument of cp: CONTAINER:PATH, or a host path (or "-"). docker's rule: an absolute
// path, a path starting with ".", or one without a ":" is the host's ("./a:b" is a file).
struct CopyEnd {
  std::string container;  // empty: the host
  std::string path;
};

CopyEnd parse_end(const std::string& arg) {
  if (arg.empty()) usage_error("\"hutch cp\" needs a non-empty SRC_PATH and DEST_PATH");
  auto colon = arg.find(':');
  if (arg[0] == '/' || arg[0] == '.' || colon == std::string::npos || colon == 0) return {"", arg};
  return {arg.substr(0, colon), arg.substr(colon + 1)};
}

class CpCommand final : public Command {
 public:
  std::string name() const override { return "cp"; }
  std::string summary() const override { return "Copy files and directories between a container and the host"; }
  std::string usage() const override {
    return "CONTAINER:SRC_PATH DEST_PATH|-\n"
           "       hutch cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH\n\n"
           "As docker cp: SRC_PATH is a file, a directory, or DIR/. (what the directory holds). An\n"
           "existing directory DEST_PATH receives the source under its own name; a missing DEST_PATH is\n"
           "created (its parent must exist); a DEST_PATH ending in / must be a directory when SRC_PATH is\n"
           "a file. \"-\" is a tar stream: on stdin, extracted into the directory DEST_PATH; on stdout, a\n"
           "tar of SRC_PATH. Paths in the container resolve inside it: its symlinks never lead out.\n"
           "Files copied in belong to the container's root, files copied out to you, unless -a.\n"
           "A running container is copied as its processes see it, volumes and mounts included; a\n"
           "stopped one is its own filesystem only: its volumes and bind mounts are not reached (copy\n"
           "into the volume's directory, which \"hutch volume inspect\" shows).";
  }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("archive,a", po::bool_switch(&options_.archive),
                    "keep the owners (uid/gid) of the source instead of the container's root (in) or you (out)")(
        "follow-link,L", po::bool_switch(&options_.follow_link), "follow a symlink that SRC_PATH names")(
        "quiet,q", po::bool_switch(&quiet_), "print nothing on success (nothing is printed unless stderr is a terminal)");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 2) usage_error("\"hutch cp\" needs exactly two arguments: SRC_PATH and DEST_PATH");
    src_ = parse_end(a[0]);
    dest_ = parse_end(a[1]);
    if (src_.container.empty() == dest_.container.empty()) {
      if (src_.container.empty())
        usage_error("\"hutch cp\" copies to or from a container: give one of the paths as CONTAINER:PATH");
      usage_error("\"hutch cp\" does not copy between two containers: copy to the host first");
    }
  }
  int run(CommandContext& ctx) override {
    std::uint64_t bytes;
    std::string where;
    if (!src_.container.empty()) {
      options_.stream_fd = STDOUT_FILENO;
      bytes = ctx.engine().copy_from_container(src_.container, src_.path, dest_.path, options_);
      where = dest_.path == "-" ? "standard output" : dest_.path;
    } else {
      options_.stream_fd = STDIN_FILENO;
      bytes = ctx.engine().copy_to_container(src_.path, dest_.container, dest_.path, options_);
      where = dest_.container + ":" + dest_.path;
    }
    if (!quiet_ && isatty(STDERR_FILENO)) std::cerr << "Successfully copied " << compact_size(bytes) << " to " << where << "\n";
    return 0;
  }

 private:
  Engine::CopyOptions options_;
  bool quiet_ = false;
  CopyEnd src_, dest_;
};

}  // namespace
std::unique_ptr<Command> make_cp_command() { return std::make_unique<CpCommand>(); }
}  // namespace hutch::cli
