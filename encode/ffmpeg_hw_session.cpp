#include "encode/ffmpeg_hw_session.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/hwcontext.h>
}
#include <fmt/format.h>

#include <cmath>

#include "core/clock.hpp"
#include "encode/ffmpeg_log.hpp"

namespace vdistream::encode {

const std::string* FfmpegEncoderSettings::option(const std::string& key) const {
  for (const auto& [k, v] : options)
    if (k == key) return &v;
  return nullptr;
}

FfmpegEncoderSettings common_hw_settings(const EncoderConfig& config, const std::string& codec_name) {
  FfmpegEncoderSettings s;
  s.codec = codec_name;
  s.bit_rate = config.bitrate_bps;
  s.rc_max_rate = config.bitrate_bps;
  s.rc_buffer_size = int(std::lround(double(config.bitrate_bps) / (config.fps > 0 ? config.fps : 30.0)));
  s.max_b_frames = 0;
  s.gop_size = 0x7fffffff;  // "never" in practice: keyframes come on request or with intra refresh
  if (config.codec == core::Codec::H265)
    s.profile = FF_PROFILE_HEVC_MAIN;
  else
    s.profile = config.profile == H264Profile::Main ? FF_PROFILE_H264_MAIN : FF_PROFILE_H264_CONSTRAINED_BASELINE;
  return s;
}

void AVDictionaryDeleter::operator()(AVDictionary* d) const { av_dict_free(&d); }

AVDictionaryPtr options_dictionary(const FfmpegEncoderSettings& settings) {
  AVDictionary* d = nullptr;
  for (const auto& [k, v] : settings.options) av_dict_set(&d, k.c_str(), v.c_str(), 0);
  return AVDictionaryPtr(d);
}

std::string av_error_string(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

core::Result<std::unique_ptr<FfmpegHwSession>> FfmpegHwSession::open(const FfmpegEncoderSettings& settings,
                                                                     core::Codec codec, int32_t width, int32_t height,
                                                                     double fps, AVBufferRef* hw_frames, int pix_fmt) {
  route_ffmpeg_logs();
  const AVCodec* avcodec = avcodec_find_encoder_by_name(settings.codec.c_str());
  if (!avcodec) return core::Error{fmt::format("this FFmpeg has no {} encoder", settings.codec)};
  std::unique_ptr<FfmpegHwSession> s(new FfmpegHwSession());
  s->codec_ = codec;
  s->name_ = settings.codec;
  s->ctx_ = avcodec_alloc_context3(avcodec);
  s->packet_ = av_packet_alloc();
  if (!s->ctx_ || !s->packet_) return core::Error{"out of memory allocating the codec context"};
  AVCodecContext* c = s->ctx_;
  c->width = width;
  c->height = height;
  int fps_num = int(std::lround((fps > 0 ? fps : 30.0) * 1000));
  c->time_base = AVRational{1000, fps_num};
  c->framerate = AVRational{fps_num, 1000};
  c->pix_fmt = AVPixelFormat(pix_fmt);
  c->bit_rate = settings.bit_rate;
  c->rc_max_rate = settings.rc_max_rate;
  c->rc_buffer_size = settings.rc_buffer_size;
  c->max_b_frames = settings.max_b_frames;
  c->gop_size = settings.gop_size;
  c->profile = settings.profile;
  c->flags |= AV_CODEC_FLAG_LOW_DELAY;
  // BT.601 limited range, as the software path signals.
  c->colorspace = AVCOL_SPC_SMPTE170M;
  c->color_range = AVCOL_RANGE_MPEG;
  if (hw_frames) {
    c->hw_frames_ctx = av_buffer_ref(hw_frames);
    if (!c->hw_frames_ctx) return core::Error{"out of memory referencing the hardware frames context"};
  }
  AVDictionaryPtr options = options_dictionary(settings);
  AVDictionary* raw = options.release();
  int err = avcodec_open2(c, avcodec, &raw);
  options.reset(raw);
  if (err < 0) return core::Error{fmt::format("{}: avcodec_open2 at {}x{}: {}", settings.codec, width, height, av_error_string(err))};
  return s;
}

FfmpegHwSession::~FfmpegHwSession() {
  avcodec_free_context(&ctx_);
  av_packet_free(&packet_);
}

core::Result<std::vector<core::EncodedFrame>> FfmpegHwSession::encode(AVFrame* picture, bool keyframe,
                                                                      const core::Frame& source) {
  picture->pts = next_pts_++;
  picture->pict_type = keyframe ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
  int err = avcodec_send_frame(ctx_, picture);
  if (err < 0) return core::Error{fmt::format("{}: avcodec_send_frame: {}", name_, av_error_string(err))};
  std::vector<core::EncodedFrame> out;
  for (;;) {
    err = avcodec_receive_packet(ctx_, packet_);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) break;
    if (err < 0) return core::Error{fmt::format("{}: avcodec_receive_packet: {}", name_, av_error_string(err))};
    core::EncodedFrame ef;
    ef.codec = codec_;
    ef.data.assign(packet_->data, packet_->data + packet_->size);
    ef.keyframe = (packet_->flags & AV_PKT_FLAG_KEY) != 0;
    ef.width = ctx_->width;
    ef.height = ctx_->height;
    ef.sequence = source.sequence;
    ef.timestamps = source.timestamps;
    ef.timestamps.encoded_ns = core::monotonic_now_ns();
    out.push_back(std::move(ef));
    av_packet_unref(packet_);
  }
  return out;
}

}  // namespace vdistream::encode
