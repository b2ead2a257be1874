#include "encode/decoder.hpp"

#include <cmath>
#include <cstring>

extern "C" {
#include <libavcodec/avcodec.h>
}

#include "encode/ffmpeg_log.hpp"

namespace vdistream::encode {

core::Result<std::unique_ptr<Decoder>> Decoder::create(core::Codec codec) {
  route_ffmpeg_logs();
  const AVCodecID id = codec == core::Codec::H264   ? AV_CODEC_ID_H264
                      : codec == core::Codec::H265 ? AV_CODEC_ID_HEVC
                                                   : AV_CODEC_ID_MJPEG;
  const AVCodec* c = avcodec_find_decoder(id);
  if (!c) return core::Error{"libavcodec has no decoder for this codec"};
  std::unique_ptr<Decoder> d(new Decoder());
  d->ctx_ = avcodec_alloc_context3(c);
  d->frame_ = av_frame_alloc();
  d->packet_ = av_packet_alloc();
  if (!d->ctx_ || !d->frame_ || !d->packet_) return core::Error{"out of memory"};
  d->ctx_->flags |= AV_CODEC_FLAG_LOW_DELAY;
  d->ctx_->thread_count = 1;  // frame threading would hold pictures back
  if (avcodec_open2(d->ctx_, c, nullptr) < 0) return core::Error{"cannot open the decoder"};
  return d;
}

Decoder::~Decoder() {
  avcodec_free_context(&ctx_);
  av_frame_free(&frame_);
  av_packet_free(&packet_);
}

core::Result<std::vector<DecodedPicture>> Decoder::decode(std::span<const uint8_t> au, int64_t pts) {
  av_packet_unref(packet_);
  if (av_new_packet(packet_, int(au.size())) < 0) return core::Error{"out of memory"};
  memcpy(packet_->data, au.data(), au.size());
  packet_->pts = pts;
  if (avcodec_send_packet(ctx_, packet_) < 0) {
    ++errors_;
    return core::Error{"the decoder refused an access unit"};
  }
  return drain();
}

core::Result<std::vector<DecodedPicture>> Decoder::flush() {
  avcodec_send_packet(ctx_, nullptr);
  return drain();
}

core::Result<std::vector<DecodedPicture>> Decoder::drain() {
  std::vector<DecodedPicture> out;
  for (;;) {
    int err = avcodec_receive_frame(ctx_, frame_);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) break;
    if (err < 0) {
      ++errors_;
      return core::Error{"decode error"};
    }
    if (frame_->format != AV_PIX_FMT_YUV420P && frame_->format != AV_PIX_FMT_YUVJ420P) {
      av_frame_unref(frame_);
      return core::Error{"decoded picture is not 4:2:0 8-bit"};
    }
    DecodedPicture p;
    p.width = frame_->width;
    p.height = frame_->height;
    p.keyframe = frame_->key_frame != 0;
    p.pts = frame_->pts;
    const int cw = (p.width + 1) / 2, ch = (p.height + 1) / 2;
    p.y.resize(size_t(p.width) * p.height);
    p.u.resize(size_t(cw) * ch);
    p.v.resize(size_t(cw) * ch);
    for (int r = 0; r < p.height; ++r) memcpy(&p.y[size_t(r) * p.width], frame_->data[0] + size_t(r) * frame_->linesize[0], p.width);
    for (int r = 0; r < ch; ++r) {
      memcpy(&p.u[size_t(r) * cw], frame_->data[1] + size_t(r) * frame_->linesize[1], cw);
      memcpy(&p.v[size_t(r) * cw], frame_->data[2] + size_t(r) * frame_->linesize[2], cw);
    }
    av_frame_unref(frame_);
    out.push_back(std::move(p));
  }
  return out;
}

double psnr(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  size_t n = std::min(a.size(), b.size());
  if (n == 0) return 0;
  double sse = 0;
  for (size_t i = 0; i < n; ++i) {
    double d = double(a[i]) - double(b[i]);
    sse += d * d;
  }
  if (sse == 0) return 99.0;
  double mse = sse / double(n);
  return 10.0 * std::log10(255.0 * 255.0 / mse);
}

}  // namespace vdistream::encode
