#include "hutch/image_ref.hpp"

#include "hutch/digest.hpp"

namespace hutch {

namespace {

bool valid_path_component(const std::string& c) {
  // [a-z0-9]+ separated by one '.', one or two '_', or any number of '-'.
  if (c.empty()) return false;
  auto alnum = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); };
  if (!alnum(c.front()) || !alnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (alnum(ch) || ch == '-') continue;
    if (ch == '.' && alnum(c[i + 1])) continue;
    if (ch == '_') {
      if (c[i + 1] == '_') ++i;
      if (i + 1 < c.size() && alnum(c[i + 1])) continue;
    }
    return false;
  }
  return true;
}

bool valid_tag(const std::string& t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'; };
  if (!word(t[0])) return false;
  for (char ch : t)
    if (!word(ch) && ch != '.' && ch != '-') return false;
  return true;
}

bool valid_domain(const std::string& d) {
  if (d.empty()) return false;
  for (char ch : d)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
          ch == '-' || ch == ':' || ch == '[' || ch == ']'))
      return false;
  return true;
}

}  // namespace

std::optional<ImageRef> try_parse_image_ref(const std::string& text) {
  try {
    return parse_image_ref(text);
  } catch (const Error&) {
    return std::nullopt;
  }
}

ImageRef parse_image_ref(const std::string& input) {
  auto bad = [&](const std::string& why) {
    return Error(Errc::kInvalidInput, "invalid image reference \"" + input + "\": " + why);
  };
  if (input.empty()) throw bad("it is empty");
  ImageRef ref;
  std::string rest = input;
  if (auto at = rest.find('@'); at != std::string::npos) {
    ref.digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    try {
      digest_hex(ref.digest);
    } catch (const Error&) {
      throw bad("the digest must be sha256:<64 hex digits>");
    }
  }
  auto slash = rest.find('/');
  std::string first = slash == std::string::npos ? "" : rest.substr(0, slash);
  if (slash != std::string::npos &&
      (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost" ||
       first.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)) {
    if (!valid_domain(first)) throw bad("\"" + first + "\" is not a registry host");
    ref.domain = first;
    rest = rest.substr(slash + 1);
  } else {
    ref.domain = "localhost";
  }
  auto last_slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && (last_slash == std::string::npos || colon > last_slash)) {
    ref.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!valid_tag(ref.tag)) throw bad("the tag \"" + ref.tag + "\" may hold letters, digits, '_', '.' and '-' (at most 128)");
  }
  if (rest.empty()) throw bad("the name is empty");
  size_t i = 0;
  while (i <= rest.size()) {
    size_t j = rest.find('/', i);
    if (j == std::string::npos) j = rest.size();
    if (!valid_path_component(rest.substr(i, j - i)))
      throw bad("names are lowercase letters and digits, separated by '.', '_', '-' or '/'");
    i = j + 1;
  }
  ref.path = rest;
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

}  // namespace hutch
