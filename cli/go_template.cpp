#include "go_template.hpp"

#include <sstream>

#include "command.hpp"

namespace hutch::cli {
namespace {

std::string trim_spaces(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

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

GoTemplate::GoTemplate(const std::string& format, std::map<std::string, std::string> headers)
    : headers_(std::move(headers)) {
  std::string f = format;
  if (f.rfind("table", 0) == 0 && (f.size() == 5 || f[5] == ' ')) {
    table_ = true;
    f = f.substr(5);
  }
  f = unescape(trim_spaces(f));
  std::string fields;
  for (const auto& [k, v] : headers_) fields += (fields.empty() ? "" : ", ") + k;
  auto unsupported = [&](const std::string& action) {
    usage_error("--format: {{" + action + "}} is not supported; use {{.Field}} (fields: " + fields +
                "), {{.Label \"key\"}}, {{json .}}, {{json .Field}}, or \"json\"");
  };
  auto field = [&](const std::string& ref) {
    if (ref.size() < 2 || ref[0] != '.' || !headers_.count(ref.substr(1))) unsupported(ref);
    return ref.substr(1);
  };
  size_t i = 0;
  while (i < f.size()) {
    size_t open = f.find("{{", i);
    if (open == std::string::npos) {
      pieces_.push_back({Piece::kText, f.substr(i)});
      break;
    }
    if (open > i) pieces_.push_back({Piece::kText, f.substr(i, open - i)});
    size_t close = f.find("}}", open + 2);
    if (close == std::string::npos) usage_error("--format: \"{{\" at offset " + std::to_string(open) + " is not closed with \"}}\"");
    std::string action = trim_spaces(f.substr(open + 2, close - open - 2));
    i = close + 2;
    if (action.rfind("json ", 0) == 0) {
      std::string arg = trim_spaces(action.substr(5));
      if (arg == ".") pieces_.push_back({Piece::kJsonAll, ""});
      else pieces_.push_back({Piece::kJsonField, field(arg)});
    } else if (action.rfind(".Label ", 0) == 0) {
      std::string key = trim_spaces(action.substr(7));
      if (key.size() < 2 || key.front() != '"' || key.back() != '"') unsupported(action);
      pieces_.push_back({Piece::kLabel, key.substr(1, key.size() - 2)});
    } else {
      pieces_.push_back({Piece::kField, field(action)});
    }
  }
}

std::string GoTemplate::render_line(const TemplateRow& row) const {
  std::string out;
  for (const auto& p : pieces_) {
    switch (p.kind) {
      case Piece::kText: out += p.value; break;
      case Piece::kField: {
        auto it = row.fields.find(p.value);
        if (it != row.fields.end()) out += it->second;
        break;
      }
      case Piece::kLabel:
        if (row.object.contains("Labels") && row.object["Labels"].contains(p.value))
          out += row.object["Labels"][p.value].get<std::string>();
        break;
      case Piece::kJsonAll: out += row.object.dump(); break;
      case Piece::kJsonField:
        if (row.object.contains(p.value)) out += row.object[p.value].dump();
        else if (row.fields.count(p.value)) out += nlohmann::ordered_json(row.fields.at(p.value)).dump();
        else out += "null";
        break;
    }
  }
  return out;
}

std::string GoTemplate::render_header() const {
  std::string out;
  for (const auto& p : pieces_) {
    switch (p.kind) {
      case Piece::kText: out += p.value; break;
      case Piece::kField:
      case Piece::kJsonField: out += headers_.at(p.value); break;
      case Piece::kLabel: out += "LABEL " + p.value; break;
      case Piece::kJsonAll: out += "JSON"; break;
    }
  }
  return out;
}

std::string GoTemplate::render(const std::vector<TemplateRow>& rows) const {
  std::vector<std::string> lines;
  if (table_) lines.push_back(render_header());
  for (const auto& r : rows) lines.push_back(render_line(r));
  if (table_) return align_columns(lines);
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
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
