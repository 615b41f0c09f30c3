// The image and container store: content-addressed blobs, layers keyed by chain ID,
// image and container records as JSON files written atomically under a file lock.
//
//   <root>/store.lock            flock: shared to read, exclusive to change
//   <root>/blobs/sha256/<hex>    manifests, configs, layer tars, by digest
//   <root>/layers.json           layers by chain ID, with parent and diff ID
//   <root>/images.json           images by config digest, with names
//   <root>/containers.json       container records
//   <root>/containers/<id>/      a container's bundle and userdata (config.json, hosts, ...)
//   <root>/<driver>/             what the storage driver keeps
//   <root>/tmp/                  staging: emptied by the next command after a crash
//   <root>/volumes/<name>/       named volumes (engine_volumes.cpp): _data and volume.json
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hutch/lock.hpp"
#include "hutch/paths.hpp"
#include "hutch/logger.hpp"
#include "hutch/network.hpp"

namespace hutch {

struct LayerRecord {
  std::string id;       // chain ID hex: the key, shared between images with the same base
  std::string parent;   // chain ID of the layer below, empty for a base layer
  std::string diff_id;  // "sha256:..." of the uncompressed tar
  std::string blob;     // "sha256:..." of the stored layer blob
  std::uint64_t size = 0;
};

struct ImageRecord {
  std::string id;                  // hex of the config digest
  std::string manifest_digest;     // "sha256:..."
  std::vector<std::string> names;  // "localhost/busybox:latest"
  std::vector<std::string> layers; // chain IDs, bottom first
  std::uint64_t size = 0;
  std::string created;             // RFC 3339
  // The digests of the image index (manifest list) it was pulled through, if any: RepoDigests
  // name these too, as docker and podman show them.
  std::vector<std::string> index_digests;
};

// A container's healthcheck, as docker's HEALTHCHECK and --health-* say (durations in ns).
struct HealthConfig {
  std::vector<std::string> test;  // ["CMD", ...] | ["CMD-SHELL", "..."] | ["NONE"]
  std::int64_t interval = 30'000'000'000;
  std::int64_t timeout = 30'000'000'000;
  std::int64_t start_period = 0;
  int retries = 3;
  std::string on_failure = "none";  // none, kill, restart, stop
};

struct HealthResult {
  std::string start, end;  // RFC 3339
  int exit_code = 0;
  std::string output;
};

struct HealthState {
  std::string status;  // starting, healthy, unhealthy
  int failing_streak = 0;
  std::vector<HealthResult> log;  // the last five
};

// What changes while a container lives: <root>/containers/<id>/state.json, written by its
// monitor (and by stop, healthcheck run, recovery) under <root>/containers/<id>/state.lock.
struct ContainerState {
  std::string status = "created";  // created, running, paused, restarting, stopping, exited
  int exit_code = 0;
  pid_t pid = 0;                    // the container's init, as hutch sees it
  unsigned long long pid_start = 0;
  // The container's monitor: when it is gone, the container is not monitored any more.
  pid_t monitor_pid = 0;
  unsigned long long monitor_start = 0;
  std::string started_at;
  std::string finished_at;
  bool oom_killed = false;          // the kernel's OOM killer ended it (cgroup memory events)
  int restart_count = 0;
  bool stopped_by_user = false;     // stop or kill: the restart policy does not apply
  std::string error;                // why it could not start, or why its exit code is unknown
  std::optional<HealthState> health;
  // While it runs: its published ports as bound, and the networks it is on (the monitor's).
  std::vector<PortMapping> ports;
  std::vector<NetworkEndpoint> endpoints;
};

// What a container is: <root>/containers.json, changed under the store's exclusive lock
// (create, rename, remove). `state` is loaded from its state file beside it.
struct ContainerRecord {
  std::string id;
  std::string name;
  std::string image_id;
  std::string image_name;
  std::vector<std::string> command;
  std::string created;
  std::string runtime;
  std::string network;
  bool auto_remove = false;
  std::string stop_signal;          // --stop-signal, else the image's StopSignal; empty: SIGTERM
  int stop_timeout = 10;            // --stop-timeout
  std::vector<std::string> volumes; // names of the named volumes it mounts
  std::vector<std::string> anonymous_volumes;  // those of them made for it (-v /path): gone with --rm
  bool tty = false;                 // -t
  bool interactive = false;         // -i: stdin kept open
  std::string log_driver = "k8s-file";  // k8s-file, json-file, none, passthrough
  std::vector<std::string> log_opts;    // max-size=10m, max-file=3, path=...
  std::string restart_policy = "no";    // no, on-failure, always, unless-stopped
  int restart_max = 0;                  // on-failure:N (0: no limit)
  std::optional<HealthConfig> healthcheck;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<PortMapping> ports;       // -p and -P (host_port 0: a free one at each start)
  std::map<std::string, std::string> network_options;  // --network slirp:mtu=1500
  std::vector<std::string> networks;    // the user networks it is on (the bridge backend)
  std::vector<std::string> network_aliases;  // --network-alias, on each of them
  ContainerState state;
};

// The start time of a process (field 22 of /proc/PID/stat), 0 when there is none or it is a
// zombie:
// a pid with the same start time is the same process.
HUTCH_API unsigned long long process_start_time(pid_t pid);

HUTCH_API void to_json(nlohmann::json& j, const LayerRecord& r);
HUTCH_API void from_json(const nlohmann::json& j, LayerRecord& r);
HUTCH_API void to_json(nlohmann::json& j, const ImageRecord& r);
HUTCH_API void from_json(const nlohmann::json& j, ImageRecord& r);
HUTCH_API void to_json(nlohmann::json& j, const ContainerRecord& r);
HUTCH_API void from_json(const nlohmann::json& j, ContainerRecord& r);
HUTCH_API void to_json(nlohmann::json& j, const ContainerState& s);
HUTCH_API void from_json(const nlohmann::json& j, ContainerState& s);
HUTCH_API void to_json(nlohmann::json& j, const HealthConfig& h);
HUTCH_API void to_json(nlohmann::json& j, const PortMapping& p);
HUTCH_API void from_json(const nlohmann::json& j, PortMapping& p);
HUTCH_API void to_json(nlohmann::json& j, const NetworkEndpoint& e);
HUTCH_API void from_json(const nlohmann::json& j, NetworkEndpoint& e);
// What a network backend is asked for this container.
HUTCH_API NetworkRequest network_request(const ContainerRecord& r);
HUTCH_API void from_json(const nlohmann::json& j, HealthConfig& h);

// The chain ID of a layer: sha256(parent chain ID + " " + diff ID), or the diff ID of a base.
HUTCH_API std::string chain_id(const std::string& parent_chain_id_hex, const std::string& diff_id);

HUTCH_API std::string now_rfc3339();

class HUTCH_API Store {
 public:
  Store(std::filesystem::path root, const Logger& logger);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path tmp_dir() const { return root_ / "tmp"; }
  std::filesystem::path container_dir(const std::string& id) const { return root_ / "containers" / id; }

  FileLock lock(FileLock::Mode mode) const;

  // Blobs.
  std::filesystem::path blob_path(const std::string& digest) const;
  bool has_blob(const std::string& digest) const;
  // Moves a finished file into the blob store under its digest; returns "sha256:<hex>".
  std::string commit_blob(const std::filesystem::path& file, const std::string& hex);
  std::string put_blob(const std::string& content);
  std::string read_blob(const std::string& digest) const;
  // A private staging directory under tmp/, locked while this object lives; the next
  // command removes it if this one dies.
  class HUTCH_API Staging {
   public:
    Staging(const std::filesystem::path& dir, FileLock lock) : dir_(dir), lock_(std::move(lock)) {}
    Staging(Staging&&) = default;
    ~Staging();
    const std::filesystem::path& dir() const { return dir_; }

   private:
    std::filesystem::path dir_;
    FileLock lock_;
  };
  Staging stage(const std::string& what) const;

  // Records: load and save whole; call save only under the exclusive lock.
  std::vector<LayerRecord> layers() const;
  void save_layers(const std::vector<LayerRecord>& layers);
  std::vector<ImageRecord> images() const;
  void save_images(const std::vector<ImageRecord>& images);
  // The records, each with its state file read in.
  std::vector<ContainerRecord> containers() const;
  // Writes the records (not their states). kVolatile for the changes that recovery makes good
  // if a crash loses them (a --rm container's removal): its creation is written kSynced.
  void save_containers(const std::vector<ContainerRecord>& containers, Durability durability = Durability::kSynced);

  // A container's state (its record's `state`), read without a lock: it is replaced atomically.
  ContainerState container_state(const std::string& id) const;
  // Read, change and write a container's state under its state lock. Returns the new state.
  ContainerState update_container_state(const std::string& id, const std::function<void(ContainerState&)>& change,
                                        Durability durability = Durability::kSynced);
  FileLock lock_container_state(const std::string& id) const;
  void save_container_state(const std::string& id, const ContainerState& state,
                            Durability durability = Durability::kSynced);

  // Finds an image by name (as parse_image_ref normalises it), full ID or unique ID prefix.
  std::optional<ImageRecord> find_image(const std::string& reference) const;
  std::optional<ContainerRecord> find_container(const std::string& name_or_id) const;
  // The same without its state (`state` is left default).
  std::optional<ContainerRecord> find_container_record(const std::string& name_or_id) const;
  // The records alone, without reading a state file.
  std::vector<ContainerRecord> container_records() const;

  // Removes what interrupted commands left: staging areas in tmp/ nobody holds, and the
  // temporary files of atomic writes. Call it under the exclusive lock. True when there was
  // something, i.e. a command that changes the store died midway.
  bool clean_tmp();
  // Digests the records name (layer blobs, configs, manifests), and those in blobs/.
  std::set<std::string> referenced_blobs() const;
  std::vector<std::string> blob_digests() const;

 private:
  template <typename T>
  std::vector<T> load(const char* file) const;
  template <typename T>
  void save(const char* file, const std::vector<T>& items, Durability durability = Durability::kSynced);

  std::filesystem::path root_;
  const Logger& logger_;
};

}  // namespace hutch
