// One encoder under test in `vdistream-bench encode`: vdistream's own backends and the two
// baselines (GStreamer's x264enc pipeline, FFmpeg's libswscale + libx264). Each takes the same
// frame and returns its access unit with the time spent converting and encoding it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/frame.hpp"
#include "core/status.hpp"
#include "encode/probe.hpp"

namespace vdistream::bench {

struct ContenderConfig {
  int32_t width = 0, height = 0;
  double fps = 60;
  uint32_t bitrate_kbps = 6000;
  std::string preset = "ultrafast";  // x264 preset, the same for every contender
  int threads = 2;                   // x264 threads, the same for every contender
};

struct Encoded {
  std::vector<uint8_t> data;  // one Annex-B access unit
  int64_t convert_ns = 0;     // frame given → picture in the encoder's format
  int64_t encode_ns = 0;      // → access unit out
};

class Contender {
 public:
  virtual ~Contender() = default;
  virtual std::string name() const = 0;
  virtual std::string description() const = 0;  // settings, one line for the report
  // `pixels` is the frame's mapped XRGB picture (`pitch` bytes per row), complete: the frame's
  // damage says what changed since the previous frame.
  virtual core::Result<Encoded> encode(const core::Frame& frame, const uint8_t* pixels, uint32_t pitch) = 0;
};

core::Result<std::unique_ptr<Contender>> make_vdistream_contender(const encode::Backend& backend, const ContenderConfig& config);
core::Result<std::unique_ptr<Contender>> make_gstreamer_baseline(const ContenderConfig& config);
core::Result<std::unique_ptr<Contender>> make_ffmpeg_baseline(const ContenderConfig& config);

}  // namespace vdistream::bench
