#include "service/stats_report.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace vdistream::service {

namespace {

std::string stage(const char* name, const core::LatencyHistogram& h) {
  return fmt::format("  {:<22} p50 {:6.2f} ms  p95 {:6.2f} ms  p99 {:6.2f} ms  max {:6.2f} ms\n", name,
                     h.percentile_ms(50), h.percentile_ms(95), h.percentile_ms(99), double(h.max_ns()) / 1e6);
}

}  // namespace

std::string format_stats(const encode::PipelineStats& s, double seconds, double cpu_seconds) {
  double secs = seconds > 0 ? seconds : 1;
  std::string out = fmt::format(
      "  frames: {} captured, {} encoded ({} keyframes, {} keep-alives, {} trailing repeats), {} unchanged (skipped), "
      "{} replaced by newer ones, {} errors\n"
      "  output: {:.1f} fps, {:.2f} Mbit/s, {} bytes; full-frame copies: {}\n",
      s.frames_captured, s.frames_encoded, s.keyframes, s.keepalives, s.trailing_frames, s.frames_skipped, s.frames_replaced,
      s.encode_errors, double(s.frames_encoded) / secs, double(s.bytes_out) * 8 / secs / 1e6, s.bytes_out,
      s.full_frame_copies);
  if (cpu_seconds >= 0) out += fmt::format("  process CPU: {:.1f} % of one core\n", cpu_seconds / secs * 100);
  out += stage("captured → dequeued", s.wait);
  out += stage("dequeued → converted", s.convert);
  out += stage("converted → encoded", s.encode);
  out += stage("captured → encoded", s.total);
  return out;
}

std::string format_capture(const capture::CaptureStats& c, double seconds) {
  const double frames = double(std::max<uint64_t>(1, c.frames));
  return fmt::format(
      "  capture: {}, {} frames from {} display messages ({:.2f} per frame, {} unchanged), {:.1f} MB/s of pixels "
      "on the socket, {:.2f} ms CPU per frame, {} refused\n",
      c.path.empty() ? "no scanout" : c.path, c.frames, c.display_messages, double(c.display_messages) / frames,
      c.unchanged_refreshes, double(c.pixel_bytes_received) / 1e6 / (seconds > 0 ? seconds : 1),
      double(c.cpu_ns) / 1e6 / frames, c.refused);
}

}  // namespace vdistream::service
