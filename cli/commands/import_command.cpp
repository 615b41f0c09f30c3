#include <fcntl.h>
#include <unistd.h>

#include <iostream>

#include "../command.hpp"

namespace hutch::cli {
namespace {

class ImportCommand final : public Command {
 public:
  std::string name() const override { return "import"; }
  std::string summary() const override { return "Create an image from a root filesystem tarball"; }
  std::string usage() const override { return "TARBALL|- [NAME[:TAG]]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("change,c", po::value(&changes_)->composing(),
                    "apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER")(
        "message,m", po::value(&message_), "a comment for the image's history")(
        "quiet,q", po::bool_switch(&quiet_), "print only the image ID");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty() || a.size() > 2) usage_error("\"hutch import\" takes a tarball and an image name");
    source_ = a[0];
    reference_ = a.size() > 1 ? a[1] : "";
  }
  int run(CommandContext& ctx) override {
    if (reference_.empty()) usage_error("give the new image a name: hutch import " + source_ + " NAME[:TAG]");
    int fd = 0;
    std::string display = "standard input";
    if (source_ != "-") {
      fd = ::open(source_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) throw_errno("cannot open the tarball " + source_);
      display = source_;
    }
    ImportOptions opts{changes_, message_};
    auto rec = ctx.engine().import_image(fd, display, reference_, opts);
    if (fd != 0) ::close(fd);
    std::cout << "sha256:" << rec.id << std::endl;
    return 0;
  }

 private:
  std::string source_, reference_, message_;
  std::vector<std::string> changes_;
  bool quiet_ = false;
};

}  // namespace
std::unique_ptr<Command> make_import_command() { return std::make_unique<ImportCommand>(); }
}  // namespace hutch::cli
