#include "encode/jpeg_stream.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstring>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
}

#include "core/clock.hpp"
#include "encode/ffmpeg_hw_session.hpp"  // av_error_string
#include "encode/ffmpeg_log.hpp"

namespace vdistream::encode {

namespace {

size_t i420_size(int32_t width, int32_t height) {
  const size_t cw = size_t(width + 1) / 2, ch = size_t(height + 1) / 2;
  return size_t(width) * size_t(height) + 2 * cw * ch;
}

I420Planes planes_of(std::vector<uint8_t>& i420, int32_t width, int32_t height) {
  const int cw = (width + 1) / 2, ch = (height + 1) / 2;
  uint8_t* y = i420.data();
  uint8_t* u = y + size_t(width) * size_t(height);
  uint8_t* v = u + size_t(cw) * size_t(ch);
  return I420Planes{y, u, v, width, cw, cw};
}

}  // namespace

core::Result<std::shared_ptr<JpegStream>> JpegStream::create(const JpegConfig& config,
                                                             std::shared_ptr<core::EncodedSink> out) {
  if (!out) return core::Error{"MJPEG: no sink to send the pictures to"};
  if (config.qscale < 2 || config.qscale > 31)
    return core::Error{fmt::format("MJPEG: quantiser scale {} is outside 2..31", config.qscale)};
  route_ffmpeg_logs();
  if (!avcodec_find_encoder(AV_CODEC_ID_MJPEG)) return core::Error{"this FFmpeg has no MJPEG encoder"};
  std::shared_ptr<JpegStream> stream(new JpegStream(config, std::move(out)));
  stream->thread_ = std::thread([s = stream.get()] { s->run(); });
  return stream;
}

JpegStream::JpegStream(const JpegConfig& config, std::shared_ptr<core::EncodedSink> out)
    : config_(config), log_(config.name), out_(std::move(out)) {}

JpegStream::~JpegStream() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  avcodec_free_context(&ctx_);
  av_frame_free(&frame_);
  av_packet_free(&packet_);
}

void JpegStream::on_picture(const core::Frame& frame) {
  if (!frame.buffer) return;
  const int32_t width = frame.width(), height = frame.height();
  if (width <= 0 || height <= 0) return;
  std::unique_lock lock(mutex_);
  core::DamageRegion damage = frame.damage;
  if (width != width_ || height != height_) {
    width_ = width;
    height_ = height;
    canvas_.assign(i420_size(width, height), 0);
    damage = core::DamageRegion::full(width, height);
  }
  if (damage.empty()) return;
  ++stats_.pictures;
  const core::TileMask changed = damage.to_tile_mask(width, height, I420Converter::kTile);
  auto tiles = converter_.convert(*frame.buffer, changed, planes_of(canvas_, width, height));
  if (!tiles) {
    ++stats_.errors;
    lock.unlock();
    log_.warn("MJPEG: {}", tiles.error());
    return;
  }
  stats_.tiles_converted += *tiles;
  if (pending_) ++stats_.merged;
  pending_ = true;
  pending_sequence_ = frame.sequence;
  pending_stamps_ = frame.timestamps;
  pending_stamps_.converted_ns = core::monotonic_now_ns();
  lock.unlock();
  cv_.notify_all();
}

JpegStats JpegStream::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

bool JpegStream::wait_idle(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [this] { return (!pending_ && !busy_) || stopping_; });
}

void JpegStream::run() {
  for (;;) {
    int32_t width = 0, height = 0;
    uint64_t sequence = 0;
    core::FrameTimestamps stamps;
    std::string failed;
    {
      std::unique_lock lock(mutex_);
      busy_ = false;
      cv_.notify_all();  // wait_idle
      cv_.wait(lock, [this] { return pending_ || stopping_; });
      if (stopping_) return;
      width = width_;
      height = height_;
      sequence = pending_sequence_;
      stamps = pending_stamps_;
      pending_ = false;
      busy_ = true;
      // Into the encoder's own frame, so the pipeline's next picture need not wait for this JPEG.
      if (core::Status s = copy_canvas(); !s) failed = s.error();
    }
    auto jpeg = failed.empty() ? encode() : core::Result<std::vector<uint8_t>>(core::Error{failed});
    if (!jpeg) {
      log_.warn("MJPEG: {}", jpeg.error());
      std::lock_guard lock(mutex_);
      ++stats_.errors;
      continue;
    }
    auto out = std::make_shared<core::EncodedFrame>();
    out->codec = core::Codec::Mjpeg;
    out->data = std::move(*jpeg);
    out->keyframe = true;
    out->width = width;
    out->height = height;
    out->sequence = sequence;
    out->timestamps = stamps;
    out->timestamps.encoded_ns = core::monotonic_now_ns();
    {
      std::lock_guard lock(mutex_);
      ++stats_.jpegs;
      stats_.bytes += out->data.size();
    }
    out_->on_encoded(out);
  }
}

core::Status JpegStream::copy_canvas() {
  if (!ctx_ || width_ != open_width_ || height_ != open_height_)
    if (core::Status s = open_encoder(width_, height_); !s) return s;
  if (int err = av_frame_make_writable(frame_); err < 0)
    return core::Error{fmt::format("av_frame_make_writable: {}", av_error_string(err))};
  const I420Planes in = planes_of(canvas_, width_, height_);
  const int cw = (width_ + 1) / 2, ch = (height_ + 1) / 2;
  for (int y = 0; y < height_; ++y)
    std::memcpy(frame_->data[0] + size_t(y) * frame_->linesize[0], in.y + size_t(y) * in.y_stride, size_t(width_));
  for (int y = 0; y < ch; ++y) {
    std::memcpy(frame_->data[1] + size_t(y) * frame_->linesize[1], in.u + size_t(y) * in.u_stride, size_t(cw));
    std::memcpy(frame_->data[2] + size_t(y) * frame_->linesize[2], in.v + size_t(y) * in.v_stride, size_t(cw));
  }
  return {};
}

core::Status JpegStream::open_encoder(int32_t width, int32_t height) {
  avcodec_free_context(&ctx_);
  av_frame_free(&frame_);
  if (!packet_) packet_ = av_packet_alloc();
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
  ctx_ = avcodec_alloc_context3(codec);
  frame_ = av_frame_alloc();
  if (!ctx_ || !frame_ || !packet_) return core::Error{"out of memory opening the MJPEG encoder"};
  ctx_->width = width;
  ctx_->height = height;
  ctx_->pix_fmt = AV_PIX_FMT_YUVJ420P;  // JFIF: BT.601, full range, as the converter writes it
  ctx_->color_range = AVCOL_RANGE_JPEG;
  ctx_->time_base = AVRational{1, 1000};
  ctx_->flags |= AV_CODEC_FLAG_QSCALE;
  ctx_->global_quality = FF_QP2LAMBDA * config_.qscale;
  ctx_->thread_count = 1;  // this thread is the parallelism: the pipeline's H.264 runs beside it
  if (int err = avcodec_open2(ctx_, codec, nullptr); err < 0)
    return core::Error{fmt::format("cannot open the MJPEG encoder at {}x{}: {}", width, height, av_error_string(err))};
  frame_->format = AV_PIX_FMT_YUVJ420P;
  frame_->width = width;
  frame_->height = height;
  if (int err = av_frame_get_buffer(frame_, 0); err < 0)
    return core::Error{fmt::format("cannot allocate a {}x{} picture: {}", width, height, av_error_string(err))};
  open_width_ = width;
  open_height_ = height;
  return {};
}

core::Result<std::vector<uint8_t>> JpegStream::encode() {
  frame_->quality = ctx_->global_quality;
  frame_->pts = next_pts_++;
  int err = avcodec_send_frame(ctx_, frame_);
  if (err < 0) return core::Error{fmt::format("avcodec_send_frame: {}", av_error_string(err))};
  std::vector<uint8_t> out;
  for (;;) {
    err = avcodec_receive_packet(ctx_, packet_);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) break;
    if (err < 0) return core::Error{fmt::format("avcodec_receive_packet: {}", av_error_string(err))};
    out.assign(packet_->data, packet_->data + packet_->size);
    av_packet_unref(packet_);
  }
  if (out.empty()) return core::Error{"the MJPEG encoder returned no picture"};
  return out;
}

}  // namespace vdistream::encode
