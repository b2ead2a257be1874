#include "core/log.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <utility>

#include "core/clock.hpp"

namespace vdistream::core {

namespace {

std::atomic<LogLevel> g_level{LogLevel::Info};
std::atomic<bool> g_json{false};

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto lg = std::make_shared<spdlog::logger>("vdistream", sink);
    lg->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
    lg->set_level(spdlog::level::trace);  // filtering happens in log_enabled()
    return lg;
  }();
  return *l;
}

spdlog::level::level_enum to_spdlog(LogLevel l) {
  switch (l) {
    case LogLevel::Trace: return spdlog::level::trace;
    case LogLevel::Debug: return spdlog::level::debug;
    case LogLevel::Info: return spdlog::level::info;
    case LogLevel::Warn: return spdlog::level::warn;
    case LogLevel::Error: return spdlog::level::err;
    case LogLevel::Off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

void set_log_level(LogLevel level) { g_level = level; }

bool parse_log_level(std::string_view name, LogLevel& out) {
  static constexpr std::pair<std::string_view, LogLevel> kNames[] = {
      {"trace", LogLevel::Trace}, {"debug", LogLevel::Debug}, {"info", LogLevel::Info},
      {"warn", LogLevel::Warn},   {"error", LogLevel::Error}, {"off", LogLevel::Off}};
  for (auto [n, l] : kNames)
    if (n == name) {
      out = l;
      return true;
    }
  return false;
}

void set_log_json(bool json) {
  g_json = json;
  logger().set_pattern(json ? "%v" : "%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
}

bool log_enabled(LogLevel level) { return level != LogLevel::Off && level >= g_level.load(std::memory_order_relaxed); }

void log_write(LogLevel level, std::string_view scope, std::string_view message) {
  if (g_json) {
    nlohmann::json j{{"ts_ns", std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()},
                     {"level", spdlog::level::to_string_view(to_spdlog(level)).data()},
                     {"scope", scope},
                     {"msg", message}};
    logger().log(to_spdlog(level), "{}", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    logger().log(to_spdlog(level), "[{}] {}", scope, message);
  }
}

bool LogLimiter::allow(uint64_t& held) { return allow(monotonic_now_ns(), held); }

bool LogLimiter::allow(int64_t now_ns, uint64_t& held) {
  std::lock_guard lock(mutex_);
  held = 0;
  if (window_start_ns_ == INT64_MIN || now_ns - window_start_ns_ >= period_ns_) {
    window_start_ns_ = now_ns;
    in_window_ = 0;
  }
  if (in_window_ >= burst_) {
    ++held_;
    return false;
  }
  ++in_window_;
  held = std::exchange(held_, 0);
  return true;
}

std::string held_back(uint64_t held) {
  return held ? fmt::format(" ({} more like it not logged)", held) : std::string();
}

}  // namespace vdistream::core
