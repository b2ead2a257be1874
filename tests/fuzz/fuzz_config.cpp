// The operator's configuration file (TOML, service/config): any text must give a configuration or
// errors with their places, never a crash; a configuration it accepts must be one the service can
// take (every desktop named, names unique).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "core/log.hpp"
#include "service/config.hpp"

using namespace vdistream;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  core::set_log_level(core::LogLevel::Off);  // warnings about odd values are not findings
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A directory that does not exist: relative file names (tickets, tokens) resolve into it.
  const service::ConfigParse parsed = service::parse_config(text, "/nonexistent/vdistream-fuzz/vdistreamd.toml");
  if (!parsed.ok()) {
    for (const service::ConfigError& e : parsed.errors) require(!e.message.empty() && e.line >= 0);
    (void)parsed.error_text();
    return 0;
  }
  std::set<std::string> names;
  for (const service::DesktopConfig& d : parsed.config.desktops) {
    require(!d.name.empty());
    require(names.insert(d.name).second);
  }
  return 0;
}
