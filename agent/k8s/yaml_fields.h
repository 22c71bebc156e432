// Reading Kubernetes objects out of yaml-cpp nodes the way kubectl +
// the API server do: YAML scalars typed as go-yaml v2 resolves them (plain
// `1`, `1.5`, `true`, `yes`, `on` are not strings), mappings decoded
// strictly, and problems reported as a field path plus upstream's wording
// ("Invalid value", "Unsupported value", "Required value", ...). Internal to
// agent/k8s; decoders throw FieldError and manifest.cpp turns it into an
// Error at the boundary, which keeps each decoder a straight line.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "k8s/validation.h"

namespace sluice::k8s::detail {

struct FieldError {
  std::string path, msg;
};

[[noreturn]] void fail(const std::string& path, const std::string& msg);
std::string quote(const std::string& s);
// "Invalid value <v>: <problems>" when there are problems.
void check(const Problems& p, const std::string& path, const std::string& v);
void check(const Problems& p, const std::string& path, int64_t v);
[[noreturn]] void unsupported(const std::string& path, const std::string& v,
                              const std::vector<std::string>& supported);
std::string idx(const std::string& path, size_t i);  // "path[i]"

enum class Type { Null, Bool, Int, Float, String, Map, List };
Type type_of(const YAML::Node& n);
std::string describe(const YAML::Node& n);  // "number 1", "a list", ...

// JSON null leaves a Go string empty, so null reads as "".
std::string str(const YAML::Node& n, const std::string& path);
int64_t integer(const YAML::Node& n, const std::string& path);  // int32 range
bool boolean(const YAML::Node& n, const std::string& path);
std::vector<YAML::Node> list(const YAML::Node& n, const std::string& path);
std::map<std::string, std::string> string_map(const YAML::Node& n,
                                              const std::string& path);

// A mapping's fields, checked for duplicates and (when a list of known
// names is given) unknown names: a misspelt `ingres:` must not silently
// turn a policy into deny-all. Null reads as an empty mapping.
class Fields {
 public:
  Fields(const YAML::Node& n, std::string path) : path_(std::move(path)) {
    load(n, nullptr);
  }
  Fields(const YAML::Node& n, std::string path,
         const std::set<std::string>& known)
      : path_(std::move(path)) {
    load(n, &known);
  }

  YAML::Node operator[](const std::string& k) const {
    auto it = m_.find(k);
    return it == m_.end() ? YAML::Node() : it->second;
  }
  bool has(const std::string& k) const {  // present and not null
    return type_of((*this)[k]) != Type::Null;
  }
  std::string path(const std::string& k) const {
    return path_.empty() ? k : path_ + "." + k;
  }
  const std::map<std::string, YAML::Node>& all() const { return m_; }

 private:
  void load(const YAML::Node& n, const std::set<std::string>* known);

  std::string path_;
  std::map<std::string, YAML::Node> m_;
};

}  // namespace sluice::k8s::detail
