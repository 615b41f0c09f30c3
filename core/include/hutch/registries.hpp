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
// the same prefix replaces the earlier one, aliases merge. Errors are Errc::kConfig naming
// the file and line; a v1 file (`[registries.search]`) is refused with a message saying so.
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
// longest prefix; "*.example.com" matches subdomains), if any.
HUTCH_API const RegistryConf* find_registry_conf(const RegistriesConf& conf, const std::string& repository);

// Where to fetch `repository` (fully qualified, no tag) from: each endpoint's location is the
// repository rewritten for it (the matching prefix replaced by the mirror's or registry's
// location), mirrors first (unless `by_digest` is false and the mirror is digest-only, and so
// on), then the registry's own location. Throws Errc::kPermission when the registry is blocked,
// naming the file and line that blocks it.
HUTCH_API std::vector<RegistryEndpoint> registry_endpoints(const RegistriesConf& conf, const std::string& repository,
                                                          bool by_digest, bool for_push);

// The fully qualified names to try for `name` (a reference without a registry host, e.g.
// "busybox:1.36" or "library/busybox"): an alias if one matches (its tag or digest kept),
// else one per unqualified-search registry ("docker.io" adds "library/" to single-component
// names). Empty when there is nothing to try (the caller says how to configure it).
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
// legacy "https://host/v1/" and "http://host" forms match "host"). "auth" is base64 of
// "user:password"; "identitytoken" is kept. Unreadable or malformed files are Errc::kConfig
// naming the file (never the secret). A credential helper entry ("credHelpers", "credsStore")
// is not run: it is reported as unsupported naming the file and key.
HUTCH_API std::optional<Credentials> find_credentials(const std::string& repository, const AuthFileOptions& options);
// login: writes `key` (a registry host, or "host/path") into auth_file_for_write, keeping every
// other entry and key, atomically (temp file, fsync, rename), mode 0600, its directory 0700.
HUTCH_API std::filesystem::path store_credentials(const std::string& key, const Credentials& credentials,
                                                  const AuthFileOptions& options);
// logout: removes `key` from auth_file_for_write (true when it was there); with `all`, every key.
HUTCH_API bool remove_credentials(const std::string& key, bool all, const AuthFileOptions& options);

// --creds USER[:PASSWORD]: throws Errc::kUsage when USER is empty. A missing password is
// empty (the caller may prompt).
HUTCH_API Credentials parse_creds_flag(const std::string& value);

}  // namespace hutch
