#include "go_template.hpp"

#include <algorithm>
#include <set>
#include <span>
#include <sstream>
#include <stdexcept>

#include "hutch/error.hpp"
#include "template/go_fmt.hpp"
#include "template/parse.hpp"

namespace hutch::cli {

using gotmpl::Json;
using gotmpl::Node;
using gotmpl::NodeList;
using gotmpl::Operand;
using gotmpl::Pipeline;

namespace gotmpl {
struct Program {
  std::string source;
  NodeList tree;
  bool table = false;
  bool strict = false;  // a listing: a field its rows do not have is an error
  Json headers = Json::object();
  std::map<std::string, GoTemplate::RowMethod> methods;
};
}  // namespace gotmpl

namespace {

const std::set<std::string>& function_names() {
  static const std::set<std::string> names = {
      "and", "or",   "not",   "len",   "index", "slice", "print", "printf", "println", "eq",   "ne",       "lt",
      "le",  "gt",   "ge",    "json",  "split", "join",  "title", "lower",  "upper",   "pad",  "truncate"};
  return names;
}

// What a template's expression has: a JSON value, or no value at all (Go's invalid reflect.Value:
// a missing key; a pipeline's nil), which prints "<no value>".
struct Value {
  Json json;
  bool missing = false;
  bool row = false;  // the row itself: a listing's strict fields and row methods apply

  static Value none() {
    Value v;
    v.missing = true;
    return v;
  }
};

// Where an error happened: a span of the template's text.
struct Span {
  size_t pos = 0, end = 0;
};

struct ExecError {
  Span at;
  std::string message;
};

enum class Flow { kNormal, kBreak, kContinue };

// Go's truth: false, 0, nil, no value, and an empty string, array or object are false.
bool truth(const Value& v) {
  if (v.missing) return false;
  const Json& j = v.json;
  switch (j.type()) {
    case Json::value_t::null: return false;
    case Json::value_t::boolean: return j.get<bool>();
    case Json::value_t::number_integer: return j.get<int64_t>() != 0;
    case Json::value_t::number_unsigned: return j.get<uint64_t>() != 0;
    case Json::value_t::number_float: return j.get<double>() != 0;
    case Json::value_t::string: return !j.get_ref<const std::string&>().empty();
    case Json::value_t::array:
    case Json::value_t::object: return !j.empty();
    default: return true;
  }
}

bool is_nil(const Value& v) { return v.missing || v.json.is_null(); }

// -1, 0, 1 for two numbers, an int against a float by value.
int compare_numbers(const Json& a, const Json& b) {
  if (a.is_number_integer() && b.is_number_integer()) {
    auto wide = [](const Json& j) -> __int128 {
      return j.is_number_unsigned() ? static_cast<__int128>(j.get<uint64_t>()) : static_cast<__int128>(j.get<int64_t>());
    };
    __int128 x = wide(a), y = wide(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  long double x = a.get<long double>(), y = b.get<long double>();
  return x < y ? -1 : x > y ? 1 : 0;
}

class Executor {
 public:
  Executor(const gotmpl::Program& program, bool header) : p_(program), header_(header) {}

  std::string run(const Json& data) {
    Value root;
    root.json = data;
    root.row = p_.strict;
    vars_ = {{"$", root}};
    out_.clear();
    try {
      walk_list(root, p_.tree);
    } catch (const ExecError& e) {
      throw Error(Errc::kUsage, "template: :" + gotmpl::position_of(p_.source, e.at.pos) + ": executing \"\" at <" +
                                    p_.source.substr(e.at.pos, e.at.end - e.at.pos) + ">: " + e.message);
    }
    return out_;
  }

 private:
  [[noreturn]] static void fail(Span at, const std::string& message) { throw ExecError{at, message}; }
  static Span span(const Operand& o) { return {o.pos, o.end}; }

  Flow walk_list(const Value& dot, const NodeList& list) {
    for (const auto& n : list) {
      Flow f = walk(dot, n);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow walk(const Value& dot, const Node& n) {
    switch (n.kind) {
      case Node::kText: out_ += n.text; return Flow::kNormal;
      case Node::kAction: {
        Value v = eval_pipeline(dot, n.pipeline);
        if (n.pipeline.declarations.empty()) out_ += v.missing ? "<no value>" : gotmpl::sprint_value(v.json);
        return Flow::kNormal;
      }
      case Node::kIf:
      case Node::kWith: {
        size_t mark = vars_.size();
        Value v = eval_pipeline(dot, n.pipeline);
        Flow f = truth(v) ? walk_list(n.kind == Node::kWith ? v : dot, n.list) : walk_list(dot, n.else_list);
        vars_.resize(mark);
        return f;
      }
      case Node::kRange: return walk_range(dot, n);
      case Node::kBreak: return Flow::kBreak;
      case Node::kContinue: return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  Flow walk_range(const Value& dot, const Node& n) {
    size_t mark = vars_.size();
    const Pipeline& pipe = n.pipeline;
    Value v = eval_pipeline(dot, pipe);
    if (v.row && p_.strict)
      fail({pipe.pos, pipe.end}, "range can't iterate over the row: not supported, a row is one item, with the fields " +
                                     field_list(v.json));
    // One iteration: the declared variables (pushed by eval_pipeline) get the index and the element.
    auto one = [&](Value elem, Value index) {
      const auto& decl = pipe.declarations;
      if (pipe.assigns) {
        if (decl.size() > 1) set_var(decl[0], index, pipe), set_var(decl[1], elem, pipe);
        else if (decl.size() == 1) set_var(decl[0], elem, pipe);
      } else {
        if (decl.size() > 1) vars_[mark].second = index, vars_[mark + 1].second = elem;
        else if (decl.size() == 1) vars_[mark].second = elem;
      }
      size_t inner = vars_.size();
      Flow f = walk_list(elem, n.list);
      vars_.resize(inner);
      return f;
    };
    auto value = [](Json j) {
      Value e;
      e.json = std::move(j);
      return e;
    };
    bool any = false;
    const Json& j = v.json;
    if (v.missing || j.is_null()) {
    } else if (j.is_array()) {
      for (size_t i = 0; i < j.size(); ++i) {
        any = true;
        if (one(value(j[i]), value(static_cast<int64_t>(i))) == Flow::kBreak) break;
      }
    } else if (j.is_object()) {
      std::vector<std::string> keys;
      for (const auto& [k, e] : j.items()) keys.push_back(k);
      std::sort(keys.begin(), keys.end());
      for (const auto& k : keys) {
        any = true;
        if (one(value(j.at(k)), value(k)) == Flow::kBreak) break;
      }
    } else if (j.is_number_integer()) {
      // Go 1.22: range over an int counts from 0.
      int64_t count = j.is_number_unsigned() ? static_cast<int64_t>(j.get<uint64_t>()) : j.get<int64_t>();
      for (int64_t i = 0; i < count; ++i) {
        any = true;
        if (one(value(i), value(i)) == Flow::kBreak) break;
      }
    } else {
      fail({pipe.pos, pipe.end}, "range can't iterate over " + gotmpl::sprint_value(j));
    }
    if (!any) walk_list(dot, n.else_list);
    vars_.resize(mark);
    return Flow::kNormal;
  }

  Value eval_pipeline(const Value& dot, const Pipeline& pipe) {
    Value value = Value::none();
    bool has_final = false;
    for (const auto& c : pipe.commands) {
      Value final = value;
      value = eval_command(dot, c, has_final ? &final : nullptr);
      has_final = true;
      // Go: an interface holding nil becomes no value.
      if (value.json.is_null()) value.missing = true;
    }
    for (const auto& d : pipe.declarations) {
      if (pipe.assigns) set_var(d, value, pipe);
      else vars_.emplace_back(d, value);
    }
    return value;
  }

  Value eval_command(const Value& dot, const gotmpl::Command& cmd, const Value* final) {
    const Operand& first = cmd.operands[0];
    std::span<const Operand> args(cmd.operands.data() + 1, cmd.operands.size() - 1);
    Span at{cmd.pos, cmd.end};
    switch (first.kind) {
      case Operand::kField: return eval_field_chain(dot, dot, first, args, final);
      case Operand::kFunction:
        if (first.fields.empty()) return call(dot, first.name, args, final, at);
        return eval_field_chain(dot, call(dot, first.name, {}, nullptr, span(first)), first, args, final);
      case Operand::kVariable:
      case Operand::kPipeline: {
        Value v = first.kind == Operand::kVariable ? variable(first) : eval_pipeline(dot, *first.pipeline);
        if (!first.fields.empty()) return eval_field_chain(dot, v, first, args, final);
        not_a_function(first, args, final);
        return v;
      }
      case Operand::kDot: not_a_function(first, args, final); return dot;
      case Operand::kNil: not_a_function(first, args, final); fail(span(first), "nil is not a command");
      case Operand::kConstant: {
        not_a_function(first, args, final);
        Value v;
        v.json = first.constant;
        return v;
      }
    }
    return Value::none();
  }

  void not_a_function(const Operand& o, std::span<const Operand> args, const Value* final) {
    if (!args.empty() || final)
      fail(span(o), "can't give argument to non-function " + p_.source.substr(o.pos, o.end - o.pos));
  }

  // An argument of a function or a method: evaluated alone, with no arguments of its own.
  Value eval_arg(const Value& dot, const Operand& o) {
    switch (o.kind) {
      case Operand::kDot: return dot;
      case Operand::kNil: return Value{};
      case Operand::kConstant: {
        Value v;
        v.json = o.constant;
        return v;
      }
      case Operand::kField: return eval_field_chain(dot, dot, o, {}, nullptr);
      case Operand::kVariable:
      case Operand::kPipeline:
      case Operand::kFunction: {
        Value v = o.kind == Operand::kVariable   ? variable(o)
                  : o.kind == Operand::kPipeline ? eval_pipeline(dot, *o.pipeline)
                                                 : call(dot, o.name, {}, nullptr, span(o));
        if (o.fields.empty()) return v;
        return eval_field_chain(dot, v, o, {}, nullptr);
      }
    }
    return Value::none();
  }

  Value eval_field_chain(const Value& dot, Value receiver, const Operand& node, std::span<const Operand> args,
                         const Value* final) {
    const auto& fields = node.fields;
    for (size_t i = 0; i + 1 < fields.size(); ++i) receiver = eval_field(dot, fields[i], node, {}, nullptr, receiver);
    return eval_field(dot, fields.back(), node, args, final, receiver);
  }

  Value eval_field(const Value& dot, const std::string& name, const Operand& node, std::span<const Operand> args,
                   const Value* final, const Value& receiver) {
    bool has_args = !args.empty() || final;
    if (receiver.missing) return Value::none();
    const Json& r = receiver.json;
    if (receiver.row && !header_) {
      auto m = p_.methods.find(name);
      if (m != p_.methods.end()) {
        if (has_args) fail(span(node), "wrong number of args for " + name + ": want 0 got " + std::to_string(args.size() + (final ? 1 : 0)));
        Value v;
        v.json = m->second(r);
        return v;
      }
    }
    if (name == "Label" && r.is_object() && !r.contains("Label") && (r.contains("Labels") || (receiver.row && header_))) {
      std::vector<Value> a;
      for (const auto& o : args) a.push_back(eval_arg(dot, o));
      if (final) a.push_back(*final);
      if (a.size() != 1) fail(span(node), "wrong number of args for Label: want 1 got " + std::to_string(a.size()));
      std::string key = need_string(a[0], span(node));
      Value v;
      if (header_) v.json = "LABEL " + key;
      else if (r["Labels"].is_object() && r["Labels"].contains(key)) v.json = r["Labels"][key];
      else v.json = "";
      return v;
    }
    if (r.is_object()) {
      if (has_args) fail(span(node), name + " is not a method but has arguments");
      auto it = r.find(name);
      if (it != r.end()) {
        Value v;
        v.json = *it;
        return v;
      }
      if (receiver.row && p_.strict) fail(span(node), "can't evaluate field " + name + "; the fields are " + field_list(r));
      return Value::none();
    }
    if (r.is_null()) fail(span(node), "nil pointer evaluating null." + name);
    fail(span(node), "can't evaluate field " + name + " in type " + gotmpl::go_type_name(r));
  }

  // The fields of a row, for messages: its keys, then its methods.
  std::string field_list(const Json& row) const {
    std::string out;
    for (const auto& [k, v] : row.items()) out += (out.empty() ? "" : ", ") + k;
    if (!header_)
      for (const auto& [k, m] : p_.methods)
        if (!row.contains(k)) out += (out.empty() ? "" : ", ") + k;
    return out;
  }

  Value variable(const Operand& o) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
      if (it->first == o.name) return it->second;
    fail(span(o), "undefined variable: " + o.name);
  }

  void set_var(const std::string& name, const Value& v, const Pipeline& at) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
      if (it->first == name) {
        it->second = v;
        return;
      }
    fail({at.pos, at.end}, "undefined variable: " + name);
  }

  static std::string need_string(const Value& v, Span at) {
    if (v.missing) fail(at, "invalid value; expected string");
    if (!v.json.is_string()) fail(at, "wrong type for value; expected string; got " + gotmpl::go_type_name(v.json));
    return v.json.get<std::string>();
  }

  static int64_t need_int(const Value& v, Span at) {
    if (v.missing) fail(at, "invalid value; expected int");
    if (!v.json.is_number_integer()) fail(at, "wrong type for value; expected int; got " + gotmpl::go_type_name(v.json));
    return v.json.is_number_unsigned() ? static_cast<int64_t>(v.json.get<uint64_t>()) : v.json.get<int64_t>();
  }

  static Value of(Json j) {
    Value v;
    v.json = std::move(j);
    return v;
  }

  static std::vector<Json> jsons(std::span<const Value> values) {
    std::vector<Json> out;
    for (const auto& v : values) out.push_back(v.missing ? Json() : v.json);
    return out;
  }

  // Calls a function with the arguments `args` (evaluated here) and the pipeline's `final` value.
  Value call(const Value& dot, const std::string& name, std::span<const Operand> args, const Value* final, Span at) {
    size_t count = args.size() + (final ? 1 : 0);
    if (name == "and" || name == "or") {
      // Go 1.18: evaluated in order, only as far as needed.
      if (count == 0) fail(at, "wrong number of args for " + name + ": want at least 1 got 0");
      Value v;
      for (size_t i = 0; i < count; ++i) {
        v = i < args.size() ? eval_arg(dot, args[i]) : *final;
        if (truth(v) == (name == "or")) return v;
      }
      return v;
    }
    std::vector<Value> a;
    for (const auto& o : args) a.push_back(eval_arg(dot, o));
    if (final) a.push_back(*final);
    return builtin(name, a, at);
  }

  Value builtin(const std::string& name, std::vector<Value>& a, Span at) {
    struct Arity {
      size_t min, max;
    };
    static const std::map<std::string, Arity> arity = {
        {"not", {1, 1}},    {"len", {1, 1}},    {"index", {1, SIZE_MAX}}, {"slice", {1, 4}},  {"print", {0, SIZE_MAX}},
        {"println", {0, SIZE_MAX}}, {"printf", {1, SIZE_MAX}}, {"eq", {1, SIZE_MAX}}, {"ne", {2, 2}}, {"lt", {2, 2}},
        {"le", {2, 2}},     {"gt", {2, 2}},     {"ge", {2, 2}},           {"json", {1, 1}},   {"split", {2, 2}},
        {"join", {2, 2}},   {"title", {1, 1}},  {"lower", {1, 1}},        {"upper", {1, 1}},  {"pad", {3, 3}},
        {"truncate", {2, 2}}};
    const Arity& ar = arity.at(name);
    if (a.size() < ar.min || a.size() > ar.max) {
      std::string want = ar.min == ar.max ? std::to_string(ar.min) : "at least " + std::to_string(ar.min);
      if (ar.max != SIZE_MAX && ar.min != ar.max) want = std::to_string(ar.min) + " to " + std::to_string(ar.max);
      fail(at, "wrong number of args for " + name + ": want " + want + " got " + std::to_string(a.size()));
    }
    auto error = [&](const std::string& what) { fail(at, "error calling " + name + ": " + what); };

    // A table's header: docker's header functions leave the column's name as it is.
    if (header_ && (name == "json" || name == "split" || name == "join" || name == "title" || name == "lower" ||
                    name == "upper" || name == "truncate")) {
      if (name == "json" && a[0].row) return of("JSON");
      return a[0];
    }
    if (name == "not") return of(!truth(a[0]));
    if (name == "len") {
      if (is_nil(a[0])) error("len of nil pointer");
      const Json& j = a[0].json;
      if (j.is_string()) return of(static_cast<int64_t>(j.get_ref<const std::string&>().size()));
      if (j.is_array() || j.is_object()) return of(static_cast<int64_t>(j.size()));
      error("len of type " + gotmpl::go_type_name(j));
    }
    if (name == "index") {
      Json x = a[0].missing ? Json() : a[0].json;
      for (size_t i = 1; i < a.size(); ++i) {
        const Value& k = a[i];
        if (x.is_null()) error("index of untyped nil");
        if (x.is_array() || x.is_string()) {
          if (k.missing || !k.json.is_number_integer())
            error(std::string("cannot index ") + (x.is_string() ? "string" : "slice/array") + " with type " +
                  (k.missing ? "nil" : gotmpl::go_type_name(k.json)));
          int64_t n = need_int(k, at);
          size_t size = x.is_string() ? x.get_ref<const std::string&>().size() : x.size();
          if (n < 0 || static_cast<size_t>(n) >= size) error("index out of range: " + std::to_string(n));
          if (x.is_string()) x = static_cast<int64_t>(static_cast<unsigned char>(x.get_ref<const std::string&>()[n]));
          else x = Json(x[n]);
        } else if (x.is_object()) {
          if (k.missing || !k.json.is_string())
            error("value has type " + (k.missing ? std::string("nil") : gotmpl::go_type_name(k.json)) + "; should be string");
          auto it = x.find(k.json.get<std::string>());
          x = it == x.end() ? Json() : Json(*it);
        } else {
          error("can't index item of type " + gotmpl::go_type_name(x));
        }
      }
      return of(x);
    }
    if (name == "slice") {
      const Json& x = a[0].json;
      if (is_nil(a[0])) error("slice of untyped nil");
      if (!x.is_string() && !x.is_array()) error("can't slice item of type " + gotmpl::go_type_name(x));
      if (x.is_string() && a.size() == 4) error("cannot 3-index slice a string");
      size_t size = x.is_string() ? x.get_ref<const std::string&>().size() : x.size();
      std::vector<int64_t> idx;
      for (size_t i = 1; i < a.size(); ++i) {
        if (a[i].missing || !a[i].json.is_number_integer()) error("cannot index slice/array with nil");
        idx.push_back(need_int(a[i], at));
      }
      int64_t from = idx.size() > 0 ? idx[0] : 0, to = idx.size() > 1 ? idx[1] : static_cast<int64_t>(size);
      for (int64_t n : idx)
        if (n < 0 || static_cast<size_t>(n) > size) error("index out of range: " + std::to_string(n));
      if (from > to) error("invalid slice index: " + std::to_string(from) + " > " + std::to_string(to));
      if (x.is_string()) return of(x.get_ref<const std::string&>().substr(from, to - from));
      Json out = Json::array();
      for (int64_t i = from; i < to; ++i) out.push_back(x[i]);
      return of(out);
    }
    if (name == "print") return of(gotmpl::sprint(jsons(a)));
    if (name == "println") return of(gotmpl::sprintln(jsons(a)));
    if (name == "printf") {
      std::string format = need_string(a[0], at);
      return of(gotmpl::sprintf(format, jsons(std::span<const Value>(a).subspan(1))));
    }
    if (name == "eq" || name == "ne") {
      if (a.size() < 2) error("missing argument for comparison");
      bool equal = false;
      for (size_t i = 1; i < a.size() && !equal; ++i) equal = equals(a[0], a[i], error);
      return of(name == "eq" ? equal : !equal);
    }
    if (name == "lt" || name == "le" || name == "gt" || name == "ge") {
      bool less = less_than(a[0], a[1], error);
      bool less_or_equal = less || equals(a[0], a[1], error);
      if (name == "lt") return of(less);
      if (name == "le") return of(less_or_equal);
      if (name == "gt") return of(!less_or_equal);
      return of(!less);
    }
    if (name == "json") {
      try {
        return of(gotmpl::json_encode(a[0].missing ? Json() : a[0].json));
      } catch (const std::domain_error& e) {
        error(e.what());
      }
    }
    if (name == "split") {
      std::string s = need_string(a[0], at), sep = need_string(a[1], at);
      Json out = Json::array();
      if (sep.empty()) {
        for (size_t i = 0; i < s.size();) {
          size_t start = i;
          gotmpl::decode_rune(s, i);
          out.push_back(s.substr(start, i - start));
        }
        return of(out);
      }
      size_t from = 0;
      for (size_t hit; (hit = s.find(sep, from)) != std::string::npos; from = hit + sep.size())
        out.push_back(s.substr(from, hit - from));
      out.push_back(s.substr(from));
      return of(out);
    }
    if (name == "join") {
      if (a[0].missing) fail(at, "invalid value; expected []string");
      const Json& items = a[0].json;
      bool strings = items.is_array() && std::all_of(items.begin(), items.end(), [](const Json& e) { return e.is_string(); });
      if (!strings) fail(at, "wrong type for value; expected []string; got " + gotmpl::go_type_name(items));
      std::string sep = need_string(a[1], at), out;
      for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i].get<std::string>();
      return of(out);
    }
    if (name == "lower" || name == "upper" || name == "title") {
      std::string s = need_string(a[0], at);
      bool word_start = true;
      for (char& c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        if (name == "lower") c = static_cast<char>(u < 0x80 ? std::tolower(u) : u);
        else if (name == "upper") c = static_cast<char>(u < 0x80 ? std::toupper(u) : u);
        else {
          // strings.Title: a letter after a separator (ASCII other than letters, digits and _) is capitalised.
          if (word_start && u < 0x80) c = static_cast<char>(std::toupper(u));
          word_start = u < 0x80 && !std::isalnum(u) && c != '_';
        }
      }
      return of(s);
    }
    if (name == "pad") {
      std::string s = need_string(a[0], at);
      int64_t before = need_int(a[1], at), after = need_int(a[2], at);
      if (before < 0 || after < 0) error("negative padding");
      if (s.empty()) return of(s);
      return of(std::string(before, ' ') + s + std::string(after, ' '));
    }
    if (name == "truncate") {
      std::string s = need_string(a[0], at);
      int64_t n = need_int(a[1], at);
      if (n < 0) error("negative length " + std::to_string(n));
      return of(static_cast<size_t>(n) < s.size() ? s.substr(0, n) : s);
    }
    fail(at, "not implemented");
  }

  // Go's eq of two basic values; an int and a float compare by value.
  template <typename E>
  static bool equals(const Value& x, const Value& y, E error) {
    if (is_nil(x) || is_nil(y)) return is_nil(x) && is_nil(y);
    const Json &a = x.json, &b = y.json;
    if (a.is_number() && b.is_number()) return compare_numbers(a, b) == 0;
    if (a.is_structured() && b.is_structured()) error("non-comparable type " + gotmpl::sprint_value(a) + ": " + gotmpl::go_type_name(a));
    if (a.type() != b.type()) error("incompatible types for comparison");
    return a == b;
  }

  template <typename E>
  static bool less_than(const Value& x, const Value& y, E error) {
    auto ordered = [](const Value& v) { return !is_nil(v) && (v.json.is_number() || v.json.is_string()); };
    if (!ordered(x) || !ordered(y)) error("invalid type for comparison");
    const Json &a = x.json, &b = y.json;
    if (a.is_number() && b.is_number()) return compare_numbers(a, b) < 0;
    if (a.is_string() && b.is_string()) return a.get_ref<const std::string&>() < b.get_ref<const std::string&>();
    error("incompatible types for comparison");
    return false;
  }

  const gotmpl::Program& p_;
  bool header_;
  std::vector<std::pair<std::string, Value>> vars_;
  std::string out_;
};

std::string trim_spaces(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// docker replaces the two escapes a shell leaves in a --format: \t and \n.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 't' || s[i + 1] == 'n')) {
      out += s[i + 1] == 't' ? '\t' : '\n';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

GoTemplate::GoTemplate(const std::string& format, std::map<std::string, std::string> headers,
                       std::map<std::string, RowMethod> row_methods) {
  auto p = std::make_shared<gotmpl::Program>();
  std::string f = format == "json" ? "{{json .}}" : format;
  if (f.rfind("table", 0) == 0 && (f.size() == 5 || f[5] == ' ' || f[5] == '\t')) {
    p->table = true;
    f = f.substr(5);
  }
  p->source = unescape(trim_spaces(f));
  p->strict = !headers.empty();
  for (const auto& [field, header] : headers) p->headers[field] = header;
  p->methods = std::move(row_methods);
  p->tree = gotmpl::parse(p->source, function_names());
  program_ = std::move(p);
}

bool GoTemplate::is_table() const { return program_->table; }

std::string GoTemplate::render_one(const nlohmann::ordered_json& value) const {
  return Executor(*program_, false).run(value);
}

std::string GoTemplate::render(const std::vector<nlohmann::ordered_json>& values) const {
  std::string text;
  auto add = [&](std::string s) {
    if (s.empty() || s.back() != '\n') s += '\n';
    text += s;
  };
  if (program_->table) add(Executor(*program_, true).run(program_->headers));
  for (const auto& v : values) add(render_one(v));
  if (!program_->table) return text;
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return align_columns(lines);
}

FormatOption::FormatOption(const std::string& format, std::map<std::string, std::string> headers,
                           std::map<std::string, GoTemplate::RowMethod> row_methods)
    : template_(parse(format, std::move(headers), std::move(row_methods))) {}

GoTemplate FormatOption::parse(const std::string& format, std::map<std::string, std::string> headers,
                               std::map<std::string, GoTemplate::RowMethod> row_methods) {
  try {
    return GoTemplate(format, std::move(headers), std::move(row_methods));
  } catch (const Error& e) {
    // Thrown while a command takes its arguments, where only the message is kept: it names the option.
    throw Error(Errc::kUsage, "--format: " + std::string(e.what()));
  }
}

std::string FormatOption::render(const std::vector<nlohmann::ordered_json>& values) const {
  try {
    return template_.render(values);
  } catch (Error& e) {
    throw std::move(e.with_context("--format"));
  }
}

std::string align_columns(const std::vector<std::string>& lines) {
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width;
  for (const auto& l : lines) {
    std::vector<std::string> c;
    std::string cell;
    std::istringstream in(l);
    while (std::getline(in, cell, '\t')) c.push_back(cell);
    if (!l.empty() && l.back() == '\t') c.push_back("");
    // The last cell of a line is not a column: it is not padded and sets no width.
    for (size_t i = 0; i + 1 < c.size(); ++i) {
      if (width.size() <= i) width.push_back(10);
      width[i] = std::max(width[i], c[i].size() + 3);
    }
    cells.push_back(std::move(c));
  }
  std::string out;
  for (const auto& c : cells) {
    std::string line;
    for (size_t i = 0; i < c.size(); ++i) {
      line += c[i];
      if (i + 1 < c.size()) line += std::string(width[i] - c[i].size(), ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace hutch::cli
