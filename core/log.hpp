// One logging facade: levels, and the desktop's name in every line. No printf elsewhere.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace vdistream::core {

enum class LogLevel { Trace, Debug, Info, Warn, Error, Off };

// Process-wide settings, called once from main().
void set_log_level(LogLevel level);
bool parse_log_level(std::string_view name, LogLevel& out);
void set_log_json(bool json);  // one JSON object per line instead of text

void log_write(LogLevel level, std::string_view scope, std::string_view message);
bool log_enabled(LogLevel level);

// A logger for one scope (a desktop's name, or a component such as "probe").
class Logger {
 public:
  explicit Logger(std::string scope) : scope_(std::move(scope)) {}
  const std::string& scope() const { return scope_; }

  template <typename... A>
  void log(LogLevel level, fmt::format_string<A...> f, A&&... args) const {
    if (log_enabled(level)) log_write(level, scope_, fmt::format(f, std::forward<A>(args)...));
  }
  template <typename... A>
  void debug(fmt::format_string<A...> f, A&&... a) const { log(LogLevel::Debug, f, std::forward<A>(a)...); }
  template <typename... A>
  void info(fmt::format_string<A...> f, A&&... a) const { log(LogLevel::Info, f, std::forward<A>(a)...); }
  template <typename... A>
  void warn(fmt::format_string<A...> f, A&&... a) const { log(LogLevel::Warn, f, std::forward<A>(a)...); }
  template <typename... A>
  void error(fmt::format_string<A...> f, A&&... a) const { log(LogLevel::Error, f, std::forward<A>(a)...); }

 private:
  std::string scope_;
};

}  // namespace vdistream::core
