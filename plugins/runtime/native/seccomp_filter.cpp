#include "seccomp_filter.hpp"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "hutch/digest.hpp"
#include "hutch/error.hpp"
#include "hutch/paths.hpp"

namespace hutch::runtime::native {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kSyscallArguments = 6;
constexpr const char* kField = "linux.seccomp";

[[noreturn]] void bad(const std::string& field, const std::string& what) {
  throw Error(Errc::kInvalidInput, "config.json: " + field + ": " + what);
}

// An action as libseccomp encodes it; `ret` is the errno (ERRNO) or message number (TRACE).
uint32_t action_value(const json& name, const json& ret, const std::string& field, const std::string& ret_field) {
  static const char* const kKnown =
      "SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, "
      "SCMP_ACT_TRAP, SCMP_ACT_LOG, SCMP_ACT_TRACE";
  if (!name.is_string()) bad(field, "is not an action name; use one of " + std::string(kKnown));
  std::string a = name.get<std::string>();
  uint16_t n = EPERM;
  if (!ret.is_null()) {
    if (!ret.is_number_integer() || ret.get<long long>() < 0 || ret.get<long long>() > 0xffff)
      bad(ret_field, "is not an errno number (0 to 65535, e.g. 1 for EPERM)");
    n = static_cast<uint16_t>(ret.get<long long>());
  }
  if (a == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (a == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(n);
  if (a == "SCMP_ACT_KILL" || a == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (a == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (a == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (a == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (a == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(ret.is_null() ? 0 : n);
  if (a == "SCMP_ACT_NOTIFY")
    bad(field, "SCMP_ACT_NOTIFY needs a seccomp agent, which the native runtime does not support; use crun or runc");
  bad(field, "unknown action \"" + a + "\"; use one of " + std::string(kKnown));
}

scmp_compare operator_value(const json& op, const std::string& field) {
  static const std::pair<const char*, scmp_compare> kOps[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  std::string known;
  for (const auto& [n, v] : kOps) {
    if (op.is_string() && op.get<std::string>() == n) return v;
    known += (known.empty() ? "" : ", ") + std::string(n);
  }
  if (!op.is_string()) bad(field, "is missing; use one of " + known);
  bad(field, "unknown operator \"" + op.get<std::string>() + "\"; use one of " + known);
}

uint64_t unsigned_value(const json& c, const char* key, const std::string& field) {
  if (!c.contains(key) || c[key].is_null()) return 0;
  const json& v = c[key];
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<long long>() >= 0) return static_cast<uint64_t>(v.get<long long>());
  bad(field + "." + key, "is not an unsigned number");
}

uint32_t architecture_value(const json& a, const std::string& field) {
#define HUTCH_ARCH(name) {#name, name}
  static const std::pair<const char*, uint32_t> kArches[] = {
      HUTCH_ARCH(SCMP_ARCH_X86),       HUTCH_ARCH(SCMP_ARCH_X86_64),    HUTCH_ARCH(SCMP_ARCH_X32),
      HUTCH_ARCH(SCMP_ARCH_ARM),       HUTCH_ARCH(SCMP_ARCH_AARCH64),   HUTCH_ARCH(SCMP_ARCH_MIPS),
      HUTCH_ARCH(SCMP_ARCH_MIPS64),    HUTCH_ARCH(SCMP_ARCH_MIPS64N32), HUTCH_ARCH(SCMP_ARCH_MIPSEL),
      HUTCH_ARCH(SCMP_ARCH_MIPSEL64),  HUTCH_ARCH(SCMP_ARCH_MIPSEL64N32), HUTCH_ARCH(SCMP_ARCH_PPC),
      HUTCH_ARCH(SCMP_ARCH_PPC64),     HUTCH_ARCH(SCMP_ARCH_PPC64LE),   HUTCH_ARCH(SCMP_ARCH_S390),
      HUTCH_ARCH(SCMP_ARCH_S390X),     HUTCH_ARCH(SCMP_ARCH_PARISC),    HUTCH_ARCH(SCMP_ARCH_PARISC64),
      HUTCH_ARCH(SCMP_ARCH_RISCV64),
#ifdef SCMP_ARCH_LOONGARCH64
      HUTCH_ARCH(SCMP_ARCH_LOONGARCH64),
#endif
  };
#undef HUTCH_ARCH
  std::string known;
  for (const auto& [n, v] : kArches) {
    if (a.is_string() && a.get<std::string>() == n) return v;
    known += (known.empty() ? "" : ", ") + std::string(n);
  }
  bad(field, (a.is_string() ? "unknown architecture \"" + a.get<std::string>() + "\"" : std::string("is not a string")) +
                 " (for the libseccomp of this native runtime); use one of " + known);
}

enum scmp_filter_attr flag_attribute(const json& f, const std::string& field) {
  if (f.is_string()) {
    std::string s = f.get<std::string>();
    if (s == "SECCOMP_FILTER_FLAG_TSYNC") return SCMP_FLTATR_CTL_TSYNC;
    if (s == "SECCOMP_FILTER_FLAG_LOG") return SCMP_FLTATR_CTL_LOG;
    if (s == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") return SCMP_FLTATR_CTL_SSB;
  }
  bad(field, "unknown flag " + f.dump() +
                 "; the native runtime knows SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, "
                 "SECCOMP_FILTER_FLAG_SPEC_ALLOW");
}

std::vector<std::string> syscall_names(const json& r, const std::string& field) {
  if (!r.contains("names") || !r["names"].is_array() || r["names"].empty())
    bad(field + ".names", "is missing; give the syscalls of the rule as \"names\": [\"mkdir\", ...]");
  std::vector<std::string> out;
  for (size_t i = 0; i < r["names"].size(); ++i) {
    const json& n = r["names"][i];
    bool ok = n.is_string() && !n.get<std::string>().empty();
    if (ok)
      for (char c : n.get<std::string>())
        ok &= std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_';
    if (!ok) bad(field + ".names[" + std::to_string(i) + "]", n.dump() + " is not a syscall name");
    out.push_back(n.get<std::string>());
  }
  return out;
}

std::vector<scmp_arg_cmp> conditions(const json& r, const std::string& field) {
  std::vector<scmp_arg_cmp> out;
  if (!r.contains("args") || r["args"].is_null()) return out;
  if (!r["args"].is_array()) bad(field + ".args", "is not a list of argument comparisons");
  for (size_t i = 0; i < r["args"].size(); ++i) {
    const json& c = r["args"][i];
    std::string f = field + ".args[" + std::to_string(i) + "]";
    if (!c.is_object()) bad(f, "is not an argument comparison ({\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"})");
    if (!c.contains("index") || !c["index"].is_number_integer() || c["index"].get<long long>() < 0 ||
        c["index"].get<long long>() >= kSyscallArguments)
      bad(f + ".index", "is not an argument index (0 to 5)");
    scmp_arg_cmp cmp{};
    cmp.arg = static_cast<unsigned>(c["index"].get<long long>());
    cmp.op = operator_value(c.contains("op") ? c["op"] : json(), f + ".op");
    cmp.datum_a = unsigned_value(c, "value", f);
    cmp.datum_b = unsigned_value(c, "valueTwo", f);
    out.push_back(cmp);
  }
  return out;
}

// Walks the object once: checks everything, and when `ctx` is given, builds the filter.
void walk(const json& s, scmp_filter_ctx ctx) {
  if (!s.is_object()) bad(kField, "is not an object");
  if (!s.contains("defaultAction")) bad(std::string(kField) + ".defaultAction", "is missing");
  const std::string top = kField;
  uint32_t default_action =
      action_value(s["defaultAction"], s.value("defaultErrnoRet", json()), top + ".defaultAction", top + ".defaultErrnoRet");
  if (s.contains("architectures") && !s["architectures"].is_null()) {
    if (!s["architectures"].is_array()) bad(std::string(kField) + ".architectures", "is not a list");
    for (size_t i = 0; i < s["architectures"].size(); ++i) {
      uint32_t arch = architecture_value(s["architectures"][i], std::string(kField) + ".architectures[" + std::to_string(i) + "]");
      if (ctx) {
        int rc = seccomp_arch_add(ctx, arch);
        if (rc < 0 && rc != -EEXIST)
          bad(std::string(kField) + ".architectures[" + std::to_string(i) + "]",
              "cannot add it to the filter: " + std::string(strerror(-rc)));
      }
    }
  }
  if (s.contains("flags") && !s["flags"].is_null()) {
    if (!s["flags"].is_array()) bad(std::string(kField) + ".flags", "is not a list");
    for (size_t i = 0; i < s["flags"].size(); ++i) {
      auto attr = flag_attribute(s["flags"][i], std::string(kField) + ".flags[" + std::to_string(i) + "]");
      if (ctx && seccomp_attr_set(ctx, attr, 1) < 0)
        bad(std::string(kField) + ".flags[" + std::to_string(i) + "]", "this kernel or libseccomp does not support it");
    }
  }
  if (!s.contains("syscalls") || s["syscalls"].is_null()) return;
  if (!s["syscalls"].is_array()) bad(std::string(kField) + ".syscalls", "is not a list of rules");
  for (size_t i = 0; i < s["syscalls"].size(); ++i) {
    const json& r = s["syscalls"][i];
    std::string field = std::string(kField) + ".syscalls[" + std::to_string(i) + "]";
    if (!r.is_object()) bad(field, "is not a rule ({\"names\": [...], \"action\": ...})");
    auto names = syscall_names(r, field);
    if (!r.contains("action")) bad(field + ".action", "is missing");
    uint32_t action = action_value(r["action"], r.value("errnoRet", json()), field + ".action", field + ".errnoRet");
    auto conds = conditions(r, field);
    if (!ctx || action == default_action) continue;  // libseccomp refuses rules that change nothing
    // Two comparisons of one argument cannot be ANDed by libseccomp: then each becomes a rule
    // of its own (ORed), as runc does.
    bool split = false;
    for (size_t a = 0; a < conds.size(); ++a)
      for (size_t b = a + 1; b < conds.size(); ++b) split |= conds[a].arg == conds[b].arg;
    for (const auto& name : names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // not a syscall this libseccomp knows
      auto add = [&](unsigned count, const scmp_arg_cmp* c) {
        int rc = seccomp_rule_add_array(ctx, action, nr, count, c);
        if (rc < 0) bad(field, "cannot add the rule for \"" + name + "\": " + strerror(-rc));
      };
      if (!split) {
        add(static_cast<unsigned>(conds.size()), conds.data());
      } else {
        for (const auto& c : conds) add(1, &c);
      }
    }
  }
}

}  // namespace

void check_seccomp(const json& seccomp) { walk(seccomp, nullptr); }

SeccompFilter::SeccompFilter(const json& seccomp) {
  check_seccomp(seccomp);  // every error before anything is allocated
  uint32_t default_action = action_value(seccomp["defaultAction"], seccomp.value("defaultErrnoRet", json()),
                                         "linux.seccomp.defaultAction", "linux.seccomp.defaultErrnoRet");
  scmp_filter_ctx ctx = seccomp_init(default_action);
  if (!ctx) throw Error(Errc::kRuntime, "cannot make a seccomp filter (seccomp_init failed): is seccomp enabled in this kernel?");
  ctx_ = ctx;
  // Only what the spec asks: no_new_privs is the spec's noNewPrivileges, not libseccomp's
  // default; and errors of the kernel as they are, not -ECANCELED.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
  try {
    walk(seccomp, ctx);
  } catch (...) {
    seccomp_release(ctx);
    ctx_ = nullptr;
    throw;
  }
}

SeccompFilter::SeccompFilter(const json& seccomp, const fs::path& cache_dir) {
  check_seccomp(seccomp);
  const scmp_version* v = seccomp_version();
  std::string key = sha256_hex(seccomp.dump() + "\nlibseccomp " + std::to_string(v->major) + "." +
                               std::to_string(v->minor) + "." + std::to_string(v->micro));
  fs::path file = cache_dir / (key + ".bpf");
  for (const auto& f : seccomp.value("flags", json::array())) {
    std::string name = f.get<std::string>();
    if (name == "SECCOMP_FILTER_FLAG_TSYNC") flags_ |= SECCOMP_FILTER_FLAG_TSYNC;
    else if (name == "SECCOMP_FILTER_FLAG_LOG") flags_ |= SECCOMP_FILTER_FLAG_LOG;
    else if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") flags_ |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  }
  std::string bytes;
  try {
    bytes = read_file(file);
  } catch (const Error&) {
  }
  if (!bytes.empty() && bytes.size() % sizeof(sock_filter) == 0) {
    program_.resize(bytes.size() / sizeof(sock_filter));
    std::memcpy(program_.data(), bytes.data(), bytes.size());
    return;
  }
  SeccompFilter built(seccomp);
  make_dirs(cache_dir, 0700);
  fs::path tmp = cache_dir / (key + ".tmp-" + std::to_string(::getpid()));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    int rc = seccomp_export_bpf(static_cast<scmp_filter_ctx>(built.ctx_), fd);
    ::close(fd);
    if (rc != 0 || ::rename(tmp.c_str(), file.c_str()) != 0) ::unlink(tmp.c_str());
  }
  std::swap(ctx_, built.ctx_);  // use what was built this time, cached or not
}

SeccompFilter::~SeccompFilter() {
  if (ctx_) seccomp_release(static_cast<scmp_filter_ctx>(ctx_));
}

bool SeccompFilter::load() const noexcept {
  if (!program_.empty()) {
    struct sock_fprog prog {};
    prog.len = static_cast<unsigned short>(program_.size());
    prog.filter = const_cast<sock_filter*>(program_.data());
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags_, &prog) == 0;
  }
  int rc = seccomp_load(static_cast<scmp_filter_ctx>(ctx_));
  if (rc < 0) {
    errno = -rc;
    return false;
  }
  return true;
}

}  // namespace hutch::runtime::native
