// Registry credentials in auth.json (containers-auth.json(5)) and docker's config.json. Nothing
// here may put a secret into an error message: errors name files, keys and positions only.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "hutch/digest.hpp"
#include "hutch/error.hpp"
#include "hutch/paths.hpp"
#include "hutch/registries.hpp"

namespace hutch {
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : "";
}

fs::path xdg_auth_file(uid_t uid) { return xdg_config_home(uid) / "containers" / "auth.json"; }

fs::path docker_config_file(uid_t uid) {
  if (std::string d = env("DOCKER_CONFIG"); !d.empty()) return fs::path(d) / "config.json";
  return home_dir(uid) / ".docker" / "config.json";
}

// The file's JSON object, or nullopt when it does not exist.
std::optional<Json> read_auth_file(const fs::path& file) {
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error& e) {
    struct stat st;
    if (::stat(file.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
    throw Error(Errc::kConfig, "cannot read credentials file " + file.string() + ": " + e.what());
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return Json::object();
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::parse_error& e) {
    // e.what() quotes the text around the error, which may be a secret: give the position only.
    size_t at = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; ++i) {
      if (text[i] == '\n') ++line, col = 1;
      else ++col;
    }
    throw Error(Errc::kConfig, file.string() + ":" + std::to_string(line) + ":" + std::to_string(col) +
                                   ": not valid JSON; fix or remove the file (hutch login writes a new one)");
  }
  if (!j.is_object()) throw Error(Errc::kConfig, file.string() + ": not a JSON object");
  for (const char* key : {"auths", "credHelpers"})
    if (j.contains(key) && !j[key].is_object())
      throw Error(Errc::kConfig, file.string() + ": \"" + key + "\" is not a JSON object");
  if (j.contains("credsStore") && !j["credsStore"].is_string())
    throw Error(Errc::kConfig, file.string() + ": \"credsStore\" is not a string");
  return j;
}

// docker.io's aliases, as containers/image normalizes them.
std::string normalize_registry(const std::string& host) {
  if (host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io") return "docker.io";
  return host;
}

// A key as a registry host: "https://host/v1/" and "http://host" mean "host".
std::string normalize_key(const std::string& key) {
  std::string stripped = key;
  for (const char* scheme : {"http://", "https://"})
    if (stripped.rfind(scheme, 0) == 0) {
      stripped = stripped.substr(std::strlen(scheme));
      stripped = stripped.substr(0, stripped.find('/'));
      break;
    }
  return normalize_registry(stripped);
}

[[noreturn]] void unsupported_helper(const fs::path& file, const std::string& what, const std::string& registry) {
  throw Error(Errc::kUnsupported,
              file.string() + ": the credentials for " + registry + " are kept by a credential helper (" + what +
                  "), which hutch does not run; pass --creds, use --authfile, or log in with hutch login");
}

// The credentials of `entry` (key `key` of `file`), or nullopt for an empty entry (docker writes
// "host": {} when a credential store holds them).
std::optional<Credentials> decode_entry(const fs::path& file, const std::string& key, const Json& entry) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::kConfig, file.string() + ": the entry \"" + key + "\" in \"auths\" " + why);
  };
  if (!entry.is_object()) throw bad("is not a JSON object");
  Credentials c;
  if (auto a = entry.find("auth"); a != entry.end() && !a->is_null()) {
    if (!a->is_string()) throw bad("has an \"auth\" that is not a string");
    std::string encoded = a->get<std::string>();
    if (!encoded.empty()) {
      auto decoded = base64_decode(encoded);
      if (!decoded) throw bad("has an \"auth\" that is not base64");
      auto colon = decoded->find(':');
      if (colon == std::string::npos) throw bad("has an \"auth\" that is not base64 of user:password");
      c.username = decoded->substr(0, colon);
      c.password = decoded->substr(colon + 1);
      while (!c.password.empty() && c.password.back() == '\0') c.password.pop_back();
    }
  }
  if (auto t = entry.find("identitytoken"); t != entry.end() && !t->is_null()) {
    if (!t->is_string()) throw bad("has an \"identitytoken\" that is not a string");
    c.identity_token = t->get<std::string>();
  }
  if (c.empty()) return std::nullopt;
  return c;
}

// "host/ns/name", "host/ns", "host": the keys that apply to `repository`, most specific first.
std::vector<std::string> keys_for(const std::string& repository) {
  std::vector<std::string> keys;
  std::string k = repository;
  while (true) {
    keys.push_back(k);
    auto slash = k.rfind('/');
    if (slash == std::string::npos) break;
    k = k.substr(0, slash);
  }
  return keys;
}

std::string host_of(const std::string& key) { return key.substr(0, key.find('/')); }

// A key login and logout accept: "host[:port]" or "host[:port]/path", no scheme, tag or digest.
void check_key(const std::string& key) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::kUsage, "\"" + key + "\" is not a registry (host[:port] or host[:port]/path): " + why);
  };
  if (key.empty()) throw bad("it is empty");
  if (key.rfind("http://", 0) == 0 || key.rfind("https://", 0) == 0) throw bad("leave out the http[s]:// scheme");
  if (key.find('@') != std::string::npos) throw bad("it has a digest");
  std::string path = key.find('/') == std::string::npos ? "" : key.substr(key.find('/') + 1);
  if (path.find(':') != std::string::npos) throw bad("it has a tag");
  if (key.find_first_of(" \t\n\"\\") != std::string::npos || key.back() == '/' || host_of(key).empty())
    throw bad("it is malformed");
}

void write_auth_file(const fs::path& file, const Json& j) {
  make_dirs(file.parent_path(), 0700);
  write_file_atomic(file, j.dump(1, '\t') + "\n", 0600, Durability::kSynced);
}

}  // namespace

fs::path auth_file_for_write(const AuthFileOptions& options) {
  if (!options.authfile.empty()) return options.authfile;
  if (std::string f = env("REGISTRY_AUTH_FILE"); !f.empty()) return f;
  if (std::string r = env("XDG_RUNTIME_DIR"); !r.empty()) return fs::path(r) / "containers" / "auth.json";
  return xdg_auth_file(options.uid);
}

std::vector<fs::path> auth_files_for_read(const AuthFileOptions& options) {
  std::vector<fs::path> files{auth_file_for_write(options)};
  if (options.authfile.empty() && xdg_auth_file(options.uid) != files[0]) files.push_back(xdg_auth_file(options.uid));
  fs::path docker = docker_config_file(options.uid);
  if (docker != files[0]) files.push_back(docker);
  return files;
}

std::optional<Credentials> find_credentials(const std::string& repository, const AuthFileOptions& options) {
  std::string host = host_of(repository);
  std::string registry = normalize_registry(host);
  for (const auto& file : auth_files_for_read(options)) {
    auto j = read_auth_file(file);
    if (!j) continue;
    if (j->contains("credHelpers"))
      for (const auto& [k, v] : (*j)["credHelpers"].items())
        if (normalize_key(k) == registry) unsupported_helper(file, "\"credHelpers\" key \"" + k + "\"", host);
    if (!j->contains("auths")) continue;
    const Json& auths = (*j)["auths"];
    bool empty_entry = false;
    // Repository and namespace keys match exactly, most specific first.
    for (const auto& key : keys_for(repository)) {
      auto e = auths.find(key);
      if (e == auths.end()) continue;
      if (auto c = decode_entry(file, key, *e)) return c;
      empty_entry = true;
    }
    // Then the registry under another spelling: docker's "https://index.docker.io/v1/", "http://host".
    for (const auto& [k, v] : auths.items()) {
      if (k == host || normalize_key(k) != registry) continue;
      if (auto c = decode_entry(file, k, v)) return c;
      empty_entry = true;
    }
    if (empty_entry && j->contains("credsStore"))
      unsupported_helper(file, "\"credsStore\" \"" + (*j)["credsStore"].get<std::string>() + "\"", host);
  }
  return std::nullopt;
}

fs::path store_credentials(const std::string& key, const Credentials& credentials, const AuthFileOptions& options) {
  check_key(key);
  fs::path file = auth_file_for_write(options);
  Json j = read_auth_file(file).value_or(Json::object());
  std::string registry = normalize_registry(host_of(key));
  if (j.contains("credHelpers"))
    for (const auto& [k, v] : j["credHelpers"].items())
      if (normalize_key(k) == registry)
        throw Error(Errc::kUnsupported, file.string() + ": \"credHelpers\" key \"" + k +
                                            "\" hands these credentials to a credential helper, which hutch does "
                                            "not run; remove that key, or use --authfile");
  Json entry = Json::object();
  if (!credentials.username.empty() || !credentials.password.empty())
    entry["auth"] = base64_encode(credentials.username + ":" + credentials.password);
  if (!credentials.identity_token.empty()) entry["identitytoken"] = credentials.identity_token;
  if (!j.contains("auths")) j["auths"] = Json::object();
  j["auths"][key] = entry;
  write_auth_file(file, j);
  return file;
}

bool remove_credentials(const std::string& key, bool all, const AuthFileOptions& options) {
  if (!all) check_key(key);
  fs::path file = auth_file_for_write(options);
  auto j = read_auth_file(file);
  if (!j || !j->contains("auths")) return false;
  Json& auths = (*j)["auths"];
  bool removed = false;
  if (all) {
    removed = !auths.empty();
    auths = Json::object();
  } else if (auths.contains(key)) {
    auths.erase(key);
    removed = true;
  } else if (key.find('/') == std::string::npos) {
    // A registry host also takes docker's legacy spellings of it with it.
    std::vector<std::string> legacy;
    for (const auto& [k, v] : auths.items())
      if (normalize_key(k) == normalize_registry(key)) legacy.push_back(k);
    for (const auto& k : legacy) auths.erase(k);
    removed = !legacy.empty();
  }
  if (removed) write_auth_file(file, *j);
  return removed;
}

Credentials parse_creds_flag(const std::string& value) {
  auto colon = value.find(':');
  Credentials c;
  c.username = value.substr(0, colon);
  if (colon != std::string::npos) c.password = value.substr(colon + 1);
  if (c.username.empty()) throw Error(Errc::kUsage, "--creds needs USER[:PASSWORD], and the user name is empty");
  return c;
}

}  // namespace hutch
