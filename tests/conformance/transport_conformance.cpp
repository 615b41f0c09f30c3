// What every image transport must do, run against each (plugin, transport) through the real
// loader: the archive plugin's oci, oci-archive and docker-archive, and (when it is built) the
// docker plugin against a real registry (/usr/bin/docker-registry, started on a free port).
//
// One image is built here (a config, a plain layer and a gzip layer), written through a
// destination and read back through a source.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "conformance_util.hpp"
#include "hutch/digest.hpp"
#include "hutch/transport.hpp"

using namespace hutch;
using namespace hutch::conformance;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct TransportParam {
  const char* label;      // test-name suffix
  const char* plugin;     // plugin name
  const char* transport;  // the prefix it serves
};

std::ostream& operator<<(std::ostream& os, const TransportParam& p) { return os << p.label; }

std::string param_name(const ::testing::TestParamInfo<TransportParam>& info) { return info.param.label; }

void write_bytes(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

std::string gzip_of(const std::string& data, const fs::path& scratch) {
  fs::path p = scratch / "gz.tmp";
  gzFile g = gzopen(p.c_str(), "wb");
  gzwrite(g, data.data(), static_cast<unsigned>(data.size()));
  gzclose(g);
  std::string out = test::slurp(p);
  fs::remove(p);
  return out;
}

test::TarEntry tar_entry(const std::string& path, mode_t type, const std::string& data, mode_t perm) {
  test::TarEntry e;
  e.path = path, e.type = type, e.data = data, e.perm = perm;
  return e;
}
test::TarEntry file_entry(const std::string& path, const std::string& data) { return tar_entry(path, AE_IFREG, data, 0644); }
test::TarEntry dir_entry(const std::string& path) { return tar_entry(path, AE_IFDIR, "", 0755); }
test::TarEntry link_entry(const std::string& path, const std::string& target) { return tar_entry(path, AE_IFLNK, target, 0777); }

std::string digest_of(const std::string& data) { return "sha256:" + sha256_hex(data); }

// The tar inside, when `data` is gzip; else `data`.
std::string plain_of(const std::string& data, const fs::path& scratch) {
  if (data.size() < 2 || static_cast<unsigned char>(data[0]) != 0x1f || static_cast<unsigned char>(data[1]) != 0x8b)
    return data;
  fs::path p = scratch / "gunzip.tmp";
  write_bytes(p, data);
  gzFile g = gzopen(p.c_str(), "rb");
  std::string out;
  char buf[65536];
  for (int n; (n = gzread(g, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  gzclose(g);
  fs::remove(p);
  return out;
}

// One blob of a test image: its bytes in a file, and its descriptor.
struct TestBlob {
  BlobInfo info;
  std::string content;
  fs::path file;
};

struct TestImage {
  TestBlob config;
  std::vector<TestBlob> layers;  // [0] plain tar, [1] gzip tar
  std::vector<std::string> uncompressed;  // each layer's tar (its diff ID's content)
  Manifest manifest;
};

TestBlob blob_in(const fs::path& dir, const std::string& media_type, const std::string& content) {
  TestBlob b{{digest_of(content), static_cast<std::int64_t>(content.size()), media_type}, content, {}};
  b.file = dir / ("blob-" + sha256_hex(content));
  write_bytes(b.file, content);
  return b;
}

// The test running: the registry lives for the whole run, so what one test writes must not
// be there already because another wrote it.
std::string current_test() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

// A config, a plain layer and a gzip layer; `tag` makes the config and the second layer (and
// so the image) unique; the first layer is the same for every image of a test.
TestImage make_image(const fs::path& dir, const std::string& tag, bool second_layer = true) {
  TestImage img;
  std::string plain = test::slurp(test::make_tar(
      dir, "l1-" + tag + ".tar", {dir_entry("etc/"), file_entry("etc/hello", "hello from layer one of " + current_test() + "\n")}));
  img.uncompressed.push_back(plain);
  img.layers.push_back(blob_in(dir, "application/vnd.oci.image.layer.v1.tar", plain));
  if (second_layer) {
    std::string tar = test::slurp(test::make_tar(dir, "l2-" + tag + ".tar", {file_entry("etc/two", "layer two " + tag + " of " + current_test() + "\n")}));
    img.uncompressed.push_back(tar);
    img.layers.push_back(blob_in(dir, "application/vnd.oci.image.layer.v1.tar+gzip", gzip_of(tar, dir)));
  }
  json diff_ids = json::array();
  for (const auto& u : img.uncompressed) diff_ids.push_back(digest_of(u));
  json config{{"architecture", "amd64"},
              {"os", "linux"},
              {"config", {{"Cmd", {"/bin/sh"}}, {"Labels", {{"tag", tag}, {"test", current_test()}}}}},
              {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  img.config = blob_in(dir, "application/vnd.oci.image.config.v1+json", config.dump());
  json layers = json::array();
  for (const auto& l : img.layers)
    layers.push_back({{"mediaType", l.info.media_type}, {"digest", l.info.digest}, {"size", l.info.size}});
  json manifest{{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                {"config", {{"mediaType", img.config.info.media_type}, {"digest", img.config.info.digest}, {"size", img.config.info.size}}},
                {"layers", layers}};
  img.manifest = {"application/vnd.oci.image.manifest.v1+json", manifest.dump()};
  return img;
}

std::vector<const TestBlob*> blobs_of(const TestImage& img) {
  std::vector<const TestBlob*> out{&img.config};
  for (const auto& l : img.layers) out.push_back(&l);
  return out;
}

// Where `needle` occurs in `hay`, checking that it occurs once.
std::size_t find_once(const std::string& hay, const std::string& needle) {
  std::size_t at = hay.find(needle);
  EXPECT_NE(at, std::string::npos);
  EXPECT_EQ(hay.find(needle, at + 1), std::string::npos) << "the blob occurs twice in the file";
  return at;
}

#ifdef HUTCH_CONFORMANCE_DOCKER
// A plain registry (distribution 2.8) on 127.0.0.1, filesystem storage, HTTP only; one for the
// whole run, stopped at exit.
class LocalRegistry {
 public:
  static LocalRegistry& get() {
    static LocalRegistry r;
    return r;
  }
  ~LocalRegistry() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  const std::string& error() const { return error_; }
  fs::path blob_file(const std::string& hex) const {
    return dir_.path() / "storage/docker/registry/v2/blobs/sha256" / hex.substr(0, 2) / hex / "data";
  }

 private:
  LocalRegistry() {
    const char* program = "/usr/bin/docker-registry";
    if (::access(program, X_OK) != 0) {
      error_ = std::string(program) + " is missing (Debian: docker-registry)";
      return;
    }
    port_ = free_port();
    fs::path config = dir_.path() / "config.yml";
    write_bytes(config, "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n"
                        "    rootdirectory: " + (dir_.path() / "storage").string() +
                            "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n");
    fs::path log = dir_.path() / "registry.log";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1), ::dup2(fd, 2);
      ::execl(program, program, "serve", config.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      if (int status; ::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        error_ = "docker-registry exited at once: " + test::slurp(log);
        return;
      }
      if (can_connect(port_)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    error_ = "docker-registry did not listen on 127.0.0.1:" + std::to_string(port_) + " within 10 s: " + test::slurp(log);
  }
  static int free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(s);
    return ntohs(a.sin_port);
  }
  static bool can_connect(int port) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    return ok;
  }
  test::TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string error_;
};
#endif

class TransportConformance : public ::testing::TestWithParam<TransportParam> {
 protected:
  void SetUp() override {
    const TransportParam& p = GetParam();
    if (is_registry()) {
#ifdef HUTCH_CONFORMANCE_DOCKER
      LocalRegistry& r = LocalRegistry::get();
      ASSERT_TRUE(r.error().empty()) << r.error();
      repository_ = "127.0.0.1:" + std::to_string(r.port()) + "/conf/img";
      options_.tls_verify = false;
      options_.endpoints = {{repository_, true, false}};
#endif
    }
    try {
      transport_ = loader().create<ImageTransport>(p.plugin, context_in(scratch_.path(), p.plugin));
    } catch (const Error& e) {
      FAIL() << "the " << p.plugin << " transport plugin (libhutch-registry-" << p.plugin
             << ".so) could not be loaded; it is built with this suite, so it must be there: " << e.full_message();
    }
  }

  bool is_registry() const { return std::string(GetParam().transport) == "docker"; }
  bool is_docker_archive() const { return std::string(GetParam().transport) == "docker-archive"; }
  bool is_oci_directory() const { return std::string(GetParam().transport) == "oci"; }
  // Where the image goes: a directory, an archive file or the registry's repository.
  fs::path location() const { return scratch_.path() / (is_oci_directory() ? "image.oci" : "image.tar"); }
  // A reference to write to (and to read back the only image written).
  std::string reference(const std::string& tag = "v1") const {
    if (is_registry()) return repository_ + ":" + tag;
    return location().string();
  }
  std::vector<std::string> names(const std::string& tag = "v1") const { return {"localhost/conf/img:" + tag}; }

  void put_image(ImageDestination& dest, const TestImage& img, const std::vector<std::string>& image_names) {
    for (const TestBlob* b : blobs_of(img)) {
      if (dest.reuse_blob(b->info, "")) continue;
      std::uint64_t last = 0;
      dest.put_blob(b->info, b->file, [&](std::uint64_t done, std::int64_t) { last = done; });
      EXPECT_LE(last, b->content.size());
    }
    dest.put_manifest(img.manifest, image_names);
  }

  void write_image(const TestImage& img, const std::string& tag = "v1") {
    auto dest = transport_->open_destination(GetParam().transport, reference(tag), options_);
    put_image(*dest, img, names(tag));
    dest->commit();
  }

  std::string fetch(ImageSource& src, const BlobInfo& blob) {
    fs::path out = scratch_.path() / ("fetched-" + std::to_string(fetched_++));
    std::uint64_t last = 0;
    src.get_blob(blob, out, [&](std::uint64_t done, std::int64_t) { last = done; });
    std::string data = test::slurp(out);
    EXPECT_EQ(last, data.size()) << "progress did not reach the blob's size";
    return data;
  }

  Scratch scratch_;
  std::unique_ptr<ImageTransport> transport_;
  TransportOptions options_;
  std::string repository_;
  int fetched_ = 0;
};

TEST_P(TransportConformance, CapabilitiesAreConsistent) {
  TransportCapabilities c = transport_->capabilities();
  EXPECT_TRUE(c.can_read);
  EXPECT_TRUE(c.can_write);
  EXPECT_FALSE(c.description.empty());
  auto served = transport_->transports();
  EXPECT_NE(std::find(served.begin(), served.end(), GetParam().transport), served.end())
      << GetParam().plugin << " does not list " << GetParam().transport << " among its transports";
  if (!c.can_authenticate) {
    try {
      transport_->authenticate("example.com", options_);
      ADD_FAILURE() << "authenticate succeeded on a transport that cannot authenticate";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUnsupported) << e.full_message();
    }
  }
}

TEST_P(TransportConformance, AWrittenImageReadsBackTheSame) {
  TestImage img = make_image(scratch_.path(), "a");
  write_image(img);
  auto src = transport_->open_source(GetParam().transport, reference(), options_);
  Manifest m = src->get_manifest();
  if (!is_docker_archive()) {
    // Stored as written: the same bytes, so the same digest.
    EXPECT_EQ(m.content, img.manifest.content);
    EXPECT_EQ(m.media_type, img.manifest.media_type);
    EXPECT_EQ(fetch(*src, img.config.info), img.config.content);
    for (const auto& l : img.layers) EXPECT_EQ(digest_of(fetch(*src, l.info)), l.info.digest);  // digests: tars print badly
    EXPECT_EQ(src->get_manifest("sha256:" + sha256_hex(m.content)).content, m.content);
    return;
  }
  // docker-archive keeps a config and uncompressed layer tars, and makes its manifest from them.
  EXPECT_EQ(m.media_type, "application/vnd.docker.distribution.manifest.v2+json");
  json doc = json::parse(m.content);
  EXPECT_EQ(doc["mediaType"], m.media_type);
  EXPECT_EQ(doc["config"]["digest"], img.config.info.digest);
  EXPECT_EQ(doc["config"]["size"], img.config.info.size);
  ASSERT_EQ(doc["layers"].size(), img.layers.size());
  for (std::size_t i = 0; i < img.layers.size(); ++i) {
    const json& d = doc["layers"][i];
    EXPECT_EQ(d["digest"], digest_of(img.uncompressed[i])) << "layer " << i;
    EXPECT_EQ(d["mediaType"], "application/vnd.docker.image.rootfs.diff.tar") << "layer " << i;
    BlobInfo b{d["digest"], d["size"], d["mediaType"]};
    EXPECT_EQ(digest_of(fetch(*src, b)), digest_of(img.uncompressed[i])) << "layer " << i;
  }
  EXPECT_EQ(fetch(*src, {doc["config"]["digest"], doc["config"]["size"], doc["config"]["mediaType"]}), img.config.content);
  EXPECT_EQ(src->names(), names());
  // The synthesised manifest is the same every time it is asked for.
  EXPECT_EQ(src->get_manifest("sha256:" + sha256_hex(m.content)).content, m.content);
  EXPECT_EQ(transport_->open_source(GetParam().transport, reference(), options_)->get_manifest().content, m.content);
}

TEST_P(TransportConformance, ReuseBlobIsTrueForABlobTheDestinationHas) {
  TestImage img = make_image(scratch_.path(), "r");
  auto dest = transport_->open_destination(GetParam().transport, reference(), options_);
  BlobInfo absent{digest_of("never written"), 13, "application/octet-stream"};
  EXPECT_FALSE(dest->reuse_blob(absent, ""));
  EXPECT_FALSE(dest->reuse_blob(img.layers[0].info, ""));
  dest->put_blob(img.layers[0].info, img.layers[0].file, {});
  EXPECT_TRUE(dest->reuse_blob(img.layers[0].info, ""));
  for (const TestBlob* b : blobs_of(img))
    if (!dest->reuse_blob(b->info, "")) dest->put_blob(b->info, b->file, {});
  dest->put_manifest(img.manifest, names());
  dest->commit();
  dest.reset();
  if (is_registry() || is_oci_directory()) {  // the blobs stay where they were written
    auto again = transport_->open_destination(GetParam().transport, reference("v2"), options_);
    EXPECT_TRUE(again->reuse_blob(img.config.info, ""));
    EXPECT_TRUE(again->reuse_blob(img.layers[1].info, ""));
    EXPECT_FALSE(again->reuse_blob(absent, ""));
  }
}

TEST_P(TransportConformance, ABlobThatIsNotThereIsNotFound) {
  TestImage img = make_image(scratch_.path(), "n");
  write_image(img);
  auto src = transport_->open_source(GetParam().transport, reference(), options_);
  src->get_manifest();
  BlobInfo absent{digest_of("not in the image"), 16, img.layers[0].info.media_type};
  try {
    src->get_blob(absent, scratch_.path() / "out", {});
    ADD_FAILURE() << "get_blob of an absent blob succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound) << e.full_message();
  }
  try {
    src->get_manifest(absent.digest);
    ADD_FAILURE() << "get_manifest of an absent digest succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kNotFound) << e.full_message();
  }
}

TEST_P(TransportConformance, ABlobAlteredAtTheSourceIsCorruptAndLeavesNoFile) {
  TestImage img = make_image(scratch_.path(), "c");
  write_image(img);
  auto src = transport_->open_source(GetParam().transport, reference(), options_);
  src->get_manifest();  // docker-archive knows its digests from here on
  const TestBlob& victim = img.layers[0];  // plain: stored as is by every transport
  std::string hex = sha256_hex(victim.content);
  fs::path file;
  std::size_t at = 0;
  if (is_oci_directory()) {
    file = location() / "blobs/sha256" / hex;
  } else if (is_registry()) {
#ifdef HUTCH_CONFORMANCE_DOCKER
    file = LocalRegistry::get().blob_file(hex);
#endif
  } else {
    file = location();
    at = find_once(test::slurp(file), victim.content);
  }
  ASSERT_TRUE(fs::exists(file)) << file;
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(at));
    f.put('X');  // the first byte of the layer's first entry name: same size, other content
  }
  fs::path out = scratch_.path() / "victim";
  try {
    src->get_blob(victim.info, out, {});
    ADD_FAILURE() << "get_blob served a blob whose bytes do not match its digest";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kCorrupt) << e.full_message();
    EXPECT_NE(e.full_message().find(victim.info.digest), std::string::npos) << e.full_message();
  }
  EXPECT_FALSE(fs::exists(out)) << "the damaged blob was left at the destination";
}

TEST_P(TransportConformance, ABlobThatDoesNotMatchItsDigestIsRefused) {
  TestImage img = make_image(scratch_.path(), "w");
  auto dest = transport_->open_destination(GetParam().transport, reference(), options_);
  BlobInfo lie = img.config.info;
  lie.digest = digest_of("something else");
  try {
    dest->put_blob(lie, img.config.file, {});
    ADD_FAILURE() << "put_blob stored a blob under a digest that is not its own";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kCorrupt) << e.full_message();
  }
  EXPECT_FALSE(dest->reuse_blob(lie, ""));
}

// Archives: files that appear whole at commit, or not at all.
class ArchiveConformance : public TransportConformance {};

TEST_P(ArchiveConformance, DestroyedWithoutCommitLeavesNothing) {
  TestImage img = make_image(scratch_.path(), "d");
  auto before = std::distance(fs::directory_iterator(scratch_.path()), fs::directory_iterator());
  auto dest = transport_->open_destination(GetParam().transport, reference(), options_);
  put_image(*dest, img, names());
  EXPECT_FALSE(fs::exists(location())) << "the archive is visible before commit";
  dest.reset();
  EXPECT_FALSE(fs::exists(location()));
  EXPECT_EQ(std::distance(fs::directory_iterator(scratch_.path()), fs::directory_iterator()), before)
      << "something was left beside the archive";
}

TEST_P(ArchiveConformance, CommitReplacesAnArchiveWhole) {
  write_bytes(location(), "an older file");
  TestImage img = make_image(scratch_.path(), "o");
  write_image(img);
  auto src = transport_->open_source(GetParam().transport, reference(), options_);
  EXPECT_FALSE(src->get_manifest().content.empty());
  for (const auto& e : fs::directory_iterator(scratch_.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

// Several images in one destination, listed one by one.
class MultiImageConformance : public TransportConformance {};

TEST_P(MultiImageConformance, ListImagesOfAnArchiveWithTwoImages) {
  ASSERT_TRUE(transport_->capabilities().multi_image);
  TestImage a = make_image(scratch_.path(), "a");
  TestImage b = make_image(scratch_.path(), "b", /*second_layer=*/false);  // shares layer one with a
  auto dest = transport_->open_destination(GetParam().transport, reference(), options_);
  put_image(*dest, a, {"localhost/conf/a:1"});
  EXPECT_TRUE(dest->reuse_blob(b.layers[0].info, "")) << "the shared layer is there already";
  put_image(*dest, b, {"localhost/conf/b:2"});
  dest->commit();
  dest.reset();

  auto listed = transport_->list_images(GetParam().transport, reference(), options_);
  ASSERT_EQ(listed.size(), 2u);
  std::set<std::string> configs;
  for (const auto& l : listed) {
    SCOPED_TRACE(l.reference);
    ASSERT_EQ(l.names.size(), 1u);
    auto src = transport_->open_source(GetParam().transport, l.reference, options_);
    EXPECT_EQ(src->names(), l.names);
    json doc = json::parse(src->get_manifest().content);
    std::string config = doc["config"]["digest"];
    configs.insert(config);
    const TestImage& want = l.names[0] == "localhost/conf/a:1" ? a : b;
    EXPECT_EQ(config, want.config.info.digest);
    EXPECT_EQ(doc["layers"].size(), want.layers.size());
  }
  EXPECT_EQ(configs.size(), 2u);
  // Without naming one, a source of two images is refused, saying which there are.
  try {
    transport_->open_source(GetParam().transport, reference(), options_);
    ADD_FAILURE() << "open_source chose one of two images by itself";
  } catch (const Error& e) {
    EXPECT_NE(e.full_message().find("localhost/conf/b:2"), std::string::npos) << e.full_message();
  }
}

// The formats as other tools write and read them: skopeo (containers/image) copies what we
// wrote into its own archive of the same kind, and we read that back.
class FormatInterop : public TransportConformance {};

TEST_P(FormatInterop, SkopeoReadsWhatWeWriteAndWeReadWhatItWrites) {
  if (::access("/usr/bin/skopeo", X_OK) != 0) {
    HUTCH_SKIP_OUTSIDE_CI("/usr/bin/skopeo is missing (Debian: skopeo)");
  }
  TestImage img = make_image(scratch_.path(), "s");
  write_image(img);
  std::string theirs = (scratch_.path() / (is_oci_directory() ? "theirs.oci" : "theirs.tar")).string();
  std::string name = is_docker_archive() ? ":localhost/conf/img:v1" : "";
  std::string command = "cd " + scratch_.path().string() + " && TMPDIR=" + scratch_.path().string() +
                        " /usr/bin/skopeo --insecure-policy copy -q " + GetParam().transport + ":" + reference() + " " +
                        GetParam().transport + ":" + theirs + name + " > skopeo.log 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command << "\n" << test::slurp(scratch_.path() / "skopeo.log");

  auto src = transport_->open_source(GetParam().transport, theirs, options_);
  json doc = json::parse(src->get_manifest().content);
  EXPECT_EQ(doc["config"]["digest"], img.config.info.digest);
  ASSERT_EQ(doc["layers"].size(), img.layers.size());
  for (std::size_t i = 0; i < img.layers.size(); ++i) {
    BlobInfo b{doc["layers"][i]["digest"], doc["layers"][i]["size"], doc["layers"][i]["mediaType"]};
    // skopeo may compress what it writes (oci) or must not (docker-archive): compare the tars.
    EXPECT_EQ(digest_of(plain_of(fetch(*src, b), scratch_.path())), digest_of(img.uncompressed[i])) << "layer " << i;
  }
  if (is_docker_archive()) {
    EXPECT_EQ(src->names(), names());
  }
}

// The archive plugin's own rules for hostile or broken files.
class ArchiveFiles : public ::testing::Test {
 protected:
  void SetUp() override { transport_ = loader().create<ImageTransport>("archive", context_in(scratch_.path(), "archive")); }
  fs::path tar(const std::string& name, const std::vector<test::TarEntry>& entries) {
    return test::make_tar(scratch_.path(), name, entries);
  }
  // The error open_source gives, with its code.
  Error open_error(const std::string& transport, const std::string& reference) {
    try {
      transport_->open_source(transport, reference, {})->get_manifest();
    } catch (const Error& e) {
      return e;
    }
    ADD_FAILURE() << transport << ":" << reference << " opened";
    return Error(Errc::kInternal, "");
  }
  Scratch scratch_;
  std::unique_ptr<ImageTransport> transport_;
};

const std::string kLayout = R"({"imageLayoutVersion":"1.0.0"})";

TEST_F(ArchiveFiles, EntriesThatLeadOutOfAnArchiveAreRefused) {
  for (const auto& [name, entry] : std::vector<std::pair<std::string, test::TarEntry>>{
           {"dotdot", file_entry("../evil", "x")},
           {"inner-dotdot", file_entry("blobs/../../evil", "x")},
           {"absolute", file_entry("/evil", "x")},
           {"symlink", link_entry("blobs/sha256/" + std::string(64, 'a'), "/etc/passwd")}}) {
    SCOPED_TRACE(name);
    fs::path t = tar(name + ".tar", {file_entry("oci-layout", kLayout), file_entry("index.json", R"({"manifests":[]})"), entry});
    Error e = open_error("oci-archive", t.string());
    EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.full_message();
    EXPECT_NE(e.full_message().find(entry.path), std::string::npos) << e.full_message();
  }
}

TEST_F(ArchiveFiles, ADockerManifestNamingAPathOutsideIsAnError) {
  fs::path t = tar("out.tar", {file_entry("manifest.json", R"([{"Config":"c.json","RepoTags":[],"Layers":["../x/layer.tar"]}])"),
                               file_entry("c.json", "{}")});
  Error e = open_error("docker-archive", t.string());
  EXPECT_EQ(e.code(), Errc::kInvalidInput) << e.full_message();
  EXPECT_NE(e.full_message().find("../x/layer.tar"), std::string::npos) << e.full_message();
}

TEST_F(ArchiveFiles, MissingFilesAreNamed) {
  Error none = open_error("oci-archive", (scratch_.path() / "nothing.tar").string());
  EXPECT_EQ(none.code(), Errc::kNotFound);
  EXPECT_NE(none.full_message().find("nothing.tar"), std::string::npos) << none.full_message();

  fs::create_directories(scratch_.path() / "empty");
  Error no_layout = open_error("oci", (scratch_.path() / "empty").string());
  EXPECT_EQ(no_layout.code(), Errc::kNotFound);
  EXPECT_NE(no_layout.full_message().find("oci-layout"), std::string::npos) << no_layout.full_message();

  fs::path t = tar("nolayer.tar", {file_entry("manifest.json", R"([{"Config":"c.json","RepoTags":["a:b"],"Layers":["l/layer.tar"]}])"),
                                   file_entry("c.json", "{}")});
  Error no_layer = open_error("docker-archive", t.string());
  EXPECT_EQ(no_layer.code(), Errc::kNotFound);
  EXPECT_NE(no_layer.full_message().find("l/layer.tar"), std::string::npos) << no_layer.full_message();

  fs::path junk = scratch_.path() / "junk.tar";
  write_bytes(junk, std::string(2048, 'j'));
  EXPECT_EQ(open_error("docker-archive", junk.string()).code(), Errc::kInvalidInput);
}

// docker save before 25 links a layer that two images share to its first copy; and a saved
// archive is often gzipped.
TEST_F(ArchiveFiles, DockerSaveLinksAndGzipAreRead) {
  std::string layer = test::slurp(test::make_tar(scratch_.path(), "layer.tar", {file_entry("f", "shared")}));
  std::string config = R"({"rootfs":{"type":"layers","diff_ids":["sha256:)" + sha256_hex(layer) + R"("]}})";
  std::string manifest = R"([{"Config":"c.json","RepoTags":["localhost/a:1"],"Layers":["one/layer.tar"]},)"
                         R"({"Config":"c.json","RepoTags":["localhost/b:2"],"Layers":["two/layer.tar"]}])";
  fs::path t = tar("linked.tar", {dir_entry("one/"), file_entry("one/layer.tar", layer), dir_entry("two/"),
                                  link_entry("two/layer.tar", "../one/layer.tar"), file_entry("c.json", config),
                                  file_entry("manifest.json", manifest)});
  fs::path gz = scratch_.path() / "linked.tar.gz";
  write_bytes(gz, gzip_of(test::slurp(t), scratch_.path()));
  for (const fs::path& archive : {t, gz}) {
    SCOPED_TRACE(archive.string());
    auto src = transport_->open_source("docker-archive", archive.string() + ":localhost/b:2", {});
    json doc = json::parse(src->get_manifest().content);
    EXPECT_EQ(doc["layers"][0]["digest"], digest_of(layer));
    fs::path out = scratch_.path() / "out";
    src->get_blob({doc["layers"][0]["digest"], doc["layers"][0]["size"], ""}, out, {});
    EXPECT_EQ(digest_of(test::slurp(out)), digest_of(layer));
    EXPECT_EQ(transport_->list_images("docker-archive", archive.string(), {}).size(), 2u);
  }
  fs::path outside = tar("outside.tar", {link_entry("two/layer.tar", "../../etc/passwd"), file_entry("c.json", config),
                                         file_entry("manifest.json", manifest)});
  EXPECT_EQ(open_error("docker-archive", outside.string()).code(), Errc::kInvalidInput);
}

const TransportParam kOci{"oci", "archive", "oci"};
const TransportParam kOciArchive{"oci_archive", "archive", "oci-archive"};
const TransportParam kDockerArchive{"docker_archive", "archive", "docker-archive"};

#ifdef HUTCH_CONFORMANCE_DOCKER
INSTANTIATE_TEST_SUITE_P(Transports, TransportConformance,
                         ::testing::Values(kOci, kOciArchive, kDockerArchive, TransportParam{"docker", "docker", "docker"}),
                         param_name);
#else
INSTANTIATE_TEST_SUITE_P(Transports, TransportConformance, ::testing::Values(kOci, kOciArchive, kDockerArchive),
                         param_name);
#endif
INSTANTIATE_TEST_SUITE_P(Transports, ArchiveConformance, ::testing::Values(kOciArchive, kDockerArchive), param_name);
INSTANTIATE_TEST_SUITE_P(Transports, FormatInterop, ::testing::Values(kOci, kOciArchive, kDockerArchive), param_name);
INSTANTIATE_TEST_SUITE_P(Transports, MultiImageConformance, ::testing::Values(kOci, kOciArchive, kDockerArchive),
                         param_name);

}  // namespace
