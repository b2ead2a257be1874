#include "encode/vaapi/vaapi_encoder.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/hwcontext.h>
#include <libavutil/hwcontext_drm.h>
#include <libavutil/hwcontext_vaapi.h>
#include <libavutil/pixdesc.h>
}
#include <drm_fourcc.h>
#include <fmt/format.h>

#include "core/clock.hpp"
#include "encode/ffmpeg_log.hpp"
#include "encode/vaapi/drm_prime.hpp"
#include "encode/vaapi/udmabuf.hpp"
#include "encode/vaapi/va_display.hpp"

namespace vdistream::encode {

namespace {

constexpr size_t kMaxImports = 8;  // a desktop cycles through 2-3 scanout buffers

AVPixelFormat sw_format_of(uint32_t drm_fourcc) {
  switch (drm_fourcc) {
    case DRM_FORMAT_XRGB8888: return AV_PIX_FMT_BGR0;
    case DRM_FORMAT_ARGB8888: return AV_PIX_FMT_BGRA;
    case DRM_FORMAT_XBGR8888: return AV_PIX_FMT_RGB0;
    case DRM_FORMAT_ABGR8888: return AV_PIX_FMT_RGBA;
    case DRM_FORMAT_NV12: return AV_PIX_FMT_NV12;
    case DRM_FORMAT_P010: return AV_PIX_FMT_P010LE;
    default: return AV_PIX_FMT_NONE;
  }
}

void free_descriptor(void*, uint8_t* data) { av_free(data); }

}  // namespace

FfmpegEncoderSettings vaapi_settings(const EncoderConfig& config, bool low_power) {
  FfmpegEncoderSettings s = common_hw_settings(config, config.codec == core::Codec::H265 ? "hevc_vaapi" : "h264_vaapi");
  s.options = {{"rc_mode", "CBR"}, {"async_depth", "1"}, {"idr_interval", "0"}};
  if (low_power) s.options.emplace_back("low_power", "1");
  if (config.access_unit_delimiters) s.options.emplace_back("aud", "1");
  return s;
}

core::Result<std::unique_ptr<Encoder>> VaapiEncoder::create(const EncoderConfig& config, const HardwareOptions& hw) {
  auto node = find_render_node(hw.render_node);
  if (!node) return core::Error{node.error()};
  std::unique_ptr<VaapiEncoder> e(new VaapiEncoder(config, *node));
  if (core::Status s = e->open_devices(); !s) return core::Error{s.error()};
  return std::unique_ptr<Encoder>(std::move(e));
}

VaapiEncoder::VaapiEncoder(const EncoderConfig& config, std::string node)
    : config_(config), node_(std::move(node)), bitrate_(config.bitrate_bps) {}

VaapiEncoder::~VaapiEncoder() {
  close_pipeline();
  av_buffer_unref(&va_device_);
  av_buffer_unref(&drm_device_);
}

std::string VaapiEncoder::name() const {
  return fmt::format("vaapi {} on {}{}", config_.codec == core::Codec::H265 ? "hevc_vaapi" : "h264_vaapi", node_,
                     low_power_ ? " (low-power)" : "");
}

core::Status VaapiEncoder::open_devices() {
  route_ffmpeg_logs();
  int err = av_hwdevice_ctx_create(&drm_device_, AV_HWDEVICE_TYPE_DRM, node_.c_str(), nullptr, 0);
  if (err < 0) return core::Error{fmt::format("DRM device on {}: {}", node_, av_error_string(err))};
  err = av_hwdevice_ctx_create_derived(&va_device_, AV_HWDEVICE_TYPE_VAAPI, drm_device_, 0);
  if (err < 0) return core::Error{fmt::format("VAAPI device derived from {}: {} (no VA driver?)", node_, av_error_string(err))};
  auto* hwctx = static_cast<AVVAAPIDeviceContext*>(reinterpret_cast<AVHWDeviceContext*>(va_device_->data)->hwctx);
  VaEncodeSupport support = query_va_encode(hwctx->display, config_.codec);
  if (core::Status s = require_va_encode(support, node_, config_.codec); !s) return s;
  low_power_ = support.encode_low_power;
  return {};
}

void VaapiEncoder::close_pipeline() {
  for (auto& [id, imp] : imports_) {
    av_frame_free(&imp.va);
    av_frame_free(&imp.drm);
  }
  imports_.clear();
  session_.reset();
  av_frame_free(&nv12_);
  avfilter_graph_free(&graph_);
  source_ = sink_ = nullptr;
  av_buffer_unref(&va_frames_);
  av_buffer_unref(&drm_frames_);
}

core::Status VaapiEncoder::open_pipeline(int32_t width, int32_t height, uint32_t drm_fourcc) {
  close_pipeline();
  AVPixelFormat sw = sw_format_of(drm_fourcc);
  if (sw == AV_PIX_FMT_NONE) return core::Error{"VAAPI cannot import " + core::PixelFormat{drm_fourcc, 0}.name()};
  drm_frames_ = av_hwframe_ctx_alloc(drm_device_);
  if (!drm_frames_) return core::Error{"out of memory (DRM frames context)"};
  auto* fc = reinterpret_cast<AVHWFramesContext*>(drm_frames_->data);
  fc->format = AV_PIX_FMT_DRM_PRIME;
  fc->sw_format = sw;
  fc->width = width;
  fc->height = height;
  if (int err = av_hwframe_ctx_init(drm_frames_); err < 0)
    return core::Error{fmt::format("DRM frames context: {}", av_error_string(err))};
  if (int err = av_hwframe_ctx_create_derived(&va_frames_, AV_PIX_FMT_VAAPI, va_device_, drm_frames_, AV_HWFRAME_MAP_READ);
      err < 0)
    return core::Error{fmt::format("VAAPI frames mapped from DRM: {}", av_error_string(err))};

  // The GPU's colour conversion: VAAPI video processing into NV12 surfaces the encoder reads.
  graph_ = avfilter_graph_alloc();
  if (!graph_) return core::Error{"out of memory (filter graph)"};
  std::string args = fmt::format("video_size={}x{}:pix_fmt={}:time_base=1/1000:pixel_aspect=1/1", width, height,
                                 int(AV_PIX_FMT_VAAPI));
  if (int err = avfilter_graph_create_filter(&source_, avfilter_get_by_name("buffer"), "in", args.c_str(), nullptr, graph_); err < 0)
    return core::Error{fmt::format("buffer source: {}", av_error_string(err))};
  AVBufferSrcParameters* par = av_buffersrc_parameters_alloc();
  par->hw_frames_ctx = va_frames_;
  int err = av_buffersrc_parameters_set(source_, par);
  av_free(par);
  if (err < 0) return core::Error{fmt::format("buffer source frames: {}", av_error_string(err))};
  if (err = avfilter_graph_create_filter(&sink_, avfilter_get_by_name("buffersink"), "out", nullptr, nullptr, graph_); err < 0)
    return core::Error{fmt::format("buffer sink: {}", av_error_string(err))};
  AVFilterContext* scale = nullptr;
  if (err = avfilter_graph_create_filter(&scale, avfilter_get_by_name("scale_vaapi"), "nv12", "format=nv12", nullptr, graph_); err < 0)
    return core::Error{fmt::format("scale_vaapi: {}", av_error_string(err))};
  if ((err = avfilter_link(source_, 0, scale, 0)) < 0 || (err = avfilter_link(scale, 0, sink_, 0)) < 0)
    return core::Error{fmt::format("linking the VPP graph: {}", av_error_string(err))};
  if (err = avfilter_graph_config(graph_, nullptr); err < 0)
    return core::Error{fmt::format("configuring the VPP graph: {}", av_error_string(err))};

  applied_bitrate_ = bitrate_;
  EncoderConfig cfg = config_;
  cfg.bitrate_bps = applied_bitrate_;
  auto session = FfmpegHwSession::open(vaapi_settings(cfg, low_power_), config_.codec, width, height, config_.fps,
                                       av_buffersink_get_hw_frames_ctx(sink_), AV_PIX_FMT_VAAPI);
  if (!session && low_power_) {
    // Some drivers list the low-power entrypoint but refuse this profile on it.
    low_power_ = false;
    session = FfmpegHwSession::open(vaapi_settings(cfg, false), config_.codec, width, height, config_.fps,
                                    av_buffersink_get_hw_frames_ctx(sink_), AV_PIX_FMT_VAAPI);
  }
  if (!session) return core::Error{session.error()};
  session_ = std::move(*session);
  nv12_ = av_frame_alloc();
  width_ = width;
  height_ = height;
  fourcc_ = drm_fourcc;
  keyframe_requested_ = true;
  return {};
}

core::Result<AVFrame*> VaapiEncoder::import(const core::FrameBufferPtr& buffer) {
  if (auto it = imports_.find(buffer->id()); it != imports_.end()) return it->second.va;
  if (imports_.size() >= kMaxImports) {
    for (auto& [id, imp] : imports_) {
      av_frame_free(&imp.va);
      av_frame_free(&imp.drm);
    }
    imports_.clear();
  }
  // A memfd (QEMU's Scanout surface, the synthetic desktop) reaches the GPU as a udmabuf over
  // the same pages; a real dma-buf goes as it is.
  core::FrameBufferPtr importable = buffer;
  if (buffer->backing() == core::BackingKind::Memory) {
    auto wrapped = wrap_memfd_as_dmabuf(*buffer);
    if (!wrapped) return core::Error{"a memfd frame cannot reach the GPU without a copy: " + wrapped.error()};
    importable = *wrapped;
  }
  auto descriptor = drm_frame_descriptor(*importable);
  if (!descriptor) return core::Error{descriptor.error()};
  Import imp{importable, av_frame_alloc(), av_frame_alloc()};
  auto* desc = static_cast<AVDRMFrameDescriptor*>(av_mallocz(sizeof(AVDRMFrameDescriptor)));
  if (!imp.drm || !imp.va || !desc) {
    av_free(desc);
    av_frame_free(&imp.drm);
    av_frame_free(&imp.va);
    return core::Error{"out of memory (import frames)"};
  }
  *desc = *descriptor;
  imp.drm->format = AV_PIX_FMT_DRM_PRIME;
  imp.drm->width = buffer->width();
  imp.drm->height = buffer->height();
  imp.drm->data[0] = reinterpret_cast<uint8_t*>(desc);
  imp.drm->buf[0] = av_buffer_create(reinterpret_cast<uint8_t*>(desc), sizeof(*desc), free_descriptor, nullptr, 0);
  imp.drm->hw_frames_ctx = av_buffer_ref(drm_frames_);
  imp.va->format = AV_PIX_FMT_VAAPI;
  imp.va->hw_frames_ctx = av_buffer_ref(va_frames_);
  if (int err = av_hwframe_map(imp.va, imp.drm, AV_HWFRAME_MAP_READ); err < 0) {
    av_frame_free(&imp.drm);
    av_frame_free(&imp.va);
    return core::Error{fmt::format("mapping the dma-buf ({} {}, {}x{}) to a VA surface: {}", buffer->format().name(),
                                   core::modifier_name(buffer->format().modifier), buffer->width(), buffer->height(),
                                   av_error_string(err))};
  }
  AVFrame* va = imp.va;
  imports_.emplace(buffer->id(), std::move(imp));
  return va;
}

core::Result<std::vector<core::EncodedFrame>> VaapiEncoder::encode(const core::Frame& frame) {
  if (!frame.buffer) return core::Error{"frame without a buffer"};
  const core::FrameBuffer& fb = *frame.buffer;
  if (!session_ || fb.width() != width_ || fb.height() != height_ || fb.format().fourcc != fourcc_ ||
      bitrate_ != applied_bitrate_) {
    // FFmpeg 5.1's VAAPI encoder cannot change bitrate or size in place: reopen, with an IDR.
    if (session_) ++counters_.reconfigurations;
    if (core::Status s = open_pipeline(fb.width(), fb.height(), fb.format().fourcc); !s) return core::Error{s.error()};
  }
  auto va = import(frame.buffer);
  if (!va) return core::Error{va.error()};
  int err = av_buffersrc_add_frame_flags(source_, *va, AV_BUFFERSRC_FLAG_KEEP_REF);
  if (err < 0) return core::Error{fmt::format("VPP input: {}", av_error_string(err))};
  av_frame_unref(nv12_);
  if (err = av_buffersink_get_frame(sink_, nv12_); err < 0)
    return core::Error{fmt::format("VPP RGB to NV12: {}", av_error_string(err))};
  core::Frame stamped = frame;
  stamped.timestamps.converted_ns = core::monotonic_now_ns();
  bool keyframe = keyframe_requested_.exchange(false);
  auto out = session_->encode(nv12_, keyframe, stamped);
  if (!out) return out;
  counters_.frames += out->size();
  for (const auto& ef : *out) counters_.keyframes += ef.keyframe ? 1 : 0;
  return out;
}

}  // namespace vdistream::encode
