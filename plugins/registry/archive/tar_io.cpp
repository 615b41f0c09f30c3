#include "tar_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "hutch/error.hpp"
#include "hutch/paths.hpp"

namespace hutch::registry::archive {
namespace {

constexpr std::size_t kBlock = 512;
constexpr std::uint64_t kMaxOctalSize = 077777777777ULL;  // 11 octal digits: 8 GiB - 1

std::uint64_t round_up(std::uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

// A NUL-terminated (or full-width) field.
std::string field(const char* p, std::size_t width) {
  std::size_t n = 0;
  while (n < width && p[n] != '\0') ++n;
  return std::string(p, n);
}

// An octal number (spaces and NULs around it), or GNU's base-256 form (top bit set).
std::optional<std::uint64_t> number(const char* p, std::size_t width) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  if (u[0] & 0x80) {
    if (u[0] != 0x80) return std::nullopt;  // negative, or too large for us
    std::uint64_t v = 0;
    for (std::size_t i = 1; i < width; ++i) {
      if (v >> 56) return std::nullopt;
      v = (v << 8) | u[i];
    }
    return v;
  }
  std::size_t i = 0;
  while (i < width && (p[i] == ' ' || p[i] == '\0')) ++i;
  std::uint64_t v = 0;
  bool any = false;
  for (; i < width && p[i] >= '0' && p[i] <= '7'; ++i) {
    if (v >> 60) return std::nullopt;
    v = v * 8 + static_cast<std::uint64_t>(p[i] - '0');
    any = true;
  }
  for (; i < width; ++i)
    if (p[i] != ' ' && p[i] != '\0') return std::nullopt;
  if (!any) return 0;
  return v;
}

bool checksum_ok(const unsigned char* block) {
  auto stored = number(reinterpret_cast<const char*>(block) + 148, 8);
  if (!stored) return false;
  std::uint64_t unsigned_sum = 0;
  std::int64_t signed_sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) {
    unsigned char c = (i >= 148 && i < 156) ? ' ' : block[i];
    unsigned_sum += c;
    signed_sum += static_cast<signed char>(c);
  }
  return *stored == unsigned_sum || static_cast<std::int64_t>(*stored) == signed_sum;
}

// The path without "." or empty components; nullopt when a ".." climbs above the start.
std::optional<std::string> clean_inside(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string comp = path.substr(i, j - i);
    if (comp == "..") {
      if (parts.empty()) return std::nullopt;
      parts.pop_back();
    } else if (!comp.empty() && comp != ".") {
      parts.push_back(comp);
    }
    i = j + 1;
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

Error bad_entry(const std::string& archive, const std::string& entry, const std::string& why) {
  return Error(Errc::kInvalidInput, archive + ": entry \"" + entry + "\" " + why);
}

void read_exact(int fd, void* buf, std::size_t size, std::uint64_t offset, const std::string& archive) {
  auto* p = static_cast<char*>(buf);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read " + archive);
    }
    if (n == 0) throw Error(Errc::kInvalidInput, archive + ": the tar archive is truncated");
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

// PAX records: "<length> <key>=<value>\n".
void parse_pax(const std::string& data, const std::string& archive, std::optional<std::string>& path,
               std::optional<std::string>& linkpath, std::optional<std::uint64_t>& size) {
  std::size_t pos = 0;
  while (pos < data.size()) {
    if (data[pos] == '\0') break;
    std::size_t space = data.find(' ', pos);
    if (space == std::string::npos) throw Error(Errc::kInvalidInput, archive + ": a damaged PAX header");
    std::size_t len = 0;
    for (std::size_t i = pos; i < space; ++i) {
      if (data[i] < '0' || data[i] > '9' || len > data.size())
        throw Error(Errc::kInvalidInput, archive + ": a damaged PAX header");
      len = len * 10 + static_cast<std::size_t>(data[i] - '0');
    }
    if (len <= space - pos || pos + len > data.size() || data[pos + len - 1] != '\n')
      throw Error(Errc::kInvalidInput, archive + ": a damaged PAX header");
    std::string record = data.substr(space + 1, pos + len - 1 - (space + 1));
    std::size_t eq = record.find('=');
    if (eq != std::string::npos) {
      std::string key = record.substr(0, eq), value = record.substr(eq + 1);
      if (key == "path") path = value;
      else if (key == "linkpath") linkpath = value;
      else if (key == "size") {
        std::uint64_t d = 0;
        if (value.empty() || value.size() > 19) throw Error(Errc::kInvalidInput, archive + ": a damaged PAX size");
        for (char c : value) {
          if (c < '0' || c > '9') throw Error(Errc::kInvalidInput, archive + ": a damaged PAX size");
          d = d * 10 + static_cast<std::uint64_t>(c - '0');
        }
        size = d;
      }
    }
    pos += len;
  }
}

}  // namespace

TarIndex::TarIndex(int fd, const std::string& archive, LinkPolicy links) {
  struct stat st;
  if (::fstat(fd, &st) != 0) throw_errno("cannot read " + archive);
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  std::map<std::string, std::string> link_to;  // entry -> cleaned target, root-relative
  std::optional<std::string> next_path, next_link;
  std::optional<std::uint64_t> next_size;
  std::uint64_t off = 0;
  bool first = true;
  unsigned char block[kBlock];
  while (off + kBlock <= file_size) {
    read_exact(fd, block, kBlock, off, archive);
    bool zero = true;
    for (unsigned char c : block)
      if (c) zero = false;
    if (zero) break;  // end of archive
    if (!checksum_ok(block)) {
      if (first) throw Error(Errc::kInvalidInput, archive + ": not a tar archive");
      throw Error(Errc::kInvalidInput, archive + ": a damaged tar header at offset " + std::to_string(off));
    }
    first = false;
    const char* h = reinterpret_cast<const char*>(block);
    char type = h[156];
    std::string name = field(h, 100);
    if (std::memcmp(h + 257, "ustar\0" "00", 8) == 0) {
      std::string prefix = field(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    std::string linkname = field(h + 157, 100);
    auto header_size = number(h + 124, 12);
    if (!header_size) throw bad_entry(archive, name, "has a damaged size");
    std::uint64_t size = next_size.value_or(*header_size);
    std::uint64_t data = off + kBlock;
    if (data + size > file_size) throw bad_entry(archive, next_path.value_or(name), "is truncated");
    off = data + round_up(size);

    if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
      if (size > (1u << 20)) throw bad_entry(archive, name, "is an extended header larger than 1 MiB");
      std::string content(size, '\0');
      read_exact(fd, content.data(), content.size(), data, archive);
      if (type == 'x') parse_pax(content, archive, next_path, next_link, next_size);
      if (type == 'L') next_path = field(content.data(), content.size());
      if (type == 'K') next_link = field(content.data(), content.size());
      continue;  // 'g' (global PAX) says nothing we use
    }
    if (next_path) name = *next_path;
    if (next_link) linkname = *next_link;
    next_path.reset(), next_link.reset(), next_size.reset();

    if (!name.empty() && name[0] == '/') throw bad_entry(archive, name, "has an absolute path");
    auto clean = clean_inside(name);
    if (!clean || name == ".." || name.find("/../") != std::string::npos || name.starts_with("../") ||
        name.ends_with("/.."))
      throw bad_entry(archive, name, "has a \"..\" in its path");
    switch (type) {
      case '0': case '\0': case '7':
        if (clean->empty()) throw bad_entry(archive, name, "is a file without a name");
        files_[*clean] = {data, size};
        link_to.erase(*clean);
        break;
      case '5':
        break;
      case '1': case '2': {
        if (links == LinkPolicy::kReject)
          throw bad_entry(archive, name, std::string("is a ") + (type == '1' ? "hardlink" : "symlink") +
                                             ": an OCI image layout holds only files and directories");
        std::string joined;
        if (type == '2') {
          if (!linkname.empty() && linkname[0] == '/') throw bad_entry(archive, name, "links to an absolute path");
          auto slash = clean->rfind('/');
          joined = (slash == std::string::npos ? "" : clean->substr(0, slash + 1)) + linkname;
        } else {
          joined = linkname;  // hardlink targets are archive paths
        }
        auto target = clean_inside(joined);
        if (!target || target->empty()) throw bad_entry(archive, name, "links outside the archive");
        link_to[*clean] = *target;
        files_.erase(*clean);
        break;
      }
      default:
        throw bad_entry(archive, name, std::string("is of a kind image archives do not hold (type '") + type + "')");
    }
  }
  if (first) throw Error(Errc::kInvalidInput, archive + ": not a tar archive (no entries)");
  for (const auto& [entry, target] : link_to) {
    std::string at = target;
    for (int hops = 0;; ++hops) {
      if (auto it = files_.find(at); it != files_.end()) {
        files_[entry] = it->second;
        break;
      }
      auto next = link_to.find(at);
      if (next == link_to.end()) throw bad_entry(archive, entry, "links to \"" + target + "\", which is not in it");
      if (hops > 16) throw bad_entry(archive, entry, "is a loop of links");
      at = next->second;
    }
  }
}

const TarFileEntry* TarIndex::find(const std::string& path) const {
  auto it = files_.find(path);
  return it == files_.end() ? nullptr : &it->second;
}

TarWriter::TarWriter(int fd, std::string file_name) : fd_(fd), file_name_(std::move(file_name)) {}

void TarWriter::write(const void* data, std::size_t size) {
  if (!write_all(fd_, data, size)) throw_errno("cannot write " + file_name_);
  written_ += size;
}

void TarWriter::pad() {
  static const char zeros[kBlock] = {};
  std::size_t rest = static_cast<std::size_t>(round_up(written_) - written_);
  if (rest) write(zeros, rest);
}

void TarWriter::header(const std::string& path, char type, std::uint64_t size, unsigned mode) {
  if (path.size() > 100 || size > kMaxOctalSize) {
    std::string records;
    auto add = [&](const std::string& key, const std::string& value) {
      std::string body = " " + key + "=" + value + "\n";
      std::size_t len = body.size() + 1;
      while (std::to_string(len).size() + body.size() != len) len = std::to_string(len).size() + body.size();
      records += std::to_string(len) + body;
    };
    if (path.size() > 100) add("path", path);
    if (size > kMaxOctalSize) add("size", std::to_string(size));
    std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    header(("PaxHeaders/" + base).substr(0, 100), 'x', records.size(), 0644);
    write(records.data(), records.size());
    pad();
  }
  unsigned char h[kBlock] = {};
  std::memcpy(h, path.data(), std::min<std::size_t>(path.size(), 100));
  std::snprintf(reinterpret_cast<char*>(h) + 100, 8, "%07o", mode);
  std::snprintf(reinterpret_cast<char*>(h) + 108, 8, "%07o", 0);
  std::snprintf(reinterpret_cast<char*>(h) + 116, 8, "%07o", 0);
  if (size > kMaxOctalSize) {  // base-256, for readers without PAX
    h[124] = 0x80;
    for (int i = 11; i >= 4; --i, size >>= 8) h[124 + i] = static_cast<unsigned char>(size & 0xff);
  } else {
    std::snprintf(reinterpret_cast<char*>(h) + 124, 12, "%011llo", static_cast<unsigned long long>(size));
  }
  std::snprintf(reinterpret_cast<char*>(h) + 136, 12, "%011o", 0);
  h[156] = static_cast<unsigned char>(type);
  std::memcpy(h + 257, "ustar\0" "00", 8);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(reinterpret_cast<char*>(h) + 148, 8, "%06o", sum);
  h[155] = ' ';
  write(h, kBlock);
}

void TarWriter::add_directory(const std::string& path) {
  header(path.ends_with("/") ? path : path + "/", '5', 0, 0755);
}

void TarWriter::add_bytes(const std::string& path, const std::string& content) {
  header(path, '0', content.size(), 0644);
  write(content.data(), content.size());
  pad();
}

void TarWriter::add_file(const std::string& path, const std::filesystem::path& source) {
  int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw_errno("cannot open " + source.string());
  try {
    struct stat st;
    if (::fstat(in, &st) != 0) throw_errno("cannot read " + source.string());
    auto size = static_cast<std::uint64_t>(st.st_size);
    header(path, '0', size, 0644);
    std::vector<char> buf(1 << 20);
    std::uint64_t left = size;
    while (left > 0) {
      ssize_t n = ::read(in, buf.data(), std::min<std::uint64_t>(left, buf.size()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("cannot read " + source.string());
      if (n == 0) throw Error(Errc::kInternal, source.string() + " shrank while it was written to " + file_name_);
      write(buf.data(), static_cast<std::size_t>(n));
      left -= static_cast<std::uint64_t>(n);
    }
    pad();
  } catch (...) {
    ::close(in);
    throw;
  }
  ::close(in);
}

void TarWriter::finish() {
  static const char zeros[kBlock * 2] = {};
  write(zeros, sizeof zeros);
  std::uint64_t record = 20 * kBlock;
  std::uint64_t rest = (record - written_ % record) % record;
  std::vector<char> z(static_cast<std::size_t>(rest), '\0');
  if (rest) write(z.data(), z.size());
}

}  // namespace hutch::registry::archive
