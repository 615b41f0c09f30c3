// docker save's format: manifest.json ([{Config, RepoTags, Layers}]), the config files and the
// layer tars, and the legacy `repositories` file. Read in place: a source synthesises a Docker
// schema 2 manifest from an entry (its digests are those of the files in the archive). Written
// in the classic form docker (up to 24), podman and skopeo all load: "<config hex>.json" and
// "<diff ID hex>/layer.tar", uncompressed (gzip layers handed over are inflated on the way).
#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "archive_transports.hpp"
#include "hutch/digest.hpp"
#include "hutch/error.hpp"
#include "hutch/paths.hpp"

namespace hutch::registry::archive {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

struct ArchiveImage {
  std::string config;               // path in the archive
  std::vector<std::string> layers;  // paths in the archive
  std::vector<std::string> repo_tags;
};

// An archive path from manifest.json, cleaned; an error naming the entry when it leads out.
std::string archive_path(const json& value, const ImageFiles& files, std::size_t image, const std::string& what) {
  std::string where = "manifest.json in " + files.describe() + ": image @" + std::to_string(image);
  if (!value.is_string() || value.get<std::string>().empty())
    throw Error(Errc::kInvalidInput, where + " has no " + what + " path");
  std::string raw = value;
  std::string rest = raw;
  bool climbs = raw[0] == '/';
  for (std::size_t i = 0; i <= rest.size() && !climbs;) {
    std::size_t j = rest.find('/', i);
    if (j == std::string::npos) j = rest.size();
    if (rest.compare(i, j - i, "..") == 0 && j - i == 2) climbs = true;
    i = j + 1;
  }
  if (climbs)
    throw Error(Errc::kInvalidInput, where + " names its " + what + " \"" + raw + "\", a path outside the archive");
  return normalize_path(raw);
}

std::vector<ArchiveImage> read_manifest_json(const ImageFiles& files) {
  if (!files.size_of("manifest.json")) {
    if (files.size_of("repositories"))
      throw Error(Errc::kUnsupported, files.describe() + " has no manifest.json: it is in the format of docker before "
                                                         "1.10, which only that docker loads");
    throw Error(Errc::kNotFound, files.describe() + " is not a docker-archive: it has no manifest.json");
  }
  json parsed;
  try {
    parsed = json::parse(files.read_small("manifest.json"));
  } catch (const json::exception& e) {
    throw Error(Errc::kInvalidInput, "manifest.json in " + files.describe() + " is not valid JSON: " + e.what());
  }
  if (!parsed.is_array())
    throw Error(Errc::kInvalidInput, "manifest.json in " + files.describe() + " is not a list of images");
  std::vector<ArchiveImage> images;
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    const json& e = parsed[i];
    std::string where = "manifest.json in " + files.describe() + ": image @" + std::to_string(i);
    if (!e.is_object()) throw Error(Errc::kInvalidInput, where + " is not an object");
    ArchiveImage image;
    image.config = archive_path(e.value("Config", json()), files, i, "config");
    if (!e.contains("Layers") || !e["Layers"].is_array())
      throw Error(Errc::kInvalidInput, where + " has no \"Layers\" list");
    for (std::size_t l = 0; l < e["Layers"].size(); ++l)
      image.layers.push_back(archive_path(e["Layers"][l], files, i, "layer " + std::to_string(l)));
    if (e.contains("RepoTags") && !e["RepoTags"].is_null()) {
      if (!e["RepoTags"].is_array()) throw Error(Errc::kInvalidInput, where + " has a \"RepoTags\" that is not a list");
      for (const auto& t : e["RepoTags"]) {
        if (!t.is_string()) throw Error(Errc::kInvalidInput, where + " has a tag that is not a string: " + t.dump());
        image.repo_tags.push_back(t);
      }
    }
    images.push_back(std::move(image));
  }
  return images;
}

// docker's normalisation, for matching "busybox:latest" with "docker.io/library/busybox:latest".
std::string familiar(const std::string& name) {
  std::string n = name;
  if (n.starts_with("docker.io/")) n = n.substr(10);
  if (n.starts_with("library/") && n.find('/', 8) == std::string::npos) n = n.substr(8);
  return n;
}

class DockerArchiveSource final : public ImageSource {
 public:
  DockerArchiveSource(std::unique_ptr<ImageFiles> files, const ImageSelector& selector) : files_(std::move(files)) {
    auto images = read_manifest_json(*files_);
    auto listing = [&] {
      std::string out;
      for (std::size_t i = 0; i < images.size(); ++i) {
        out += (i ? ", @" : "@") + std::to_string(i);
        for (const auto& t : images[i].repo_tags) out += " " + t;
      }
      return out;
    };
    if (images.empty()) throw Error(Errc::kNotFound, files_->describe() + " holds no image (manifest.json lists none)");
    std::size_t chosen = 0;
    if (selector.index) {
      if (*selector.index >= images.size())
        throw Error(Errc::kNotFound, files_->describe() + " has no image @" + std::to_string(*selector.index) +
                                         " (it holds " + listing() + ")");
      chosen = *selector.index;
    } else if (!selector.name.empty()) {
      bool found = false;
      for (std::size_t i = 0; i < images.size() && !found; ++i)
        for (const auto& t : images[i].repo_tags)
          if (t == selector.name || familiar(t) == familiar(selector.name)) found = true, chosen = i;
      if (!found)
        throw Error(Errc::kNotFound, files_->describe() + " has no image tagged \"" + selector.name + "\" (it holds " +
                                         listing() + ")");
    } else if (images.size() > 1) {
      throw Error(Errc::kInvalidInput, files_->describe() + " holds " + std::to_string(images.size()) +
                                           " images; name one with :NAME:TAG or :@N (" + listing() + ")");
    }
    image_ = images[chosen];
    index_ = chosen;
    auto check = [&](const std::string& path, const std::string& what) {
      if (!files_->size_of(path))
        throw Error(Errc::kNotFound, files_->describe() + " has no " + path + " (the " + what + " of image @" +
                                         std::to_string(index_) + " in manifest.json)");
    };
    check(image_.config, "config");
    for (std::size_t l = 0; l < image_.layers.size(); ++l) check(image_.layers[l], "layer " + std::to_string(l));
  }

  Manifest get_manifest(const std::string& digest) override {
    const Manifest& m = synthesised();
    if (!digest.empty() && digest != "sha256:" + sha256_hex(m.content))
      throw Error(Errc::kNotFound, "manifest " + digest + " is not in " + files_->describe() +
                                       " (a docker-archive image has one manifest)");
    return m;
  }

  void get_blob(const BlobInfo& blob, const fs::path& destination, const ProgressFn& progress) override {
    synthesised();
    auto it = paths_.find(blob.digest);
    if (it == paths_.end())
      throw Error(Errc::kNotFound, "blob " + blob.digest + " is not in image @" + std::to_string(index_) + " of " +
                                       files_->describe());
    copy_blob_verified(*files_, it->second, blob, destination, progress);
  }

  std::vector<std::string> names() override { return image_.repo_tags; }

 private:
  // The manifest docker's registry code would have pushed: digests over the files as stored.
  const Manifest& synthesised() {
    std::lock_guard lock(mu_);
    if (manifest_) return *manifest_;
    auto descriptor = [&](const std::string& path, const std::string& media_type) {
      Measured m = measure(*files_, path);
      std::string digest = "sha256:" + m.hex;
      paths_.emplace(digest, path);
      ordered_json d;
      d["mediaType"] = media_type;
      d["size"] = m.size;
      d["digest"] = digest;
      return d;
    };
    ordered_json doc;
    doc["schemaVersion"] = 2;
    doc["mediaType"] = kDockerManifest;
    doc["config"] = descriptor(image_.config, kDockerConfig);
    doc["layers"] = ordered_json::array();
    for (const auto& layer : image_.layers)
      doc["layers"].push_back(descriptor(layer, is_gzip(files_->head(layer, 2)) ? kDockerLayerGzip : kDockerLayer));
    manifest_ = Manifest{kDockerManifest, doc.dump(3)};
    return *manifest_;
  }

  std::unique_ptr<ImageFiles> files_;
  ArchiveImage image_;
  std::size_t index_ = 0;
  std::mutex mu_;
  std::optional<Manifest> manifest_;
  std::map<std::string, std::string> paths_;  // digest -> path in the archive
};

// "name:tag" -> ("name", "tag"); nothing for a reference by digest or without a tag.
std::optional<std::pair<std::string, std::string>> split_tag(const std::string& name) {
  if (name.find('@') != std::string::npos) return std::nullopt;
  auto colon = name.rfind(':');
  if (colon == std::string::npos || name.find('/', colon) != std::string::npos) return std::nullopt;
  return std::make_pair(name.substr(0, colon), name.substr(colon + 1));
}

class DockerArchiveDestination final : public ImageDestination {
 public:
  bool wants_uncompressed_layers() const override { return true; }
  DockerArchiveDestination(const fs::path& file, std::string repo_tag)
      : file_(file), repo_tag_(std::move(repo_tag)), staging_(file) {
    if (!repo_tag_.empty() && !split_tag(repo_tag_))
      throw Error(Errc::kInvalidInput, "docker-archive:" + file.string() + ":" + repo_tag_ +
                                           ": the name after the file must be NAME:TAG");
  }

  bool reuse_blob(const BlobInfo& blob, const std::string&) override {
    std::lock_guard lock(mu_);
    return stored_.count(blob.digest) > 0;
  }

  void put_blob(const BlobInfo& blob, const fs::path& source, const ProgressFn& progress) override {
    std::string hex = blob_hex(blob.digest);
    fs::path file = staging_.path() / hex;
    // Layers are kept as docker save writes them, uncompressed: a gzip blob is inflated here
    // and named by its diff ID in the archive.
    std::string content_hex = store_blob_verified(source, blob, file, progress, /*inflate=*/true);
    std::lock_guard lock(mu_);
    stored_[blob.digest] = {file, content_hex};
  }

  void put_manifest(const Manifest& manifest, const std::vector<std::string>& names) override {
    json m;
    try {
      m = json::parse(manifest.content);
    } catch (const json::exception& e) {
      throw Error(Errc::kInvalidInput, "the manifest given to docker-archive:" + file_.string() + " is not JSON: " + e.what());
    }
    if (m.contains("manifests") || manifest.media_type == kOciIndex || manifest.media_type == kDockerManifestList)
      throw Error(Errc::kUnsupported, "docker-archive:" + file_.string() +
                                          " holds single-platform images; an image index was given (choose a platform)");
    if (!m.contains("config") || !m["config"].is_object() || !m.contains("layers") || !m["layers"].is_array())
      throw Error(Errc::kInvalidInput, "the manifest given to docker-archive:" + file_.string() +
                                           " has no config or no layers");
    std::lock_guard lock(mu_);
    auto stored = [&](const json& d, const std::string& what) -> const Stored& {
      std::string digest = d.value("digest", "");
      auto it = stored_.find(digest);
      if (it == stored_.end())
        throw Error(Errc::kNotFound, "docker-archive:" + file_.string() + ": the " + what + " " + digest +
                                         " was not written before its manifest");
      return it->second;
    };
    Entry entry;
    const Stored& config = stored(m["config"], "config");
    entry.config_hex = config.content_hex;
    files_[config.content_hex + ".json"] = config.file;
    for (std::size_t l = 0; l < m["layers"].size(); ++l) {
      const Stored& layer = stored(m["layers"][l], "layer " + std::to_string(l));
      entry.layer_hexes.push_back(layer.content_hex);
      files_[layer.content_hex + "/layer.tar"] = layer.file;
    }
    std::vector<std::string> tags;
    if (!repo_tag_.empty()) tags = {repo_tag_};
    else
      for (const auto& n : names)
        if (split_tag(n)) tags.push_back(n);
    // A tag names one image: it moves from an earlier one, as docker does. The same image
    // saved again under another name is one entry with both tags.
    for (auto& e : entries_)
      std::erase_if(e.repo_tags, [&](const std::string& t) { return std::find(tags.begin(), tags.end(), t) != tags.end(); });
    auto same = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
      return e.config_hex == entry.config_hex && e.layer_hexes == entry.layer_hexes;
    });
    if (same != entries_.end()) {
      same->repo_tags.insert(same->repo_tags.end(), tags.begin(), tags.end());
    } else {
      entry.repo_tags = tags;
      entries_.push_back(std::move(entry));
    }
  }

  void commit() override {
    std::lock_guard lock(mu_);
    if (entries_.empty())
      throw Error(Errc::kInvalidInput, "docker-archive:" + file_.string() + ": no image was written to it");
    ordered_json manifest = ordered_json::array();
    ordered_json repositories = ordered_json::object();
    for (const auto& e : entries_) {
      ordered_json j;
      j["Config"] = e.config_hex + ".json";
      j["RepoTags"] = e.repo_tags;
      j["Layers"] = ordered_json::array();
      for (const auto& l : e.layer_hexes) j["Layers"].push_back(l + "/layer.tar");
      manifest.push_back(j);
      for (const auto& t : e.repo_tags) {
        auto [name, tag] = *split_tag(t);
        if (!e.layer_hexes.empty()) repositories[name][tag] = e.layer_hexes.back();
      }
    }
    write_tar_atomically(file_, [&](TarWriter& tar) {
      std::set<std::string> dirs;
      for (const auto& e : entries_)
        for (const auto& l : e.layer_hexes)
          if (dirs.insert(l).second) {
            tar.add_directory(l);
            tar.add_file(l + "/layer.tar", files_.at(l + "/layer.tar"));
          }
      std::set<std::string> configs;
      for (const auto& e : entries_)
        if (configs.insert(e.config_hex).second) tar.add_file(e.config_hex + ".json", files_.at(e.config_hex + ".json"));
      tar.add_bytes("manifest.json", manifest.dump() + "\n");
      tar.add_bytes("repositories", repositories.dump() + "\n");
    });
  }

 private:
  struct Stored {
    fs::path file;
    std::string content_hex;  // the sha256 of the file kept (the diff ID of an inflated layer)
  };
  struct Entry {
    std::string config_hex;
    std::vector<std::string> layer_hexes;
    std::vector<std::string> repo_tags;
  };
  fs::path file_;
  std::string repo_tag_;
  StagingDirectory staging_;
  std::mutex mu_;
  std::map<std::string, Stored> stored_;  // by the digest it was given under
  std::map<std::string, fs::path> files_;  // archive path -> staged file
  std::vector<Entry> entries_;
};

}  // namespace

std::unique_ptr<ImageSource> open_docker_archive_source(std::unique_ptr<ImageFiles> files, const ImageSelector& selector) {
  return std::make_unique<DockerArchiveSource>(std::move(files), selector);
}

std::vector<ListedImage> list_docker_archive_images(const ImageFiles& files, const std::string& location) {
  std::vector<ListedImage> out;
  auto images = read_manifest_json(files);
  for (std::size_t i = 0; i < images.size(); ++i) out.push_back({location + ":@" + std::to_string(i), images[i].repo_tags});
  return out;
}

std::unique_ptr<ImageDestination> open_docker_archive_destination(const fs::path& file, const std::string& repo_tag) {
  return std::make_unique<DockerArchiveDestination>(file, repo_tag);
}

}  // namespace hutch::registry::archive
