// The engine: what every command calls. It owns the store and the loaded backends.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hutch/config.hpp"
#include "hutch/network.hpp"
#include "hutch/paths.hpp"
#include "hutch/plugin_loader.hpp"
#include "hutch/runtime.hpp"
#include "hutch/storage.hpp"
#include "hutch/store.hpp"
#include "hutch/transport.hpp"

namespace hutch {

struct BackendInfo {
  std::string family;
  std::string name;
  std::string why;  // "default", "config <file>:<line>", "--runtime flag", "recorded in the store"
  LoadedPlugin plugin;
  std::string description;
};

struct EnginePaths {
  std::filesystem::path store_root;
  std::filesystem::path run_root;
  std::string run_root_why;
};

// Resolves the store and runtime directories from config (defaults follow XDG).
HUTCH_API EnginePaths resolve_paths(const Config& config, uid_t host_uid);

struct ImportOptions {
  std::vector<std::string> changes;  // --change "CMD ...", "ENTRYPOINT ...", "ENV K=V", "WORKDIR d", "USER u"
  std::string message;
};

// How to reach registries, as podman's flags say (pull, push, login, search).
struct RegistryOptions {
  std::optional<bool> tls_verify;     // --tls-verify
  std::filesystem::path cert_dir;     // --cert-dir
  std::filesystem::path authfile;     // --authfile
  std::optional<Credentials> creds;   // --creds USER:PASSWORD
};

// One blob moving, for a progress display: called from the threads that move blobs.
struct BlobProgress {
  std::string digest;
  std::string what;         // "layer", "config"
  std::uint64_t done = 0;
  std::int64_t total = -1;
  enum class State { kWaiting, kMoving, kUnpacking, kDone, kSkipped } state = State::kWaiting;
};
using BlobProgressFn = std::function<void(const BlobProgress&)>;

struct PullOptions {
  RegistryOptions registry;
  std::string os, arch, variant;  // --platform os/arch[/variant], --os, --arch, --variant; empty: the host's
  int parallel = 0;               // blobs fetched at once; 0: [engine] max_parallel_downloads
  BlobProgressFn progress;
};

struct PushOptions {
  RegistryOptions registry;
  std::string compression;  // --compression-format gzip|zstd; empty: gzip, keeping blobs already compressed
  int parallel = 0;
  BlobProgressFn progress;
};

struct PushResult {
  std::string manifest_digest;
  std::string destination;  // as it was written to
};

// save: docker-archive (default), oci-archive, oci-dir.
struct SaveOptions {
  std::string format = "docker-archive";
};

struct RunOptions {
  std::string image;
  std::vector<std::string> command;
  std::optional<std::string> entrypoint;
  std::vector<std::string> env;
  std::vector<std::string> env_files;
  std::string workdir;
  std::string user;
  std::string hostname;
  std::vector<std::string> networks;  // --network (several: user networks); empty: the configured default
  std::vector<std::string> network_aliases;  // --network-alias
  std::vector<std::string> publish;   // -p [ip:][hostPort:]containerPort[/proto]
  bool publish_all = false;           // -P: every port the image EXPOSEs, on a free host port
  std::string name;
  bool remove = false;
  bool interactive = false;
  bool tty = false;
  bool read_only = false;
  std::optional<bool> read_only_tmpfs;  // --read-only-tmpfs (default true with --read-only)
  bool env_host = false;                // --env-host: the caller's environment first
  bool init = false;                    // --init
  bool privileged = false;
  // As docker spells them; parsed by the engine, errors name the flag.
  std::vector<std::string> cap_add, cap_drop;
  std::vector<std::string> security_opts;  // no-new-privileges, seccomp=FILE|unconfined, label=..., apparmor=...
  std::vector<std::string> ulimits;        // nofile=1024[:2048]
  std::vector<std::string> group_add;
  std::vector<std::string> volumes;        // -v SRC:DST[:OPTS], NAME:DST[:OPTS], DST
  std::vector<std::string> mounts;         // --mount type=...,source=...,target=...
  std::vector<std::string> tmpfs;          // --tmpfs DST[:OPTS]
  std::vector<std::string> devices;        // --device HOST[:CONTAINER[:PERMS]]
  std::vector<std::string> add_hosts;      // --add-host NAME:IP
  std::vector<std::string> dns, dns_search, dns_options;
  std::string userns;                      // "", host, keep-id[:uid=U,gid=G]
  std::vector<std::string> uidmap, gidmap; // CONTAINER:HOST:SIZE
  std::string pid, ipc, uts;               // "" or "host"
  std::string shm_size;                    // 64m
  std::string stop_signal;
  std::optional<int> oom_score_adj;
  std::string memory, memory_swap, cpus, cpu_shares, cpuset_cpus, pids_limit;
  // The lifecycle (run -d, logs, restart, healthchecks).
  bool detach = false;                     // -d
  std::string log_driver;                  // k8s-file (default), json-file, none, passthrough
  std::vector<std::string> log_opts;       // max-size=10m, max-file=3, path=FILE
  std::string restart;                     // no, on-failure[:N], always, unless-stopped
  std::string health_cmd;                  // --health-cmd (a shell command, or a JSON array)
  std::string health_interval, health_timeout, health_start_period;  // Go durations: 30s, 1m30s
  std::optional<int> health_retries;
  std::string health_on_failure;           // none, kill, restart, stop
  bool no_healthcheck = false;
  std::vector<std::string> labels;         // -l k=v
  std::vector<std::string> label_files;
  std::vector<std::string> annotations;    // --annotation k=v
  std::optional<int> stop_timeout;         // --stop-timeout
  std::string detach_keys;                 // --detach-keys (default ctrl-p,ctrl-q)
  std::optional<bool> sig_proxy;           // --sig-proxy (default true)
};

// How a client (run, start -a, attach) is connected to a container's stdio.
struct AttachOptions {
  bool stdin_open = false;                       // relay our stdin (-i)
  std::string detach_keys = "ctrl-p,ctrl-q";     // empty string: none
  bool sig_proxy = true;                         // forward our signals to the container
};

struct StartOptions {
  bool attach = false;       // -a: stay attached until it ends, return its exit code
  bool interactive = false;  // -i: attach stdin too
  std::string detach_keys = "ctrl-p,ctrl-q";
  bool sig_proxy = true;
};

struct ExecOptions {
  std::vector<std::string> command;
  bool interactive = false;  // -i
  bool tty = false;          // -t
  bool detach = false;       // -d
  std::vector<std::string> env;  // -e K=V
  std::vector<std::string> env_files;
  std::string user;          // -u USER[:GROUP]
  std::string workdir;       // -w
  bool privileged = false;
  std::string detach_keys = "ctrl-p,ctrl-q";
};

// `stats`: one sample of a running container, from its processes (its PID namespace) and, when
// it has one, its cgroup's memory limit.
struct ContainerStats {
  std::string id, name;
  double cpu_percent = 0;          // of one CPU, as docker counts (200% = two CPUs busy)
  std::uint64_t memory = 0;        // proportional set size of its processes
  std::uint64_t memory_limit = 0;  // its cgroup's limit, else the host's memory
  std::uint64_t net_rx = 0, net_tx = 0;        // its network namespace, loopback excluded
  std::uint64_t block_read = 0, block_write = 0;  // bytes its processes read from and wrote to disk
  int pids = 0;
};

struct LogsOptions {
  bool follow = false;
  std::optional<std::size_t> tail;
  std::string since, until;  // as docker takes them
  bool timestamps = false;
};

struct CommitOptions {
  std::string message;               // -m
  std::string author;                // -a
  std::vector<std::string> changes;  // -c "CMD ...", as import's --change
};

struct MountedContainer {
  ContainerRecord container;
  std::filesystem::path path;
};

// A named volume: data kept under <root>/volumes/<name>/_data, as docker's "local" driver.
struct VolumeRecord {
  std::string name;
  std::string driver = "local";
  std::string created;  // RFC 3339
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> options;  // -o k=v (kept, shown by inspect)
  std::filesystem::path mountpoint;            // .../_data
};

// `system df`: sizes in bytes.
struct DiskUsageReport {
  struct ImageUsage {
    ImageRecord image;
    std::uint64_t size = 0;         // all its layers
    std::uint64_t shared_size = 0;  // layers another image uses too
    std::uint64_t unique_size = 0;
    int containers = 0;
  };
  struct ContainerUsage {
    ContainerRecord container;
    std::uint64_t size = 0;  // its writable layer
  };
  struct VolumeUsage {
    VolumeRecord volume;
    std::uint64_t size = 0;  // its files on disk (the empty _data directory counts 0)
    int containers = 0;      // that mount it (docker's LINKS)
  };
  std::vector<ImageUsage> images;
  std::vector<ContainerUsage> containers;
  std::vector<VolumeUsage> volumes;
  std::uint64_t images_size = 0;          // every layer counted once
  std::uint64_t images_reclaimable = 0;   // layers of images no container uses
  std::uint64_t containers_size = 0;
  std::uint64_t containers_reclaimable = 0;  // of stopped containers
  std::uint64_t disk_bytes = 0;           // the driver's layers on disk, shared inodes once
  std::uint64_t volumes_size = 0;
  std::uint64_t volumes_reclaimable = 0;  // of volumes no container uses
};

struct PruneReport {
  std::vector<std::string> containers;  // IDs
  std::vector<std::string> images;      // "untagged: NAME" / "deleted: ID" lines
  std::uint64_t reclaimed = 0;          // bytes
};

struct CheckReport {
  std::vector<std::string> problems;  // what is wrong, one line each
  std::vector<std::string> repairs;   // what --repair did
};

class Monitor;
namespace attach {
struct RelayOptions;
}

class HUTCH_API Engine {
 public:
  Engine(Config config, EnginePaths paths, RootlessInfo rootless, const Logger& logger);
  ~Engine();

  const Config& config() const { return config_; }
  const EnginePaths& paths() const { return paths_; }
  const RootlessInfo& rootless() const { return rootless_; }
  const Logger& logger() const { return logger_; }
  PluginLoader& loader() { return loader_; }
  Store& store();

  // The store's driver: the one recorded in it, else the configured one (probed), else with
  // "auto" the first of overlay, fuse-overlayfs, vfs that works; the choice is recorded.
  StorageDriver& storage();
  // "auto" and nothing recorded yet: the next storage() probes and chooses.
  bool storage_choice_pending() const;
  // The configured runtime, or (for a container made earlier) the one named in its record.
  RuntimeBackend& runtime(const std::string& name = "");
  NetworkBackend& network(const std::string& name);
  // What --network asks for: a backend (with its options, slirp:mtu=1500; podman's slirp4netns
  // is slirp), or user networks of the bridge backend. Empty: the configured default, which
  // falls back to none, with a warning, where slirp cannot work and nobody asked for it.
  struct ResolvedNetwork {
    std::string backend;
    std::map<std::string, std::string> options;
    std::vector<std::string> networks;
  };
  ResolvedNetwork resolve_network(const std::vector<std::string>& asked);
  // User networks (engine_network.cpp): the bridge backend's, with the containers on them.
  NetworkInfo create_network(const NetworkCreateRequest& request);
  std::vector<NetworkInfo> list_networks();  // every backend's
  std::optional<nlohmann::json> inspect_network(const std::string& name);  // docker's shape
  // Refuses while containers use it, unless `force` (they are removed first: their names back).
  std::vector<std::string> remove_network(const std::string& name, bool force);
  std::vector<std::string> prune_networks();  // the user networks no container is on
  void connect_network(const std::string& network, const std::string& container, const std::vector<std::string>& aliases);
  void disconnect_network(const std::string& network, const std::string& container);
  // Loads each family's chosen backend (for `hutch info`); failures are reported, not thrown.
  std::vector<BackendInfo> describe_backends();

  ImageRecord import_image(int fd, const std::string& display_name, const std::string& reference,
                           const ImportOptions& options);
  void tag_image(const std::string& source, const std::string& target);
  // Untags `reference` (a name) or removes the image (an ID, or its last name); returns the
  // "Untagged: ..." / "Deleted: ..." lines.
  std::vector<std::string> remove_image(const std::string& reference, bool force);
  nlohmann::json inspect_image(const std::string& reference);
  std::vector<ImageRecord> list_images();

  // Images from and to transports (engine_images.cpp). `reference` may name a transport
  // ("docker://", "oci:", "oci-archive:", "docker-archive:"); without one it is a registry
  // reference, a short name resolved through registries.conf.
  ImageRecord pull_image(const std::string& reference, const PullOptions& options);
  PushResult push_image(const std::string& image, const std::string& destination, const PushOptions& options);
  // Writes the images to `output` (a file, or a directory for oci-dir), atomically.
  void save_images(const std::vector<std::string>& images, const std::filesystem::path& output, const SaveOptions& options);
  // Reads every image of the archive (docker-archive or oci-archive, told apart by content) or
  // OCI layout directory at `input`; returns them with the names they were stored under.
  std::vector<ImageRecord> load_images(const std::filesystem::path& input, const BlobProgressFn& progress = {});
  // login: checks the credentials against the registry and stores them in auth.json; returns the file.
  std::filesystem::path login(const std::string& registry, const Credentials& creds, const RegistryOptions& options);
  // logout: true when there was something to remove.
  bool logout(const std::string& registry, bool all, const RegistryOptions& options);
  // The plugin that serves a transport prefix ("docker", "oci-archive", ...).
  ImageTransport& transport(const std::string& name);
  // What pull and load do with a source: its image (for an index, the platform in `options`)
  // into the store under `names`; `display` names the source in errors.
  ImageRecord copy_into_store(ImageSource& source, const std::string& display, const std::vector<std::string>& names,
                              const PullOptions& options);

  // Storage verbs (engine_storage.cpp).
  std::vector<Change> container_changes(const std::string& name_or_id);
  ImageRecord commit_container(const std::string& name_or_id, const std::string& reference,
                               const CommitOptions& options);
  MountedContainer mount_container(const std::string& name_or_id);
  std::string unmount_container(const std::string& name_or_id);
  std::vector<MountedContainer> mounted_containers();
  DiskUsageReport disk_usage();
  // Stopped containers.
  PruneReport prune_containers();
  // Images without a name; with `all`, every image no container uses.
  PruneReport prune_images(bool all);
  // Verifies blobs, layers (unless `quick`: their files against their blobs, by applying each
  // again), images and containers; with `repair`, fixes what it can.
  CheckReport check_store(bool repair, bool quick = false);

  // create + start: in the foreground (attached, returning the container's exit code), or
  // with -d printing nothing and returning 0 once it runs (its ID is in `*id` when given).
  int run(const RunOptions& options, std::string* id = nullptr);
  // Makes the container (record, filesystem, bundle) without starting it.
  ContainerRecord create_container(const RunOptions& options);
  // Starts its monitor; with `attach`, relays its stdio until it ends (its exit code) or the
  // detach keys are typed (0). Errors if it is running already.
  int start_container(const std::string& name_or_id, const StartOptions& options);
  // The stop signal, then SIGKILL after `timeout` seconds (the container's --stop-timeout when
  // unset); waits until its monitor has recorded the exit. A stopped container is no error.
  void stop_container(const std::string& name_or_id, std::optional<int> timeout);
  void kill_container(const std::string& name_or_id, int signal);
  void restart_container(const std::string& name_or_id, std::optional<int> timeout);
  // Blocks until it is not running; its exit code.
  int wait_container(const std::string& name_or_id);
  int attach_container(const std::string& name_or_id, const AttachOptions& options);
  int exec_container(const std::string& name_or_id, const ExecOptions& options);
  void rename_container(const std::string& name_or_id, const std::string& new_name);
  // Runs its healthcheck once and records the result; true when healthy.
  bool run_healthcheck(const std::string& name_or_id);
  // Writes its log to stdout/stderr as `hutch logs` does.
  void container_logs(const std::string& name_or_id, const LogsOptions& options);
  // The container's processes as `ps -o ARGS` would list them (`top`): header, then rows.
  std::vector<std::vector<std::string>> container_top(const std::string& name_or_id, const std::vector<std::string>& ps_args);
  void pause_container(const std::string& name_or_id, bool pause);
  // Samples every named container (all running ones when empty) twice, `interval_ms` apart.
  std::vector<ContainerStats> container_stats(const std::vector<std::string>& names, int interval_ms);
  // Records as `ps` shows them: a running one whose monitor is gone is checked against its
  // process (its start time), so a stale "running" is never shown.
  std::vector<ContainerRecord> list_containers();
  // docker's container inspect shape: Id, Name, State (Status, ExitCode, OOMKilled, Pid, ...),
  // Config, HostConfig, Mounts. Nullopt when there is no such container.
  std::optional<nlohmann::json> inspect_container(const std::string& name_or_id);
  // A running one is refused unless `force` (which kills it first); `volumes` (-v) removes its
  // anonymous volumes too.
  void remove_container(const std::string& name_or_id, bool force, bool volumes = false);
  // Several at once: each one killed first (with `force`) outside the store lock, then all
  // removed under one lock with one write of the records. One entry per name: empty when it
  // went, else 'N' (no such container) or 'I' (refused, failed) and the message.
  std::vector<std::string> remove_containers(const std::vector<std::string>& names, bool force, bool volumes = false);

  // Named volumes (engine_volumes.cpp). A name is [a-zA-Z0-9][a-zA-Z0-9_.-]*; empty makes a
  // random 64-hex one.
  VolumeRecord create_volume(const std::string& name, const std::map<std::string, std::string>& labels,
                             const std::map<std::string, std::string>& options, bool ignore_existing = false);
  std::vector<VolumeRecord> list_volumes();
  VolumeRecord inspect_volume(const std::string& name);
  // A volume a container uses is refused unless `force`, which also removes those containers.
  void remove_volume(const std::string& name, bool force);
  // Removes every volume no container uses; returns their names and the bytes freed.
  std::vector<std::string> prune_volumes(std::uint64_t* reclaimed = nullptr);
  // For `run`: the volume (created when missing, as docker does), its _data directory.
  // With an empty new volume, the image's files at `destination` are copied in first
  // (docker's and podman's behaviour); the caller holds the exclusive store lock.
  std::filesystem::path volume_for_run(const std::string& name, const std::filesystem::path& rootfs,
                                       const std::string& destination);

  // `hutch cp` (engine_copy.cpp), as docker cp: SRC a file, a directory or DIR/. (what it
  // holds); DEST "-" (out) or SRC "-" (in) a tar stream on `stream_fd`. Container paths resolve
  // beneath the container's root (openat2 RESOLVE_IN_ROOT); a running container is seen as its
  // process sees it (with its volumes and mounts), a stopped one is mounted for the copy.
  // Returns the bytes of the tar that was copied.
  struct CopyOptions {
    bool archive = false;      // -a: keep the source's uid/gid (else: the container's root, or the caller)
    bool follow_link = false;  // -L: follow a symlink that SRC names (beneath its root)
    int stream_fd = -1;        // the tar stream of "-"
  };
  std::uint64_t copy_from_container(const std::string& container, const std::string& src, const std::string& dest,
                                    const CopyOptions& options);
  std::uint64_t copy_to_container(const std::string& src, const std::string& container, const std::string& dest,
                                  const CopyOptions& options);

 private:
  struct LoadedBackends;
  void recover_once();
  // The monitor process (monitor.cpp): forks (twice, new session) and returns in the caller;
  // `client_fd` (or -1) is the first attached client's end, `status_fd` where it reports that
  // the container started (or why not).
  // `close_in_child`: the caller's ends of those channels, which the monitor must not hold.
  void launch_monitor(const ContainerRecord& record, int status_fd, int client_fd, const std::vector<int>& close_in_child);
  [[noreturn]] void monitor_main(ContainerRecord record, int status_fd, int client_fd);
  // The process object for exec and healthchecks: the container's own, with `args`.
  nlohmann::json exec_process(const ContainerRecord& record, const ExecOptions& options);
  HealthResult health_probe(const ContainerRecord& record, RuntimeBackend& runtime);
  // Records a probe's result; returns the new health state.
  HealthState record_health(const ContainerRecord& record, const HealthResult& result);
  ContainerState live_state(const ContainerRecord& record) const;
  // Removes a container that has ended (records, filesystem, anonymous volumes): --rm.
  void forget_container(const ContainerRecord& record);
  // Stops it (and its monitor) for rm -f: SIGKILL, then waits; no store lock held.
  void kill_and_wait(const ContainerRecord& record);
  // How a client relays to the container `rec` (signals go through its runtime).
  attach::RelayOptions relay_options(const ContainerRecord& rec, bool stdin_open, const std::vector<unsigned char>& keys,
                                     bool sig_proxy);
  friend class Monitor;
  void cleanup_container(const ContainerRecord& record);
  // Removes the image's records and the layers and blobs nothing else uses; the caller holds
  // the exclusive lock and has dealt with its containers. Returns the bytes freed.
  std::uint64_t drop_image(const ImageRecord& image);
  // Blobs and driver layers no record names (what a command killed midway left).
  void collect_unreferenced();
  ContainerRecord find_container_or_throw(const std::string& name_or_id);
  // The driver's changes without the targets the runtime made for its mounts.
  std::vector<Change> own_changes(const std::string& container_id);
  std::string unique_name(const std::vector<ContainerRecord>& existing) const;
  // engine_images.cpp: a stored image to a destination; `dest_repository` ("host/path", or empty
  // for archives) lets a registry mount blobs from the repository the image came from.
  std::string copy_to_destination(const ImageRecord& image, ImageTransport& transport, ImageDestination& dest,
                                  const std::string& dest_repository, const PushOptions& options);
  TransportOptions registry_transport_options(const std::string& repository, const RegistryOptions& options,
                                              bool by_digest, bool for_push);

  Config config_;
  EnginePaths paths_;
  RootlessInfo rootless_;
  const Logger& logger_;
  PluginLoader loader_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<LoadedBackends> backends_;
  bool recovered_ = false;
  bool announced_no_network_ = false;
  int passthrough_fds_[3] = {-1, -1, -1};  // in a monitor: the stdio of the command that started it
};

}  // namespace hutch
