// docker's --format: Go's text/template over JSON values, and the listing commands' rows and tables.
//
// The language is Go's text/template (pkg.go.dev/text/template) without named templates:
//   {{.A.B}}  {{$}}  {{$x := pipeline}}  {{$x = pipeline}}  {{pipeline | function args}}  {{(pipeline).A}}
//   {{if}} {{else if}} {{else}} {{end}}   {{range [$i, $e :=] x}} {{break}} {{continue}} {{else}} {{end}}
//   {{with}} {{else with}} {{else}} {{end}}   {{- trims -}}   {{/* comments */}}
// Functions: Go's and or not len index slice print printf println eq ne lt le gt ge, and docker's
// json split join title lower upper pad truncate.
//
// Values are JSON, as Go sees what encoding/json decoded into an interface{}, with these choices:
//  - An object is a Go map: a missing key, and null, print "<no value>" (a field of a missing
//    value is missing too). docker's inspect output is a Go struct, where a missing field is an
//    error; here it is not. range visits an object's keys sorted (Go's order for a map), and
//    {{.}} prints it as Go prints a map; {{json .}} keeps the object's own key order.
//  - A JSON integer is a Go int and prints without ".0"; any other number is a float64 (Go's %v:
//    1.5, 1e+06). eq, lt and the others compare an int with a float by value (Go would refuse).
//  - {{.Label "k"}} on an object with "Labels": that label's value, "" without it, as docker's
//    ps and volume ls rows have it.
//  - {{json x}} is docker's: Go's encoding/json, compact, without escaping < > & (docker turns
//    Go's HTML escaping off).
// A listing (a template given headers) is strict about its rows, as docker's row structs are: a
// field a row does not have is an error that names the fields it has.
//
// Errors are Error(Errc::kUsage, ...) with Go's wording and position: a template that does not
// parse ("template: :1:2: function \"foo\" not defined"), or fails while it runs
// ("template: :1:2: executing \"\" at <index .A 3>: error calling index: index out of range: 3").
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hutch::cli {

namespace gotmpl {
struct Program;
}

class GoTemplate {
 public:
  // A listing row's field computed as docker's row methods compute it: {{.Labels}} of volume ls
  // is "a=b,c=d" while the row's "Labels", which {{json .}} prints, is an object. Looked up on
  // the row before the row's own keys.
  using RowMethod = std::function<nlohmann::ordered_json(const nlohmann::ordered_json& row)>;

  // `format`: a template, "json" for {{json .}}, or "table TEMPLATE" for a table. Before it is
  // parsed, surrounding spaces go and \t and \n become a tab and a newline, as docker does.
  // `headers`: for a listing, every field of its rows with its table header ("ID" -> "CONTAINER ID").
  GoTemplate(const std::string& format, std::map<std::string, std::string> headers = {},
             std::map<std::string, RowMethod> row_methods = {});

  bool is_table() const;
  // Each value on its line (a newline ends each value's text that does not end in one), after the
  // header line of a table, whose columns are aligned as docker's tabwriter aligns them.
  std::string render(const std::vector<nlohmann::ordered_json>& values) const;
  // One value's text, no newline added.
  std::string render_one(const nlohmann::ordered_json& value) const;

 private:
  std::shared_ptr<const gotmpl::Program> program_;
};

// A command's --format: a GoTemplate whose errors say they come from the option, as usage errors
// ("--format: template: :1:2: function \"foo\" not defined") and while rendering (the context
// "--format" of the error).
class FormatOption {
 public:
  explicit FormatOption(const std::string& format, std::map<std::string, std::string> headers = {},
                        std::map<std::string, GoTemplate::RowMethod> row_methods = {});
  bool is_table() const { return template_.is_table(); }
  std::string render(const std::vector<nlohmann::ordered_json>& values) const;

 private:
  static GoTemplate parse(const std::string& format, std::map<std::string, std::string> headers,
                          std::map<std::string, GoTemplate::RowMethod> row_methods);
  GoTemplate template_;
};

// Docker's tabwriter (minwidth 10, padding 3) over lines whose cells are separated by tabs.
std::string align_columns(const std::vector<std::string>& lines);

}  // namespace hutch::cli
