// docker's --format: a Go template reduced to what listing commands need.
//
//   {{.Field}}            a field's text
//   {{.Label "key"}}      a label's value (from the object's "Labels")
//   {{json .}}            the whole object as JSON;  {{json .Field}}: one field as JSON
//   table TEMPLATE        a header line (each field's header), columns aligned as docker's
//                         tabwriter does (at least 10 wide, 3 spaces of padding)
//   \t, \n                a tab, a newline (as docker replaces them)
// Anything else between {{ }} is a usage error naming what is supported.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hutch::cli {

struct TemplateRow {
  std::map<std::string, std::string> fields;  // "Name" -> "data"
  nlohmann::ordered_json object;              // what {{json .}} prints (keys in order)
};

class GoTemplate {
 public:
  // `headers`: every field the template may name, with its table header ("Name" -> "VOLUME NAME").
  GoTemplate(const std::string& format, std::map<std::string, std::string> headers);
  // The whole output: the header line for a table, then one line per row.
  std::string render(const std::vector<TemplateRow>& rows) const;

 private:
  struct Piece {
    enum Kind { kText, kField, kLabel, kJsonAll, kJsonField } kind;
    std::string value;
  };
  std::string render_line(const TemplateRow& row) const;
  std::string render_header() const;

  std::map<std::string, std::string> headers_;
  std::vector<Piece> pieces_;
  bool table_ = false;
};

// Docker's tabwriter (minwidth 10, padding 3) over lines whose cells are separated by tabs.
std::string align_columns(const std::vector<std::string>& lines);

}  // namespace hutch::cli
