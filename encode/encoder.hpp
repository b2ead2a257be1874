// The Encoder seam: a Frame in, zero or more Annex-B access units out. Keyframes and bitrate
// can be asked for at any time, from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/frame.hpp"
#include "core/status.hpp"

namespace vdistream::encode {

enum class H264Profile { ConstrainedBaseline, Main };
const char* profile_name(H264Profile p);
bool parse_profile(const std::string& name, H264Profile& out);

struct EncoderConfig {
  core::Codec codec = core::Codec::H264;
  H264Profile profile = H264Profile::ConstrainedBaseline;
  int32_t width = 0;   // taken from the first frame when 0; a frame of another size reconfigures
  int32_t height = 0;
  double fps = 30.0;   // for the one-frame VBV: buffer = bitrate / fps
  uint32_t bitrate_bps = 6'000'000;
  bool intra_refresh = false;          // periodic intra refresh instead of big IDRs
  bool access_unit_delimiters = false; // AUD NAL at the start of each access unit
  int threads = 2;                     // slice threads (software)
  std::string software_preset = "ultrafast";
};

// What the encoder did, for the pipeline's stats. Read from the encode thread.
struct EncoderCounters {
  uint64_t frames = 0;
  uint64_t keyframes = 0;
  uint64_t tiles_converted = 0;       // damaged tiles colour-converted (software)
  uint64_t full_frame_copies = 0;     // whole-picture CPU copies; 0 on the zero-copy paths
  uint64_t reconfigurations = 0;      // size changes
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual std::string name() const = 0;  // backend and settings, for status pages

  // Encodes `frame`, converting only `frame.damage` into the encoder's persistent input. A frame
  // with empty damage re-encodes the previous picture (keep-alive, or an IDR on request). Stamps
  // timestamps.converted_ns / encoded_ns on what it returns.
  virtual core::Result<std::vector<core::EncodedFrame>> encode(const core::Frame& frame) = 0;

  virtual void request_keyframe() = 0;  // the next encoded frame is an IDR
  virtual void set_bitrate(uint32_t bps) = 0;
  virtual uint32_t bitrate() const = 0;
  virtual EncoderCounters counters() const = 0;
};

}  // namespace vdistream::encode
