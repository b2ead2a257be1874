#include "service/toml_table.hpp"

#include <fmt/format.h>

namespace vdistream::service {

namespace {

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "true/false";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

}  // namespace

void TableReader::error_at(const toml::source_region& at, std::string message) {
  errors_.push_back({int(at.begin.line), int(at.begin.column), std::move(message)});
}

const toml::node* TableReader::get(const std::string& key) {
  known_.insert(key);
  return table_.get(key);
}

bool TableReader::read(const std::string& key, std::string& out) {
  const toml::node* n = get(key);
  if (!n) return false;
  if (auto v = n->value<std::string>(); v && n->is_string()) {
    out = *v;
    return true;
  }
  wrong_type(key, *n, "a string");
  return false;
}
bool TableReader::read(const std::string& key, bool& out) {
  const toml::node* n = get(key);
  if (!n) return false;
  if (n->is_boolean()) {
    out = *n->value<bool>();
    return true;
  }
  wrong_type(key, *n, "true or false");
  return false;
}
bool TableReader::read(const std::string& key, uint32_t& out, int64_t min, int64_t max, const char* unit) {
  const toml::node* n = get(key);
  if (!n) return false;
  if (!n->is_integer()) {
    wrong_type(key, *n, fmt::format("an integer ({})", unit));
    return false;
  }
  const int64_t v = *n->value<int64_t>();
  if (v < min || v > max) {
    error_at(n->source(), fmt::format("{}{} = {} is out of range: {}..{} {}", where_, key, v, min, max, unit));
    return false;
  }
  out = uint32_t(v);
  return true;
}
bool TableReader::read(const std::string& key, double& out, double min, double max, const char* unit) {
  const toml::node* n = get(key);
  if (!n) return false;
  if (!n->is_integer() && !n->is_floating_point()) {
    wrong_type(key, *n, fmt::format("a number ({})", unit));
    return false;
  }
  const double v = *n->value<double>();
  if (!(v >= min && v <= max)) {
    error_at(n->source(), fmt::format("{}{} = {} is out of range: {}..{} {}", where_, key, v, min, max, unit));
    return false;
  }
  out = v;
  return true;
}
bool TableReader::read(const std::string& key, std::vector<std::string>& out) {
  const toml::node* n = get(key);
  if (!n) return false;
  const toml::array* a = n->as_array();
  if (!a) {
    wrong_type(key, *n, "an array of strings");
    return false;
  }
  std::vector<std::string> values;
  for (const toml::node& e : *a) {
    if (!e.is_string()) {
      error_at(e.source(), fmt::format("{}{}: every entry must be a string, not {}", where_, key, type_name(e.type())));
      return false;
    }
    values.push_back(*e.value<std::string>());
  }
  out = std::move(values);
  return true;
}

void TableReader::refuse_unknown_keys() {
  for (auto&& [key, node] : table_) {
    if (known_.count(std::string(key.str()))) continue;
    std::string list;
    for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
    error_at(key.source(), fmt::format("{}unknown key '{}' (known here: {})", where_, key.str(), list));
  }
}

void TableReader::wrong_type(const std::string& key, const toml::node& n, const std::string& expected) {
  error_at(n.source(), fmt::format("{}{} must be {}, not {}", where_, key, expected, type_name(n.type())));
}

}  // namespace vdistream::service
