// Images from and to transports: pull, push, save, load, login, logout.
//
// Pull (copy_into_store): the manifest (an index is resolved to the platform asked for), the
// config, then the layers the store lacks, fetched by several threads into a staging area; the
// layers are applied in order as soon as each one and those below it are there, each under the
// exclusive store lock, while the downloads go on. Each layer blob is verified by the
// transport against its digest while it streams, and decompressed once, into a pipe that the
// storage driver's tar reader reads, while its plain bytes are hashed: a diff ID other than the
// config's removes the layer again. Layers are recorded as they are made (so a second pull after
// a killed one fetches only what is missing); the image record comes last, so an image is
// listed only once all of it is stored.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "compression.hpp"
#include "engine_internal.hpp"
#include "hutch/digest.hpp"
#include "hutch/engine.hpp"
#include "hutch/error.hpp"
#include "hutch/image_ref.hpp"
#include "hutch/paths.hpp"
#include "hutch/registries.hpp"
#include "hutch/unique_fd.hpp"

namespace hutch {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr const char* kOciConfig = "application/vnd.oci.image.config.v1+json";
constexpr const char* kDockerConfig = "application/vnd.docker.container.image.v1+json";

struct TransportRef {
  std::string transport;  // "docker", "oci", ...
  std::string reference;  // what follows the prefix
  bool explicit_transport = false;
};

TransportRef split_transport(const std::string& text) {
  if (text.rfind("docker://", 0) == 0) return {"docker", text.substr(9), true};
  for (const char* t : {"oci-archive", "docker-archive", "oci"}) {
    std::string prefix = std::string(t) + ":";
    if (text.rfind(prefix, 0) == 0) {
      if (text.size() == prefix.size())
        throw Error(Errc::kInvalidInput, "\"" + text + "\" names no path; write " + prefix + "PATH");
      return {t, text.substr(prefix.size()), true};
    }
  }
  return {"docker", text, false};
}

// Whether a reference names its registry ("host.tld/...", "host:port/...", "localhost/...").
bool has_registry_host(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos) return false;
  std::string first = text.substr(0, slash);
  return first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost";
}

enum class ManifestKind { kImage, kIndex, kSchema1, kUnknown };

ManifestKind classify(const Manifest& m, const json& j) {
  std::string type = m.media_type;
  std::string field = j.is_object() ? j.value("mediaType", "") : "";
  if (type.empty() || type == "application/json" || type == "text/plain") type = field;
  if (type == kOciIndex || type == kDockerList) return ManifestKind::kIndex;
  if (type == kOciManifest || type == kDockerManifest) return ManifestKind::kImage;
  if (type.find("manifest.v1") != std::string::npos) return ManifestKind::kSchema1;
  if (j.is_object() && j.value("schemaVersion", 0) == 1) return ManifestKind::kSchema1;
  if (type.empty() && j.is_object()) {
    if (j.contains("manifests")) return ManifestKind::kIndex;
    if (j.contains("layers") && j.contains("config")) return ManifestKind::kImage;
  }
  return ManifestKind::kUnknown;
}

std::string normalize_arch(std::string a) {
  if (a == "x86_64" || a == "x86-64") return "amd64";
  if (a == "aarch64") return "arm64";
  if (a == "armhf" || a == "armel") return "arm";
  if (a == "i386" || a == "i686") return "386";
  return a;
}

std::string platform_text(const std::string& os, const std::string& arch, const std::string& variant) {
  return os + "/" + arch + (variant.empty() ? "" : "/" + variant);
}

BlobInfo descriptor(const json& d, const std::string& what, const std::string& where) {
  BlobInfo b;
  try {
    b.digest = d.at("digest").get<std::string>();
    digest_hex(b.digest);
    b.size = d.at("size").get<std::int64_t>();
    b.media_type = d.value("mediaType", "");
  } catch (const std::exception&) {
    throw Error(Errc::kInvalidInput, "the " + what + " of " + where + " has no valid digest and size");
  }
  if (b.size < 0) throw Error(Errc::kInvalidInput, "the " + what + " of " + where + " has a negative size");
  return b;
}

bool is_layer_type(const std::string& t) {
  static const std::set<std::string> kLayerTypes = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.diff.tar",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  return kLayerTypes.count(t) > 0;
}

std::string layer_media_type(bool docker, Compression c) {
  if (docker) {
    return c == Compression::kGzip ? "application/vnd.docker.image.rootfs.diff.tar.gzip"
                                   : "application/vnd.docker.image.rootfs.diff.tar";
  }
  switch (c) {
    case Compression::kGzip: return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Compression::kZstd: return "application/vnd.oci.image.layer.v1.tar+zstd";
    default: return "application/vnd.oci.image.layer.v1.tar";
  }
}

// Runs `work(i)` for i in [0, n) on up to `threads` threads; the first error stops the others
// from starting more, and is rethrown after all have finished.
void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& work) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mu;
  auto worker = [&] {
    for (;;) {
      std::size_t i = next++;
      if (i >= n || failed) return;
      try {
        work(i);
      } catch (...) {
        std::lock_guard<std::mutex> g(mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  int count = static_cast<int>(std::min<std::size_t>(n, static_cast<std::size_t>(std::max(threads, 1))));
  for (int t = 1; t < count; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

void report(const BlobProgressFn& fn, const BlobProgress& p) {
  if (fn) fn(p);
}

std::string display_name_of(const ImageRecord& img, const std::string& asked) {
  return asked.empty() ? (img.names.empty() ? img.id.substr(0, 12) : img.names.front()) : asked;
}

}  // namespace

// ---- options -------------------------------------------------------------------------------------

TransportOptions Engine::registry_transport_options(const std::string& repository, const RegistryOptions& options,
                                                    bool by_digest, bool for_push) {
  RegistriesConf conf = load_registries_conf(rootless_.host_uid);
  TransportOptions t;
  t.endpoints = registry_endpoints(conf, repository, by_digest, for_push);
  t.tls_verify = options.tls_verify;
  t.cert_dir = options.cert_dir;
  if (options.creds) {
    t.credentials = options.creds;
  } else {
    t.credentials = find_credentials(repository, {options.authfile, rootless_.host_uid});
  }
  t.user_agent = "hutch/0.1";
  return t;
}

// ---- into the store --------------------------------------------------------------------------------

ImageRecord Engine::copy_into_store(ImageSource& source, const std::string& display, const std::vector<std::string>& names,
                                    const PullOptions& options) {
  Store& st = store();
  storage();  // an unknown or unusable driver fails before anything is fetched
  Manifest top = source.get_manifest("");
  auto parse = [&](const Manifest& m, const std::string& what) {
    try {
      return json::parse(m.content);
    } catch (const std::exception&) {
      throw Error(Errc::kInvalidInput, "the " + what + " of " + display + " is not valid JSON");
    }
  };
  json tj = parse(top, "manifest");
  ManifestKind kind = classify(top, tj);
  std::vector<std::string> index_digests;
  Manifest m = top;
  json mj = tj;
  if (kind == ManifestKind::kIndex) {
    std::string os = options.os.empty() ? "linux" : options.os;
    std::string arch = normalize_arch(options.arch.empty() ? detail::host_architecture() : options.arch);
    std::string variant = options.variant;
    std::vector<std::string> available;
    const json* chosen = nullptr;
    const json* loose = nullptr;  // the right os and architecture, another variant
    const json manifests = tj.value("manifests", json::array());  // `chosen` points into it
    for (const auto& e : manifests) {
      if (!e.is_object() || !e.contains("platform")) continue;
      const json& p = e["platform"];
      std::string eos = p.value("os", ""), earch = normalize_arch(p.value("architecture", "")), evar = p.value("variant", "");
      if (eos == "unknown" || earch == "unknown") continue;  // attestations
      available.push_back(platform_text(eos, earch, evar));
      if (eos != os || earch != arch) continue;
      bool variant_ok = variant.empty() ? (evar.empty() || (arch == "arm64" && evar == "v8")) : evar == variant;
      if (variant_ok && !chosen) chosen = &e;
      if (!loose) loose = &e;
    }
    if (!chosen && variant.empty()) chosen = loose;
    if (!chosen) {
      std::string list;
      for (const auto& a : available) list += (list.empty() ? "" : ", ") + a;
      throw Error(Errc::kNotFound, display + " has no image for " + platform_text(os, arch, variant) +
                                       "; it has " + (list.empty() ? "none" : list) + " (choose one with --platform)");
    }
    BlobInfo child = descriptor(*chosen, "manifest for " + platform_text(os, arch, variant), display);
    index_digests.push_back("sha256:" + sha256_hex(top.content));
    m = source.get_manifest(child.digest);
    if ("sha256:" + sha256_hex(m.content) != child.digest)
      throw Error(Errc::kCorrupt, "the manifest " + child.digest + " of " + display + " does not match its digest");
    if (m.media_type.empty()) m.media_type = child.media_type;
    mj = parse(m, "manifest " + child.digest);
    kind = classify(m, mj);
    if (kind == ManifestKind::kIndex) throw Error(Errc::kUnsupported, display + ": an index inside an index is not supported");
  }
  if (kind == ManifestKind::kSchema1)
    throw Error(Errc::kUnsupported, display + " has a Docker schema 1 manifest, which hutch does not pull (it is deprecated "
                                              "and unverifiable); push the image again with a current docker, podman or skopeo");
  if (kind != ManifestKind::kImage)
    throw Error(Errc::kUnsupported, display + " is not a container image (manifest media type \"" +
                                        (m.media_type.empty() ? mj.value("mediaType", "") : m.media_type) + "\")");
  if (m.media_type.empty()) m.media_type = mj.value("mediaType", kOciManifest);
  BlobInfo config_blob = descriptor(mj.value("config", json::object()), "config", display);
  if (config_blob.media_type != kOciConfig && config_blob.media_type != kDockerConfig)
    throw Error(Errc::kUnsupported, display + " is not a container image: its config has media type \"" +
                                        config_blob.media_type + "\" (an OCI artifact?)");
  std::vector<BlobInfo> layer_blobs;
  for (const auto& l : mj.value("layers", json::array())) {
    BlobInfo b = descriptor(l, "layer " + std::to_string(layer_blobs.size() + 1), display);
    if (!is_layer_type(b.media_type))
      throw Error(Errc::kUnsupported, "layer " + std::to_string(layer_blobs.size() + 1) + " of " + display +
                                          " has media type \"" + b.media_type + "\", which is not an image layer");
    layer_blobs.push_back(b);
  }

  constexpr std::int64_t kMaxConfigBytes = 16 << 20;
  if (config_blob.size > kMaxConfigBytes)
    throw Error(Errc::kInvalidInput, "the config of " + display + " claims " + std::to_string(config_blob.size) +
                                         " bytes; refusing a config larger than 16 MiB");
  auto staging = st.stage("pull");
  fs::path config_file = staging.dir() / "config.json";
  report(options.progress, {config_blob.digest, "config", 0, config_blob.size, BlobProgress::State::kMoving});
  source.get_blob(config_blob, config_file, {});
  std::string config_text = read_file(config_file);
  if ("sha256:" + sha256_hex(config_text) != config_blob.digest)
    throw Error(Errc::kCorrupt, "the config " + config_blob.digest + " of " + display + " does not match its digest");
  report(options.progress, {config_blob.digest, "config", static_cast<std::uint64_t>(config_blob.size), config_blob.size,
                            BlobProgress::State::kDone});
  json config;
  try {
    config = json::parse(config_text);
  } catch (const std::exception&) {
    throw Error(Errc::kInvalidInput, "the config of " + display + " is not valid JSON");
  }
  std::vector<std::string> diff_ids;
  try {
    diff_ids = config.at("rootfs").at("diff_ids").get<std::vector<std::string>>();
    for (const auto& d : diff_ids) digest_hex(d);
  } catch (const std::exception&) {
    throw Error(Errc::kInvalidInput, "the config of " + display + " has no valid rootfs.diff_ids");
  }
  if (diff_ids.size() != layer_blobs.size())
    throw Error(Errc::kInvalidInput, "the config of " + display + " lists " + std::to_string(diff_ids.size()) +
                                         " layers, its manifest " + std::to_string(layer_blobs.size()));
  std::vector<std::string> chains;
  for (const auto& d : diff_ids) chains.push_back(chain_id(chains.empty() ? "" : chains.back(), d));

  // What the store has already: those layers are not fetched.
  std::vector<bool> present(chains.size(), false);
  {
    auto lock = st.lock(FileLock::Mode::kShared);
    std::set<std::string> recorded;
    for (const auto& l : st.layers()) recorded.insert(l.id);
    for (size_t i = 0; i < chains.size(); ++i) present[i] = recorded.count(chains[i]) && storage().has_layer(chains[i]);
  }
  std::vector<std::size_t> missing;
  for (size_t i = 0; i < chains.size(); ++i) {
    if (present[i]) report(options.progress, {layer_blobs[i].digest, "layer", 0, layer_blobs[i].size, BlobProgress::State::kSkipped});
    else {
      missing.push_back(i);
      report(options.progress, {layer_blobs[i].digest, "layer", 0, layer_blobs[i].size, BlobProgress::State::kWaiting});
    }
  }

  // Fetch on worker threads; apply here, in order, as each arrives.
  struct Slot {
    bool ready = false;
    std::exception_ptr error;
  };
  std::vector<Slot> slots(chains.size());
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  auto layer_file = [&](size_t i) { return staging.dir() / ("layer-" + std::to_string(i)); };
  int parallel = options.parallel > 0 ? options.parallel : config_.max_parallel_downloads;
  auto fetcher = [&] {
    for (;;) {
      std::size_t k = next++;
      if (k >= missing.size() || stop) return;
      std::size_t i = missing[k];
      std::exception_ptr error;
      try {
        const BlobInfo& b = layer_blobs[i];
        source.get_blob(b, layer_file(i), [&, i](std::uint64_t done, std::int64_t total) {
          report(options.progress, {layer_blobs[i].digest, "layer", done, total, BlobProgress::State::kMoving});
        });
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> g(mu);
      slots[i].ready = true;
      slots[i].error = error;
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  int count = static_cast<int>(std::min<std::size_t>(missing.size(), static_cast<std::size_t>(std::max(parallel, 1))));
  for (int t = 0; t < count; ++t) pool.emplace_back(fetcher);
  struct Joiner {
    std::vector<std::thread>& pool;
    std::atomic<bool>& stop;
    ~Joiner() {
      stop = true;
      for (auto& t : pool) t.join();
    }
  } joiner{pool, stop};

  std::uint64_t total_size = 0;
  for (size_t i = 0; i < chains.size(); ++i) {
    const BlobInfo& b = layer_blobs[i];
    if (present[i]) continue;
    {
      std::unique_lock<std::mutex> g(mu);
      cv.wait(g, [&] { return slots[i].ready; });
      if (slots[i].error) {
        stop = true;
        std::rethrow_exception(slots[i].error);
      }
    }
    report(options.progress, {b.digest, "layer", static_cast<std::uint64_t>(b.size), b.size, BlobProgress::State::kUnpacking});
    auto lock = st.lock(FileLock::Mode::kExclusive);
    recover_once();
    auto layers = st.layers();
    bool recorded = std::any_of(layers.begin(), layers.end(), [&](const LayerRecord& l) { return l.id == chains[i]; });
    if (recorded && storage().has_layer(chains[i])) {  // another command made it meanwhile
      report(options.progress, {b.digest, "layer", static_cast<std::uint64_t>(b.size), b.size, BlobProgress::State::kDone});
      continue;
    }
    std::string parent = i == 0 ? "" : chains[i - 1];
    std::string what = "layer " + std::to_string(i + 1) + " (" + b.digest + ") of " + display;
    // The layer's tar reaches the driver through a pipe, decompressed once, its plain bytes hashed on the way.
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw system_error("cannot make a pipe", errno);
    UniqueFd read_end(p[0]), write_end(p[1]);
    WrittenBlob plain;
    std::exception_ptr decompress_error;
    std::thread feeder([&] {
      try {
        plain = decompress_to_fd(layer_file(i), write_end.get(), what);
      } catch (...) {
        decompress_error = std::current_exception();
      }
      write_end.reset();
    });
    bool made = false;
    try {
      if (storage().has_layer(chains[i])) storage().remove_layer(chains[i]);  // unrecorded: a crash left it
      storage().create_layer(chains[i], parent, "/proc/self/fd/" + std::to_string(read_end.get()));
      made = true;
    } catch (...) {
      read_end.reset();
      feeder.join();
      if (decompress_error) std::rethrow_exception(decompress_error);
      throw;
    }
    read_end.reset();
    feeder.join();
    if (decompress_error) {
      storage().remove_layer(chains[i]);
      std::rethrow_exception(decompress_error);
    }
    if (plain.plain_digest != diff_ids[i]) {
      if (made) storage().remove_layer(chains[i]);
      throw Error(Errc::kCorrupt, what + " unpacks to " + plain.plain_digest + ", but the image's config says " + diff_ids[i]);
    }
    std::string blob = st.commit_blob(layer_file(i), digest_hex(b.digest));
    layers.erase(std::remove_if(layers.begin(), layers.end(), [&](const LayerRecord& l) { return l.id == chains[i]; }),
                 layers.end());
    layers.push_back({chains[i], parent, diff_ids[i], blob, plain.plain_size});
    st.save_layers(layers);
    report(options.progress, {b.digest, "layer", static_cast<std::uint64_t>(b.size), b.size, BlobProgress::State::kDone});
  }

  // Last, and all at once: the image.
  auto lock = st.lock(FileLock::Mode::kExclusive);
  recover_once();
  auto layers = st.layers();
  for (const auto& c : chains) {
    auto it = std::find_if(layers.begin(), layers.end(), [&](const LayerRecord& l) { return l.id == c; });
    if (it == layers.end() || !storage().has_layer(c))
      throw Error(Errc::kInternal, "layer " + c.substr(0, 12) + " of " + display + " went away while pulling; pull again");
    total_size += it->size;
  }
  std::string config_digest = st.put_blob(config_text);
  std::string manifest_digest = st.put_blob(m.content);
  std::string id = digest_hex(config_digest);
  auto images = st.images();
  for (auto& img : images)
    for (const auto& n : names) img.names.erase(std::remove(img.names.begin(), img.names.end(), n), img.names.end());
  auto existing = std::find_if(images.begin(), images.end(), [&](const ImageRecord& r) { return r.id == id; });
  ImageRecord rec;
  if (existing != images.end()) {
    if (existing->manifest_digest != manifest_digest) {
      // Another manifest for the same config (another compression): keep the one we just stored.
      bool shared = std::any_of(images.begin(), images.end(), [&](const ImageRecord& r) {
        return &r != &*existing && r.manifest_digest == existing->manifest_digest;
      });
      if (!shared && !existing->manifest_digest.empty()) ::unlink(st.blob_path(existing->manifest_digest).c_str());
      existing->manifest_digest = manifest_digest;
    }
    for (const auto& n : names) existing->names.push_back(n);
    for (const auto& d : index_digests)
      if (std::find(existing->index_digests.begin(), existing->index_digests.end(), d) == existing->index_digests.end())
        existing->index_digests.push_back(d);
    rec = *existing;
  } else {
    rec.id = id;
    rec.manifest_digest = manifest_digest;
    rec.names = names;
    rec.layers = chains;
    rec.size = total_size;
    rec.created = config.value("created", now_rfc3339());
    rec.index_digests = index_digests;
    images.push_back(rec);
  }
  st.save_images(images);
  return rec;
}

ImageRecord Engine::pull_image(const std::string& reference, const PullOptions& options) {
  TransportRef tr = split_transport(reference);
  ImageTransport& t = transport(tr.transport);
  if (tr.transport != "docker") {
    auto listed = t.list_images(tr.transport, tr.reference, {});
    if (listed.size() != 1)
      throw Error(Errc::kInvalidInput, reference + " holds " + std::to_string(listed.size()) +
                                           " images; name one (" + tr.transport + ":PATH:@N), or use \"hutch load\"");
    auto src = t.open_source(tr.transport, listed[0].reference, {});
    std::vector<std::string> names;
    for (const auto& n : listed[0].names)
      if (auto r = try_parse_image_ref(n); r && r->digest.empty()) names.push_back(r->full());
    return copy_into_store(*src, reference, names, options);
  }
  std::vector<std::string> candidates;
  if (has_registry_host(tr.reference)) {
    candidates.push_back(tr.reference);
  } else {
    parse_image_ref(tr.reference);  // a bad reference is said as such first
    RegistriesConf conf = load_registries_conf(rootless_.host_uid);
    candidates = resolve_short_name(conf, tr.reference);
    if (candidates.empty()) {
      std::string files;
      for (const auto& f : conf.files_read) files += (files.empty() ? "" : ", ") + f.string();
      throw Error(Errc::kInvalidInput,
                  "short name \"" + tr.reference + "\" did not resolve: no unqualified-search-registries and no alias for it in " +
                      (files.empty() ? std::string("any registries.conf (none found)") : files) +
                      "; give the full name (registry.example.com/" + tr.reference + ") or add a registry to search");
    }
  }
  std::optional<Error> first_error;
  for (const auto& candidate : candidates) {
    ImageRef ref = parse_image_ref(candidate);
    std::string repository = ref.domain + "/" + ref.path;
    try {
      TransportOptions topts = registry_transport_options(repository, options.registry, !ref.digest.empty(), false);
      auto src = t.open_source("docker", ref.full(), topts);
      return copy_into_store(*src, ref.full(), {ref.full()}, options);
    } catch (Error& e) {
      // A short name tries the next registry when this one does not have it or cannot be reached.
      bool next = candidates.size() > 1 &&
                  (e.code() == Errc::kNotFound || e.code() == Errc::kNetwork || e.code() == Errc::kUnauthorized);
      if (!next) throw std::move(e.with_context("pulling " + ref.full()));
      logger_.info("pulling " + ref.full() + ": " + e.what());
      if (!first_error) first_error = std::move(e.with_context("pulling " + ref.full()));
    }
  }
  throw std::move(*first_error);
}

// ---- out of the store --------------------------------------------------------------------------

std::string Engine::copy_to_destination(const ImageRecord& image, ImageTransport& transport, ImageDestination& dest,
                                        const std::string& dest_repository, const PushOptions& options) {
  Store& st = store();
  TransportCapabilities caps = transport.capabilities();
  std::string display = image.names.empty() ? image.id.substr(0, 12) : image.names.front();
  json stored = json::parse(st.read_blob(image.manifest_digest));
  std::string stored_type = stored.value("mediaType", kOciManifest);
  bool docker_kind = stored_type == kDockerManifest;
  Compression wanted = Compression::kGzip;
  bool forced = false;
  if (options.compression == "zstd") wanted = Compression::kZstd, forced = true;
  else if (options.compression == "gzip") forced = true;
  else if (!options.compression.empty())
    throw Error(Errc::kUsage, "--compression-format \"" + options.compression + "\" is not one of gzip, zstd");
  if (dest.wants_uncompressed_layers()) wanted = Compression::kNone, forced = true;
  if (wanted == Compression::kZstd) docker_kind = false;  // docker's manifest has no zstd layers

  auto all_layers = st.layers();
  struct Out {
    fs::path file;
    BlobInfo info;
  };
  std::vector<Out> outs(image.layers.size());
  auto staging = st.stage("push");
  bool changed = dest.wants_uncompressed_layers();
  std::vector<json> stored_layers = stored.value("layers", std::vector<json>{});
  // From where a registry may mount a blob: another repository of the same registry the image came from.
  std::string mount_from;
  if (!dest_repository.empty()) {
    std::string host = dest_repository.substr(0, dest_repository.find('/'));
    for (const auto& n : image.names) {
      auto r = try_parse_image_ref(n);
      if (r && r->domain == host && r->domain + "/" + r->path != dest_repository) {
        mount_from = r->path;
        break;
      }
    }
  }
  parallel_for(image.layers.size(), options.parallel > 0 ? options.parallel : config_.max_parallel_downloads, [&](std::size_t i) {
    auto it = std::find_if(all_layers.begin(), all_layers.end(), [&](const LayerRecord& l) { return l.id == image.layers[i]; });
    if (it == all_layers.end())
      throw Error(Errc::kInternal, "layer " + image.layers[i].substr(0, 12) + " of " + display + " is not in the store; see \"hutch system check\"");
    fs::path blob = st.blob_path(it->blob);
    Compression have = sniff_compression(blob);
    Compression target = forced ? wanted : (have == Compression::kNone || have == Compression::kOther ? Compression::kGzip : have);
    Out& o = outs[i];
    if (have == target) {
      o.file = blob;
      o.info = {it->blob, static_cast<std::int64_t>(fs::file_size(blob)), layer_media_type(docker_kind, target)};
    } else {
      report(options.progress, {it->blob, "layer", 0, -1, BlobProgress::State::kUnpacking});
      o.file = staging.dir() / ("layer-" + std::to_string(i));
      WrittenBlob w = recompress_blob(blob, o.file, target);
      if (w.plain_digest != it->diff_id)
        throw Error(Errc::kCorrupt, "layer " + it->id.substr(0, 12) + " of " + display + ": its blob unpacks to " +
                                        w.plain_digest + ", not its diff ID " + it->diff_id + "; see \"hutch system check\"");
      o.info = {w.digest, static_cast<std::int64_t>(w.size), layer_media_type(docker_kind, target)};
    }
    if (i >= stored_layers.size() || stored_layers[i].value("digest", "") != o.info.digest ||
        stored_layers[i].value("mediaType", "") != o.info.media_type)
      changed = true;
    if (dest.reuse_blob(o.info, mount_from)) {
      report(options.progress, {o.info.digest, "layer", 0, o.info.size, BlobProgress::State::kSkipped});
      return;
    }
    dest.put_blob(o.info, o.file, [&](std::uint64_t done, std::int64_t total) {
      report(options.progress, {o.info.digest, "layer", done, total, BlobProgress::State::kMoving});
    });
    report(options.progress, {o.info.digest, "layer", static_cast<std::uint64_t>(o.info.size), o.info.size, BlobProgress::State::kDone});
  });
  std::string config_digest = "sha256:" + image.id;
  fs::path config_file = st.blob_path(config_digest);
  BlobInfo config_info{config_digest, static_cast<std::int64_t>(fs::file_size(config_file)),
                       docker_kind ? kDockerConfig : kOciConfig};
  if (stored.value("config", json::object()).value("mediaType", "") != config_info.media_type) changed = true;
  if (!dest.reuse_blob(config_info, mount_from)) dest.put_blob(config_info, config_file, {});
  report(options.progress, {config_digest, "config", static_cast<std::uint64_t>(config_info.size), config_info.size,
                            BlobProgress::State::kDone});
  Manifest manifest;
  if (!changed) {
    manifest.content = st.read_blob(image.manifest_digest);
    manifest.media_type = stored_type;
  } else {
    json mj = {{"schemaVersion", 2},
               {"mediaType", docker_kind ? kDockerManifest : kOciManifest},
               {"config", {{"mediaType", config_info.media_type}, {"size", config_info.size}, {"digest", config_digest}}},
               {"layers", json::array()}};
    for (const auto& o : outs)
      mj["layers"].push_back({{"mediaType", o.info.media_type}, {"size", o.info.size}, {"digest", o.info.digest}});
    if (!docker_kind && stored.contains("annotations")) mj["annotations"] = stored["annotations"];
    manifest.content = mj.dump();
    manifest.media_type = mj["mediaType"];
  }
  dest.put_manifest(manifest, image.names);
  return "sha256:" + sha256_hex(manifest.content);
}

PushResult Engine::push_image(const std::string& image, const std::string& destination, const PushOptions& options) {
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kShared);
  auto img = st.find_image(image);
  if (!img) throw Error(Errc::kNotFound, "no such image: " + image + " (see \"hutch images\")");
  std::string target = destination;
  if (target.empty()) {
    if (!has_registry_host(image) && img->names.empty())
      throw Error(Errc::kUsage, "push " + image + " where? give a destination: hutch push " + image + " HOST/NAME:TAG");
    target = has_registry_host(image) ? image : "";
    if (target.empty()) {
      auto r = try_parse_image_ref(image);
      if (r && std::find(img->names.begin(), img->names.end(), r->full()) != img->names.end()) target = r->full();
      else target = img->names.front();
    }
  }
  TransportRef tr = split_transport(target);
  ImageTransport& t = transport(tr.transport);
  PushResult result;
  if (tr.transport == "docker") {
    ImageRef ref = parse_image_ref(tr.reference);
    if (!has_registry_host(tr.reference) || ref.domain == "localhost")
      throw Error(Errc::kInvalidInput, "\"" + tr.reference + "\" names no registry to push to; give HOST[:PORT]/NAME[:TAG] "
                                       "(hutch tag " + image + " registry.example.com/" + ref.path + ")");
    std::string repository = ref.domain + "/" + ref.path;
    TransportOptions topts = registry_transport_options(repository, options.registry, false, true);
    auto dest = t.open_destination("docker", ref.full(), topts);
    try {
      result.manifest_digest = copy_to_destination(*img, t, *dest, repository, options);
      dest->commit();
    } catch (Error& e) {
      throw std::move(e.with_context("pushing " + display_name_of(*img, image) + " to " + ref.full()));
    }
    result.destination = ref.full();
  } else {
    auto dest = t.open_destination(tr.transport, tr.reference, {});
    result.manifest_digest = copy_to_destination(*img, t, *dest, "", options);
    dest->commit();
    result.destination = target;
  }
  return result;
}

void Engine::save_images(const std::vector<std::string>& images, const fs::path& output, const SaveOptions& options) {
  static const std::map<std::string, std::string> kFormats = {
      {"docker-archive", "docker-archive"}, {"oci-archive", "oci-archive"}, {"oci-dir", "oci"}};
  auto f = kFormats.find(options.format);
  if (f == kFormats.end())
    throw Error(Errc::kUsage, "--format \"" + options.format + "\" is not one of docker-archive, oci-archive, oci-dir");
  if (images.empty()) throw Error(Errc::kUsage, "save needs at least one image");
  Store& st = store();
  auto lock = st.lock(FileLock::Mode::kShared);
  std::vector<ImageRecord> found;
  for (const auto& name : images) {
    auto img = st.find_image(name);
    if (!img) throw Error(Errc::kNotFound, "no such image: " + name + " (see \"hutch images\")");
    // Saved by a name, an image carries that name alone (docker's rule); by ID, all of its names.
    auto r = try_parse_image_ref(name);
    if (r && std::find(img->names.begin(), img->names.end(), r->full()) != img->names.end()) img->names = {r->full()};
    found.push_back(*img);
  }
  ImageTransport& t = transport(f->second);
  if (found.size() > 1 && !t.capabilities().multi_image)
    throw Error(Errc::kUsage, "--format " + options.format + " holds one image; save the others separately");
  auto dest = t.open_destination(f->second, output.string(), {});
  PushOptions po;
  for (const auto& img : found) copy_to_destination(img, t, *dest, "", po);
  dest->commit();
}

std::vector<ImageRecord> Engine::load_images(const fs::path& input, const BlobProgressFn& progress) {
  std::error_code ec;
  std::vector<std::pair<std::string, std::vector<ListedImage>>> tries;
  std::string transport_name;
  std::vector<ListedImage> listed;
  if (fs::is_directory(input, ec)) {
    transport_name = "oci";
    listed = transport("oci").list_images("oci", input.string(), {});
  } else {
    if (!fs::exists(input, ec)) throw Error(Errc::kNotFound, "no such file: " + input.string());
    std::string why;
    for (const char* name : {"docker-archive", "oci-archive"}) {
      try {
        listed = transport(name).list_images(name, input.string(), {});
        transport_name = name;
        break;
      } catch (const Error& e) {
        why += std::string(why.empty() ? "" : "; ") + "as " + name + ": " + e.what();
      }
    }
    if (transport_name.empty())
      throw Error(Errc::kInvalidInput, input.string() + " is neither a docker-archive nor an oci-archive (" + why + ")");
  }
  std::vector<ImageRecord> out;
  ImageTransport& t = transport(transport_name);
  PullOptions po;
  po.progress = progress;
  for (const auto& l : listed) {
    auto src = t.open_source(transport_name, l.reference, {});
    std::vector<std::string> names;
    for (const auto& n : l.names) {
      // An OCI ref.name may be a bare tag ("v1", as skopeo writes oci-archive:F:v1): not a name.
      if (transport_name != "docker-archive" && n.find_first_of("/:@") == std::string::npos) {
        logger_.info("the image in " + input.string() + " is tagged \"" + n + "\", which names no repository; loading it unnamed");
        continue;
      }
      auto r = try_parse_image_ref(n);
      if (r && r->digest.empty()) names.push_back(r->full());
      else logger_.warn("ignoring the name \"" + n + "\" of an image in " + input.string() + ": not an image name");
    }
    out.push_back(copy_into_store(*src, input.string(), names, po));
    out.back().names = names;
  }
  return out;
}

// ---- credentials -----------------------------------------------------------------------------------

namespace {

// "docker://host/ns", "https://host/", "host" -> "host/ns", "host", "host".
std::string login_key(std::string registry) {
  for (const char* p : {"docker://", "https://", "http://"})
    if (registry.rfind(p, 0) == 0) registry = registry.substr(std::string(p).size());
  while (!registry.empty() && registry.back() == '/') registry.pop_back();
  if (registry.empty()) throw Error(Errc::kUsage, "give the registry to log in to: hutch login HOST[:PORT]");
  return registry;
}

}  // namespace

fs::path Engine::login(const std::string& registry, const Credentials& creds, const RegistryOptions& options) {
  std::string key = login_key(registry);
  std::string host = key.substr(0, key.find('/'));
  RegistriesConf conf = load_registries_conf(rootless_.host_uid);
  TransportOptions t;
  const RegistryConf* rc = find_registry_conf(conf, key.find('/') == std::string::npos ? key + "/x" : key);
  t.endpoints = {{host + "/x", rc ? rc->insecure : false, false}};
  t.tls_verify = options.tls_verify;
  t.cert_dir = options.cert_dir;
  t.credentials = creds;
  try {
    transport("docker").authenticate(host, t);
  } catch (Error& e) {
    throw std::move(e.with_context("logging in to " + host));
  }
  return store_credentials(key, creds, {options.authfile, rootless_.host_uid});
}

bool Engine::logout(const std::string& registry, bool all, const RegistryOptions& options) {
  return remove_credentials(all ? "" : login_key(registry), all, {options.authfile, rootless_.host_uid});
}

}  // namespace hutch
