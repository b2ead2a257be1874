#include "encode/file_sink.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/mem.h>
}

#include "encode/ffmpeg_log.hpp"
#include "core/annexb.hpp"

namespace vdistream::encode {

namespace {

std::string av_error(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof buf);
  return buf;
}

bool ends_with(const std::string& s, const char* suffix) {
  size_t n = strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

constexpr AVRational kMicroseconds{1, 1'000'000};

}  // namespace

FileSink::FileSink(std::string path, std::string scope) : path_(std::move(path)), log_(std::move(scope)) {}

core::Result<std::shared_ptr<FileSink>> FileSink::open(const std::string& path, const std::string& log_scope) {
  route_ffmpeg_logs();
  std::shared_ptr<FileSink> sink(new FileSink(path, log_scope));
  sink->raw_ = ends_with(path, ".h264") || ends_with(path, ".264");
  if (sink->raw_) {
    sink->raw_file_ = std::fopen(path.c_str(), "wb");
    if (!sink->raw_file_) return core::Error{fmt::format("cannot create {}: {}", path, strerror(errno))};
    return sink;
  }
  if (int err = avformat_alloc_output_context2(&sink->mux_, nullptr, nullptr, path.c_str()); err < 0 || !sink->mux_)
    return core::Error{fmt::format("{}: no container for this file name ({}); use .mp4, .mkv or .h264", path,
                                   av_error(err))};
  if (int err = avio_open(&sink->mux_->pb, path.c_str(), AVIO_FLAG_WRITE); err < 0)
    return core::Error{fmt::format("cannot create {}: {}", path, av_error(err))};
  sink->packet_ = av_packet_alloc();
  return sink;
}

FileSink::~FileSink() {
  (void)close();
  if (mux_) {
    if (mux_->pb) avio_closep(&mux_->pb);
    avformat_free_context(mux_);
  }
  av_packet_free(&packet_);
}

core::Status FileSink::start_container(const core::EncodedFrame& first) {
  AVStream* st = avformat_new_stream(mux_, nullptr);
  if (!st) return core::Error{"cannot add a video stream"};
  st->time_base = AVRational{1, 90'000};
  AVCodecParameters* par = st->codecpar;
  par->codec_type = AVMEDIA_TYPE_VIDEO;
  par->codec_id = first.codec == core::Codec::H264 ? AV_CODEC_ID_H264 : AV_CODEC_ID_HEVC;
  par->width = first.width;
  par->height = first.height;
  // The muxer turns Annex-B parameter sets into avcC/hvcC, and Annex-B packets into
  // length-prefixed ones.
  std::vector<uint8_t> ps = core::parameter_sets(first.codec, first.data);
  if (ps.empty()) return core::Error{"the first keyframe carries no parameter sets"};
  par->extradata = static_cast<uint8_t*>(av_mallocz(ps.size() + AV_INPUT_BUFFER_PADDING_SIZE));
  if (!par->extradata) return core::Error{"out of memory"};
  memcpy(par->extradata, ps.data(), ps.size());
  par->extradata_size = int(ps.size());
  if (int err = avformat_write_header(mux_, nullptr); err < 0)
    return core::Error{fmt::format("{}: writing the header: {}", path_, av_error(err))};
  return {};
}

core::Status FileSink::write_muxed(const core::EncodedFrame& frame) {
  AVStream* st = mux_->streams[0];
  int64_t pts = (frame.timestamps.captured_ns - first_ns_) / 1000;
  if (pts <= last_pts_) pts = last_pts_ + 1;
  last_pts_ = pts;
  av_packet_unref(packet_);
  if (int err = av_new_packet(packet_, int(frame.data.size())); err < 0) return core::Error{av_error(err)};
  memcpy(packet_->data, frame.data.data(), frame.data.size());
  packet_->pts = packet_->dts = av_rescale_q(pts, kMicroseconds, st->time_base);
  packet_->stream_index = 0;
  if (frame.keyframe) packet_->flags |= AV_PKT_FLAG_KEY;
  if (int err = av_write_frame(mux_, packet_); err < 0) return core::Error{"writing a frame: " + av_error(err)};
  return {};
}

void FileSink::on_encoded(const core::EncodedFramePtr& frame) {
  std::lock_guard lock(mutex_);
  if (closed_ || failed_) return;
  if (!started_) {
    if (!frame->keyframe) return;
    first_ns_ = frame->timestamps.captured_ns;
    if (!raw_) {
      if (core::Status s = start_container(*frame); !s) {
        log_.error("{}", s.error());
        failed_ = true;
        return;
      }
    }
    started_ = true;
  }
  core::Status s;
  if (raw_) {
    if (std::fwrite(frame->data.data(), 1, frame->data.size(), raw_file_) != frame->data.size())
      s = core::Error{fmt::format("writing {}: {}", path_, strerror(errno))};
  } else {
    s = write_muxed(*frame);
  }
  if (!s) {
    log_.error("{}; recording stopped", s.error());
    failed_ = true;
    return;
  }
  ++frames_;
  bytes_ += frame->data.size();
}

core::Status FileSink::close() {
  std::lock_guard lock(mutex_);
  if (closed_) return {};
  closed_ = true;
  core::Status result;
  if (raw_file_) {
    if (std::fclose(raw_file_) != 0) result = core::Error{fmt::format("closing {}: {}", path_, strerror(errno))};
    raw_file_ = nullptr;
  }
  if (mux_ && started_) {
    if (int err = av_write_trailer(mux_); err < 0) result = core::Error{"finishing " + path_ + ": " + av_error(err)};
  }
  if (mux_ && mux_->pb) avio_closep(&mux_->pb);
  if (!started_) result = core::Error{fmt::format("{}: no keyframe arrived, nothing was recorded", path_)};
  return result;
}

uint64_t FileSink::frames_written() const {
  std::lock_guard lock(mutex_);
  return frames_;
}

uint64_t FileSink::bytes_written() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

}  // namespace vdistream::encode
