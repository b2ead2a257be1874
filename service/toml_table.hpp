// Reading one TOML table of vdistreamd's configuration: typed reads with ranges, and every key
// the caller did not ask for refused; each error names its line. The machinery only: which keys
// there are is config.cpp's, what must hold between them config_checks.cpp's.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "service/config.hpp"

namespace vdistream::service {

class TableReader {
 public:
  // `where` starts every message ("[http] ", "desktop 'win10': ").
  TableReader(const toml::table& table, std::string where, std::vector<ConfigError>& errors)
      : table_(table), where_(std::move(where)), errors_(errors) {}

  void error_at(const toml::source_region& at, std::string message);
  // The key's node (nullptr when absent); the key counts as known from now on.
  const toml::node* get(const std::string& key);

  // Each reads `key` into `out` when present and of the right type (and range); false when it is
  // absent or wrong (then an error names it).
  bool read(const std::string& key, std::string& out);
  bool read(const std::string& key, bool& out);
  bool read(const std::string& key, uint32_t& out, int64_t min, int64_t max, const char* unit);
  bool read(const std::string& key, double& out, double min, double max, const char* unit);
  bool read(const std::string& key, std::vector<std::string>& out);

  // After reading: every key the caller did not ask for is an error.
  void refuse_unknown_keys();
  void wrong_type(const std::string& key, const toml::node& n, const std::string& expected);

 private:
  const toml::table& table_;
  std::string where_;
  std::vector<ConfigError>& errors_;
  std::set<std::string> known_;
};

}  // namespace vdistream::service
