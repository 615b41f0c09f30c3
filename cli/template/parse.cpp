// A lexer and a recursive-descent parser that follow Go's text/template/parse, and its messages.
#include "parse.hpp"

#include <cstdlib>
#include <optional>

#include "go_fmt.hpp"
#include "hutch/error.hpp"

namespace hutch::cli::gotmpl {
namespace {

enum class Tok {
  kText, kLeftDelim, kRightDelim, kSpace, kIdentifier, kKeyword, kField, kVariable, kDot, kString,
  kRawString, kChar, kNumber, kBool, kNil, kPipe, kLeftParen, kRightParen, kDeclare, kAssign, kComma,
  kOther, kEOF
};

struct Token {
  Tok type;
  std::string val;
  size_t pos;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_alnum(char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

[[noreturn]] void fail(const std::string& source, size_t pos, const std::string& what) {
  throw Error(Errc::kUsage, "template: :" + position_of(source, pos) + ": " + what);
}

std::string char_name(unsigned char c) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "U+%04X", c);
  std::string out = buf;
  if (c >= 0x20 && c < 0x7f) out += std::string(" '") + static_cast<char>(c) + "'";
  return out;
}

class Lexer {
 public:
  explicit Lexer(const std::string& s) : s_(s) {}

  std::vector<Token> run() {
    size_t pos = 0;
    bool trim_next = false;
    while (true) {
      size_t open = s_.find("{{", pos);
      size_t begin = pos, end = open == std::string::npos ? s_.size() : open;
      if (trim_next)
        while (begin < end && is_space(s_[begin])) ++begin;
      bool trim_left = open != std::string::npos && open + 3 < s_.size() && s_[open + 2] == '-' && is_space(s_[open + 3]);
      if (trim_left)
        while (end > begin && is_space(s_[end - 1])) --end;
      if (end > begin) emit(Tok::kText, s_.substr(begin, end - begin), begin);
      if (open == std::string::npos) {
        emit(Tok::kEOF, "", s_.size());
        return tokens_;
      }
      size_t p = open + 2 + (trim_left ? 2 : 0);
      if (s_.compare(p, 2, "/*") == 0) {
        size_t close = s_.find("*/", p + 2);
        if (close == std::string::npos) fail(s_, open, "unclosed comment");
        p = close + 2;
        auto [delim, trim] = at_right_delim(p);
        if (!delim) fail(s_, open, "comment ends before closing delimiter");
        pos = p + (trim ? 2 : 0) + 2;
        trim_next = trim;
        continue;
      }
      emit(Tok::kLeftDelim, "{{", open);
      pos = action(p, trim_next);
    }
  }

 private:
  void emit(Tok t, std::string v, size_t pos) { tokens_.push_back({t, std::move(v), pos}); }

  // "}}", or " -}}" (a space, the trim marker, the delimiter): {is it, does it trim}.
  std::pair<bool, bool> at_right_delim(size_t p) const {
    if (p + 3 < s_.size() && is_space(s_[p]) && s_[p + 1] == '-' && s_.compare(p + 2, 2, "}}") == 0) return {true, true};
    if (s_.compare(p, 2, "}}") == 0) return {true, false};
    return {false, false};
  }

  bool at_terminator(size_t p) const {
    if (p >= s_.size()) return true;
    char c = s_[p];
    if (is_space(c) || c == '.' || c == ',' || c == '|' || c == ':' || c == ')' || c == '(') return true;
    return at_right_delim(p).first;
  }

  // Lexes an action from p (after "{{"); returns the position after its "}}".
  size_t action(size_t p, bool& trim_next) {
    int parens = 0;
    while (true) {
      auto [delim, trim] = at_right_delim(p);
      if (delim) {
        if (parens > 0) fail(s_, p, "unclosed left paren");
        size_t d = p + (trim ? 2 : 0);
        emit(Tok::kRightDelim, "}}", d);
        trim_next = trim;
        return d + 2;
      }
      if (p >= s_.size()) fail(s_, p, "unclosed action");
      size_t start = p;
      char c = s_[p];
      if (is_space(c)) {
        // Spaces up to a " -}}", which the loop takes as the delimiter.
        while (p < s_.size() && is_space(s_[p]) && !at_right_delim(p).second) ++p;
        emit(Tok::kSpace, s_.substr(start, p - start), start);
        continue;
      }
      switch (c) {
        case '=': emit(Tok::kAssign, "=", p++); continue;
        case ':':
          if (s_.compare(p, 2, ":=") != 0) fail(s_, p, "expected :=");
          emit(Tok::kDeclare, ":=", p);
          p += 2;
          continue;
        case '|': emit(Tok::kPipe, "|", p++); continue;
        case ',': emit(Tok::kComma, ",", p++); continue;
        case '(':
          ++parens;
          emit(Tok::kLeftParen, "(", p++);
          continue;
        case ')':
          if (--parens < 0) fail(s_, p, "unexpected right paren");
          emit(Tok::kRightParen, ")", p++);
          continue;
        case '"':
        case '\'': {
          ++p;
          while (true) {
            if (p >= s_.size() || s_[p] == '\n')
              fail(s_, start, c == '"' ? "unterminated quoted string" : "unterminated character constant");
            if (s_[p] == '\\') {
              p += 2;
              continue;
            }
            if (s_[p++] == c) break;
          }
          emit(c == '"' ? Tok::kString : Tok::kChar, s_.substr(start, p - start), start);
          continue;
        }
        case '`': {
          size_t close = s_.find('`', p + 1);
          if (close == std::string::npos) fail(s_, start, "unterminated raw quoted string");
          p = close + 1;
          emit(Tok::kRawString, s_.substr(start, p - start), start);
          continue;
        }
        case '$':
          ++p;
          while (p < s_.size() && is_alnum(s_[p])) ++p;
          if (!at_terminator(p)) fail(s_, p, "bad character " + char_name(s_[p]));
          emit(Tok::kVariable, s_.substr(start, p - start), start);
          continue;
        default: break;
      }
      if (c == '.' && !(p + 1 < s_.size() && is_digit(s_[p + 1]))) {
        ++p;
        while (p < s_.size() && is_alnum(s_[p])) ++p;
        if (!at_terminator(p)) fail(s_, p, "bad character " + char_name(s_[p]));
        emit(p == start + 1 ? Tok::kDot : Tok::kField, s_.substr(start, p - start), start);
        continue;
      }
      if (c == '+' || c == '-' || c == '.' || is_digit(c)) {
        p = number(p);
        emit(Tok::kNumber, s_.substr(start, p - start), start);
        continue;
      }
      if (is_alnum(c)) {
        while (p < s_.size() && is_alnum(s_[p])) ++p;
        if (!at_terminator(p)) fail(s_, p, "bad character " + char_name(s_[p]));
        std::string word = s_.substr(start, p - start);
        Tok t = Tok::kIdentifier;
        if (word == "true" || word == "false") t = Tok::kBool;
        else if (word == "nil") t = Tok::kNil;
        else if (word == "if" || word == "else" || word == "end" || word == "range" || word == "with" || word == "define" ||
                 word == "template" || word == "block" || word == "break" || word == "continue")
          t = Tok::kKeyword;
        emit(t, word, start);
        continue;
      }
      if (static_cast<unsigned char>(c) >= 0x21 && static_cast<unsigned char>(c) < 0x7f) {
        emit(Tok::kOther, std::string(1, c), p++);
        continue;
      }
      fail(s_, p, "unrecognized character in action: " + char_name(c));
    }
  }

  // Go's scanNumber: a sign, a base prefix, digits, a fraction and an exponent.
  size_t number(size_t p) {
    size_t start = p;
    auto accept = [&](const char* set) {
      if (p < s_.size() && std::string(set).find(s_[p]) != std::string::npos) {
        ++p;
        return true;
      }
      return false;
    };
    auto accept_run = [&](const char* set) {
      while (accept(set)) {
      }
    };
    accept("+-");
    std::string digits = "0123456789_";
    if (accept("0")) {
      if (accept("xX")) digits = "0123456789abcdefABCDEF_";
      else if (accept("oO")) digits = "01234567_";
      else if (accept("bB")) digits = "01_";
    }
    accept_run(digits.c_str());
    if (accept(".")) accept_run(digits.c_str());
    if (digits.size() == 11 && accept("eE")) {
      accept("+-");
      accept_run("0123456789_");
    }
    if (digits.size() == 23 && accept("pP")) {
      accept("+-");
      accept_run("0123456789_");
    }
    accept("i");
    if (p < s_.size() && is_alnum(s_[p])) fail(s_, start, "bad number syntax: \"" + s_.substr(start, p + 1 - start) + "\"");
    return p;
  }

  const std::string& s_;
  std::vector<Token> tokens_;
};

// The value of a quoted Go literal: "..." with Go's escapes, `...` as it is, or a 'c' character's text.
std::optional<std::string> unquote(const std::string& quoted) {
  if (quoted.size() < 2) return std::nullopt;
  char quote = quoted[0];
  std::string in = quoted.substr(1, quoted.size() - 2), out;
  if (quote == '`') return in;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == quote) return std::nullopt;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= in.size()) return std::nullopt;
    char e = in[i];
    switch (e) {
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case '\\': out += '\\'; break;
      case '"':
      case '\'':
        if (e != quote) return std::nullopt;
        out += e;
        break;
      case 'x':
      case 'u':
      case 'U': {
        int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t v = 0;
        for (int k = 0; k < n; ++k) {
          if (i + 1 >= in.size() || hex(in[i + 1]) < 0) return std::nullopt;
          v = v * 16 + hex(in[++i]);
        }
        if (e == 'x') out += static_cast<char>(v);
        else if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return std::nullopt;
        else out += encode_rune(static_cast<int32_t>(v));
        break;
      }
      default: {
        if (e < '0' || e > '7' || i + 2 >= in.size()) return std::nullopt;
        uint32_t v = 0;
        for (int k = 0; k < 3; ++k, ++i) {
          if (in[i] < '0' || in[i] > '7') return std::nullopt;
          v = v * 8 + (in[i] - '0');
        }
        --i;
        if (v > 255) return std::nullopt;
        out += static_cast<char>(v);
      }
    }
  }
  return out;
}

class Parser {
 public:
  Parser(const std::string& source, const std::set<std::string>& functions)
      : src_(source), functions_(functions), tokens_(Lexer(source).run()) {}

  NodeList parse() {
    auto [list, stop, pos] = item_list(false);
    return list;
  }

 private:
  enum class Stop { kEOF, kEnd, kElse };
  struct ListEnd {
    NodeList list;
    Stop stop;
    size_t pos;
  };

  const Token& next() {
    const Token& t = tokens_[i_];
    if (i_ + 1 < tokens_.size()) ++i_;
    return t;
  }
  const Token& peek() const { return tokens_[i_]; }
  const Token& next_non_space() {
    while (peek().type == Tok::kSpace) next();
    return next();
  }
  const Token& peek_non_space() {
    while (peek().type == Tok::kSpace) next();
    return peek();
  }
  void backup() { --i_; }

  [[noreturn]] void error(size_t pos, const std::string& what) const { fail(src_, pos, what); }

  // Go's description of a token in "unexpected X in Y".
  static std::string describe(const Token& t) {
    if (t.type == Tok::kEOF) return "EOF";
    if (t.type == Tok::kKeyword) return "<" + t.val + ">";
    if (t.val.size() > 10) return "\"" + t.val.substr(0, 10) + "\"...";
    return "\"" + t.val + "\"";
  }

  void expect_right_delim(const std::string& context) {
    const Token& t = next_non_space();
    if (t.type != Tok::kRightDelim) error(t.pos, "unexpected " + describe(t) + " in " + context);
  }

  ListEnd item_list(bool in_control) {
    NodeList list;
    while (true) {
      const Token& t = next();
      if (t.type == Tok::kEOF) {
        if (in_control) error(t.pos, "unexpected EOF");
        return {std::move(list), Stop::kEOF, t.pos};
      }
      if (t.type == Tok::kText) {
        Node n;
        n.kind = Node::kText;
        n.text = t.val;
        n.pos = t.pos;
        list.push_back(std::move(n));
        continue;
      }
      const Token& k = next_non_space();
      if (k.type == Tok::kKeyword) {
        if (k.val == "end") {
          if (!in_control) error(k.pos, "unexpected {{end}}");
          expect_right_delim("end");
          return {std::move(list), Stop::kEnd, k.pos};
        }
        if (k.val == "else") {
          if (!in_control) error(k.pos, "unexpected {{else}}");
          return {std::move(list), Stop::kElse, k.pos};
        }
        if (k.val == "if" || k.val == "range" || k.val == "with") {
          list.push_back(control(k));
          continue;
        }
        if (k.val == "break" || k.val == "continue") {
          if (range_depth_ == 0) error(k.pos, "{{" + k.val + "}} outside {{range}}");
          expect_right_delim("{{" + k.val + "}}");
          Node n;
          n.kind = k.val == "break" ? Node::kBreak : Node::kContinue;
          n.pos = k.pos;
          list.push_back(std::move(n));
          continue;
        }
        error(k.pos, "{{" + k.val + "}} is not supported: hutch's templates have no named templates");
      }
      backup();
      Node n;
      n.kind = Node::kAction;
      n.pos = k.pos;
      n.pipeline = pipeline("command", Tok::kRightDelim);
      list.push_back(std::move(n));
    }
  }

  Node control(const Token& keyword) {
    Node n;
    n.kind = keyword.val == "if" ? Node::kIf : keyword.val == "range" ? Node::kRange : Node::kWith;
    n.pos = keyword.pos;
    size_t vars = vars_.size();
    n.pipeline = pipeline(keyword.val, Tok::kRightDelim);
    if (n.kind == Node::kRange) ++range_depth_;
    ListEnd body = item_list(true);
    if (n.kind == Node::kRange) --range_depth_;
    n.list = std::move(body.list);
    if (body.stop == Stop::kElse) {
      const Token& t = peek_non_space();
      if (t.type == Tok::kKeyword && (t.val == "if" || (t.val == "with" && n.kind == Node::kWith))) {
        // {{else if x}} is {{else}}{{if x}}...{{end}} with one {{end}} for both.
        const Token& k = next_non_space();
        n.else_list.push_back(control(k));
      } else {
        expect_right_delim("else");
        ListEnd other = item_list(true);
        if (other.stop != Stop::kEnd) error(other.pos, "expected end; found {{else}}");
        n.else_list = std::move(other.list);
      }
    }
    vars_.resize(vars);
    return n;
  }

  Pipeline pipeline(const std::string& context, Tok end) {
    Pipeline p;
    p.pos = peek_non_space().pos;
    std::vector<std::string> declared;
    while (peek_non_space().type == Tok::kVariable) {
      size_t before = i_;
      const Token& v = next_non_space();
      const Token& after = peek_non_space();
      if (after.type == Tok::kDeclare || after.type == Tok::kAssign) {
        next_non_space();
        p.assigns = after.type == Tok::kAssign;
        declared.push_back(v.val);
        break;
      }
      if (after.type == Tok::kComma) {
        next_non_space();
        declared.push_back(v.val);
        if (context == "range" && declared.size() < 2) {
          if (peek_non_space().type == Tok::kVariable) continue;
          error(peek().pos, "range can only initialize variables");
        }
        error(after.pos, "too many declarations in " + context);
      }
      if (!declared.empty()) error(after.pos, "expected := after the variables of range");
      i_ = before;
      break;
    }
    if (p.assigns)
      for (const auto& v : declared)
        if (!defined(v)) error(p.pos, "undefined variable \"" + v + "\"");
    bool after_pipe = false;
    while (true) {
      const Token& t = next_non_space();
      if (t.type == end) {
        if (p.commands.empty()) error(t.pos, "missing value for " + context);
        if (after_pipe) error(t.pos, "missing command after \"|\" in " + context);
        p.end = t.pos;
        break;
      }
      switch (t.type) {
        case Tok::kBool: case Tok::kChar: case Tok::kDot: case Tok::kField: case Tok::kIdentifier:
        case Tok::kNumber: case Tok::kNil: case Tok::kVariable: case Tok::kString: case Tok::kRawString:
        case Tok::kLeftParen:
          backup();
          p.commands.push_back(command(after_pipe));
          break;
        default: error(t.pos, "unexpected " + describe(t) + " in " + context);
      }
    }
    for (size_t k = 1; k < p.commands.size(); ++k) {
      auto kind = p.commands[k].operands[0].kind;
      if (kind == Operand::kConstant || kind == Operand::kDot || kind == Operand::kNil)
        error(p.commands[k].pos, "non executable command in pipeline stage " + std::to_string(k + 1));
    }
    p.declarations = declared;
    for (const auto& v : declared)
      if (!p.assigns) vars_.push_back(v);
    return p;
  }

  Command command(bool& ended_by_pipe) {
    Command c;
    c.pos = peek_non_space().pos;
    ended_by_pipe = false;
    while (true) {
      peek_non_space();
      if (auto o = operand()) c.operands.push_back(std::move(*o));
      const Token& t = next();
      if (t.type == Tok::kSpace) continue;
      if (t.type == Tok::kRightDelim || t.type == Tok::kRightParen) {
        backup();
        c.end = t.pos;
      } else if (t.type == Tok::kPipe) {
        ended_by_pipe = true;
        c.end = t.pos;
      } else {
        error(t.pos, "unexpected " + describe(t) + " in operand");
      }
      break;
    }
    if (c.operands.empty()) error(c.pos, "empty command");
    while (c.end > c.pos && is_space(src_[c.end - 1])) --c.end;
    return c;
  }

  std::optional<Operand> operand() {
    auto node = term();
    if (!node) return std::nullopt;
    if (peek().type == Tok::kField) {
      if (node->kind == Operand::kDot || node->kind == Operand::kNil || node->kind == Operand::kConstant)
        error(peek().pos, "unexpected . after term \"" + src_.substr(node->pos, node->end - node->pos) + "\"");
      while (peek().type == Tok::kField) {
        const Token& f = next();
        node->fields.push_back(f.val.substr(1));
        node->end = f.pos + f.val.size();
      }
    }
    return node;
  }

  std::optional<Operand> term() {
    const Token& t = next_non_space();
    Operand o;
    o.pos = t.pos;
    o.end = t.pos + t.val.size();
    switch (t.type) {
      case Tok::kIdentifier:
        if (!functions_.count(t.val)) error(t.pos, "function \"" + t.val + "\" not defined");
        o.kind = Operand::kFunction;
        o.name = t.val;
        return o;
      case Tok::kDot: o.kind = Operand::kDot; return o;
      case Tok::kNil: o.kind = Operand::kNil; return o;
      case Tok::kVariable:
        if (!defined(t.val)) error(t.pos, "undefined variable \"" + t.val + "\"");
        o.kind = Operand::kVariable;
        o.name = t.val;
        return o;
      case Tok::kField:
        o.kind = Operand::kField;
        o.fields = {t.val.substr(1)};
        return o;
      case Tok::kBool:
        o.kind = Operand::kConstant;
        o.constant = t.val == "true";
        return o;
      case Tok::kNumber: o.kind = Operand::kConstant; o.constant = number(t); return o;
      case Tok::kChar: {
        auto s = unquote(t.val);
        if (!s || s->empty()) error(t.pos, "malformed character constant: " + t.val);
        size_t at = 0;
        int32_t code = s && !s->empty() ? decode_rune(*s, at) : -1;
        if (code < 0 || at != s->size()) error(t.pos, "malformed character constant: " + t.val);
        o.kind = Operand::kConstant;
        o.constant = code;
        return o;
      }
      case Tok::kString:
      case Tok::kRawString: {
        auto s = unquote(t.val);
        if (!s) error(t.pos, "bad quoted string " + t.val);
        o.kind = Operand::kConstant;
        o.constant = *s;
        return o;
      }
      case Tok::kLeftParen: {
        o.kind = Operand::kPipeline;
        o.pipeline = std::make_shared<Pipeline>(pipeline("parenthesized pipeline", Tok::kRightParen));
        o.end = o.pipeline->end + 1;
        return o;
      }
      default: backup(); return std::nullopt;
    }
  }

  // A number literal: an int when it is written as one (1, -2, 0x1f, 0755), else a float (1.5, 1e3).
  nlohmann::ordered_json number(const Token& t) const {
    std::string text;
    for (char c : t.val)
      if (c != '_') text += c;
    if (text.back() == 'i') error(t.pos, "complex number " + t.val + " is not supported");
    std::string body = text;
    bool negative = false;
    if (body[0] == '+' || body[0] == '-') {
      negative = body[0] == '-';
      body = body.substr(1);
    }
    int base = 10;
    std::string digits = body;
    if (body.size() > 1 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) base = 16, digits = body.substr(2);
    else if (body.size() > 1 && body[0] == '0' && (body[1] == 'o' || body[1] == 'O')) base = 8, digits = body.substr(2);
    else if (body.size() > 1 && body[0] == '0' && (body[1] == 'b' || body[1] == 'B')) base = 2, digits = body.substr(2);
    bool is_float = base == 10 && body.find_first_of(".eE") != std::string::npos;
    if (base == 16 && body.find_first_of(".pP") != std::string::npos) is_float = true;
    if (!is_float) {
      if (base == 10 && digits.size() > 1 && digits[0] == '0') base = 8;  // Go reads 0755 as octal
      if (digits.empty()) error(t.pos, "bad number syntax: \"" + t.val + "\"");
      errno = 0;
      char* end = nullptr;
      unsigned long long u = std::strtoull(digits.c_str(), &end, base);
      if (*end == 0 && errno != ERANGE) {
        if (!negative && u <= static_cast<unsigned long long>(INT64_MAX)) return static_cast<int64_t>(u);
        if (negative && u <= static_cast<unsigned long long>(INT64_MAX) + 1) return static_cast<int64_t>(0 - u);
        if (!negative) return static_cast<uint64_t>(u);
      }
    }
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (*end != 0) error(t.pos, "bad number syntax: \"" + t.val + "\"");
    return d;
  }

  bool defined(const std::string& v) const {
    for (const auto& d : vars_)
      if (d == v) return true;
    return false;
  }

  const std::string& src_;
  const std::set<std::string>& functions_;
  std::vector<Token> tokens_;
  size_t i_ = 0;
  std::vector<std::string> vars_{"$"};
  int range_depth_ = 0;
};

}  // namespace

NodeList parse(const std::string& source, const std::set<std::string>& functions) {
  return Parser(source, functions).parse();
}

std::string position_of(const std::string& source, size_t pos) {
  pos = std::min(pos, source.size());
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < pos; ++i)
    if (source[i] == '\n') ++line, line_start = i + 1;
  return std::to_string(line) + ":" + std::to_string(pos - line_start);
}

}  // namespace hutch::cli::gotmpl
