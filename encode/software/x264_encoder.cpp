#include "encode/software/x264_encoder.hpp"

#include <fmt/format.h>

#include <climits>
#include <cstring>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
}

#include "encode/ffmpeg_log.hpp"
#include "core/annexb.hpp"
#include "core/clock.hpp"

namespace vdistream::encode {

namespace {

std::string av_error(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

int32_t even(int32_t v) { return (v + 1) & ~1; }

}  // namespace

X264Encoder::X264Encoder(const EncoderConfig& config) : config_(config), bitrate_(config.bitrate_bps) {}

X264Encoder::~X264Encoder() { close(); }

core::Result<std::unique_ptr<Encoder>> X264Encoder::create(const EncoderConfig& config) {
  route_ffmpeg_logs();
  if (config.codec != core::Codec::H264) return core::Error{"the software backend encodes H.264 only"};
  if (!avcodec_find_encoder_by_name("libx264"))
    return core::Error{"libavcodec has no libx264 encoder (is this FFmpeg built without x264?)"};
  std::unique_ptr<X264Encoder> enc(new X264Encoder(config));
  if (config.width > 0 && config.height > 0)
    if (core::Status s = enc->open(config.width, config.height); !s) return core::Error{s.error()};
  return std::unique_ptr<Encoder>(std::move(enc));
}

std::string X264Encoder::name() const {
  return fmt::format("software (libx264 {}, {}, {} slice threads{})", config_.software_preset,
                     profile_name(config_.profile), config_.threads, config_.intra_refresh ? ", intra refresh" : "");
}

void X264Encoder::close() {
  avcodec_free_context(&ctx_);
  av_frame_free(&picture_);
  av_packet_free(&packet_);
}

core::Status X264Encoder::open(int32_t width, int32_t height) {
  close();
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) return core::Error{"libx264 encoder not found"};
  ctx_ = avcodec_alloc_context3(codec);
  picture_ = av_frame_alloc();
  packet_ = av_packet_alloc();
  if (!ctx_ || !picture_ || !packet_) return core::Error{"out of memory allocating the encoder"};

  // x264 needs even dimensions for 4:2:0; an odd edge is padded (and stays black).
  ctx_->width = even(width);
  ctx_->height = even(height);
  ctx_->pix_fmt = AV_PIX_FMT_YUV420P;
  ctx_->time_base = AVRational{1, 1'000'000};  // pts in microseconds of the capture clock
  ctx_->framerate = av_d2q(config_.fps, 1000);
  ctx_->max_b_frames = 0;
  ctx_->gop_size = -1;  // set through x264-params: keyint=infinite
  ctx_->flags |= AV_CODEC_FLAG_LOW_DELAY;
  ctx_->thread_count = std::max(1, config_.threads);
  ctx_->thread_type = FF_THREAD_SLICE;  // frame threading would override x264's sliced threads and add delay
  // libyuv converts with BT.601 limited range: say so in the VUI so decoders convert back right.
  ctx_->colorspace = AVCOL_SPC_SMPTE170M;
  ctx_->color_primaries = AVCOL_PRI_BT709;
  ctx_->color_trc = AVCOL_TRC_IEC61966_2_1;
  ctx_->color_range = AVCOL_RANGE_MPEG;
  applied_bitrate_ = bitrate_;
  apply_bitrate();

  av_opt_set(ctx_->priv_data, "preset", config_.software_preset.c_str(), 0);
  av_opt_set(ctx_->priv_data, "tune", "zerolatency", 0);
  av_opt_set(ctx_->priv_data, "profile", config_.profile == H264Profile::Main ? "main" : "baseline", 0);
  av_opt_set_int(ctx_->priv_data, "forced-idr", 1, 0);
  if (config_.intra_refresh) av_opt_set_int(ctx_->priv_data, "intra-refresh", 1, 0);
  // keyint=infinite: IDRs only on request. With intra refresh, keyint is the refresh period.
  std::string params = config_.intra_refresh ? fmt::format("keyint={}", std::max(1, int(config_.fps * 2)))
                                             : std::string("keyint=infinite");
  params += ":scenecut=0:repeat-headers=1";
  // x264's profile is only a ceiling: ultrafast stays baseline unless CABAC is switched on.
  if (config_.profile == H264Profile::Main) params += ":cabac=1";
  if (config_.access_unit_delimiters) params += ":aud=1";
  av_opt_set(ctx_->priv_data, "x264-params", params.c_str(), 0);

  if (int err = avcodec_open2(ctx_, codec, nullptr); err < 0)
    return core::Error{fmt::format("opening libx264 at {}x{}: {}", ctx_->width, ctx_->height, av_error(err))};

  picture_->format = AV_PIX_FMT_YUV420P;
  picture_->width = ctx_->width;
  picture_->height = ctx_->height;
  if (int err = av_frame_get_buffer(picture_, 64); err < 0)
    return core::Error{fmt::format("allocating {}x{} I420 planes: {}", ctx_->width, ctx_->height, av_error(err))};
  // Black in limited range, so padding and anything never damaged is defined.
  memset(picture_->data[0], 16, size_t(picture_->linesize[0]) * ctx_->height);
  memset(picture_->data[1], 128, size_t(picture_->linesize[1]) * (ctx_->height / 2));
  memset(picture_->data[2], 128, size_t(picture_->linesize[2]) * (ctx_->height / 2));
  picture_->colorspace = ctx_->colorspace;
  picture_->color_range = ctx_->color_range;

  width_ = width;
  height_ = height;
  keyframe_requested_ = true;
  return {};
}

void X264Encoder::apply_bitrate() {
  const uint32_t bps = applied_bitrate_;
  ctx_->bit_rate = bps;
  ctx_->rc_max_rate = bps;
  // One frame of VBV: a big frame is paid for by the next ones instead of by queueing delay.
  ctx_->rc_buffer_size = int(std::max<double>(bps / std::max(1.0, config_.fps), 16'000.0));
}

core::Result<std::vector<core::EncodedFrame>> X264Encoder::encode(const core::Frame& frame) {
  if (!frame.buffer) return core::Error{"frame without a buffer"};
  core::DamageRegion damage = frame.damage;
  if (!ctx_ || frame.width() != width_ || frame.height() != height_) {
    if (ctx_) ++counters_.reconfigurations;
    if (core::Status s = open(frame.width(), frame.height()); !s) return core::Error{s.error()};
    damage = core::DamageRegion::full(width_, height_);
  }
  if (uint32_t want = bitrate_; want != applied_bitrate_) {
    applied_bitrate_ = want;
    apply_bitrate();  // libavcodec's libx264 wrapper reconfigures x264 when these change
  }

  // The encoder must hold no reference to the planes we are about to write; if it does,
  // libavcodec would copy them whole. Count it so a test can prove it never happens.
  if (!av_frame_is_writable(picture_)) {
    ++counters_.full_frame_copies;
    if (int err = av_frame_make_writable(picture_); err < 0) return core::Error{"encoder planes: " + av_error(err)};
  }
  I420Planes planes{picture_->data[0], picture_->data[1], picture_->data[2],
                    picture_->linesize[0], picture_->linesize[1], picture_->linesize[2]};
  auto tiles = converter_.convert(*frame.buffer, damage, planes);
  if (!tiles) return core::Error{tiles.error()};
  counters_.tiles_converted += *tiles;
  core::FrameTimestamps ts = frame.timestamps;
  ts.converted_ns = core::monotonic_now_ns();

  const bool want_idr = keyframe_requested_.exchange(false);
  picture_->pict_type = want_idr ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
  picture_->key_frame = want_idr ? 1 : 0;
  int64_t pts = frame.timestamps.captured_ns > 0 ? frame.timestamps.captured_ns / 1000 : next_pts_;
  picture_->pts = std::max(pts, next_pts_);  // strictly increasing, whatever the source says
  next_pts_ = picture_->pts + 1;

  std::vector<core::EncodedFrame> out;
  if (int err = avcodec_send_frame(ctx_, picture_); err < 0) {
    if (want_idr) keyframe_requested_ = true;
    return core::Error{"libx264 send_frame: " + av_error(err)};
  }
  for (;;) {
    int err = avcodec_receive_packet(ctx_, packet_);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) break;
    if (err < 0) return core::Error{"libx264 receive_packet: " + av_error(err)};
    core::EncodedFrame ef;
    ef.codec = core::Codec::H264;
    ef.data.assign(packet_->data, packet_->data + packet_->size);
    ef.keyframe = core::contains_idr(core::Codec::H264, ef.data);
    ef.width = width_;
    ef.height = height_;
    ef.sequence = frame.sequence;
    ef.timestamps = ts;
    ef.timestamps.encoded_ns = core::monotonic_now_ns();
    ++counters_.frames;
    if (ef.keyframe) ++counters_.keyframes;
    out.push_back(std::move(ef));
    av_packet_unref(packet_);
  }
  return out;
}

}  // namespace vdistream::encode
