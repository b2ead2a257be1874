#include "encode/ffmpeg_log.hpp"

#include <cstdarg>
#include <mutex>
#include <string>

extern "C" {
#include <libavutil/log.h>
}

#include "core/log.hpp"

namespace vdistream::encode {

namespace {

core::LogLevel level_of(int av_level) {
  if (av_level <= AV_LOG_ERROR) return core::LogLevel::Warn;
  // Warnings are expected noise on our settings (x264 reports every one-frame-VBV underflow);
  // x264's statistics are INFO.
  if (av_level <= AV_LOG_VERBOSE) return core::LogLevel::Debug;
  return core::LogLevel::Trace;
}

void callback(void* avcl, int av_level, const char* fmt, va_list args) {
  core::LogLevel level = level_of(av_level);
  if (av_level > av_log_get_level() && level > core::LogLevel::Debug) return;
  if (!core::log_enabled(level)) return;
  char line[1024];
  int print_prefix = 1;
  av_log_format_line2(avcl, av_level, fmt, args, line, sizeof line, &print_prefix);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (!text.empty()) core::log_write(level, "ffmpeg", text);
}

}  // namespace

void route_ffmpeg_logs() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_callback(callback); });
}

}  // namespace vdistream::encode
