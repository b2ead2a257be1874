#include "encode/nvenc/nvenc_encoder.hpp"

#include "encode/nvenc/ffnvcodec.hpp"  // before hwcontext_cuda.h: it defines the CUDA types
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/hwcontext.h>
#include <libavutil/hwcontext_cuda.h>
}
#include <drm_fourcc.h>
#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/mapped_buffer.hpp"
#include "core/log.hpp"
#include "encode/ffmpeg_log.hpp"
#include "encode/nvenc/egl_cuda_importer.hpp"

namespace vdistream::encode {

namespace {

// NVENC takes 32-bit RGB and converts to YUV itself; alpha is ignored either way.
AVPixelFormat nvenc_input_format(uint32_t drm_fourcc) {
  switch (drm_fourcc) {
    case DRM_FORMAT_XRGB8888:
    case DRM_FORMAT_ARGB8888: return AV_PIX_FMT_BGR0;
    case DRM_FORMAT_XBGR8888:
    case DRM_FORMAT_ABGR8888: return AV_PIX_FMT_RGB0;
    default: return AV_PIX_FMT_NONE;
  }
}

}  // namespace

FfmpegEncoderSettings nvenc_settings(const EncoderConfig& config) {
  const bool hevc = config.codec == core::Codec::H265;
  FfmpegEncoderSettings s = common_hw_settings(config, hevc ? "hevc_nvenc" : "h264_nvenc");
  s.options = {
      {"preset", "p1"},        {"tune", "ull"},    {"rc", "cbr"},      {"zerolatency", "1"},
      {"delay", "0"},  // otherwise output comes frames late
      {"forced-idr", "1"},     {"rc-lookahead", "0"}, {"b_ref_mode", "disabled"},
      {"profile", hevc ? "main" : (config.profile == H264Profile::Main ? "main" : "baseline")},
  };
  if (config.intra_refresh) s.options.emplace_back("intra-refresh", "1");
  if (config.access_unit_delimiters) s.options.emplace_back("aud", "1");
  return s;
}

core::Result<std::unique_ptr<Encoder>> NvencEncoder::create(const EncoderConfig& config, const HardwareOptions& hw) {
  auto runtime = CudaRuntime::load();
  if (!runtime) return core::Error{runtime.error()};
  if (hw.cuda_device < 0 || hw.cuda_device >= (*runtime)->device_count())
    return core::Error{fmt::format("CUDA device {} does not exist ({} found)", hw.cuda_device, (*runtime)->device_count())};
  std::unique_ptr<NvencEncoder> e(new NvencEncoder(config, hw.cuda_device));
  e->runtime_ = std::move(*runtime);
  route_ffmpeg_logs();
  std::string device = std::to_string(hw.cuda_device);
  if (int err = av_hwdevice_ctx_create(&e->cuda_device_, AV_HWDEVICE_TYPE_CUDA, device.c_str(), nullptr, 0); err < 0)
    return core::Error{fmt::format("CUDA device {}: {}", device, av_error_string(err))};
  // A real session now, so a card out of NVENC sessions says so here and this desktop falls back.
  if (core::Status s = e->open(config.width > 0 ? config.width : 256, config.height > 0 ? config.height : 144); !s)
    return core::Error{s.error()};
  return std::unique_ptr<Encoder>(std::move(e));
}

NvencEncoder::NvencEncoder(const EncoderConfig& config, int device)
    : config_(config), device_(device), bitrate_(config.bitrate_bps) {}

NvencEncoder::~NvencEncoder() {
  egl_.reset();
  close();
  av_buffer_unref(&cuda_device_);
}

std::string NvencEncoder::name() const {
  return fmt::format("nvenc {} on CUDA device {} ({})", config_.codec == core::Codec::H265 ? "hevc_nvenc" : "h264_nvenc",
                     device_, runtime_ ? runtime_->driver_api() : "?");
}

void NvencEncoder::close() {
  session_.reset();  // the importer stays: its imports do not depend on the frame size
  av_frame_free(&upload_);
  av_buffer_unref(&cuda_frames_);
}

core::Status NvencEncoder::open(int32_t width, int32_t height) {
  close();
  cuda_frames_ = av_hwframe_ctx_alloc(cuda_device_);
  if (!cuda_frames_) return core::Error{"out of memory (CUDA frames context)"};
  auto* fc = reinterpret_cast<AVHWFramesContext*>(cuda_frames_->data);
  fc->format = AV_PIX_FMT_CUDA;
  fc->sw_format = AV_PIX_FMT_BGR0;
  fc->width = width;
  fc->height = height;
  fc->initial_pool_size = 2;
  if (int err = av_hwframe_ctx_init(cuda_frames_); err < 0)
    return core::Error{fmt::format("CUDA frames {}x{}: {}", width, height, av_error_string(err))};
  applied_bitrate_ = bitrate_;
  EncoderConfig cfg = config_;
  cfg.bitrate_bps = applied_bitrate_;
  auto session = FfmpegHwSession::open(nvenc_settings(cfg), config_.codec, width, height, config_.fps, cuda_frames_,
                                       AV_PIX_FMT_CUDA);
  if (!session) return core::Error{session.error()};
  session_ = std::move(*session);
  upload_ = av_frame_alloc();
  width_ = width;
  height_ = height;
  keyframe_requested_ = true;
  return {};
}

core::Result<std::vector<core::EncodedFrame>> NvencEncoder::encode(const core::Frame& frame) {
  if (!frame.buffer) return core::Error{"frame without a buffer"};
  const core::FrameBuffer& fb = *frame.buffer;
  if (nvenc_input_format(fb.format().fourcc) != AV_PIX_FMT_BGR0)
    return core::Error{fmt::format("NVENC input {} is not supported by this version (XRGB/ARGB8888 only)", fb.format().name())};
  if (!session_ || fb.width() != width_ || fb.height() != height_ || bitrate_ != applied_bitrate_) {
    if (session_) ++counters_.reconfigurations;
    if (core::Status s = open(fb.width(), fb.height()); !s) return core::Error{s.error()};
  }
  av_frame_unref(upload_);
  if (int err = av_hwframe_get_buffer(cuda_frames_, upload_, 0); err < 0)
    return core::Error{fmt::format("CUDA frame: {}", av_error_string(err))};
  bool copied_on_gpu = false;
  if (fb.backing() == core::BackingKind::DmaBuf) {
    if (EglCudaImporter* egl = egl_importer()) {
      core::Status s = egl->copy(frame.buffer, reinterpret_cast<CUdeviceptr>(upload_->data[0]), size_t(upload_->linesize[0]));
      if (!s && !fb.check_cpu_readable()) return core::Error{s.error()};
      copied_on_gpu = s.ok();
    } else if (core::Status readable = fb.check_cpu_readable(); !readable) {
      return core::Error{"NVENC cannot take this dma-buf: " + egl_unavailable_ + "; and " + readable.error()};
    }
  }
  if (!copied_on_gpu) {
    if (core::Status s = fb.check_cpu_readable(); !s) return core::Error{s.error()};
    if (core::Status s = upload_from_host(fb); !s) return core::Error{s.error()};
  }
  core::Frame stamped = frame;
  stamped.timestamps.converted_ns = core::monotonic_now_ns();
  auto out = session_->encode(upload_, keyframe_requested_.exchange(false), stamped);
  if (!out) return out;
  counters_.frames += out->size();
  for (const auto& ef : *out) counters_.keyframes += ef.keyframe ? 1 : 0;
  return out;
}

EglCudaImporter* NvencEncoder::egl_importer() {
  if (!egl_tried_) {
    egl_tried_ = true;
    auto* dev = static_cast<AVCUDADeviceContext*>(reinterpret_cast<AVHWDeviceContext*>(cuda_device_->data)->hwctx);
    auto importer = EglCudaImporter::create(runtime_->cuda(), dev->cuda_ctx, device_);
    if (importer) {
      egl_ = std::move(*importer);
    } else {
      egl_unavailable_ = importer.error();
      core::Logger("nvenc").warn("no EGL/CUDA interop, dma-bufs go through the CPU mapping: {}", egl_unavailable_);
    }
  }
  return egl_.get();
}

core::Status NvencEncoder::upload_from_host(const core::FrameBuffer& fb) {
  auto mapped = core::MappedBuffer::map(fb, core::MappedBuffer::Access::Read);
  if (!mapped) return core::Error{mapped.error()};
  AVFrame* host = av_frame_alloc();
  if (!host) return core::Error{"out of memory (host frame)"};
  host->format = AV_PIX_FMT_BGR0;
  host->width = fb.width();
  host->height = fb.height();
  host->data[0] = const_cast<uint8_t*>((*mapped)->data());
  host->linesize[0] = int((*mapped)->pitch());
  int err = 0;
  {
    core::MappedBuffer::CpuAccess access(**mapped);  // DMA_BUF_IOCTL_SYNC around the read
    err = av_hwframe_transfer_data(upload_, host, 0);  // cuMemcpy2D host -> device
  }
  av_frame_free(&host);
  if (err < 0) return core::Error{fmt::format("upload to CUDA: {}", av_error_string(err))};
  ++counters_.full_frame_copies;
  return {};
}

}  // namespace vdistream::encode
