// The parsed form of a Go text/template, the subset hutch runs: text, actions, pipelines, if / else
// if / else, range (with break and continue), with / else with, variables, and comments. Named
// templates (define, template, block) are not part of it.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hutch::cli::gotmpl {

struct Pipeline;

// One operand of a command: .A.B, $x.A, (pipeline).A, "s", 1, 1.5, true, nil, ., or a function.
struct Operand {
  enum Kind { kField, kVariable, kDot, kNil, kConstant, kFunction, kPipeline };
  Kind kind = kDot;
  std::string name;                     // kVariable: "$x" or "$"; kFunction: its name
  std::vector<std::string> fields;      // the fields after it: .A.B is {"A", "B"}
  nlohmann::ordered_json constant;      // kConstant: a string, a bool, an int or a float
  std::shared_ptr<Pipeline> pipeline;   // kPipeline: what the parentheses hold
  size_t pos = 0, end = 0;              // its text in the template
};

// A function, a field or a value, and its arguments: printf "%s" .Name
struct Command {
  std::vector<Operand> operands;
  size_t pos = 0, end = 0;
};

// [$x :=] command | command ...
struct Pipeline {
  std::vector<std::string> declarations;  // "$x"; a range's "$i", "$e"
  bool assigns = false;                   // $x = ..., not $x := ...
  std::vector<Command> commands;
  size_t pos = 0, end = 0;
};

struct Node;
using NodeList = std::vector<Node>;

struct Node {
  enum Kind { kText, kAction, kIf, kRange, kWith, kBreak, kContinue };
  Kind kind = kText;
  std::string text;                // kText
  Pipeline pipeline;               // kAction, kIf, kRange, kWith
  NodeList list, else_list;        // kIf, kRange, kWith; an else if is an else_list of one kIf
  size_t pos = 0;
};

// Parses `source`; an identifier that is not one of `functions` is an error, as in Go. Throws
// Error(Errc::kUsage, "template: :LINE:COLUMN: what is wrong").
NodeList parse(const std::string& source, const std::set<std::string>& functions);

// Go's position of a byte offset: "LINE:COLUMN", the column counted from 0 as Go does.
std::string position_of(const std::string& source, size_t pos);

}  // namespace hutch::cli::gotmpl
