// One logging facade: levels, and the desktop's name in every line. No printf elsewhere.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <mutex>
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

// For a line that a peer can repeat at its own pace (a refused D-Bus call, a refused signalling
// message): at most `burst` of them per `period_s` seconds reach the log; the rest are counted,
// and the next line let through says how many were held back (Logger::warn_limited). The
// refusals themselves are still counted in the stats and /metrics.
class LogLimiter {
 public:
  explicit LogLimiter(uint32_t burst = 10, int64_t period_s = 60) : burst_(burst), period_ns_(period_s * 1'000'000'000) {}
  // Whether this line may be logged; `held` is set to the lines held back since the last one let
  // through (0 when none). From any thread.
  bool allow(uint64_t& held);
  bool allow(int64_t now_ns, uint64_t& held);  // tests: with the monotonic time given

 private:
  const uint32_t burst_;
  const int64_t period_ns_;
  std::mutex mutex_;
  int64_t window_start_ns_ = INT64_MIN;
  uint32_t in_window_ = 0;
  uint64_t held_ = 0;
};

// "" or " (N more like it not logged)", to end a line that LogLimiter let through.
std::string held_back(uint64_t held);

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
  // A warning a peer can repeat at its own pace, through `limit` (see LogLimiter).
  template <typename... A>
  void warn_limited(LogLimiter& limit, fmt::format_string<A...> f, A&&... a) const {
    uint64_t held = 0;
    if (log_enabled(LogLevel::Warn) && limit.allow(held))
      log_write(LogLevel::Warn, scope_, fmt::format(f, std::forward<A>(a)...) + held_back(held));
  }

 private:
  std::string scope_;
};

}  // namespace vdistream::core
