// Commands over a container's filesystem: diff, commit, mount, unmount.
#include <iostream>

#include "../command.hpp"
#include "hutch/userns.hpp"

namespace hutch::cli {
namespace {

class DiffCommand final : public Command {
 public:
  std::string name() const override { return "diff"; }
  std::string summary() const override { return "Show what a container changed in its filesystem (A added, C changed, D deleted)"; }
  std::string usage() const override { return "CONTAINER"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 1) usage_error("\"hutch diff\" needs exactly one container");
    container_ = a[0];
  }
  int run(CommandContext& ctx) override {
    std::string out;
    for (const auto& c : ctx.engine().container_changes(container_))
      out += std::string(1, change_letter(c.kind)) + " " + c.path + "\n";
    std::cout << out << std::flush;
    return 0;
  }

 private:
  std::string container_;
};

class CommitCommand final : public Command {
 public:
  std::string name() const override { return "commit"; }
  std::string summary() const override { return "Make a new image from a container's changes"; }
  std::string usage() const override { return "CONTAINER [IMAGE]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("message,m", po::value(&options_.message), "commit message (in the image's history)")(
        "author,a", po::value(&options_.author), "author (\"Name <email>\")")(
        "change,c", po::value(&options_.changes)->composing(),
        "apply an instruction to the image config: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE")(
        "quiet,q", po::bool_switch(&quiet_), "print only the image ID (the default output anyway)")(
        "pause,p", po::value<bool>()->implicit_value(true), "accepted for docker compatibility; containers are not paused");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty() || a.size() > 2) usage_error("\"hutch commit\" needs a container and, optionally, an image name");
    container_ = a[0];
    if (a.size() == 2) image_ = a[1];
  }
  int run(CommandContext& ctx) override {
    ImageRecord img = ctx.engine().commit_container(container_, image_, options_);
    std::cout << "sha256:" << img.id << std::endl;
    return 0;
  }

 private:
  CommitOptions options_;
  bool quiet_ = false;
  std::string container_, image_;
};

// podman's rule: a rootless mount lives in hutch's mount namespace, which only processes
// inside it (hutch unshare) can see, and which goes when the last of them ends.
void require_unshare(CommandContext& ctx, const std::string& verb) {
  if (ctx.session() && ctx.session()->joined_for_this_command())
    throw Error(Errc::kUsage, "\"hutch " + verb + "\" works inside the user namespace only: run it in \"hutch unshare\" "
                              "(for example: hutch unshare sh -c 'cd $(hutch mount NAME) && ls')");
}

class MountCommand final : public Command {
 public:
  std::string name() const override { return "mount"; }
  std::string summary() const override { return "Mount a container's root filesystem and print its path (inside hutch unshare)"; }
  std::string usage() const override { return "[CONTAINER...]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override { containers_ = a; }
  int run(CommandContext& ctx) override {
    require_unshare(ctx, "mount");
    if (containers_.empty()) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& m : ctx.engine().mounted_containers()) rows.push_back({m.container.id.substr(0, 12), m.path.string()});
      for (const auto& r : rows) std::cout << r[0] << " " << r[1] << "\n";
      std::cout.flush();
      return 0;
    }
    for (const auto& c : containers_) std::cout << ctx.engine().mount_container(c).path.string() << "\n";
    std::cout.flush();
    return 0;
  }

 private:
  std::vector<std::string> containers_;
};

class UnmountCommand final : public Command {
 public:
  std::string name() const override { return "unmount"; }
  std::vector<std::string> aliases() const override { return {"umount"}; }
  std::string summary() const override { return "Unmount a container's root filesystem"; }
  std::string usage() const override { return "CONTAINER [CONTAINER...]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description&) override {}
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch unmount\" needs at least one container");
    containers_ = a;
  }
  int run(CommandContext& ctx) override {
    require_unshare(ctx, "unmount");
    for (const auto& c : containers_) std::cout << ctx.engine().unmount_container(c) << "\n";
    std::cout.flush();
    return 0;
  }

 private:
  std::vector<std::string> containers_;
};

}  // namespace
std::unique_ptr<Command> make_diff_command() { return std::make_unique<DiffCommand>(); }
std::unique_ptr<Command> make_commit_command() { return std::make_unique<CommitCommand>(); }
std::unique_ptr<Command> make_mount_command() { return std::make_unique<MountCommand>(); }
std::unique_ptr<Command> make_unmount_command() { return std::make_unique<UnmountCommand>(); }
}  // namespace hutch::cli
