// Records a desktop: access units to an Annex-B .h264 file, or muxed by libavformat (.mp4, .mkv).
#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "core/frame.hpp"
#include "core/log.hpp"
#include "core/status.hpp"

struct AVFormatContext;
struct AVPacket;

namespace vdistream::encode {

class FileSink final : public core::EncodedSink {
 public:
  // The container is chosen by the extension: .h264/.264 raw Annex-B, anything else libavformat
  // knows (.mp4, .mkv, .mov). Fails at once when the file cannot be created.
  static core::Result<std::shared_ptr<FileSink>> open(const std::string& path, const std::string& log_scope = "record");
  ~FileSink() override;

  // Writes from the first keyframe on (everything before it would not decode).
  void on_encoded(const core::EncodedFramePtr& frame) override;
  // Finishes the file (the MP4 index); further frames are ignored. Idempotent.
  core::Status close();

  uint64_t frames_written() const;
  uint64_t bytes_written() const;
  const std::string& path() const { return path_; }

 private:
  FileSink(std::string path, std::string scope);
  core::Status start_container(const core::EncodedFrame& first);
  core::Status write_muxed(const core::EncodedFrame& frame);

  std::string path_;
  core::Logger log_;
  mutable std::mutex mutex_;
  bool raw_ = true;
  bool closed_ = false;
  bool started_ = false;
  bool failed_ = false;
  std::FILE* raw_file_ = nullptr;
  AVFormatContext* mux_ = nullptr;
  AVPacket* packet_ = nullptr;
  int64_t first_ns_ = 0;
  int64_t last_pts_ = -1;
  uint64_t frames_ = 0, bytes_ = 0;
};

}  // namespace vdistream::encode
