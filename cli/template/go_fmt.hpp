// Go's printing of JSON values, as a Go template prints what encoding/json decoded: fmt's %v and
// Printf verbs, strconv.Quote, and encoding/json's compact encoding (as docker's `json` function).
//
// Go names the types of decoded JSON: a JSON integer is an `int` here (docker's fields are ints),
// any other number a `float64`, an array `[]interface {}`, an object `map[string]interface {}`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hutch::cli::gotmpl {

using Json = nlohmann::ordered_json;

// Go's name of the value's type, as %T and the %!verb(type=value) of a wrong verb print it.
std::string go_type_name(const Json& v);

// fmt.Sprint of one value (%v): null is "<nil>", an array "[a b]", an object "map[k:v]" with its
// keys sorted, a float as Go's %v ("1.5", "1e+06").
std::string sprint_value(const Json& v);

// fmt.Sprint: a space between two operands when neither is a string.
std::string sprint(const std::vector<Json>& args);
// fmt.Sprintln: a space between every two operands, and a newline.
std::string sprintln(const std::vector<Json>& args);
// fmt.Sprintf: flags + - # 0 space, width, precision, the verbs v s d q t f F e E g G x X o b c T %;
// Go's %!d(string=x), %!s(MISSING) and %!(EXTRA int=1) for a wrong verb, a missing or an extra operand.
std::string sprintf(const std::string& format, const std::vector<Json>& args);

// strconv.Quote: a double-quoted Go string literal.
std::string quote(const std::string& s);

// encoding/json's Encoder as docker's `json` function sets it up: compact, keys in the object's
// order, no HTML escaping (docker calls SetEscapeHTML(false)), U+2028 and U+2029 escaped, invalid
// UTF-8 as \ufffd, floats as Go writes them (1e+21, 1e-7, 0.5). Throws std::domain_error for NaN
// and infinities, which Go refuses too.
std::string json_encode(const Json& v);

// UTF-8 as Go reads it: the rune at s[i], advancing i, or -1 for a byte that starts no valid
// sequence (one byte consumed); and a rune's bytes (U+FFFD for one that is not a rune).
int32_t decode_rune(const std::string& s, size_t& i);
std::string encode_rune(int32_t r);

}  // namespace hutch::cli::gotmpl
