// docker-format seccomp profiles, checked and turned into the OCI spec's linux.seccomp, the
// way docker does it (daemon/seccomp_linux.go): rules are kept or dropped by the process's
// capabilities, the architecture and the kernel, nothing else is changed.
#include "hutch/seccomp.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <optional>

#include "hutch/error.hpp"
#include "hutch/paths.hpp"

namespace hutch {
using nlohmann::json;

namespace {

const char* const kActions[] = {"SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
                                "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};
const char* const kOperators[] = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",       "SCMP_CMP_EQ",
                                  "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"};
const char* const kArchitectures[] = {
    "SCMP_ARCH_X86",       "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",   "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",     "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",    "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",     "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",      "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB"};
constexpr int kSyscallArguments = 6;

// This build's architecture: its libseccomp name, and the names docker's profiles use for
// it in includes/excludes "arches" (Go's GOARCH, and the libseccomp-style alias).
struct HostArch {
  const char* seccomp;
  std::vector<std::string> names;
};

const HostArch& host_arch() {
#if defined(__x86_64__) && defined(__ILP32__)
  static const HostArch a{"SCMP_ARCH_X32", {"x32"}};
#elif defined(__x86_64__)
  static const HostArch a{"SCMP_ARCH_X86_64", {"amd64", "x86_64"}};
#elif defined(__i386__)
  static const HostArch a{"SCMP_ARCH_X86", {"386", "x86"}};
#elif defined(__aarch64__)
  static const HostArch a{"SCMP_ARCH_AARCH64", {"arm64", "aarch64"}};
#elif defined(__arm__)
  static const HostArch a{"SCMP_ARCH_ARM", {"arm"}};
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  static const HostArch a{"SCMP_ARCH_PPC64LE", {"ppc64le"}};
#elif defined(__powerpc64__)
  static const HostArch a{"SCMP_ARCH_PPC64", {"ppc64"}};
#elif defined(__s390x__)
  static const HostArch a{"SCMP_ARCH_S390X", {"s390x"}};
#elif defined(__riscv) && __riscv_xlen == 64
  static const HostArch a{"SCMP_ARCH_RISCV64", {"riscv64"}};
#elif defined(__loongarch64)
  static const HostArch a{"SCMP_ARCH_LOONGARCH64", {"loong64", "loongarch64"}};
#elif defined(__mips64) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  static const HostArch a{"SCMP_ARCH_MIPSEL64", {"mips64le"}};
#elif defined(__mips64)
  static const HostArch a{"SCMP_ARCH_MIPS64", {"mips64"}};
#else
  static const HostArch a{"", {}};
#endif
  return a;
}

template <size_t N>
bool one_of(const std::string& s, const char* const (&list)[N]) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

template <size_t N>
std::string listing(const char* const (&list)[N]) {
  std::string out;
  for (const char* l : list) out += (out.empty() ? "" : ", ") + std::string(l);
  return out;
}

// Checks one profile; `source` names it in every error ("seccomp profile /tmp/p.json").
class ProfileChecker {
 public:
  explicit ProfileChecker(const std::string& source) : source_(source) {}

  [[noreturn]] void bad(const std::string& field, const std::string& what) const {
    throw Error(Errc::kInvalidInput, source_ + ": " + field + ": " + what);
  }

  void check(const json& p) const {
    if (!p.is_object())
      throw Error(Errc::kInvalidInput,
                  source_ + " is not a seccomp profile: it is not a JSON object; "
                            "give a docker-format profile ({\"defaultAction\": ..., \"syscalls\": [...]})");
    if (!p.contains("defaultAction"))
      throw Error(Errc::kInvalidInput,
                  source_ + " is not a seccomp profile: it has no \"defaultAction\"; "
                            "give a docker-format profile ({\"defaultAction\": ..., \"syscalls\": [...]})");
    action(p["defaultAction"], "defaultAction");
    if (p.contains("defaultErrnoRet")) errno_value(p["defaultErrnoRet"], "defaultErrnoRet");
    if (p.contains("architectures") && !p["architectures"].is_null()) {
      auto arches = strings(p["architectures"], "architectures");
      for (size_t i = 0; i < arches.size(); ++i) architecture(arches[i], "architectures[" + std::to_string(i) + "]");
    }
    if (p.contains("archMap") && !p["archMap"].is_null()) {
      if (!p["archMap"].is_array()) bad("archMap", "is not a list");
      if (p.contains("architectures") && !p["architectures"].is_null() && !p["architectures"].empty() &&
          !p["archMap"].empty())
        bad("archMap", "the profile has both \"architectures\" and \"archMap\"; keep one of them");
      for (size_t i = 0; i < p["archMap"].size(); ++i) {
        const json& m = p["archMap"][i];
        std::string field = "archMap[" + std::to_string(i) + "]";
        if (!m.is_object() || !m.contains("architecture") || !m["architecture"].is_string())
          bad(field, "needs an \"architecture\" (\"SCMP_ARCH_X86_64\", ...)");
        architecture(m["architecture"].get<std::string>(), field + ".architecture");
        if (m.contains("subArchitectures") && !m["subArchitectures"].is_null()) {
          auto subs = strings(m["subArchitectures"], field + ".subArchitectures");
          for (size_t j = 0; j < subs.size(); ++j)
            architecture(subs[j], field + ".subArchitectures[" + std::to_string(j) + "]");
        }
      }
    }
    if (p.contains("flags") && !p["flags"].is_null()) strings(p["flags"], "flags");
    if (!p.contains("syscalls") || p["syscalls"].is_null()) return;
    if (!p["syscalls"].is_array()) bad("syscalls", "is not a list of rules");
    for (size_t i = 0; i < p["syscalls"].size(); ++i) rule(p["syscalls"][i], "syscalls[" + std::to_string(i) + "]");
  }

  // The syscall names of a rule: docker's "names", or the old single "name".
  std::vector<std::string> names(const json& r, const std::string& field) const {
    bool has_names = r.contains("names") && !r["names"].is_null();
    bool has_name = r.contains("name") && !r["name"].is_null() && !(r["name"].is_string() && r["name"].empty());
    if (has_names && has_name) bad(field, "has both \"name\" and \"names\"; keep \"names\"");
    std::vector<std::string> out;
    if (has_name) {
      if (!r["name"].is_string()) bad(field + ".name", "is not a string");
      out.push_back(r["name"].get<std::string>());
    } else if (has_names) {
      out = strings(r["names"], field + ".names");
    }
    if (out.empty()) bad(field, "names no syscall; give its syscalls in \"names\": [\"mkdir\", ...]");
    for (size_t i = 0; i < out.size(); ++i) {
      bool ok = !out[i].empty();
      for (char c : out[i]) ok &= (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_');
      if (!ok) bad(field + (has_name ? ".name" : ".names[" + std::to_string(i) + "]"), "\"" + out[i] + "\" is not a syscall name");
    }
    return out;
  }

  std::vector<std::string> strings(const json& v, const std::string& field) const {
    if (v.is_null()) return {};
    if (!v.is_array()) bad(field, "is not a list of strings");
    std::vector<std::string> out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) bad(field + "[" + std::to_string(i) + "]", "is not a string");
      out.push_back(v[i].get<std::string>());
    }
    return out;
  }

  // "4.8" -> {4, 8}
  std::pair<int, int> kernel_version(const json& v, const std::string& field) const {
    int major = 0, minor = 0;
    char rest = 0;
    if (!v.is_string() || std::sscanf(v.get<std::string>().c_str(), "%d.%d%c", &major, &minor, &rest) < 2 ||
        (rest && rest != '.') || major < 0 || minor < 0)
      bad(field, "is not a kernel version; write it as \"4.8\"");
    return {major, minor};
  }

 private:
  void action(const json& v, const std::string& field) const {
    if (!v.is_string()) bad(field, "is not an action name; use one of " + listing(kActions));
    std::string a = v.get<std::string>();
    if (!one_of(a, kActions)) bad(field, "unknown action \"" + a + "\"; use one of " + listing(kActions));
  }

  void architecture(const std::string& a, const std::string& field) const {
    if (!one_of(a, kArchitectures))
      bad(field, "unknown architecture \"" + a + "\"; use one of " + listing(kArchitectures));
  }

  void errno_value(const json& v, const std::string& field) const {
    if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() > 0xffff)
      bad(field, "is not an errno number (0 to 65535, e.g. 1 for EPERM)");
  }

  void condition(const json& c, const std::string& field) const {
    if (!c.is_object()) bad(field, "is not an argument comparison ({\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"})");
    if (!c.contains("index") || !c["index"].is_number_integer() || c["index"].get<long long>() < 0 ||
        c["index"].get<long long>() >= kSyscallArguments)
      bad(field + ".index", "is not an argument index (0 to 5)");
    for (const char* k : {"value", "valueTwo"})
      if (c.contains(k) && !c[k].is_number_unsigned() && !(c[k].is_number_integer() && c[k].get<long long>() >= 0))
        bad(field + "." + k, "is not an unsigned number");
    if (!c.contains("op") || !c["op"].is_string())
      bad(field + ".op", "is missing; use one of " + listing(kOperators));
    std::string op = c["op"].get<std::string>();
    if (!one_of(op, kOperators)) bad(field + ".op", "unknown operator \"" + op + "\"; use one of " + listing(kOperators));
  }

  void filter(const json& f, const std::string& field) const {
    if (f.is_null()) return;
    if (!f.is_object()) bad(field, "is not an object of \"caps\", \"arches\" and \"minKernel\"");
    if (f.contains("caps")) strings(f["caps"], field + ".caps");
    if (f.contains("arches")) strings(f["arches"], field + ".arches");
    if (f.contains("minKernel") && !f["minKernel"].is_null() &&
        !(f["minKernel"].is_string() && f["minKernel"].get<std::string>().empty()))
      kernel_version(f["minKernel"], field + ".minKernel");
  }

  void rule(const json& r, const std::string& field) const {
    if (!r.is_object()) bad(field, "is not a rule ({\"names\": [...], \"action\": ...})");
    names(r, field);
    if (!r.contains("action")) bad(field + ".action", "is missing; use one of " + listing(kActions));
    action(r["action"], field + ".action");
    if (r.contains("errnoRet") && !r["errnoRet"].is_null()) {
      errno_value(r["errnoRet"], field + ".errnoRet");
      std::string a = r["action"].get<std::string>();
      if (a != "SCMP_ACT_ERRNO" && a != "SCMP_ACT_TRACE")
        bad(field + ".errnoRet", "is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not " + a);
    }
    if (r.contains("args") && !r["args"].is_null()) {
      if (!r["args"].is_array()) bad(field + ".args", "is not a list of argument comparisons");
      for (size_t i = 0; i < r["args"].size(); ++i) condition(r["args"][i], field + ".args[" + std::to_string(i) + "]");
    }
    if (r.contains("includes")) filter(r["includes"], field + ".includes");
    if (r.contains("excludes")) filter(r["excludes"], field + ".excludes");
  }

  std::string source_;
};

std::string cap_name(std::string c) {
  for (auto& ch : c) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return c.rfind("CAP_", 0) == 0 ? c : "CAP_" + c;
}

std::pair<int, int> running_kernel() {
  struct utsname u {};
  int major = 0, minor = 0;
  if (uname(&u) == 0) std::sscanf(u.release, "%d.%d", &major, &minor);
  return {major, minor};
}

bool host_is_one_of(const std::vector<std::string>& arches) {
  for (const auto& a : arches)
    for (const auto& n : host_arch().names)
      if (a == n) return true;
  return false;
}

}  // namespace

json seccomp_for_spec(const json& profile, const std::vector<std::string>& capabilities, const std::string& source) {
  ProfileChecker checker(source);
  checker.check(profile);
  std::vector<std::string> caps;
  for (const auto& c : capabilities) caps.push_back(cap_name(c));
  auto has_cap = [&](const std::string& c) { return std::find(caps.begin(), caps.end(), cap_name(c)) != caps.end(); };
  const auto kernel = running_kernel();

  json out = {{"defaultAction", profile["defaultAction"]}};
  if (profile.contains("defaultErrnoRet")) out["defaultErrnoRet"] = profile["defaultErrnoRet"];
  json arches = json::array();
  if (profile.contains("architectures") && profile["architectures"].is_array())
    for (const auto& a : profile["architectures"]) arches.push_back(a);
  if (profile.contains("archMap") && profile["archMap"].is_array())
    for (const auto& m : profile["archMap"]) {
      if (m["architecture"] != host_arch().seccomp) continue;
      arches.push_back(m["architecture"]);
      if (m.contains("subArchitectures") && m["subArchitectures"].is_array())
        for (const auto& s : m["subArchitectures"]) arches.push_back(s);
      break;
    }
  out["architectures"] = arches;
  for (const char* k : {"flags", "listenerPath", "listenerMetadata"})
    if (profile.contains(k) && !profile[k].is_null()) out[k] = profile[k];

  json syscalls = json::array();
  const json rules = profile.value("syscalls", json::array());
  for (size_t i = 0; i < (rules.is_array() ? rules.size() : 0); ++i) {
    const json& r = rules[i];
    std::string field = "syscalls[" + std::to_string(i) + "]";
    const json in = r.value("includes", json::object()), ex = r.value("excludes", json::object());
    auto list = [&](const json& f, const char* k, const std::string& where) {
      return f.is_object() && f.contains(k) ? checker.strings(f[k], where + "." + k) : std::vector<std::string>{};
    };
    auto min_kernel = [&](const json& f, const std::string& where) -> std::optional<std::pair<int, int>> {
      if (!f.is_object() || !f.contains("minKernel") || f["minKernel"].is_null() ||
          (f["minKernel"].is_string() && f["minKernel"].get<std::string>().empty()))
        return std::nullopt;
      return checker.kernel_version(f["minKernel"], where + ".minKernel");
    };
    // Left out when an excluded architecture, capability or kernel applies...
    if (host_is_one_of(list(ex, "arches", field + ".excludes"))) continue;
    auto ex_caps = list(ex, "caps", field + ".excludes");
    if (std::any_of(ex_caps.begin(), ex_caps.end(), has_cap)) continue;
    if (auto k = min_kernel(ex, field + ".excludes"); k && kernel >= *k) continue;
    // ...or when what it includes does not.
    auto in_arches = list(in, "arches", field + ".includes");
    if (!in_arches.empty() && !host_is_one_of(in_arches)) continue;
    auto in_caps = list(in, "caps", field + ".includes");
    if (!std::all_of(in_caps.begin(), in_caps.end(), has_cap)) continue;
    if (auto k = min_kernel(in, field + ".includes"); k && kernel < *k) continue;

    json call = {{"names", checker.names(r, field)}, {"action", r["action"]}};
    if (r.contains("errnoRet") && !r["errnoRet"].is_null()) call["errnoRet"] = r["errnoRet"];
    if (r.contains("args") && r["args"].is_array() && !r["args"].empty()) {
      json args = json::array();
      for (const auto& a : r["args"]) {
        json arg = {{"index", a["index"]}, {"value", a.value("value", 0ull)}, {"op", a["op"]}};
        if (a.value("valueTwo", 0ull) != 0) arg["valueTwo"] = a["valueTwo"];
        args.push_back(arg);
      }
      call["args"] = args;
    }
    syscalls.push_back(call);
  }
  out["syscalls"] = syscalls;
  return out;
}

json read_seccomp_profile(const std::string& file) {
  const std::string source = "seccomp profile " + file;
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error& e) {
    if (e.code() == Errc::kNotFound)
      throw Error(Errc::kNotFound, "cannot read the seccomp profile " + file +
                                       ": no such file; give the path of a docker-format profile "
                                       "(--security-opt seccomp=FILE), or seccomp=unconfined for none");
    throw Error(e.code(), std::string("cannot read the seccomp profile: ") + e.what());
  }
  json profile;
  try {
    profile = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(Errc::kInvalidInput, source + " is not valid JSON (" + e.what() +
                                         "); give a docker-format profile such as docker's default.json");
  }
  ProfileChecker(source).check(profile);
  return profile;
}

}  // namespace hutch
