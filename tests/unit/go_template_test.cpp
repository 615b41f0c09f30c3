// docker's --format: Go's text/template over JSON, Go's printing and JSON, listing rows and tables.
// The expected texts are what Go's text/template (with docker's functions) prints for the same
// template and data, except where go_template.hpp says hutch chooses otherwise.
#include "go_template.hpp"

#include <gtest/gtest.h>

#include "hutch/error.hpp"

namespace hutch::cli {
namespace {

using Json = nlohmann::ordered_json;

const Json kContainer = Json::parse(R"({
  "Id": "abc123",
  "Name": "c1",
  "Args": ["-c", "echo hi"],
  "State": {"Status": "running", "Running": true, "Pid": 42, "ExitCode": 0, "Health": {"Status": "healthy"},
            "Error": null, "Ratio": 1.5, "Big": 1000000.0, "Small": 0.00001},
  "Config": {"Labels": {"com.example.k": "v", "a": "1"}, "Env": ["A=1", "B=2"], "Empty": {}, "None": []},
  "Mounts": [{"Source": "/a", "Destination": "/b"}, {"Source": "/c", "Destination": "/d"}]
})");

std::string run(const std::string& format, const Json& data = kContainer) { return GoTemplate(format).render_one(data); }

// The message of the usage error that parsing or running `format` throws ("" when none is thrown).
std::string error_of(const std::string& format, const Json& data = kContainer) {
  try {
    GoTemplate(format).render_one(data);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kUsage) << e.what();
    return e.what();
  }
  ADD_FAILURE() << format << " threw nothing";
  return "";
}

TEST(GoTemplate, FieldsOfTheDotAndOfNestedObjects) {
  EXPECT_EQ(run("{{.Id}}"), "abc123");
  EXPECT_EQ(run("{{.State.Status}} {{.State.Health.Status}}"), "running healthy");
  EXPECT_EQ(run("id={{.Id}} name={{.Name}}"), "id=abc123 name=c1");
  EXPECT_EQ(run("{{.}}", Json("text")), "text");
  EXPECT_EQ(run("no actions"), "no actions");
  EXPECT_EQ(run(""), "");
}

TEST(GoTemplate, ValuesPrintAsGoPrintsThem) {
  EXPECT_EQ(run("{{.State.ExitCode}} {{.State.Pid}} {{.State.Running}}"), "0 42 true");
  EXPECT_EQ(run("{{.State.Ratio}} {{.State.Big}} {{.State.Small}}"), "1.5 1e+06 1e-05");
  EXPECT_EQ(run("{{.Args}}"), "[-c echo hi]");
  EXPECT_EQ(run("{{.Config.Labels}}"), "map[a:1 com.example.k:v]") << "a map's keys sorted, as fmt prints them";
  EXPECT_EQ(run("{{.Mounts}}"), "[map[Destination:/b Source:/a] map[Destination:/d Source:/c]]");
  EXPECT_EQ(run("{{.x}}", Json::parse(R"({"x": [1, null, 2.5, "s", false]})")), "[1 <nil> 2.5 s false]");
  EXPECT_EQ(run("{{1.0}} {{1e3}} {{-7}} {{0x1F}} {{0755}} {{1_000}} {{'a'}}"), "1 1000 -7 31 493 1000 97");
  EXPECT_EQ(run("{{\"\\u00e9\\x41\\101\\t|\"}} {{`raw`}} {{true}}"), "éAA\t| raw true");
}

TEST(GoTemplate, MissingKeysAndNullPrintNoValue) {
  EXPECT_EQ(run("{{.Nope}}"), "<no value>");
  EXPECT_EQ(run("{{.Nope.Deeper}}"), "<no value>") << "a field of no value is no value";
  EXPECT_EQ(run("{{.State.Error}}"), "<no value>") << "null, as Go's nil interface";
  EXPECT_EQ(run("{{index .Config.Labels \"zz\"}}"), "<no value>");
  EXPECT_EQ(run("{{printf \"%v|%s\" .Nope .Nope}}"), "<nil>|%!s(<nil>)") << "passed to a function, it is nil";
  EXPECT_EQ(run("{{print .Nope}} {{json .Nope}} {{json .State.Error}}"), "<nil> null null");
  EXPECT_EQ(run("{{if .Nope}}y{{else}}n{{end}}"), "n");
}

TEST(GoTemplate, JsonIsDockersEncodingByteForByte) {
  EXPECT_EQ(run("{{json .Config}}"),
            R"({"Labels":{"com.example.k":"v","a":"1"},"Env":["A=1","B=2"],"Empty":{},"None":[]})")
      << "compact, keys in the object's order";
  EXPECT_EQ(run("{{json .}}", Json::parse(R"({"b":1,"a":[true,false,null],"c":"x"})")), R"({"b":1,"a":[true,false,null],"c":"x"})");
  EXPECT_EQ(run("{{json .Mounts}}"), R"([{"Source":"/a","Destination":"/b"},{"Source":"/c","Destination":"/d"}])");
  EXPECT_EQ(run("{{json .Id}} {{json .State.Pid}} {{json .State.Running}}"), R"("abc123" 42 true)");
  // docker's json function turns Go's HTML escaping off; Go still escapes U+2028, U+2029, controls.
  Json s = std::string("<a&b> \"q\" back\\slash \n\t\r\b\f \x01 \x7f \xe2\x80\xa8 \xe2\x80\xa9 é \xff end");
  EXPECT_EQ(run("{{json .}}", s),
            "\"<a&b> \\\"q\\\" back\\\\slash \\n\\t\\r\\b\\f \\u0001 \x7f \\u2028 \\u2029 é \\ufffd end\"");
  Json numbers = Json::parse(R"([1e21, 1e20, 1e-7, 0.000001, 123.456, 0.5, -0.0, 1.0, -3, 18446744073709551615])");
  EXPECT_EQ(run("{{json .}}", numbers),
            "[1e+21,100000000000000000000,1e-7,0.000001,123.456,0.5,-0,1,-3,18446744073709551615]");
}

TEST(GoTemplate, RangeOverArraysAndObjects) {
  EXPECT_EQ(run("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}"), "/a:/b /c:/d ");
  EXPECT_EQ(run("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"), "a=1;com.example.k=v;")
      << "an object's keys sorted, as Go ranges over a map";
  EXPECT_EQ(run("{{range $i, $m := .Mounts}}{{$i}}{{$m.Source}}{{end}}"), "0/a1/c");
  EXPECT_EQ(run("{{range $e := .Args}}[{{$e}}]{{end}}"), "[-c][echo hi]") << "one variable: the element";
  EXPECT_EQ(run("{{range .Config.None}}x{{else}}empty{{end}} {{range .Nope}}x{{else}}none{{end}}"), "empty none");
  EXPECT_EQ(run("{{range $i, $e := .}}{{if eq $i 1}}{{continue}}{{end}}{{if eq $i 3}}{{break}}{{end}}{{$e}},{{end}}",
                Json::parse("[0, 1, 2, 3, 4]")),
            "0,2,");
  EXPECT_EQ(run("{{range 3}}{{.}}{{end}}"), "012") << "Go 1.22: range over an int";
  EXPECT_EQ(run("{{range .Mounts}}{{$.Name}}{{end}}"), "c1c1") << "$ is the data, inside range too";
  EXPECT_EQ(run("{{$e := 5}}{{range $i, $e := .Args}}{{end}}{{$e}}"), "5") << "range's variables are its own";
}

TEST(GoTemplate, IndexAndSlice) {
  EXPECT_EQ(run("{{index .Config.Labels \"com.example.k\"}}"), "v");
  EXPECT_EQ(run("{{index .Mounts 1 \"Source\"}} {{index .Args 0}} {{index .Args}}"), "/c -c [-c echo hi]");
  EXPECT_EQ(run("{{(index .Mounts 0).Source}}"), "/a");
  EXPECT_EQ(run("{{index .Name 0}}"), "99") << "a string's byte";
  EXPECT_EQ(run("{{slice .Name 1}} {{slice .Args 1 2}} {{slice .Id 0 3}}"), "1 [echo hi] abc");
}

TEST(GoTemplate, ConditionalsAndWith) {
  EXPECT_EQ(run("{{if .State.Running}}up{{else}}down{{end}}"), "up");
  EXPECT_EQ(run("{{if not .State.Running}}up{{else}}down{{end}}"), "down");
  EXPECT_EQ(run("{{if .State.ExitCode}}a{{else if eq .State.Pid 42}}b{{else}}c{{end}}"), "b");
  EXPECT_EQ(run("{{if false}}a{{else if false}}b{{else}}c{{end}}"), "c");
  EXPECT_EQ(run("{{if .Config.Empty}}y{{else}}n{{end}}{{if .Config.None}}y{{else}}n{{end}}{{if .Name}}y{{end}}"), "nny");
  EXPECT_EQ(run("{{with .State.Health}}{{.Status}}{{end}}"), "healthy");
  EXPECT_EQ(run("{{with .Nope}}x{{else}}w{{end}}"), "w");
  EXPECT_EQ(run("{{with .Nope}}a{{else with .State}}{{.Pid}}{{end}}"), "42") << "Go 1.23's else with";
  EXPECT_EQ(run("{{with $h := .State.Health}}{{$h.Status}}{{end}}"), "healthy");
  EXPECT_EQ(run("{{range .Mounts}}{{if eq .Source \"/c\"}}{{with .Destination}}[{{.}}]{{end}}{{end}}{{end}}"), "[/d]")
      << "nested";
}

TEST(GoTemplate, ComparisonsAndLogic) {
  EXPECT_EQ(run("{{eq .State.Status \"running\"}} {{eq .State.Pid 1 2 42}} {{ne 1 2}} {{eq .Nope .Nope2}}"),
            "true true true true");
  EXPECT_EQ(run("{{lt 1 2}} {{le 2 2}} {{gt 2.5 1.5}} {{ge 1 2}} {{lt \"a\" \"b\"}}"), "true true true false true");
  EXPECT_EQ(run("{{eq .State.ExitCode 0.0}} {{lt .State.Ratio 2}}"), "true true") << "an int and a float by value";
  EXPECT_EQ(run("{{eq .Nope \"x\"}}"), "false");
  EXPECT_EQ(run("{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" \"x\"}} {{or 0 \"\"}} {{not 0}}"), "0 2 x  true");
  EXPECT_EQ(run("{{and .Nope (index .Nope 1)}}|{{or .Name (index .Nope 1)}}"), "<no value>|c1")
      << "and, or stop at the first value that decides";
}

TEST(GoTemplate, Functions) {
  EXPECT_EQ(run("{{len .Mounts}} {{len .Name}} {{len .Config.Labels}}"), "2 2 2");
  EXPECT_EQ(run("{{lower \"AbC\"}} {{upper .Name}} {{title \"hello world-x_y\"}}"), "abc C1 Hello World-X_y");
  EXPECT_EQ(run("{{join .Args \",\"}} {{join (split \"a:b:c\" \":\") \"-\"}} {{split \"a,b\" \",\"}}"), "-c,echo hi a-b-c [a b]");
  EXPECT_EQ(run("[{{pad .Name 2 1}}] [{{pad \"\" 2 1}}] {{truncate .Id 3}} {{truncate .Id 30}}"), "[  c1 ] [] abc abc123");
  EXPECT_EQ(run("{{printf \"%s-%d\" .Name .State.Pid}}"), "c1-42");
  EXPECT_EQ(run("{{print \"a\" 1 2 \"b\"}}|{{println 1 \"a\"}}|{{println}}|"), "a1 2b|1 a\n|\n|");
}

TEST(GoTemplate, PrintfVerbsAsGo) {
  EXPECT_EQ(run("{{printf \"%s %d %v %q\" \"a\" 5 .Args \"x\\\"y\"}}"), "a 5 [-c echo hi] \"x\\\"y\"");
  EXPECT_EQ(run("{{printf \"%5s|%-5s|%05d|%+d|%x|%X|%o|%c|%q|%t\" \"ab\" \"ab\" -3 3 255 255 8 65 66 true}}"),
            "   ab|ab   |-0003|+3|ff|FF|10|A|'B'|true");
  EXPECT_EQ(run("{{printf \"%.2f|%e|%g|%8.3f|%v|%.3g|%T\" -2.5 -2.5 -2.5 -2.5 1234567.0 1234567.0 1.5}}"),
            "-2.50|-2.500000e+00|-2.5|  -2.500|1.234567e+06|1.23e+06|float64");
  EXPECT_EQ(run("{{printf \"%q|%.2s|%5s|%x\" \"héllo\" \"héllo\" \"é\" \"hi\"}}"), "\"héllo\"|hé|    é|6869");
  EXPECT_EQ(run("{{printf \"%q\" \"tab\\there\\x00\"}}"), "\"tab\\there\\x00\"");
  EXPECT_EQ(run("{{printf \"%d|%s\" \"x\" 1}}"), "%!d(string=x)|%!s(int=1)") << "a wrong verb";
  EXPECT_EQ(run("{{printf \"%d %s\" 1}}"), "1 %!s(MISSING)");
  EXPECT_EQ(run("{{printf \"%s\" \"a\" 2 \"b\"}}"), "a%!(EXTRA int=2, string=b)");
  EXPECT_EQ(run("{{printf \"%s|%d\" .x .x}}", Json::parse(R"({"x": [1, "y", null]})")), "[%!s(int=1) y <nil>]|[1 %!d(string=y) <nil>]");
  EXPECT_EQ(run("{{printf \"%*d|%.*f|100%%\" 4 7 1 2.25}}"), "   7|2.2|100%");
}

TEST(GoTemplate, PipelinesAndParentheses) {
  EXPECT_EQ(run("{{.Name | upper}}"), "C1");
  EXPECT_EQ(run("{{.Name | upper | printf \"<%s>\"}}"), "<C1>");
  EXPECT_EQ(run("{{\"a\" | printf \"%s-%s\" \"b\"}}"), "b-a") << "the value goes last";
  EXPECT_EQ(run("{{len .Mounts | printf \"%d mounts\"}}"), "2 mounts");
  EXPECT_EQ(run("{{(len .Mounts)}} {{printf \"%d\" (len .Args)}} {{eq (len .Mounts) 2}}"), "2 2 true");
}

TEST(GoTemplate, Variables) {
  EXPECT_EQ(run("{{$x := .Name}}{{$x}}"), "c1");
  EXPECT_EQ(run("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}"), "2") << "= assigns the outer variable";
  EXPECT_EQ(run("{{$x := 1}}{{if true}}{{$x := 2}}{{end}}{{$x}}"), "1") << ":= declares one in the if";
  EXPECT_EQ(run("{{$.Name}} {{$.State.Pid}}"), "c1 42");
  EXPECT_EQ(run("{{$m := index .Mounts 1}}{{$m.Destination}}"), "/d");
  EXPECT_EQ(run("{{$x := .Name | upper}}[{{$x}}]"), "[C1]") << "a declaration prints nothing";
}

TEST(GoTemplate, TrimMarkersAndComments) {
  EXPECT_EQ(run("a  {{- .Name -}}  b"), "ac1b");
  EXPECT_EQ(run("a {{- /* a comment */ -}} b"), "ab");
  EXPECT_EQ(run("a {{/* a comment */}} b"), "a  b");
  EXPECT_EQ(run("{{- /* two\nlines */ -}}x"), "x");
  EXPECT_EQ(run("{{range .Args -}}\n  [{{.}}]\n{{- end}}"), "[-c][echo hi]");
  EXPECT_EQ(run("{{-3}}"), "-3") << "{{- needs a space to be a trim marker";
}

TEST(GoTemplate, LabelIsDockersMethodOnObjectsWithLabels) {
  Json row = Json::parse(R"({"Name": "v", "Labels": {"app": "web"}})");
  EXPECT_EQ(run("{{.Label \"app\"}}|{{.Label \"nope\"}}", row), "web|");
  EXPECT_EQ(run("{{\"app\" | .Label}}", row), "web");
  EXPECT_EQ(run("{{.Label \"x\"}}", Json::parse(R"({"Labels": null})")), "");
  EXPECT_NE(error_of("{{.Label}}", row).find("wrong number of args for Label: want 1 got 0"), std::string::npos);
}

TEST(GoTemplate, ParseErrorsNameThePositionAndWhatIsWrong) {
  EXPECT_EQ(error_of("{{foo}}"), "template: :1:2: function \"foo\" not defined");
  EXPECT_EQ(error_of("x {{.Name"), "template: :1:9: unclosed action");
  EXPECT_EQ(error_of("{{end}}"), "template: :1:2: unexpected {{end}}");
  EXPECT_EQ(error_of("{{else}}"), "template: :1:2: unexpected {{else}}");
  EXPECT_EQ(error_of("{{range .Mounts}}"), "template: :1:17: unexpected EOF");
  EXPECT_EQ(error_of("{{if}}x{{end}}"), "template: :1:4: missing value for if");
  EXPECT_EQ(error_of("{{$y}}"), "template: :1:2: undefined variable \"$y\"");
  EXPECT_EQ(error_of("{{if 1}}{{$x := 1}}{{end}}{{$x}}"), "template: :1:28: undefined variable \"$x\"");
  EXPECT_EQ(error_of("{{12abc}}"), "template: :1:2: bad number syntax: \"12a\"");
  EXPECT_EQ(error_of("{{/* c */ }}"), "template: :1:0: comment ends before closing delimiter");
  EXPECT_EQ(error_of("{{/* c"), "template: :1:0: unclosed comment");
  EXPECT_EQ(error_of("{{\"abc}}"), "template: :1:2: unterminated quoted string");
  EXPECT_EQ(error_of("{{.Name | \"a\"}}"), "template: :1:10: non executable command in pipeline stage 2");
  EXPECT_EQ(error_of("{{break}}"), "template: :1:2: {{break}} outside {{range}}");
  EXPECT_EQ(error_of("{{if 1}}a{{else}}b{{else}}c{{end}}"), "template: :1:20: expected end; found {{else}}");
  EXPECT_EQ(error_of("{{range $a, $b, $c := .}}{{end}}"), "template: :1:14: too many declarations in range");
  EXPECT_EQ(error_of("line one\n{{.A}} {{nope .B}}"), "template: :2:9: function \"nope\" not defined");
  EXPECT_NE(error_of("{{define \"x\"}}{{end}}").find("{{define}} is not supported"), std::string::npos);
  EXPECT_NE(error_of("{{template \"x\"}}").find("{{template}} is not supported"), std::string::npos);
}

TEST(GoTemplate, RuntimeErrorsNameTheActionAndWhatIsWrong) {
  EXPECT_EQ(error_of("{{index .Mounts 3}}"),
            "template: :1:2: executing \"\" at <index .Mounts 3>: error calling index: index out of range: 3");
  EXPECT_EQ(error_of("{{index .Name \"k\"}}"),
            "template: :1:2: executing \"\" at <index .Name \"k\">: error calling index: cannot index string with type string");
  EXPECT_EQ(error_of("{{index .State.Pid 1}}"),
            "template: :1:2: executing \"\" at <index .State.Pid 1>: error calling index: can't index item of type int");
  EXPECT_EQ(error_of("{{index .Nope 1}}"),
            "template: :1:2: executing \"\" at <index .Nope 1>: error calling index: index of untyped nil");
  EXPECT_EQ(error_of("{{.Name.Foo}}"), "template: :1:2: executing \"\" at <.Name.Foo>: can't evaluate field Foo in type string");
  EXPECT_EQ(error_of("{{.State.Error.Message}}"),
            "template: :1:2: executing \"\" at <.State.Error.Message>: nil pointer evaluating null.Message");
  EXPECT_EQ(error_of("{{range .Name}}x{{end}}"), "template: :1:8: executing \"\" at <.Name>: range can't iterate over c1");
  EXPECT_EQ(error_of("{{\"x\" | .Name}}"), "template: :1:8: executing \"\" at <.Name>: Name is not a method but has arguments");
  EXPECT_EQ(error_of("{{len 3}}"), "template: :1:2: executing \"\" at <len 3>: error calling len: len of type int");
  EXPECT_EQ(error_of("{{and}}"), "template: :1:2: executing \"\" at <and>: wrong number of args for and: want at least 1 got 0");
  EXPECT_EQ(error_of("{{upper 5}}"), "template: :1:2: executing \"\" at <upper 5>: wrong type for value; expected string; got int");
  EXPECT_EQ(error_of("{{lt true false}}"), "template: :1:2: executing \"\" at <lt true false>: error calling lt: invalid type for comparison");
  EXPECT_EQ(error_of("{{eq \"a\" 1}}"), "template: :1:2: executing \"\" at <eq \"a\" 1>: error calling eq: incompatible types for comparison");
  EXPECT_EQ(error_of("{{nil}}"), "template: :1:2: executing \"\" at <nil>: nil is not a command");
  EXPECT_EQ(error_of("{{\"a\" \"b\"}}"), "template: :1:2: executing \"\" at <\"a\">: can't give argument to non-function \"a\"");
  EXPECT_EQ(error_of("{{join .Mounts \",\"}}"),
            "template: :1:2: executing \"\" at <join .Mounts \",\">: wrong type for value; expected []string; got []interface {}");
}

// A listing: volume ls's rows, as volume_commands.cpp makes them.
const std::map<std::string, std::string> kHeaders = {
    {"Name", "VOLUME NAME"}, {"Driver", "DRIVER"}, {"Labels", "LABELS"}, {"Mountpoint", "MOUNTPOINT"},
    {"Options", "OPTIONS"}};
const std::map<std::string, GoTemplate::RowMethod> kMethods = {{"Labels", [](const Json& row) {
  std::string out;
  for (const auto& [k, v] : row.at("Labels").items()) out += (out.empty() ? "" : ",") + k + "=" + v.get<std::string>();
  return Json(out);
}}};
const std::vector<Json> kRows = {
    Json::parse(R"({"Name": "data", "Driver": "local", "Mountpoint": "/v/data", "Labels": {"env": "prod", "tier": "db"}, "Options": {}})"),
    Json::parse(R"({"Name": "a-much-longer-name", "Driver": "local", "Mountpoint": "/v/a", "Labels": {}, "Options": {"o": "1"}})")};

std::string listing(const std::string& format, const std::vector<Json>& rows = kRows) {
  return GoTemplate(format, kHeaders, kMethods).render(rows);
}

TEST(GoTemplateListing, OneLinePerRow) {
  EXPECT_EQ(listing("{{.Name}} {{.Driver}}"), "data local\na-much-longer-name local\n");
  EXPECT_EQ(listing("{{.Name}}\\t{{.Driver}}"), "data\tlocal\na-much-longer-name\tlocal\n") << "\\t is a tab, as docker's";
  EXPECT_EQ(listing("{{.Name}}\\n"), "data\na-much-longer-name\n") << "no second newline";
  EXPECT_EQ(listing("{{if eq .Name \"data\"}}{{.Name}}{{end}}"), "data\n\n") << "an empty text still has its line";
  EXPECT_EQ(listing("  {{.Name}}  ", {kRows[0]}), "data\n") << "surrounding spaces go, as in docker";
  EXPECT_EQ(listing("{{.Name}}", {}), "");
}

TEST(GoTemplateListing, RowMethodsAndLabel) {
  EXPECT_EQ(listing("{{.Labels}}|{{.Label \"env\"}}|{{.Label \"nope\"}}"), "env=prod,tier=db|prod|\n||\n");
  EXPECT_EQ(listing("{{json .Labels}}", {kRows[0]}), "\"env=prod,tier=db\"\n") << "the method's value, as docker's";
  EXPECT_EQ(listing("json", {kRows[0]}), R"({"Name":"data","Driver":"local","Mountpoint":"/v/data","Labels":{"env":"prod","tier":"db"},"Options":{}})" "\n")
      << "json is {{json .}}: the row's own JSON";
  EXPECT_EQ(listing("{{json .}}"), listing("json"));
}

TEST(GoTemplateListing, TableHasAHeaderAndAlignedColumns) {
  EXPECT_EQ(listing("table {{.Name}}\\t{{.Driver}}\\t{{.Mountpoint}}"),
            "VOLUME NAME          DRIVER    MOUNTPOINT\n"
            "data                 local     /v/data\n"
            "a-much-longer-name   local     /v/a\n");
  EXPECT_EQ(listing("table {{.Driver}}\\t{{.Name}}", {}), "DRIVER    VOLUME NAME\n") << "no rows: the header";
  EXPECT_EQ(listing("table {{upper .Name}}\\t{{json .Labels}}\\t{{.Label \"env\"}}", {kRows[0]}),
            "VOLUME NAME   LABELS               LABEL env\n"
            "DATA          \"env=prod,tier=db\"   prod\n")
      << "the header keeps each column's name, as docker's header functions";
  EXPECT_EQ(listing("table {{json .}}", {}), "JSON\n");
  EXPECT_TRUE(GoTemplate("table {{.Name}}", kHeaders).is_table());
  EXPECT_FALSE(GoTemplate("{{.Name}}", kHeaders).is_table());
  EXPECT_FALSE(GoTemplate("tablet", kHeaders).is_table());
}

TEST(GoTemplateListing, RowsAreStrictAsDockersStructs) {
  try {
    listing("{{.Nope}}");
    FAIL() << "a field the rows do not have";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kUsage);
    EXPECT_EQ(std::string(e.what()),
              "template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope; the fields are Name, Driver, "
              "Mountpoint, Labels, Options");
  }
  EXPECT_THROW(listing("table {{.Nope}}", {}), Error) << "the header finds it too";
  try {
    listing("{{range .}}x{{end}}");
    FAIL() << "range over a row";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not supported"), std::string::npos) << e.what();
  }
  EXPECT_EQ(listing("{{.Options.nope}}|{{.Options.o}}|{{index .Mountpoint 0}}", {kRows[1]}), "<no value>|1|47\n")
      << "inside a row, objects are maps again";
}

TEST(AlignColumns, DockersTabwriterMinWidthTenPaddingThree) {
  EXPECT_EQ(align_columns({"CONTAINER ID\tIMAGE\tSTATUS", "abc\tbusybox\tUp 2 seconds"}),
            "CONTAINER ID   IMAGE     STATUS\n"
            "abc            busybox   Up 2 seconds\n");
  EXPECT_EQ(align_columns({"a\tb", "only"}), "a         b\nonly\n") << "the last cell sets no width";
  EXPECT_EQ(align_columns({"x\t"}), "x         \n");
}

}  // namespace
}  // namespace hutch::cli
