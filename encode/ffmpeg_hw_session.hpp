// The part the FFmpeg hardware backends (VAAPI, NVENC) share: the encoder's settings as plain
// data (so tests can read them without a device), and one opened AVCodecContext that turns
// hardware frames into Annex-B access units.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/frame.hpp"
#include "core/status.hpp"
#include "encode/encoder.hpp"

struct AVBufferRef;
struct AVCodecContext;
struct AVDictionary;
struct AVFrame;
struct AVPacket;

namespace vdistream::encode {

struct FfmpegEncoderSettings {
  std::string codec;  // "h264_vaapi", "hevc_nvenc", ...
  int64_t bit_rate = 0;
  int64_t rc_max_rate = 0;
  int rc_buffer_size = 0;  // one frame: bitrate / fps
  int max_b_frames = 0;
  int gop_size = 0;        // "infinite": IDRs come on request
  int profile = 0;         // FF_PROFILE_*
  std::vector<std::pair<std::string, std::string>> options;  // private options of the codec
  const std::string* option(const std::string& key) const;
};

// Settings common to every hardware backend, from our configuration.
FfmpegEncoderSettings common_hw_settings(const EncoderConfig& config, const std::string& codec_name);

struct AVDictionaryDeleter {
  void operator()(AVDictionary* d) const;
};
using AVDictionaryPtr = std::unique_ptr<AVDictionary, AVDictionaryDeleter>;
AVDictionaryPtr options_dictionary(const FfmpegEncoderSettings& settings);

class FfmpegHwSession {
 public:
  // `hw_frames` is the frames context of the frames encode() will be given (referenced).
  static core::Result<std::unique_ptr<FfmpegHwSession>> open(const FfmpegEncoderSettings& settings, core::Codec codec,
                                                             int32_t width, int32_t height, double fps,
                                                             AVBufferRef* hw_frames, int pix_fmt);
  ~FfmpegHwSession();

  // Encodes `picture` (a frame of `hw_frames`); `source` gives sequence and timestamps.
  core::Result<std::vector<core::EncodedFrame>> encode(AVFrame* picture, bool keyframe, const core::Frame& source);
  const std::string& codec_name() const { return name_; }

 private:
  FfmpegHwSession() = default;
  AVCodecContext* ctx_ = nullptr;
  AVPacket* packet_ = nullptr;
  core::Codec codec_ = core::Codec::H264;
  std::string name_;
  int64_t next_pts_ = 0;
};

// "Invalid argument" for an AVERROR.
std::string av_error_string(int err);

}  // namespace vdistream::encode
