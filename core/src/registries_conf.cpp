// registries.conf (v2), read as containers/image's sysregistriesv2 reads it, but strictly:
// an unknown key or a bad value is an error naming the file and line.
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include <toml++/toml.h>

#include "hutch/error.hpp"
#include "hutch/image_ref.hpp"
#include "hutch/paths.hpp"
#include "hutch/registries.hpp"

namespace hutch {
namespace fs = std::filesystem;

namespace {

std::string where(const std::string& source, const toml::source_region& region) {
  return source + ":" + std::to_string(region.begin.line);
}

[[noreturn]] void fail_at(const std::string& at, const std::string& msg) { throw Error(Errc::kConfig, at + ": " + msg); }

[[noreturn]] void fail(const std::string& source, const toml::node& node, const std::string& msg) {
  fail_at(where(source, node.source()), msg);
}

std::string get_string(const std::string& source, const std::string& key, const toml::node& node) {
  auto v = node.value_exact<std::string>();
  if (!v) fail(source, node, "\"" + key + "\" must be a string");
  return *v;
}

bool get_bool(const std::string& source, const std::string& key, const toml::node& node) {
  auto v = node.value_exact<bool>();
  if (!v) fail(source, node, "\"" + key + "\" must be true or false");
  return *v;
}

// Keys hutch knows but does not implement: refused with a reason, not as unknown.
const std::map<std::string, std::string>& unsupported_keys() {
  static const std::map<std::string, std::string> keys{
      {"proxy", "hutch does not use a proxy per registry"},
      {"additional-layer-store-auth-helper", "hutch has no additional layer store"},
  };
  return keys;
}

void check_keys(const std::string& source, const toml::table& table, const std::string& section,
                const std::set<std::string>& allowed) {
  for (const auto& [k, v] : table) {
    std::string key(k.str());
    if (allowed.count(key)) continue;
    std::string in = section.empty() ? "the top level" : section;
    if (auto u = unsupported_keys().find(key); u != unsupported_keys().end())
      fail_at(where(source, k.source()), "\"" + key + "\" in " + in + " is not supported (" + u->second +
                                             "); remove it, or point HUTCH_REGISTRIES_CONF at a file without it");
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail_at(where(source, k.source()), "unknown key \"" + key + "\" in " + in + "; known keys: " + list);
  }
}

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9]+ separated by one '.', one or two '_', or any number of '-' (docker's path component).
bool valid_path_component(const std::string& c) {
  if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (lower_alnum(ch) || ch == '-') continue;
    if (ch == '.' && lower_alnum(c[i + 1])) continue;
    if (ch == '_') {
      if (c[i + 1] == '_') ++i;
      if (i + 1 < c.size() && lower_alnum(c[i + 1])) continue;
    }
    return false;
  }
  return true;
}

bool valid_path(const std::string& path) {
  if (path.empty()) return false;
  size_t i = 0;
  while (true) {
    size_t j = path.find('/', i);
    if (!valid_path_component(path.substr(i, j == std::string::npos ? std::string::npos : j - i))) return false;
    if (j == std::string::npos) return true;
    i = j + 1;
  }
}

// host[:port] as docker's reference.DomainRegexp has it: DNS labels separated by '.', or an
// IPv6 address in brackets, and an optional numeric port.
bool valid_domain(const std::string& d) {
  if (d.empty()) return false;
  std::string host = d, port;
  bool has_port = false;
  if (d[0] == '[') {
    auto close = d.find(']');
    if (close == std::string::npos || close == 1) return false;
    for (char c : d.substr(1, close - 1))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
    std::string after = d.substr(close + 1);
    if (!after.empty() && after[0] != ':') return false;
    has_port = !after.empty();
    port = has_port ? after.substr(1) : "";
    host.clear();
  } else if (auto colon = d.find(':'); colon != std::string::npos) {
    has_port = true;
    port = d.substr(colon + 1);
    host = d.substr(0, colon);
  }
  if (has_port && port.empty()) return false;
  for (char c : port)
    if (c < '0' || c > '9') return false;
  if (d[0] == '[') return true;
  if (host.empty()) return false;
  size_t i = 0;
  while (true) {
    size_t j = host.find('.', i);
    std::string label = host.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (label.empty() || !std::isalnum(static_cast<unsigned char>(label.front())) ||
        !std::isalnum(static_cast<unsigned char>(label.back())))
      return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    if (j == std::string::npos) return true;
    i = j + 1;
  }
}

bool valid_tag(const std::string& t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t[0])) return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

bool valid_digest(const std::string& d) {
  auto colon = d.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == d.size()) return false;
  for (char c : d.substr(0, colon))
    if (!lower_alnum(c) && c != '+' && c != '.' && c != '_' && c != '-') return false;
  for (char c : d.substr(colon + 1))
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

// Whether `value` is host[:port][/path][(:tag|@digest)] (`allow_suffix`) or host[:port][/path].
bool valid_location(const std::string& value, bool allow_suffix) {
  std::string rest = value;
  if (auto at = rest.find('@'); at != std::string::npos) {
    if (!allow_suffix || !valid_digest(rest.substr(at + 1))) return false;
    rest = rest.substr(0, at);
  }
  auto slash = rest.find('/');
  std::string host = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (!path.empty()) {
    if (auto colon = path.rfind(':'); colon != std::string::npos) {
      if (!allow_suffix || path.find('/', colon) != std::string::npos || !valid_tag(path.substr(colon + 1)))
        return false;
      path = path.substr(0, colon);
    }
    if (!valid_path(path)) return false;
  } else if (slash != std::string::npos) {
    return false;
  }
  return valid_domain(host);
}

// containers/image's parseLocation: trailing slashes go, URI schemes are refused.
std::string parse_location(const std::string& source, const toml::node& node, const std::string& key) {
  std::string v = get_string(source, key, node);
  while (!v.empty() && v.back() == '/') v.pop_back();
  if (v.rfind("http://", 0) == 0 || v.rfind("https://", 0) == 0)
    fail(source, node, "\"" + key + "\" = \"" + v + "\": URI schemes are not supported; write host[:port][/path]");
  return v;
}

void check_location(const std::string& source, const toml::node& node, const std::string& key, const std::string& v,
                    bool allow_suffix) {
  if (!valid_location(v, allow_suffix))
    fail(source, node, "\"" + key + "\" = \"" + v + "\" is not host[:port][/namespace.../repo]" +
                           (allow_suffix ? "[:tag|@digest]" : "") + " (or *.example.com for a prefix)");
}

bool is_wildcard(const std::string& prefix) { return prefix.rfind("*.", 0) == 0; }

// The length of `repository` that `prefix` matches, or npos: the whole prefix, followed by the
// end or a separator; "*.example.com" matches any subdomain of example.com (and its port).
size_t matching_length(const std::string& repository, const std::string& prefix) {
  if (is_wildcard(prefix)) {
    std::string suffix = prefix.substr(1);  // ".example.com"
    size_t index = repository.find(suffix);
    if (index == std::string::npos || index == 0) return std::string::npos;
    if (repository.substr(0, index).find('/') != std::string::npos) return std::string::npos;
    index += suffix.size();
    if (index == repository.size()) return index;
    char c = repository[index];
    return c == ':' || c == '/' || c == '@' ? index : std::string::npos;
  }
  if (repository.size() < prefix.size() || repository.compare(0, prefix.size(), prefix) != 0)
    return std::string::npos;
  if (repository.size() == prefix.size()) return prefix.size();
  char c = repository[prefix.size()];
  if (c == '/') return prefix.size();
  // A tag or digest after a repository prefix; not a port after a host ("example.com" must not
  // match "example.com:5000", which containers/image says it does only by accident).
  if ((c == ':' || c == '@') && prefix.find('/') != std::string::npos) return prefix.size();
  return std::string::npos;
}

// docker.io's single-component names live under "library/".
std::string normalize_docker_io(const std::string& repository) {
  for (const char* host : {"docker.io/", "index.docker.io/"}) {
    std::string h = host;
    if (repository.rfind(h, 0) == 0) {
      std::string path = repository.substr(h.size());
      std::string name = path.substr(0, path.find_first_of(":@"));
      if (name.find('/') == std::string::npos) return "docker.io/library/" + path;
      return "docker.io/" + path;
    }
  }
  return repository;
}

// "ns/name" with no registry host (the first component has no '.' or ':', is not
// "localhost", and has no capitals), no tag and no digest.
bool valid_short_name(const std::string& name) {
  if (name.find_first_of(":@") != std::string::npos) return false;
  std::string first = name.substr(0, name.find('/'));
  if (name.find('/') != std::string::npos &&
      (first.find('.') != std::string::npos || first == "localhost"))
    return false;
  return valid_path(name);
}

RegistryMirrorConf parse_mirror(const std::string& src, const toml::node& node, bool by_digest_only) {
  if (!node.is_table()) fail(src, node, "each [[registry.mirror]] must be a table");
  const auto& t = *node.as_table();
  check_keys(src, t, "[[registry.mirror]]", {"location", "insecure", "pull-from-mirror"});
  RegistryMirrorConf m;
  auto loc = t.get("location");
  if (!loc) fail(src, node, "a [[registry.mirror]] needs a \"location\"");
  m.location = parse_location(src, *loc, "location");
  if (m.location.empty()) fail(src, *loc, "the mirror's \"location\" is empty");
  check_location(src, *loc, "location", m.location, false);
  if (auto v = t.get("insecure")) m.insecure = get_bool(src, "insecure", *v);
  if (auto v = t.get("pull-from-mirror")) {
    std::string p = get_string(src, "pull-from-mirror", *v);
    if (!p.empty() && p != "all" && p != "digest-only" && p != "tag-only")
      fail(src, *v, "\"pull-from-mirror\" = \"" + p + "\" is not one of all, digest-only, tag-only");
    if (!p.empty() && by_digest_only)
      fail(src, *v, "\"pull-from-mirror\" cannot be set on a mirror of a registry with mirror-by-digest-only = true; "
                    "use one or the other");
    if (!p.empty()) m.pull_from_mirror = p;
  }
  return m;
}

RegistryConf parse_registry(const std::string& src, const toml::node& node) {
  if (!node.is_table()) fail(src, node, "each [[registry]] must be a table");
  const auto& t = *node.as_table();
  check_keys(src, t, "[[registry]]", {"prefix", "location", "insecure", "blocked", "mirror-by-digest-only", "mirror"});
  RegistryConf r;
  r.source = where(src, node.source());
  if (auto v = t.get("insecure")) r.insecure = get_bool(src, "insecure", *v);
  if (auto v = t.get("blocked")) r.blocked = get_bool(src, "blocked", *v);
  if (auto v = t.get("mirror-by-digest-only")) r.mirror_by_digest_only = get_bool(src, "mirror-by-digest-only", *v);
  const toml::node* loc = t.get("location");
  if (loc) {
    r.location = parse_location(src, *loc, "location");
    if (!r.location.empty()) check_location(src, *loc, "location", r.location, true);
  }
  if (auto v = t.get("prefix")) {
    r.prefix = parse_location(src, *v, "prefix");
    if (is_wildcard(r.prefix)) {
      std::string host = r.prefix.substr(2);
      if (host.find_first_of("/@:*") != std::string::npos || !valid_domain(host))
        fail(src, *v, "the wildcard prefix \"" + r.prefix +
                          "\" must be *.example.com: no port, namespace, tag or digest, and * only at the start");
    } else if (!r.prefix.empty()) {
      check_location(src, *v, "prefix", r.prefix, true);
    }
  }
  if (r.prefix.empty()) {
    if (r.location.empty()) fail(src, node, "a [[registry]] needs a \"prefix\" or a \"location\" (or both)");
    r.prefix = r.location;
  } else if (r.location.empty() && !is_wildcard(r.prefix)) {
    fail(src, loc ? *loc : node,
         "a [[registry]] without a \"location\" must have a wildcard prefix (*.example.com); prefix = \"" + r.prefix +
             "\"");
  }
  if (auto v = t.get("mirror")) {
    if (!v->is_array()) fail(src, *v, "\"mirror\" must be an array of tables ([[registry.mirror]])");
    for (const auto& m : *v->as_array()) r.mirrors.push_back(parse_mirror(src, m, r.mirror_by_digest_only));
  }
  return r;
}

}  // namespace

void apply_registries_conf_text(RegistriesConf& conf, const std::string& text, const std::string& src) {
  toml::table root;
  try {
    root = toml::parse(text, src);
  } catch (const toml::parse_error& e) {
    throw Error(Errc::kConfig, src + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  if (auto v1 = root.get("registries")) {
    fail(src, *v1,
         "this is a version 1 registries.conf ([registries.search], [registries.insecure], [registries.block]), "
         "which hutch does not read; convert it to version 2: unqualified-search-registries = [...] for the search "
         "list, and a [[registry]] with location = \"host\" and insecure = true or blocked = true for the others "
         "(see containers-registries.conf(5))");
  }
  check_keys(src, root, "",
             {"unqualified-search-registries", "short-name-mode", "registry", "aliases", "credential-helpers"});

  // Everything is checked before anything changes, so a bad file leaves `conf` as it was.
  std::optional<std::vector<std::string>> search;
  if (auto v = root.get("unqualified-search-registries")) {
    if (!v->is_array()) fail(src, *v, "\"unqualified-search-registries\" must be an array of host[:port] strings");
    search.emplace();
    for (const auto& e : *v->as_array()) {
      std::string r = parse_location(src, e, "unqualified-search-registries");
      if (!valid_domain(r))
        fail(src, e, "\"" + r + "\" in unqualified-search-registries is not a registry host[:port] (no path)");
      search->push_back(r);
    }
  }
  std::optional<std::string> mode;
  if (auto v = root.get("short-name-mode")) {
    std::string m = get_string(src, "short-name-mode", *v);
    if (!m.empty() && m != "enforcing" && m != "permissive" && m != "disabled")
      fail(src, *v, "\"short-name-mode\" = \"" + m + "\" is not one of enforcing, permissive, disabled");
    if (!m.empty()) mode = m;
  }
  if (auto v = root.get("credential-helpers")) {
    if (!v->is_array()) fail(src, *v, "\"credential-helpers\" must be an array of strings");
    for (const auto& e : *v->as_array()) {
      std::string h = get_string(src, "credential-helpers", e);
      if (h != "containers-auth.json")
        fail(src, e, "credential helper \"" + h +
                         "\" is not supported: hutch reads only auth files (\"containers-auth.json\"); "
                         "remove it, or log in with hutch login");
    }
  }
  std::vector<RegistryConf> registries;
  if (auto v = root.get("registry")) {
    if (!v->is_array()) fail(src, *v, "\"registry\" must be an array of tables ([[registry]])");
    for (const auto& n : *v->as_array()) {
      RegistryConf r = parse_registry(src, n);
      for (const auto& other : registries) {
        if (other.prefix == r.prefix)
          fail_at(r.source, "prefix \"" + r.prefix + "\" is already configured at " + other.source +
                                "; merge the two [[registry]] tables");
        // containers/image refuses one location with conflicting settings in one file.
        const std::string& a = other.location.empty() ? other.prefix : other.location;
        const std::string& b = r.location.empty() ? r.prefix : r.location;
        if (a == b && other.insecure != r.insecure)
          fail_at(r.source, "registry \"" + b + "\" is configured at " + other.source +
                                " with a different \"insecure\" setting");
        if (a == b && other.blocked != r.blocked)
          fail_at(r.source, "registry \"" + b + "\" is configured at " + other.source +
                                " with a different \"blocked\" setting");
      }
      registries.push_back(std::move(r));
    }
  }
  std::map<std::string, std::string> aliases;  // "" erases an earlier one
  if (auto v = root.get("aliases")) {
    if (!v->is_table()) fail(src, *v, "\"aliases\" must be a table ([aliases])");
    for (const auto& [k, val] : *v->as_table()) {
      std::string name(k.str());
      if (!valid_short_name(name))
        fail_at(where(src, k.source()), "alias \"" + name +
                                            "\" is not a short name: lowercase name components, no registry host, "
                                            "no tag or digest");
      std::string value = get_string(src, "aliases." + name, val);
      if (!value.empty()) {
        auto slash = value.find('/');
        std::string host = value.substr(0, slash);
        bool qualified = slash != std::string::npos &&
                         (host.find_first_of(".:") != std::string::npos || host == "localhost");
        if (!qualified || !valid_location(value, false))
          fail(src, val, "the alias \"" + name + "\" = \"" + value +
                             "\" must be a fully qualified repository (host/path/name) without a tag or digest");
        value = normalize_docker_io(value);
      }
      aliases[name] = value;
    }
  }

  if (search) conf.unqualified_search_registries = std::move(*search);
  if (mode) conf.short_name_mode = *mode;
  for (auto& r : registries) {
    auto same = std::find_if(conf.registries.begin(), conf.registries.end(),
                             [&](const RegistryConf& o) { return o.prefix == r.prefix; });
    if (same != conf.registries.end())
      *same = std::move(r);
    else
      conf.registries.push_back(std::move(r));
  }
  for (auto& [name, value] : aliases) {
    if (value.empty())
      conf.aliases.erase(name);
    else
      conf.aliases[name] = value;
  }
}

void apply_registries_conf_file(RegistriesConf& conf, const fs::path& file) {
  std::string text;
  try {
    text = read_file(file);
  } catch (const Error& e) {
    throw Error(Errc::kConfig, "cannot read registries configuration " + file.string() + ": " + e.what());
  }
  apply_registries_conf_text(conf, text, file.string());
  conf.files_read.push_back(file);
}

namespace {

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// The *.conf files of a drop-in directory, in lexical order (no subdirectories).
void add_drop_ins(std::vector<fs::path>& files, const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<fs::path> found;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".conf" && is_file(it->path())) found.push_back(it->path());
  if (ec) throw Error(Errc::kConfig, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(found.begin(), found.end());
  files.insert(files.end(), found.begin(), found.end());
}

}  // namespace

std::vector<fs::path> registries_conf_chain(uid_t uid) {
  if (const char* env = std::getenv("HUTCH_REGISTRIES_CONF"); env && *env) return {fs::path(env)};
  std::vector<fs::path> files;
  fs::path user = xdg_config_home(uid) / "containers" / "registries.conf";
  fs::path user_d = xdg_config_home(uid) / "containers" / "registries.conf.d";
  if (is_file(user)) {
    files.push_back(user);
  } else {
    if (is_file("/etc/containers/registries.conf")) files.push_back("/etc/containers/registries.conf");
    add_drop_ins(files, "/etc/containers/registries.conf.d");
  }
  add_drop_ins(files, user_d);
  for (const fs::path& own : {fs::path("/etc/hutch/registries.conf"), xdg_config_home(uid) / "hutch" / "registries.conf"})
    if (is_file(own)) files.push_back(own);
  return files;
}

RegistriesConf load_registries_conf(uid_t uid) {
  RegistriesConf conf;
  if (const char* env = std::getenv("HUTCH_REGISTRIES_CONF"); env && *env && !is_file(env))
    throw Error(Errc::kConfig, std::string("$HUTCH_REGISTRIES_CONF names ") + env +
                                   ", which is not a file; create it or unset HUTCH_REGISTRIES_CONF");
  for (const auto& f : registries_conf_chain(uid)) apply_registries_conf_file(conf, f);
  return conf;
}

const RegistryConf* find_registry_conf(const RegistriesConf& conf, const std::string& repository) {
  std::string repo = normalize_docker_io(repository);
  const RegistryConf* best = nullptr;
  for (const auto& r : conf.registries) {
    if (matching_length(repo, r.prefix) == std::string::npos) continue;
    if (!best || r.prefix.size() > best->prefix.size()) best = &r;
  }
  return best;
}

std::vector<RegistryEndpoint> registry_endpoints(const RegistriesConf& conf, const std::string& repository,
                                                 bool by_digest, bool for_push) {
  std::string repo = normalize_docker_io(repository);
  const RegistryConf* r = find_registry_conf(conf, repo);
  if (!r) return {RegistryEndpoint{repo, false, false}};
  if (r->blocked)
    throw Error(Errc::kPermission, repo + " is blocked by registries.conf (" + r->source + ", prefix \"" + r->prefix +
                                       "\"); remove blocked = true there to use it");
  size_t matched = matching_length(repo, r->prefix);
  std::string rest = repo.substr(matched);
  auto rewrite = [&](const std::string& location) { return location.empty() ? repo : location + rest; };
  std::vector<RegistryEndpoint> endpoints;
  if (!for_push) {
    for (const auto& m : r->mirrors) {
      if (r->mirror_by_digest_only && !by_digest) continue;
      if (m.pull_from_mirror == "digest-only" && !by_digest) continue;
      if (m.pull_from_mirror == "tag-only" && by_digest) continue;
      endpoints.push_back({rewrite(m.location), m.insecure, true});
    }
  }
  endpoints.push_back({rewrite(r->location), r->insecure, false});
  return endpoints;
}

std::vector<std::string> resolve_short_name(const RegistriesConf& conf, const std::string& name) {
  ImageRef ref = parse_image_ref(name);
  std::string suffix = (ref.tag.empty() ? "" : ":" + ref.tag) + (ref.digest.empty() ? "" : "@" + ref.digest);
  bool qualified = ref.domain != "localhost" || name.rfind("localhost/", 0) == 0;
  if (qualified) return {normalize_docker_io(ref.name()) + suffix};
  if (auto a = conf.aliases.find(ref.path); a != conf.aliases.end()) return {a->second + suffix};
  std::vector<std::string> names;
  for (const auto& reg : conf.unqualified_search_registries)
    names.push_back(normalize_docker_io(reg + "/" + ref.path) + suffix);
  return names;
}

}  // namespace hutch
