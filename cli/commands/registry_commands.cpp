// pull, push, login, logout, save, load: images to and from registries and archives.
#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>

#include "../command.hpp"
#include "hutch/paths.hpp"
#include "hutch/registries.hpp"
#include "hutch/unique_fd.hpp"

namespace hutch::cli {
namespace {

// --tls-verify[=true|false], as podman spells it.
std::optional<bool> parse_bool_flag(const std::string& name, const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  usage_error("--" + name + " takes true or false, not \"" + value + "\"");
}

// The registry flags pull, push and login share.
struct RegistryFlags {
  std::string tls_verify, cert_dir, authfile, creds;
  void add(po::options_description& o, bool with_creds = true) {
    o.add_options()("tls-verify", po::value(&tls_verify)->implicit_value("true"),
                    "require HTTPS and verified certificates (--tls-verify=false allows HTTP and any certificate)")(
        "cert-dir", po::value(&cert_dir), "a directory of certificates: *.crt CAs, NAME.cert/NAME.key a client pair")(
        "authfile", po::value(&authfile), "the auth.json to read credentials from (and login to write to)");
    if (with_creds) o.add_options()("creds", po::value(&creds), "USER[:PASSWORD] for the registry");
  }
  RegistryOptions options() const {
    RegistryOptions r;
    r.tls_verify = parse_bool_flag("tls-verify", tls_verify);
    r.cert_dir = cert_dir;
    r.authfile = authfile;
    if (!creds.empty()) r.creds = parse_creds_flag(creds);
    return r;
  }
};

std::string short_digest(const std::string& d) {
  auto colon = d.find(':');
  return colon == std::string::npos ? d.substr(0, 12) : d.substr(colon + 1, 12);
}

std::string mib(std::uint64_t bytes) {
  char buf[32];
  if (bytes < (1u << 20)) std::snprintf(buf, sizeof buf, "%.1fKiB", static_cast<double>(bytes) / 1024.0);
  else if (bytes < (1ull << 30)) std::snprintf(buf, sizeof buf, "%.1fMiB", static_cast<double>(bytes) / 1048576.0);
  else std::snprintf(buf, sizeof buf, "%.2fGiB", static_cast<double>(bytes) / 1073741824.0);
  return buf;
}

// A line per blob on a terminal, redrawn at most ten times a second: bytes, total and rate, as
// podman and docker show them. Nothing at all when stdout or stderr is not a terminal, or -q.
class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool enabled) : enabled_(enabled && ::isatty(1) && ::isatty(2)) {}
  ~ProgressDisplay() { finish(); }

  BlobProgressFn callback() {
    if (!enabled_) return {};
    return [this](const BlobProgress& p) { update(p); };
  }

  void finish() {
    std::lock_guard<std::mutex> g(mu_);
    if (!enabled_ || finished_) return;
    finished_ = true;
    draw();
  }

 private:
  struct Line {
    BlobProgress p;
    std::chrono::steady_clock::time_point started;
  };

  void update(const BlobProgress& p) {
    std::lock_guard<std::mutex> g(mu_);
    auto now = std::chrono::steady_clock::now();
    auto it = lines_.find(p.digest);
    if (it == lines_.end()) {
      order_.push_back(p.digest);
      it = lines_.emplace(p.digest, Line{p, now}).first;
    }
    if (it->second.p.state == BlobProgress::State::kWaiting && p.state == BlobProgress::State::kMoving) it->second.started = now;
    it->second.p = p;
    bool state_change = p.state != BlobProgress::State::kMoving;
    if (!state_change && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw();
  }

  void draw() {
    std::string out;
    if (drawn_ > 0) out += "\x1b[" + std::to_string(drawn_) + "A";
    auto now = std::chrono::steady_clock::now();
    for (const auto& d : order_) {
      const Line& l = lines_.at(d);
      std::string what = l.p.what == "config" ? "Copying config " : "Copying blob ";
      std::string text = what + short_digest(d) + " ";
      switch (l.p.state) {
        case BlobProgress::State::kWaiting: text += "waiting"; break;
        case BlobProgress::State::kSkipped: text += "skipped: already exists"; break;
        case BlobProgress::State::kUnpacking: text += "unpacking"; break;
        case BlobProgress::State::kDone: text += "done"; break;
        case BlobProgress::State::kMoving: {
          double secs = std::chrono::duration<double>(now - l.started).count();
          double rate = secs > 0.05 ? static_cast<double>(l.p.done) / secs : 0;
          int width = 24;
          int filled = l.p.total > 0 ? static_cast<int>(width * static_cast<double>(l.p.done) / static_cast<double>(l.p.total)) : 0;
          text += "[" + std::string(static_cast<size_t>(std::min(filled, width)), '=') + ">" +
                  std::string(static_cast<size_t>(width - std::min(filled, width)), ' ') + "] " + mib(l.p.done) +
                  (l.p.total >= 0 ? " / " + mib(static_cast<std::uint64_t>(l.p.total)) : "") + " " +
                  mib(static_cast<std::uint64_t>(rate)) + "/s";
          break;
        }
      }
      out += "\r" + text + "\x1b[K\n";
    }
    drawn_ = static_cast<int>(order_.size());
    (void)write_all(2, out.data(), out.size());
  }

  bool enabled_;
  bool finished_ = false;
  std::mutex mu_;
  std::map<std::string, Line> lines_;
  std::vector<std::string> order_;
  int drawn_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

class PullCommand final : public Command {
 public:
  std::string name() const override { return "pull"; }
  std::string summary() const override { return "Pull an image from a registry (or an archive)"; }
  std::string usage() const override { return "[docker://]NAME[:TAG|@DIGEST] | oci:DIR | oci-archive:FILE | docker-archive:FILE"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("quiet,q", po::bool_switch(&quiet_), "print only the image ID")(
        "platform", po::value(&platform_), "OS/ARCH[/VARIANT] to choose from a multi-platform image")(
        "os", po::value(&os_), "the OS to choose (default: linux)")(
        "arch", po::value(&arch_), "the architecture to choose (default: this host's)")(
        "variant", po::value(&variant_), "the architecture variant to choose (arm: v7, arm64: v8)");
    flags_.add(o);
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 1) usage_error("\"hutch pull\" takes one image reference");
    reference_ = a[0];
  }
  int run(CommandContext& ctx) override {
    PullOptions o;
    o.registry = flags_.options();
    o.os = os_;
    o.arch = arch_;
    o.variant = variant_;
    if (!platform_.empty()) {
      std::vector<std::string> parts;
      size_t i = 0;
      while (i <= platform_.size()) {
        size_t j = platform_.find('/', i);
        if (j == std::string::npos) j = platform_.size();
        parts.push_back(platform_.substr(i, j - i));
        i = j + 1;
      }
      if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty())
        usage_error("--platform takes OS/ARCH[/VARIANT], like linux/arm64 or linux/arm/v7, not \"" + platform_ + "\"");
      o.os = parts[0];
      o.arch = parts[1];
      if (parts.size() == 3) o.variant = parts[2];
    }
    ProgressDisplay progress(!quiet_);
    o.progress = progress.callback();
    ImageRecord rec = ctx.engine().pull_image(reference_, o);
    progress.finish();
    std::cout << rec.id << std::endl;
    return 0;
  }

 private:
  std::string reference_, platform_, os_, arch_, variant_;
  bool quiet_ = false;
  RegistryFlags flags_;
};

class PushCommand final : public Command {
 public:
  std::string name() const override { return "push"; }
  std::string summary() const override { return "Push an image to a registry (or write it to an archive)"; }
  std::string usage() const override { return "IMAGE [DESTINATION]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("quiet,q", po::bool_switch(&quiet_), "no progress")(
        "compression-format", po::value(&compression_), "compress layers with gzip (default) or zstd")(
        "digestfile", po::value(&digestfile_), "write the manifest's digest to this file");
    flags_.add(o);
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty() || a.size() > 2) usage_error("\"hutch push\" takes an image and optionally where to push it");
    image_ = a[0];
    dest_ = a.size() > 1 ? a[1] : "";
  }
  int run(CommandContext& ctx) override {
    PushOptions o;
    o.registry = flags_.options();
    o.compression = compression_;
    ProgressDisplay progress(!quiet_);
    o.progress = progress.callback();
    PushResult r = ctx.engine().push_image(image_, dest_, o);
    progress.finish();
    if (!digestfile_.empty()) write_file_atomic(digestfile_, r.manifest_digest, 0644);
    return 0;
  }

 private:
  std::string image_, dest_, compression_, digestfile_;
  bool quiet_ = false;
  RegistryFlags flags_;
};

std::string read_password_from_terminal(const std::string& prompt) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) usage_error("no password given and no terminal to ask on; use -p or --password-stdin");
  (void)write_all(fd, prompt.data(), prompt.size());
  termios old{}, quiet{};
  bool have = tcgetattr(fd, &old) == 0;
  if (have) {
    quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line += c;
  if (have) tcsetattr(fd, TCSAFLUSH, &old);
  (void)write_all(fd, "\n", 1);
  ::close(fd);
  return line;
}

class LoginCommand final : public Command {
 public:
  std::string name() const override { return "login"; }
  std::string summary() const override { return "Log in to a registry (credentials kept in auth.json)"; }
  std::string usage() const override { return "REGISTRY"; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description& o) override {
    o.add_options()("username,u", po::value(&username_), "the user name")(
        "password,p", po::value(&password_), "the password (--password-stdin keeps it out of the process list)")(
        "password-stdin", po::bool_switch(&password_stdin_), "read the password from standard input")(
        "get-login", po::bool_switch(&get_login_), "print the user name stored for the registry");
    flags_.add(o, false);
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() != 1) usage_error("\"hutch login\" takes the registry to log in to");
    registry_ = a[0];
  }
  int run(CommandContext& ctx) override {
    RegistryOptions ro = flags_.options();
    if (get_login_) {
      auto c = find_credentials(registry_, {ro.authfile, ctx.rootless().host_uid});
      if (!c) throw Error(Errc::kNotFound, "not logged in to " + registry_);
      std::cout << c->username << std::endl;
      return 0;
    }
    if (password_stdin_ && !password_.empty()) usage_error("give the password with -p or --password-stdin, not both");
    Credentials creds;
    creds.username = username_;
    if (creds.username.empty()) {
      if (password_stdin_) usage_error("--password-stdin needs the user name with -u");
      std::cout << "Username: " << std::flush;
      if (!std::getline(std::cin, creds.username) || creds.username.empty()) usage_error("no user name given; use -u USER");
    }
    if (password_stdin_) {
      std::string all((std::istreambuf_iterator<char>(std::cin)), {});
      while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) all.pop_back();
      creds.password = all;
    } else if (!password_.empty()) {
      creds.password = password_;
    } else {
      creds.password = read_password_from_terminal("Password: ");
    }
    if (creds.password.empty()) usage_error("the password is empty");
    ctx.engine().login(registry_, creds, ro);
    std::cout << "Login Succeeded!" << std::endl;
    return 0;
  }

 private:
  std::string registry_, username_, password_;
  bool password_stdin_ = false, get_login_ = false;
  RegistryFlags flags_;
};

class LogoutCommand final : public Command {
 public:
  std::string name() const override { return "logout"; }
  std::string summary() const override { return "Remove a registry's credentials from auth.json"; }
  std::string usage() const override { return "REGISTRY | --all"; }
  bool needs_user_namespace() const override { return false; }
  void add_options(po::options_description& o) override {
    o.add_options()("all,a", po::bool_switch(&all_), "remove the credentials of every registry")(
        "authfile", po::value(&authfile_), "the auth.json to change");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() > 1) usage_error("\"hutch logout\" takes one registry");
    registry_ = a.empty() ? "" : a[0];
  }
  int run(CommandContext& ctx) override {
    if (registry_.empty() && !all_) usage_error("give the registry to log out from, or --all");
    RegistryOptions ro;
    ro.authfile = authfile_;
    bool removed = ctx.engine().logout(registry_, all_, ro);
    if (all_) {
      std::cout << "Removed login credentials for all registries" << std::endl;
      return 0;
    }
    if (!removed) throw Error(Errc::kNotFound, "not logged in to " + registry_);
    std::cout << "Removed login credentials for " << registry_ << std::endl;
    return 0;
  }

 private:
  std::string registry_, authfile_;
  bool all_ = false;
};

// A temp file (in $TMPDIR) removed when this goes.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& what) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/hutch-" + what + "-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    int fd = ::mkstemp(buf.data());
    if (fd < 0) throw_errno("cannot make a temporary file in " + pattern.substr(0, pattern.rfind('/')));
    ::close(fd);
    path = buf.data();
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

void copy_fd(int from, int to, const std::string& what) {
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot read " + what);
    if (n == 0) return;
    if (!write_all(to, buf, static_cast<size_t>(n))) throw_errno("cannot write " + what);
  }
}

class SaveCommand final : public Command {
 public:
  std::string name() const override { return "save"; }
  std::string summary() const override { return "Write images to an archive (docker-archive, oci-archive) or OCI directory"; }
  std::string usage() const override { return "IMAGE..."; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("output,o", po::value(&output_), "the file (or directory for oci-dir); default standard output")(
        "format", po::value(&format_)->default_value("docker-archive"), "docker-archive, oci-archive or oci-dir")(
        "quiet,q", po::bool_switch(&quiet_), "no progress");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.empty()) usage_error("\"hutch save\" takes one or more images");
    images_ = a;
  }
  int run(CommandContext& ctx) override {
    SaveOptions o;
    o.format = format_;
    if (!output_.empty()) {
      ctx.engine().save_images(images_, output_, o);
      return 0;
    }
    if (format_ == "oci-dir") usage_error("--format oci-dir writes a directory: give it with -o DIR");
    if (::isatty(1)) usage_error("refusing to write an archive to a terminal; use -o FILE or redirect standard output");
    TempFile tmp("save");
    ::unlink(tmp.path.c_str());
    ctx.engine().save_images(images_, tmp.path, o);
    UniqueFd in(::open(tmp.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (in.get() < 0) throw_errno("cannot read " + tmp.path);
    copy_fd(in.get(), 1, "the archive to standard output");
    return 0;
  }

 private:
  std::vector<std::string> images_;
  std::string output_, format_;
  bool quiet_ = false;
};

class LoadCommand final : public Command {
 public:
  std::string name() const override { return "load"; }
  std::string summary() const override { return "Load images from an archive (docker-archive, oci-archive) or OCI directory"; }
  std::string usage() const override { return "[-i FILE]"; }
  bool needs_user_namespace() const override { return true; }
  void add_options(po::options_description& o) override {
    o.add_options()("input,i", po::value(&input_), "the archive (or OCI directory); default standard input")(
        "quiet,q", po::bool_switch(&quiet_), "no progress");
  }
  void set_arguments(const std::vector<std::string>& a) override {
    if (a.size() > 1) usage_error("\"hutch load\" takes at most one archive (or -i FILE)");
    if (a.size() == 1) input_ = a[0];
  }
  int run(CommandContext& ctx) override {
    std::optional<TempFile> tmp;
    std::string path = input_;
    if (path.empty() || path == "-") {
      if (::isatty(0)) usage_error("give the archive with -i FILE, or on standard input");
      tmp.emplace("load");
      int fd = ::open(tmp->path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (fd < 0) throw_errno("cannot write " + tmp->path);
      copy_fd(0, fd, "standard input into " + tmp->path);
      ::close(fd);
      path = tmp->path;
    }
    ProgressDisplay progress(!quiet_);
    auto images = ctx.engine().load_images(path, progress.callback());
    progress.finish();
    for (const auto& img : images) {
      if (img.names.empty()) std::cout << "Loaded image: sha256:" << img.id << "\n";
      for (const auto& n : img.names) std::cout << "Loaded image: " << n << "\n";
    }
    std::cout << std::flush;
    return 0;
  }

 private:
  std::string input_;
  bool quiet_ = false;
};

}  // namespace

std::unique_ptr<Command> make_pull_command() { return std::make_unique<PullCommand>(); }
std::unique_ptr<Command> make_push_command() { return std::make_unique<PushCommand>(); }
std::unique_ptr<Command> make_login_command() { return std::make_unique<LoginCommand>(); }
std::unique_ptr<Command> make_logout_command() { return std::make_unique<LogoutCommand>(); }
std::unique_ptr<Command> make_save_command() { return std::make_unique<SaveCommand>(); }
std::unique_ptr<Command> make_load_command() { return std::make_unique<LoadCommand>(); }

}  // namespace hutch::cli
