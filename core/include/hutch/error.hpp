// One error type for the whole engine: a code from one category and a chain of context.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#define HUTCH_API __attribute__((visibility("default")))

namespace hutch {

enum class Errc {
  kInternal = 1,
  kUsage,          // bad command line
  kInvalidInput,   // bad file or argument content (tarball, config, reference)
  kNotFound,       // image, container, plugin, file
  kAlreadyExists,
  kPermission,
  kConfig,         // bad configuration file
  kPlugin,         // plugin not loadable, ABI mismatch, factory failure
  kSystem,         // a syscall failed
  kRuntime,        // the container could not be created or started
  kNotExecutable,  // 126
  kCommandNotFound, // 127
  kUnauthorized,   // a registry refused the credentials (or asked for some)
  kNetwork,        // a registry or server could not be reached, or broke off
  kCorrupt,        // content does not match its digest or size
  kUnsupported     // a format, media type or operation this build does not handle
};

const char* errc_name(Errc code);

class HUTCH_API Error : public std::runtime_error {
 public:
  Error(Errc code, std::string message);
  Errc code() const noexcept { return code_; }
  // The outermost context first, as a user reads it: "running busybox: creating rootfs: ..."
  const std::vector<std::string>& context() const noexcept { return context_; }
  Error& with_context(std::string what) &;
  Error&& with_context(std::string what) &&;
  std::string full_message() const;

 private:
  Errc code_;
  std::vector<std::string> context_;
};

// An Error from errno: "<what>: <strerror>".
HUTCH_API Error system_error(const std::string& what, int err);
[[noreturn]] HUTCH_API void throw_errno(const std::string& what);

}  // namespace hutch
