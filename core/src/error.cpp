#include "hutch/error.hpp"

#include <cerrno>
#include <cstring>

namespace hutch {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::kInternal: return "internal";
    case Errc::kUsage: return "usage";
    case Errc::kInvalidInput: return "invalid input";
    case Errc::kNotFound: return "not found";
    case Errc::kAlreadyExists: return "already exists";
    case Errc::kPermission: return "permission";
    case Errc::kConfig: return "config";
    case Errc::kPlugin: return "plugin";
    case Errc::kSystem: return "system";
    case Errc::kRuntime: return "runtime";
    case Errc::kNotExecutable: return "not executable";
    case Errc::kCommandNotFound: return "command not found";
    case Errc::kUnauthorized: return "unauthorized";
    case Errc::kNetwork: return "network";
    case Errc::kCorrupt: return "corrupt";
    case Errc::kUnsupported: return "unsupported";
  }
  return "unknown";
}

Error::Error(Errc code, std::string message) : std::runtime_error(std::move(message)), code_(code) {}

Error& Error::with_context(std::string what) & {
  context_.insert(context_.begin(), std::move(what));
  return *this;
}

Error&& Error::with_context(std::string what) && {
  context_.insert(context_.begin(), std::move(what));
  return std::move(*this);
}

std::string Error::full_message() const {
  std::string out;
  for (const auto& c : context_) out += c + ": ";
  return out + what();
}

Error system_error(const std::string& what, int err) {
  Errc code = Errc::kSystem;
  if (err == EACCES || err == EPERM) code = Errc::kPermission;
  if (err == ENOENT) code = Errc::kNotFound;
  return Error(code, what + ": " + std::strerror(err));
}

void throw_errno(const std::string& what) { throw system_error(what, errno); }

}  // namespace hutch
