// OCI image layouts (image-spec image-layout.md): "oci-layout", "index.json", blobs/sha256/<hex>.
// Read from a directory or in place from a tar; written into a directory (oci) or into a
// staging directory that commit() turns into a tar (oci-archive).
#include <algorithm>
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

namespace {

constexpr const char* kLayoutFile = R"({"imageLayoutVersion":"1.0.0"})";

json parse_json(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(Errc::kInvalidInput, what + " is not valid JSON: " + e.what());
  }
}

std::string blob_path(const std::string& digest) { return "blobs/sha256/" + blob_hex(digest); }

std::string ref_name_of(const json& descriptor) {
  if (descriptor.contains("annotations") && descriptor["annotations"].is_object()) {
    const json& a = descriptor["annotations"];
    if (a.contains(kRefNameAnnotation) && a[kRefNameAnnotation].is_string()) return a[kRefNameAnnotation];
  }
  return "";
}

// The index.json of a layout, checked to be one; its "manifests" entries.
json read_index(const ImageFiles& files) {
  auto layout = files.size_of("oci-layout");
  if (!layout)
    throw Error(Errc::kNotFound, files.describe() + " is not an OCI image layout: it has no oci-layout file");
  json version = parse_json(files.read_small("oci-layout", 1 << 16), "oci-layout in " + files.describe());
  if (!version.is_object() || version.value("imageLayoutVersion", "") != "1.0.0")
    throw Error(Errc::kUnsupported, files.describe() + ": oci-layout says " + version.dump() +
                                        "; only image layout version 1.0.0 is known");
  json index = parse_json(files.read_small("index.json"), "index.json in " + files.describe());
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array())
    throw Error(Errc::kInvalidInput, "index.json in " + files.describe() + " has no \"manifests\" list");
  for (const auto& d : index["manifests"])
    if (!d.is_object() || !d.contains("digest") || !d["digest"].is_string())
      throw Error(Errc::kInvalidInput, "index.json in " + files.describe() + " has an entry without a digest: " + d.dump());
  return index;
}

// How a manifest names itself, or what its shape says.
std::string media_type_of(const json& manifest, const std::string& fallback) {
  if (manifest.is_object() && manifest.contains("mediaType") && manifest["mediaType"].is_string())
    return manifest["mediaType"];
  if (!fallback.empty()) return fallback;
  return manifest.is_object() && manifest.contains("manifests") ? kOciIndex : kOciManifest;
}

class OciLayoutSource final : public ImageSource {
 public:
  OciLayoutSource(std::unique_ptr<ImageFiles> files, const ImageSelector& selector) : files_(std::move(files)) {
    json index = read_index(*files_);
    const json& entries = index["manifests"];
    std::vector<std::string> refs;
    for (const auto& d : entries) refs.push_back(ref_name_of(d));
    auto listing = [&] {
      std::string out;
      for (std::size_t i = 0; i < refs.size(); ++i)
        out += (i ? ", " : "") + (refs[i].empty() ? "@" + std::to_string(i) : "\"" + refs[i] + "\"");
      return out;
    };
    std::size_t chosen = 0;
    if (entries.empty()) throw Error(Errc::kNotFound, files_->describe() + " holds no image (index.json lists none)");
    if (selector.index) {
      if (*selector.index >= entries.size())
        throw Error(Errc::kNotFound, files_->describe() + " has no image @" + std::to_string(*selector.index) +
                                         ": it holds " + std::to_string(entries.size()) + " (@0 to @" +
                                         std::to_string(entries.size() - 1) + ")");
      chosen = *selector.index;
    } else if (!selector.name.empty()) {
      auto it = std::find(refs.begin(), refs.end(), selector.name);
      if (it == refs.end())
        throw Error(Errc::kNotFound, files_->describe() + " has no image named \"" + selector.name + "\" (it has " +
                                         listing() + ")");
      chosen = static_cast<std::size_t>(it - refs.begin());
    } else if (entries.size() > 1) {
      throw Error(Errc::kInvalidInput, files_->describe() + " holds " + std::to_string(entries.size()) +
                                           " images; name one after a colon (it has " + listing() + ")");
    }
    top_ = entries[chosen];
    if (!refs[chosen].empty()) names_ = {refs[chosen]};
  }

  Manifest get_manifest(const std::string& digest) override {
    std::string want = digest.empty() ? top_["digest"].get<std::string>() : digest;
    std::string path = blob_path(want);
    if (!files_->size_of(path)) throw Error(Errc::kNotFound, "manifest " + want + " is not in " + files_->describe());
    std::string content = files_->read_small(path);
    std::string got = sha256_hex(content);
    if ("sha256:" + got != want)
      throw Error(Errc::kCorrupt, "manifest " + want + " in " + files_->describe() +
                                      " does not match its digest: its content has digest sha256:" + got);
    if (digest.empty() && top_.contains("size") && top_["size"].is_number_integer() &&
        top_["size"].get<std::int64_t>() != static_cast<std::int64_t>(content.size()))
      throw Error(Errc::kCorrupt, "manifest " + want + " in " + files_->describe() + " is " +
                                      std::to_string(content.size()) + " bytes; index.json says " + top_["size"].dump());
    json parsed = json::parse(content, nullptr, false);
    std::string fallback;
    if (digest.empty()) {
      fallback = top_.value("mediaType", "");
    } else if (std::string top_content = top_index_content(); !top_content.empty()) {
      json top = json::parse(top_content, nullptr, false);
      if (top.is_object() && top.contains("manifests") && top["manifests"].is_array())
        for (const auto& d : top["manifests"])
          if (d.is_object() && d.value("digest", "") == want) fallback = d.value("mediaType", "");
    }
    return {media_type_of(parsed, fallback), content};
  }

  void get_blob(const BlobInfo& blob, const fs::path& destination, const ProgressFn& progress) override {
    copy_blob_verified(*files_, blob_path(blob.digest), blob, destination, progress);
  }

  std::vector<std::string> names() override { return names_; }

 private:
  // The top manifest's bytes when it is an index (for its children's media types).
  std::string top_index_content() {
    std::string path = blob_path(top_["digest"].get<std::string>());
    if (!files_->size_of(path)) return "";
    return files_->read_small(path);
  }
  std::unique_ptr<ImageFiles> files_;
  json top_;
  std::vector<std::string> names_;
};

// Builds a layout in a directory: blobs as they come, index.json when written.
class OciLayoutWriter {
 public:
  OciLayoutWriter(fs::path root, std::string ref) : root_(std::move(root)), ref_(std::move(ref)) {
    make_dirs(root_ / "blobs" / "sha256");
    fs::path layout = root_ / "oci-layout";
    if (fs::exists(layout)) {
      json v = parse_json(read_file(layout), layout.string());
      if (!v.is_object() || v.value("imageLayoutVersion", "") != "1.0.0")
        throw Error(Errc::kUnsupported, layout.string() + " says " + v.dump() + "; only image layout version 1.0.0 is known");
    } else {
      write_file_atomic(layout, kLayoutFile);
    }
    fs::path index_file = root_ / "index.json";
    if (fs::exists(index_file)) {
      index_ = parse_json(read_file(index_file), index_file.string());
      if (!index_.is_object() || !index_.contains("manifests") || !index_["manifests"].is_array())
        throw Error(Errc::kInvalidInput, index_file.string() + " has no \"manifests\" list");
    } else {
      index_ = json{{"schemaVersion", 2}, {"mediaType", kOciIndex}, {"manifests", json::array()}};
    }
  }

  const fs::path& root() const { return root_; }

  bool reuse_blob(const BlobInfo& blob) {
    std::error_code ec;
    auto size = fs::file_size(root_ / blob_path(blob.digest), ec);
    return !ec && (blob.size < 0 || size == static_cast<std::uintmax_t>(blob.size));
  }

  void put_blob(const BlobInfo& blob, const fs::path& source, const ProgressFn& progress) {
    store_blob_verified(source, blob, root_ / blob_path(blob.digest), progress);
  }

  // One index entry per name (REF when the reference gave one), replacing the entries that
  // had the name; one without a name when there is none.
  void put_manifest(const Manifest& manifest, const std::vector<std::string>& names) {
    std::string digest = "sha256:" + sha256_hex(manifest.content);
    fs::path file = root_ / blob_path(digest);
    if (!fs::exists(file)) write_file_atomic(file, manifest.content);
    json parsed = json::parse(manifest.content, nullptr, false);
    json descriptor{{"mediaType", manifest.media_type.empty() ? media_type_of(parsed, "") : manifest.media_type},
                    {"digest", digest},
                    {"size", manifest.content.size()}};
    std::vector<std::string> refs = ref_.empty() ? names : std::vector<std::string>{ref_};
    std::lock_guard lock(mu_);
    json& entries = index_["manifests"];
    json kept = json::array();
    for (const auto& d : entries) {
      std::string ref = ref_name_of(d);
      bool replaced = ref.empty() ? refs.empty() && d.value("digest", "") == digest
                                  : std::find(refs.begin(), refs.end(), ref) != refs.end();
      if (!replaced) kept.push_back(d);
    }
    if (refs.empty()) kept.push_back(descriptor);
    for (const auto& ref : refs) {
      json d = descriptor;
      d["annotations"] = {{kRefNameAnnotation, ref}};
      kept.push_back(d);
    }
    entries = kept;
  }

  void write_index() {
    std::lock_guard lock(mu_);
    write_file_atomic(root_ / "index.json", index_.dump());
  }

 private:
  fs::path root_;
  std::string ref_;
  std::mutex mu_;
  json index_;
};

class OciDirectoryDestination final : public ImageDestination {
 public:
  OciDirectoryDestination(const fs::path& dir, const std::string& ref) : writer_(dir, ref) {}
  bool reuse_blob(const BlobInfo& blob, const std::string&) override { return writer_.reuse_blob(blob); }
  void put_blob(const BlobInfo& blob, const fs::path& source, const ProgressFn& progress) override {
    writer_.put_blob(blob, source, progress);
  }
  void put_manifest(const Manifest& manifest, const std::vector<std::string>& names) override {
    writer_.put_manifest(manifest, names);
  }
  void commit() override { writer_.write_index(); }

 private:
  OciLayoutWriter writer_;
};

class OciArchiveDestination final : public ImageDestination {
 public:
  OciArchiveDestination(const fs::path& file, const std::string& ref)
      : file_(file), staging_(file), writer_(staging_.path(), ref) {}
  bool reuse_blob(const BlobInfo& blob, const std::string&) override { return writer_.reuse_blob(blob); }
  void put_blob(const BlobInfo& blob, const fs::path& source, const ProgressFn& progress) override {
    writer_.put_blob(blob, source, progress);
  }
  void put_manifest(const Manifest& manifest, const std::vector<std::string>& names) override {
    writer_.put_manifest(manifest, names);
  }
  void commit() override {
    writer_.write_index();
    const fs::path& root = writer_.root();
    std::set<std::string> blobs;
    for (const auto& e : fs::directory_iterator(root / "blobs" / "sha256")) {
      std::string name = e.path().filename().string();
      if (is_hex64(name) && e.is_regular_file()) blobs.insert(name);
    }
    write_tar_atomically(file_, [&](TarWriter& tar) {
      tar.add_file("oci-layout", root / "oci-layout");
      tar.add_file("index.json", root / "index.json");
      tar.add_directory("blobs");
      tar.add_directory("blobs/sha256");
      for (const auto& hex : blobs) tar.add_file("blobs/sha256/" + hex, root / "blobs" / "sha256" / hex);
    });
  }

 private:
  fs::path file_;
  StagingDirectory staging_;
  OciLayoutWriter writer_;
};

}  // namespace

std::unique_ptr<ImageSource> open_oci_source(std::unique_ptr<ImageFiles> files, const ImageSelector& selector) {
  return std::make_unique<OciLayoutSource>(std::move(files), selector);
}

std::vector<ListedImage> list_oci_images(const ImageFiles& files, const std::string& location) {
  json index = read_index(files);
  std::vector<std::string> refs;
  for (const auto& d : index["manifests"]) refs.push_back(ref_name_of(d));
  std::vector<ListedImage> out;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    bool unique = !refs[i].empty() && std::count(refs.begin(), refs.end(), refs[i]) == 1;
    ListedImage l;
    l.reference = location + ":" + (unique ? refs[i] : "@" + std::to_string(i));
    if (!refs[i].empty()) l.names = {refs[i]};
    out.push_back(l);
  }
  return out;
}

std::unique_ptr<ImageDestination> open_oci_directory_destination(const fs::path& dir, const std::string& ref) {
  return std::make_unique<OciDirectoryDestination>(dir, ref);
}

std::unique_ptr<ImageDestination> open_oci_archive_destination(const fs::path& file, const std::string& ref) {
  return std::make_unique<OciArchiveDestination>(file, ref);
}

}  // namespace hutch::registry::archive
