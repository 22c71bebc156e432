#include "k8s/yaml_fields.h"

#include <charconv>
#include <regex>

namespace sluice::k8s::detail {

[[noreturn]] void fail(const std::string& path, const std::string& msg) {
  throw FieldError{path, msg};
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

void check(const Problems& p, const std::string& path, const std::string& v) {
  if (!p.empty()) fail(path, "Invalid value " + quote(v) + ": " + join(p));
}
void check(const Problems& p, const std::string& path, int64_t v) {
  if (!p.empty())
    fail(path, "Invalid value " + std::to_string(v) + ": " + join(p));
}

[[noreturn]] void unsupported(const std::string& path, const std::string& v,
                              const std::vector<std::string>& supported) {
  std::string list;
  for (const auto& s : supported) list += (list.empty() ? "" : ", ") + quote(s);
  fail(path, "Unsupported value " + quote(v) + ": supported values: " + list);
}

std::string idx(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// --- YAML typing, as go-yaml v2 resolves plain scalars ---------------------

Type type_of(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return Type::Null;
  if (n.IsMap()) return Type::Map;
  if (n.IsSequence()) return Type::List;
  const std::string& tag = n.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return Type::String;
  static const std::set<std::string> kBools = {
      "y",     "Y",     "yes",   "Yes", "YES", "true", "True", "TRUE",
      "on",    "On",    "ON",    "n",   "N",   "no",   "No",   "NO",
      "false", "False", "FALSE", "off", "Off", "OFF"};
  static const std::regex kInt("[-+]?[0-9]+|0x[0-9a-fA-F]+");
  static const std::regex kFloat(
      "[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|"
      "[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)");
  const std::string& s = n.Scalar();
  if (kBools.count(s)) return Type::Bool;
  if (std::regex_match(s, kInt)) return Type::Int;
  if (std::regex_match(s, kFloat)) return Type::Float;
  return Type::String;
}

std::string describe(const YAML::Node& n) {
  switch (type_of(n)) {
    case Type::Null:
      return "null";
    case Type::Map:
      return "a mapping";
    case Type::List:
      return "a list";
    case Type::String:
      return "string " + quote(n.Scalar());
    case Type::Bool:
      return "boolean " + n.Scalar();
    default:
      return "number " + n.Scalar();
  }
}

std::string str(const YAML::Node& n, const std::string& path) {
  const Type t = type_of(n);
  if (t == Type::Null) return "";
  if (t == Type::String) return n.Scalar();
  if (t == Type::Map || t == Type::List)
    fail(path, "expected a string, got " + describe(n));
  fail(path, "expected a string, got " + describe(n) + " (quote it)");
}

int64_t integer(const YAML::Node& n, const std::string& path) {
  int64_t v = 0;
  const std::string s = type_of(n) == Type::Int ? n.Scalar() : "";
  const char* b = s.data() + (!s.empty() && s[0] == '+');
  auto [ptr, ec] = std::from_chars(b, s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size())
    fail(path, "expected an integer, got " + describe(n));
  if (v < INT32_MIN || v > INT32_MAX)
    fail(path, "Invalid value " + s + ": out of range for int32");
  return v;
}

bool boolean(const YAML::Node& n, const std::string& path) {
  if (type_of(n) != Type::Bool)
    fail(path, "expected a boolean, got " + describe(n));
  static const std::set<std::string> kTrue = {"y",    "Y",    "yes", "Yes",
                                              "YES",  "true", "True", "TRUE",
                                              "on",   "On",   "ON"};
  return kTrue.count(n.Scalar()) > 0;
}

void Fields::load(const YAML::Node& n, const std::set<std::string>* known) {
  const Type t = type_of(n);
  if (t == Type::Null) return;
  if (t != Type::Map) fail(path_, "expected a mapping, got " + describe(n));
  for (const auto& kv : n) {
    const std::string k = kv.first.Scalar();
    if (known && !known->count(k)) fail(path(k), "unknown field");
    if (!m_.emplace(k, kv.second).second) fail(path(k), "duplicate field");
  }
}

std::vector<YAML::Node> list(const YAML::Node& n, const std::string& path) {
  const Type t = type_of(n);
  if (t == Type::Null) return {};
  if (t != Type::List) fail(path, "expected a list, got " + describe(n));
  return {n.begin(), n.end()};
}

std::map<std::string, std::string> string_map(const YAML::Node& n,
                                              const std::string& path) {
  std::map<std::string, std::string> out;
  const Fields f(n, path);
  for (const auto& [k, v] : f.all()) out[k] = str(v, path + "[" + k + "]");
  return out;
}

}  // namespace sluice::k8s::detail
