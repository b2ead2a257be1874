// Baseline: FFmpeg's own path for the same job, in-process: libswscale converts the whole frame
// BGR0 → YUV420P (BT.601 limited, bicubic as the ffmpeg CLI's default), then libx264 through
// libavcodec with the same low-latency settings vdistream uses.
#include <fmt/format.h>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include "benchmarks/contender.hpp"
#include "core/clock.hpp"
#include "encode/ffmpeg_log.hpp"

namespace vdistream::bench {

namespace {

std::string av_error(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

class FfmpegBaseline final : public Contender {
 public:
  ~FfmpegBaseline() override {
    avcodec_free_context(&ctx_);
    av_frame_free(&picture_);
    av_packet_free(&packet_);
    sws_freeContext(sws_);
  }
  std::string name() const override { return "ffmpeg"; }
  std::string description() const override { return description_; }

  core::Status open(const ContenderConfig& c) {
    encode::route_ffmpeg_logs();  // through the log facade, at its level
    const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
    if (!codec) return core::Error{"this libavcodec has no libx264 encoder"};
    ctx_ = avcodec_alloc_context3(codec);
    picture_ = av_frame_alloc();
    packet_ = av_packet_alloc();
    if (!ctx_ || !picture_ || !packet_) return core::Error{"out of memory"};
    const int64_t bps = int64_t(c.bitrate_kbps) * 1000;
    ctx_->width = c.width;
    ctx_->height = c.height;
    ctx_->pix_fmt = AV_PIX_FMT_YUV420P;
    ctx_->time_base = av_d2q(1.0 / c.fps, 100000);
    ctx_->framerate = av_d2q(c.fps, 100000);
    ctx_->bit_rate = bps;
    ctx_->rc_max_rate = bps;
    ctx_->rc_buffer_size = int(double(bps) / c.fps);
    ctx_->max_b_frames = 0;
    ctx_->gop_size = 1 << 30;
    ctx_->thread_count = c.threads;
    ctx_->thread_type = FF_THREAD_SLICE;
    ctx_->flags |= AV_CODEC_FLAG_LOW_DELAY;
    ctx_->colorspace = AVCOL_SPC_SMPTE170M;
    ctx_->color_range = AVCOL_RANGE_MPEG;
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "preset", c.preset.c_str(), 0);
    av_dict_set(&opts, "tune", "zerolatency", 0);
    av_dict_set(&opts, "forced-idr", "1", 0);
    av_dict_set(&opts, "x264-params", "scenecut=0:keyint=infinite", 0);
    int err = avcodec_open2(ctx_, codec, &opts);
    av_dict_free(&opts);
    if (err < 0) return core::Error{"cannot open libx264: " + av_error(err)};

    picture_->format = AV_PIX_FMT_YUV420P;
    picture_->width = c.width;
    picture_->height = c.height;
    if ((err = av_frame_get_buffer(picture_, 0)) < 0) return core::Error{"cannot allocate a picture: " + av_error(err)};
    sws_ = sws_getContext(c.width, c.height, AV_PIX_FMT_BGR0, c.width, c.height, AV_PIX_FMT_YUV420P, SWS_BICUBIC, nullptr,
                          nullptr, nullptr);
    if (!sws_) return core::Error{"libswscale cannot convert BGR0 to YUV420P at this size"};
    description_ = fmt::format("libswscale BGR0→YUV420P (bicubic) + libavcodec libx264 preset={} tune=zerolatency {} kbit/s "
                               "vbv={} bits threads={} (slice)",
                               c.preset, c.bitrate_kbps, ctx_->rc_buffer_size, c.threads);
    return {};
  }

  core::Result<Encoded> encode(const core::Frame&, const uint8_t* pixels, uint32_t pitch) override {
    const int64_t t0 = core::monotonic_now_ns();
    int err = av_frame_make_writable(picture_);
    if (err < 0) return core::Error{"picture not writable: " + av_error(err)};
    const uint8_t* src[1] = {pixels};
    const int src_stride[1] = {int(pitch)};
    sws_scale(sws_, src, src_stride, 0, ctx_->height, picture_->data, picture_->linesize);
    const int64_t t1 = core::monotonic_now_ns();
    picture_->pts = pts_++;
    if ((err = avcodec_send_frame(ctx_, picture_)) < 0) return core::Error{"libx264 refused a frame: " + av_error(err)};
    Encoded e;
    while ((err = avcodec_receive_packet(ctx_, packet_)) == 0) {
      e.data.insert(e.data.end(), packet_->data, packet_->data + packet_->size);
      av_packet_unref(packet_);
    }
    if (err != AVERROR(EAGAIN)) return core::Error{"libx264 failed: " + av_error(err)};
    const int64_t t2 = core::monotonic_now_ns();
    if (e.data.empty()) return core::Error{"libx264 held a frame back (not low-latency)"};
    e.convert_ns = t1 - t0;
    e.encode_ns = t2 - t1;
    return e;
  }

 private:
  std::string description_;
  AVCodecContext* ctx_ = nullptr;
  AVFrame* picture_ = nullptr;
  AVPacket* packet_ = nullptr;
  SwsContext* sws_ = nullptr;
  int64_t pts_ = 0;
};

}  // namespace

core::Result<std::unique_ptr<Contender>> make_ffmpeg_baseline(const ContenderConfig& config) {
  auto b = std::make_unique<FfmpegBaseline>();
  if (core::Status s = b->open(config); !s) return core::Error{s.error()};
  return std::unique_ptr<Contender>(std::move(b));
}

}  // namespace vdistream::bench
