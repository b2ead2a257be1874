// An in-process H.264/H.265/MJPEG decoder (libavcodec): the benchmarks' and tests' stand-in for a
// client, reading back what the encoders produced.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/frame.hpp"
#include "core/status.hpp"

struct AVCodecContext;
struct AVFrame;
struct AVPacket;

namespace vdistream::encode {

// One decoded picture, I420 (limited range as our video encoders write it; full range from MJPEG).
struct DecodedPicture {
  int32_t width = 0, height = 0;
  std::vector<uint8_t> y, u, v;  // tightly packed: strides width, (width+1)/2
  bool keyframe = false;
  int64_t pts = 0;  // as given to decode()
};

class Decoder {
 public:
  static core::Result<std::unique_ptr<Decoder>> create(core::Codec codec);
  ~Decoder();

  // Feeds one access unit; returns the pictures that came out (0 or 1 with low-delay streams).
  core::Result<std::vector<DecodedPicture>> decode(std::span<const uint8_t> access_unit, int64_t pts = 0);
  core::Result<std::vector<DecodedPicture>> flush();
  uint64_t errors() const { return errors_; }

 private:
  Decoder() = default;
  core::Result<std::vector<DecodedPicture>> drain();

  AVCodecContext* ctx_ = nullptr;
  AVFrame* frame_ = nullptr;
  AVPacket* packet_ = nullptr;
  uint64_t errors_ = 0;
};

// Peak signal-to-noise ratio of two 8-bit planes, in dB (99 when identical).
double psnr(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace vdistream::encode
