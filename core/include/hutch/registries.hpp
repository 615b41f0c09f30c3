// What a podman or docker user has already configured for registries: registries.conf (v2
// format) and the credentials in auth.json (falling back to ~/.docker/config.json).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hutch/transport.hpp"

namespace hutch {

// ---- registries.conf ------------------------------------------------------------------------------

struct RegistryMirrorConf {
  std::string location;            // "host[:port][/path]"
  bool insecure = false;
  std::string pull_from_mirror = "all";  // all, digest-only, tag-only
};

struct RegistryConf {
  std::string prefix;    // what references it applies to: "host[/path]" or "*.example.com"
  std::string location;  // where they are fetched from (default: the prefix)
  bool insecure = false;
  bool blocked = false;
  bool mirror_by_digest_only = false;
  std::vector<RegistryMirrorConf> mirrors;
  std::string source;  // "file:line", for messages
};

struct RegistriesConf {
  std::vector<std::string> unqualified_search_registries;
  std::vector<RegistryConf> registries;
  std::map<std::string, std::string> aliases;  // [aliases]: short name -> "host/path/name"
  std::string short_name_mode = "permissive";  // enforcing, permissive, disabled
  std::vector<std::filesystem::path> files_read;
};

// Parses one registries.conf (v2: `unqualified-search-registries`, `short-name-mode`,
// `[[registry]]` with prefix, location, insecure, blocked, mirror-by-digest-only,
// `[[registry.mirror]]` with location, insecure, pull-from-mirror; `[aliases]`) over `conf`,
// as containers/image merges files: later lists replace earlier ones, a [[registry]] with
// the same prefix replaces the earlier one, aliases merge (an alias set to "" is erased).
// Errors are Errc::kConfig naming the file and line, and nothing of a bad file is applied;
// a v1 file (`[registries.search]`) is refused with a message saying so. Stricter than
// containers/image: one prefix twice in one file is an error (it keeps the first), and keys
// hutch does not implement (`proxy`, `additional-layer-store-auth-helper`, a
// `credential-helpers` entry other than "containers-auth.json") are refused, not ignored.
HUTCH_API void apply_registries_conf_text(RegistriesConf& conf, const std::string& text, const std::string& source);
HUTCH_API void apply_registries_conf_file(RegistriesConf& conf, const std::filesystem::path& file);

// The files read, in order, each when it exists: $HUTCH_REGISTRIES_CONF alone when it is set
// (load_registries_conf refuses it when it is not a file); else
// $XDG_CONFIG_HOME/containers/registries.conf (~/.config/...) if it exists, otherwise
// /etc/containers/registries.conf and /etc/containers/registries.conf.d/*.conf; then
// $XDG_CONFIG_HOME/containers/registries.conf.d/*.conf either way (as containers/image does;
// drop-ins in lexical order); then hutch's own /etc/hutch/registries.conf and
// $XDG_CONFIG_HOME/hutch/registries.conf (system first) on top.
HUTCH_API std::vector<std::filesystem::path> registries_conf_chain(uid_t uid);
HUTCH_API RegistriesConf load_registries_conf(uid_t uid);

// The [[registry]] whose prefix matches `repository` ("host[:port]/path/name") best (the
// longest prefix, ending where a path component ends; "*.example.com" matches subdomains), if
// any. "docker.io/name" is matched as "docker.io/library/name". Unlike containers/image,
// "example.com" does not match "example.com:5000/...".
HUTCH_API const RegistryConf* find_registry_conf(const RegistriesConf& conf, const std::string& repository);

// Where to fetch `repository` (fully qualified, no tag) from: each endpoint's location is the
// repository rewritten for it (the matching prefix replaced by the mirror's or registry's
// location), mirrors first (unless `by_digest` is false and the mirror is digest-only, and so
// on), then the registry's own location. `for_push`: no mirrors, only the registry's own
// (rewritten) location. Without a matching [[registry]]: the repository itself, not insecure.
// Throws Errc::kPermission when the registry is blocked (for pulls and pushes alike), naming
// the file and line that blocks it.
HUTCH_API std::vector<RegistryEndpoint> registry_endpoints(const RegistriesConf& conf, const std::string& repository,
                                                          bool by_digest, bool for_push);

// The fully qualified names to try for `name` (a reference without a registry host, e.g.
// "busybox:1.36" or "library/busybox"): an alias if one matches (its tag or digest kept),
// else one per unqualified-search registry ("docker.io" adds "library/" to single-component
// names). Each keeps the name's tag or digest ("latest" when it has neither). A name that is
// already qualified (a registry host, or "localhost/...") is returned alone, as it is.
// Empty when there is nothing to try (the caller says how to configure it). short-name-mode
// is the caller's to apply (prompting, or refusing several candidates when enforcing).
// Throws Errc::kInvalidInput for a name that is not a valid reference.
HUTCH_API std::vector<std::string> resolve_short_name(const RegistriesConf& conf, const std::string& name);

// ---- credentials: auth.json --------------------------------------------------------------------

struct AuthFileOptions {
  std::filesystem::path authfile;  // --authfile; empty: the default chain below
  uid_t uid = 0;                   // whose home and XDG directories
};

// The auth.json that login writes: --authfile, else $REGISTRY_AUTH_FILE, else
// $XDG_RUNTIME_DIR/containers/auth.json when XDG_RUNTIME_DIR is set, else
// $XDG_CONFIG_HOME/containers/auth.json (~/.config/containers/auth.json).
HUTCH_API std::filesystem::path auth_file_for_write(const AuthFileOptions& options);
// Where credentials are looked for, in order: the file above (and, without --authfile, the
// XDG_CONFIG_HOME one when that is not it), then $DOCKER_CONFIG/config.json or
// ~/.docker/config.json (read only).
HUTCH_API std::vector<std::filesystem::path> auth_files_for_read(const AuthFileOptions& options);

// The credentials for `repository` ("host[:port]/path/name" or just "host[:port]"): the most
// specific key of the first file that has one ("host/ns/name", "host/ns", "host"; docker's
// legacy "https://host/v1/" and "http://host" forms match "host", and
// "https://index.docker.io/v1/" docker.io). "auth" is base64 of
// "user:password"; "identitytoken" is kept. Unreadable or malformed files are Errc::kConfig
// naming the file (never the secret). A credential helper entry ("credHelpers", "credsStore")
// is not run: it is reported as Errc::kUnsupported naming the file and key ("credHelpers" for
// the registry; "credsStore" when the file's entry for it is empty, as docker writes it beside a
// store). An entry that is empty otherwise is skipped; with none, nullopt (anonymous).
HUTCH_API std::optional<Credentials> find_credentials(const std::string& repository, const AuthFileOptions& options);
// login: writes `key` (a registry host, or "host/path") into auth_file_for_write, keeping every
// other entry and key, atomically (temp file, fsync, rename), mode 0600, its directory 0700.
// Throws Errc::kUsage for a malformed key (a scheme, tag or digest), Errc::kUnsupported when the
// file hands the registry to a credential helper ("credHelpers").
HUTCH_API std::filesystem::path store_credentials(const std::string& key, const Credentials& credentials,
                                                  const AuthFileOptions& options);
// logout: removes `key` from auth_file_for_write (true when it was there; a host takes docker's
// legacy spellings of it too); with `all`, every entry of "auths" (other keys stay).
HUTCH_API bool remove_credentials(const std::string& key, bool all, const AuthFileOptions& options);

// --creds USER[:PASSWORD]: throws Errc::kUsage when USER is empty. A missing password is
// empty (the caller may prompt).
HUTCH_API Credentials parse_creds_flag(const std::string& value);

}  // namespace hutch
