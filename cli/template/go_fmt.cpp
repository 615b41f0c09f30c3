#include "go_fmt.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

namespace hutch::cli::gotmpl {
namespace {

constexpr char kHexLower[] = "0123456789abcdef";
constexpr char kHexUpper[] = "0123456789ABCDEF";

// The rune at s[i] (advancing i), or -1 for a byte that does not start valid UTF-8 (one byte consumed).
int32_t next_rune_impl(const std::string& s, size_t& i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) {
    ++i;
    return c;
  }
  int len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return -1;
  }
  int32_t r = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
  for (int k = 1; k < len; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) {
      ++i;
      return -1;
    }
    r = (r << 6) | (b(i + k) & 0x3f);
  }
  if ((len == 3 && (r < 0x800 || (r >= 0xd800 && r <= 0xdfff))) || (len == 4 && (r < 0x10000 || r > 0x10ffff))) {
    ++i;
    return -1;
  }
  i += len;
  return r;
}

std::string utf8_impl(int32_t r) {
  std::string out;
  if (r < 0 || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) r = 0xfffd;
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xc0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3f));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xe0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (r & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (r & 0x3f));
  }
  return out;
}

int32_t next_rune(const std::string& s, size_t& i) { return next_rune_impl(s, i); }
std::string utf8(int32_t r) { return utf8_impl(r); }

size_t rune_count(const std::string& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) next_rune(s, i);
  return n;
}

// unicode.IsPrint, nearly: controls, the spaces other than ' ', and the format characters are not.
bool is_printable(int32_t r) {
  if (r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0xa0) || r == 0xad) return false;
  if (r == 0x1680 || (r >= 0x2000 && r <= 0x200f) || (r >= 0x2028 && r <= 0x202f) || (r >= 0x205f && r <= 0x206f))
    return false;
  if (r == 0x3000 || r == 0xfeff || (r >= 0xfff9 && r <= 0xfffb) || (r >= 0xe000 && r <= 0xf8ff)) return false;
  return true;
}

// The shortest digits that read back as d, and the exponent of the first: d = 0.DIGITS x 10^point.
struct Digits {
  bool negative = false;
  std::string digits;
  int point = 0;
};

Digits shortest_digits(double d) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string s(buf, res.ptr);
  Digits out;
  size_t i = 0;
  if (s[0] == '-') {
    out.negative = true;
    i = 1;
  }
  size_t e = s.find('e');
  for (size_t k = i; k < e; ++k)
    if (s[k] != '.') out.digits += s[k];
  out.point = std::stoi(s.substr(e + 1)) + 1;
  if (out.digits == "0") out.point = 1;
  return out;
}

std::string exponent_text(int exp) {
  std::string out = exp < 0 ? "-" : "+";
  int a = std::abs(exp);
  if (a < 10) out += '0';
  return out + std::to_string(a);
}

// fmt's %v of a float64: the shortest digits that read back, in the exponent form when the exponent
// is < -4 or >= 6 (Go decides with precision 6 for the shortest form): 100000, 1e+06, 1.234567e+06, 1e-05.
std::string float_v(double d, bool upper = false) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
  Digits g = shortest_digits(d);
  std::string sign = g.negative ? "-" : "";
  int exp = g.point - 1;
  if (exp < -4 || exp >= 6) {
    std::string out = sign + g.digits.substr(0, 1);
    if (g.digits.size() > 1) out += "." + g.digits.substr(1);
    return out + (upper ? "E" : "e") + exponent_text(exp);
  }
  int nd = static_cast<int>(g.digits.size());
  if (g.point <= 0) return sign + "0." + std::string(-g.point, '0') + g.digits;
  if (g.point >= nd) return sign + g.digits + std::string(g.point - nd, '0');
  return sign + g.digits.substr(0, g.point) + "." + g.digits.substr(g.point);
}

std::string json_float(double d) {
  if (!std::isfinite(d)) throw std::domain_error("json: unsupported value: " + float_v(d));
  double a = std::fabs(d);
  char buf[400];
  if (a != 0 && (a < 1e-6 || a >= 1e21)) {
    auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string s(buf, res.ptr);
    // Go writes 1e-7, not 1e-07.
    size_t n = s.size();
    if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') s.erase(n - 2, 1);
    return s;
  }
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
  return std::string(buf, res.ptr);
}

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out += kHexLower[c >> 4];
            out += kHexLower[c & 0xf];
          } else {
            out += static_cast<char>(c);
          }
      }
      continue;
    }
    size_t start = i;
    int32_t r = next_rune(s, i);
    if (r < 0) out += "\\ufffd";
    else if (r == 0x2028 || r == 0x2029) out += r == 0x2028 ? "\\u2028" : "\\u2029";
    else out.append(s, start, i - start);
  }
  out += '"';
}

void json_value(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: out += "null"; break;
    case Json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case Json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); break;
    case Json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); break;
    case Json::value_t::number_float: out += json_float(v.get<double>()); break;
    case Json::value_t::string: json_string(out, v.get_ref<const std::string&>()); break;
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ',';
        first = false;
        json_value(out, e);
      }
      out += ']';
      break;
    }
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, e] : v.items()) {
        if (!first) out += ',';
        first = false;
        json_string(out, k);
        out += ':';
        json_value(out, e);
      }
      out += '}';
      break;
    }
    default: throw std::domain_error("json: unsupported value of type " + std::string(v.type_name()));
  }
}

// Object keys in the order fmt prints a map: sorted.
std::vector<std::string> sorted_keys(const Json& object) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : object.items()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  return keys;
}

// One verb of a Printf format: %-08.3f is {minus, zero, width 8, precision 3, 'f'}.
struct Spec {
  bool minus = false, plus = false, sharp = false, space = false, zero = false;
  int width = -1, precision = -1;
  int32_t verb = 'v';
};

std::string verb_text(int32_t verb) { return utf8(verb); }

std::string pad(const std::string& s, const Spec& spec, bool zero_allowed = true) {
  size_t n = rune_count(s);
  if (spec.width < 0 || n >= static_cast<size_t>(spec.width)) return s;
  size_t fill = spec.width - n;
  if (spec.minus) return s + std::string(fill, ' ');
  if (spec.zero && zero_allowed) {
    // Zeros go after the sign.
    if (!s.empty() && (s[0] == '-' || s[0] == '+' || s[0] == ' ')) return s.substr(0, 1) + std::string(fill, '0') + s.substr(1);
    return std::string(fill, '0') + s;
  }
  return std::string(fill, ' ') + s;
}

std::string bad_verb(const Spec& spec, const Json& v) {
  if (v.is_null()) return "%!" + verb_text(spec.verb) + "(<nil>)";
  return "%!" + verb_text(spec.verb) + "(" + go_type_name(v) + "=" + sprint_value(v) + ")";
}

std::string sign_of(bool negative, const Spec& spec) { return negative ? "-" : spec.plus ? "+" : spec.space ? " " : ""; }

std::string format_integer(const Json& v, const Spec& spec) {
  bool negative = v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0;
  uint64_t mag = v.is_number_unsigned() ? v.get<uint64_t>()
                 : negative             ? static_cast<uint64_t>(-(v.get<int64_t>() + 1)) + 1
                                        : static_cast<uint64_t>(v.get<int64_t>());
  auto digits_in = [&](unsigned base, const char* set) {
    std::string d;
    uint64_t m = mag;
    do {
      d += set[m % base];
      m /= base;
    } while (m);
    std::reverse(d.begin(), d.end());
    return d;
  };
  std::string digits, prefix;
  switch (spec.verb) {
    case 'v':
    case 'd': digits = digits_in(10, kHexLower); break;
    case 'x': digits = digits_in(16, kHexLower); if (spec.sharp) prefix = "0x"; break;
    case 'X': digits = digits_in(16, kHexUpper); if (spec.sharp) prefix = "0X"; break;
    case 'o': digits = digits_in(8, kHexLower); if (spec.sharp) prefix = "0"; break;
    case 'b': digits = digits_in(2, kHexLower); break;
    case 'c': return pad(utf8(negative || mag > 0x10ffff ? 0xfffd : static_cast<int32_t>(mag)), spec, false);
    case 'q': {
      int32_t r = negative || mag > 0x10ffff ? 0xfffd : static_cast<int32_t>(mag);
      std::string q = r == '\'' ? "'\\''" : r == '"' ? "'\"'" : quote(utf8(r));
      if (q.front() == '"') q = "'" + q.substr(1, q.size() - 2) + "'";
      return pad(q, spec, false);
    }
    case 'U': {
      std::string h = digits_in(16, kHexUpper);
      if (h.size() < 4) h = std::string(4 - h.size(), '0') + h;
      return pad("U+" + h, spec, false);
    }
    default: return bad_verb(spec, v);
  }
  if (spec.precision >= 0) {
    if (spec.precision == 0 && mag == 0) digits.clear();
    if (digits.size() < static_cast<size_t>(spec.precision)) digits = std::string(spec.precision - digits.size(), '0') + digits;
    Spec s = spec;
    s.zero = false;  // precision, not width, says how many zeros
    return pad(sign_of(negative, spec) + prefix + digits, s);
  }
  std::string sign = sign_of(negative, spec);
  if (spec.zero && !spec.minus && spec.width > 0) {
    size_t n = sign.size() + prefix.size() + digits.size();
    if (n < static_cast<size_t>(spec.width)) digits = std::string(spec.width - n, '0') + digits;
    return sign + prefix + digits;
  }
  return pad(sign + prefix + digits, spec);
}

std::string format_float(const Json& v, const Spec& spec) {
  double d = v.get<double>();
  std::string body;
  int32_t verb = spec.verb;
  if (std::isnan(d) || std::isinf(d)) {
    body = std::isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf";
    Spec s = spec;
    s.zero = false;
    return pad(body, s);
  }
  char buf[512];
  switch (verb) {
    case 'v':
    case 'g':
    case 'G':
      if (spec.precision < 0) body = float_v(d, verb == 'G');
      else {
        std::snprintf(buf, sizeof buf, verb == 'G' ? "%.*G" : "%.*g", spec.precision, d);
        body = buf;
      }
      break;
    case 'e':
    case 'E':
      std::snprintf(buf, sizeof buf, verb == 'E' ? "%.*E" : "%.*e", spec.precision < 0 ? 6 : spec.precision, d);
      body = buf;
      break;
    case 'f':
    case 'F':
      std::snprintf(buf, sizeof buf, "%.*f", spec.precision < 0 ? 6 : spec.precision, d);
      body = buf;
      break;
    default: return bad_verb(spec, v);
  }
  if (body[0] != '-') body = sign_of(false, spec) + body;
  return pad(body, spec);
}

std::string format_string(const Json& v, const Spec& spec) {
  std::string s = v.get<std::string>();
  if (spec.precision >= 0) {
    size_t i = 0;
    for (int n = 0; n < spec.precision && i < s.size(); ++n) next_rune(s, i);
    s.resize(i);
  }
  switch (spec.verb) {
    case 'v':
    case 's': return pad(s, spec);
    case 'q': return pad(quote(s), spec);
    case 'x':
    case 'X': {
      std::string out;
      const char* set = spec.verb == 'x' ? kHexLower : kHexUpper;
      for (unsigned char c : s) {
        out += set[c >> 4];
        out += set[c & 0xf];
      }
      return pad(out, spec);
    }
    default: return bad_verb(spec, v);
  }
}

// An element of an array or an object: a nil there prints <nil> whatever the verb, as in Go.
std::string format_element(const Json& v, const Spec& spec);

std::string format_value(const Json& v, const Spec& spec) {
  switch (v.type()) {
    case Json::value_t::null:
      return spec.verb == 'v' ? pad("<nil>", spec, false) : bad_verb(spec, v);
    case Json::value_t::boolean:
      if (spec.verb == 'v' || spec.verb == 't') return pad(v.get<bool>() ? "true" : "false", spec, false);
      return bad_verb(spec, v);
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return format_integer(v, spec);
    case Json::value_t::number_float: return format_float(v, spec);
    case Json::value_t::string: return format_string(v, spec);
    case Json::value_t::array: {
      std::string out = "[";
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ' ';
        first = false;
        out += format_element(e, spec);
      }
      return out + "]";
    }
    case Json::value_t::object: {
      std::string out = "map[";
      bool first = true;
      for (const auto& k : sorted_keys(v)) {
        if (!first) out += ' ';
        first = false;
        out += format_value(Json(k), spec) + ":" + format_element(v.at(k), spec);
      }
      return out + "]";
    }
    default: return bad_verb(spec, v);
  }
}

std::string format_element(const Json& v, const Spec& spec) {
  return v.is_null() ? pad("<nil>", spec, false) : format_value(v, spec);
}

}  // namespace

std::string go_type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "<nil>";
    case Json::value_t::boolean: return "bool";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "int";
    case Json::value_t::number_float: return "float64";
    case Json::value_t::string: return "string";
    case Json::value_t::array: return "[]interface {}";
    case Json::value_t::object: return "map[string]interface {}";
    default: return v.type_name();
  }
}

std::string sprint_value(const Json& v) { return format_value(v, Spec{}); }

std::string sprint(const std::vector<Json>& args) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0 && !args[i].is_string() && !args[i - 1].is_string()) out += ' ';
    out += sprint_value(args[i]);
  }
  return out;
}

std::string sprintln(const std::vector<Json>& args) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) out += (i ? " " : "") + sprint_value(args[i]);
  return out + "\n";
}

std::string sprintf(const std::string& format, const std::vector<Json>& args) {
  std::string out;
  size_t arg = 0, i = 0, n = format.size();
  auto read_number = [&](int& into) {
    into = 0;
    while (i < n && format[i] >= '0' && format[i] <= '9') into = std::min(into * 10 + (format[i++] - '0'), 1000000);
  };
  auto star = [&](int& into, bool is_width, Spec& spec) {
    ++i;
    if (arg < args.size() && args[arg].is_number_integer()) {
      int64_t w = args[arg++].get<int64_t>();
      if (is_width && w < 0) {
        spec.minus = true;
        w = -w;
      }
      into = static_cast<int>(std::min<int64_t>(w, 1000000));
      if (!is_width && into < 0) into = -1;
    } else {
      if (arg < args.size()) ++arg;
      out += is_width ? "%!(BADWIDTH)" : "%!(BADPREC)";
    }
  };
  while (i < n) {
    size_t pct = format.find('%', i);
    if (pct == std::string::npos) {
      out.append(format, i, std::string::npos);
      break;
    }
    out.append(format, i, pct - i);
    i = pct + 1;
    Spec spec;
    for (; i < n; ++i) {
      char c = format[i];
      if (c == '-') spec.minus = true, spec.zero = false;
      else if (c == '+') spec.plus = true;
      else if (c == '#') spec.sharp = true;
      else if (c == ' ') spec.space = true;
      else if (c == '0') spec.zero = !spec.minus;
      else break;
    }
    if (i < n && format[i] == '*') star(spec.width, true, spec);
    else if (i < n && format[i] >= '1' && format[i] <= '9') read_number(spec.width);
    if (i < n && format[i] == '.') {
      ++i;
      if (i < n && format[i] == '*') star(spec.precision, false, spec);
      else read_number(spec.precision);
    }
    if (i >= n) {
      out += "%!(NOVERB)";
      break;
    }
    spec.verb = next_rune(format, i);
    // %+v and %#v ask for struct field names and Go syntax, not a sign: no struct here.
    if (spec.verb == 'v') spec.plus = spec.sharp = false;
    if (spec.verb == '%') {
      out += '%';
      continue;
    }
    if (arg >= args.size()) {
      out += "%!" + verb_text(spec.verb) + "(MISSING)";
      continue;
    }
    const Json& v = args[arg++];
    if (spec.verb == 'T') out += pad(go_type_name(v), spec, false);
    else out += format_value(v, spec);
  }
  if (arg < args.size()) {
    out += "%!(EXTRA ";
    for (size_t k = arg; k < args.size(); ++k) {
      if (k > arg) out += ", ";
      out += args[k].is_null() ? "<nil>" : go_type_name(args[k]) + "=" + sprint_value(args[k]);
    }
    out += ")";
  }
  return out;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    int32_t r = next_rune(s, i);
    if (r < 0) {
      unsigned char c = static_cast<unsigned char>(s[start]);
      out += "\\x";
      out += kHexLower[c >> 4];
      out += kHexLower[c & 0xf];
      continue;
    }
    if (r == '"' || r == '\\') {
      out += '\\';
      out += static_cast<char>(r);
      continue;
    }
    if (is_printable(r)) {
      out.append(s, start, i - start);
      continue;
    }
    switch (r) {
      case '\a': out += "\\a"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\v': out += "\\v"; continue;
      default: break;
    }
    char buf[16];
    if (r < ' ' || r == 0x7f) std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(r));
    else if (r < 0x10000) std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(r));
    else std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(r));
    out += buf;
  }
  return out + "\"";
}

int32_t decode_rune(const std::string& s, size_t& i) { return next_rune_impl(s, i); }
std::string encode_rune(int32_t r) { return utf8_impl(r); }

std::string json_encode(const Json& v) {
  std::string out;
  json_value(out, v);
  return out;
}

}  // namespace hutch::cli::gotmpl
