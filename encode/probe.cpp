#include "encode/probe.hpp"

#include <drm_fourcc.h>
#include <fmt/format.h>

#include <cstring>

#include "core/annexb.hpp"
#include "core/clock.hpp"
#include "core/mapped_buffer.hpp"
#include "encode/fallback_encoder.hpp"
#include "encode/nvenc/nvenc_encoder.hpp"
#include "encode/onevpl/onevpl_encoder.hpp"
#include "encode/software/x264_encoder.hpp"
#include "encode/vaapi/udmabuf.hpp"
#include "encode/vaapi/vaapi_encoder.hpp"

namespace vdistream::encode {

namespace {
constexpr int32_t kProbeWidth = 256;
constexpr int32_t kProbeHeight = 144;
}  // namespace

EncoderRegistry EncoderRegistry::builtin(const HardwareOptions& hw) {
  EncoderRegistry r;
  r.add({"nvenc", "NVIDIA NVENC through FFmpeg (h264_nvenc/hevc_nvenc), CUDA input, driver loaded at run time",
         [hw](const EncoderConfig& c) { return NvencEncoder::create(c, hw); }, false});
  r.add({"onevpl", "Intel oneVPL (API 2.8): dma-buf as a VA surface, VPP RGB4 to NV12, low-latency encode",
         [hw](const EncoderConfig& c) { return OneVplEncoder::create(c, hw); }, true});
  r.add({"vaapi", "VAAPI through FFmpeg: dma-buf mapped to a VA surface, scale_vaapi to NV12, h264_vaapi/hevc_vaapi",
         [hw](const EncoderConfig& c) { return VaapiEncoder::create(c, hw); }, true});
  r.add({"software", "libx264 through libavcodec, libyuv colour conversion of damaged tiles", X264Encoder::create});
  return r;
}

const std::vector<std::string>& EncoderRegistry::default_preference() {
  static const std::vector<std::string> order{"nvenc", "onevpl", "vaapi", "software"};
  return order;
}

void EncoderRegistry::add(Backend backend) { backends_.push_back(std::move(backend)); }

const Backend* EncoderRegistry::find(const std::string& name) const {
  for (const auto& b : backends_)
    if (b.name == name) return &b;
  return nullptr;
}

namespace {

void draw_probe_picture(uint8_t* px, uint32_t pitch, int32_t width, int32_t height) {
  for (int32_t y = 0; y < height; ++y)
    for (int32_t x = 0; x < width; ++x) {
      uint8_t* p = px + size_t(y) * pitch + size_t(x) * 4;
      p[0] = uint8_t(x), p[1] = uint8_t(y), p[2] = uint8_t(x ^ y), p[3] = 0xff;
    }
}

core::Result<core::FrameBufferPtr> make_memfd_picture(int32_t width, int32_t height) {
  auto buffer = core::FrameBuffer::allocate_memfd(width, height, DRM_FORMAT_XRGB8888, "vdistream-probe");
  if (!buffer) return core::Error{buffer.error()};
  auto mapped = core::MappedBuffer::map(**buffer, core::MappedBuffer::Access::ReadWrite);
  if (!mapped) return core::Error{mapped.error()};
  draw_probe_picture((*mapped)->writable_data(), (*mapped)->pitch(), width, height);
  return buffer;
}

}  // namespace

core::Result<core::FrameBufferPtr> make_udmabuf(int32_t width, int32_t height) {
  auto memfd = make_memfd_picture(width, height);
  if (!memfd) return memfd;
  return wrap_memfd_as_dmabuf(**memfd);
}

core::Status test_encode(Encoder& encoder, bool dmabuf) {
  core::Result<core::FrameBufferPtr> buffer = core::Error{"no dma-buf asked for"};
  if (dmabuf) buffer = make_udmabuf(kProbeWidth, kProbeHeight);
  if (!buffer) buffer = make_memfd_picture(kProbeWidth, kProbeHeight);
  if (!buffer) return core::Error{buffer.error()};
  core::Frame frame{*buffer, core::DamageRegion::full(kProbeWidth, kProbeHeight), true, 0, {}};
  frame.timestamps.captured_ns = core::monotonic_now_ns();
  encoder.request_keyframe();
  auto out = encoder.encode(frame);
  if (!out) return core::Error{"test encode failed: " + out.error()};
  if (out->empty()) return core::Error{"test encode produced no access unit (the encoder buffers frames)"};
  const core::EncodedFrame& au = out->front();
  if (!au.keyframe || !core::contains_idr(au.codec, au.data))
    return core::Error{"test encode did not produce an IDR access unit when asked for one"};
  return {};
}

std::vector<ProbeOutcome> EncoderRegistry::probe(const EncoderConfig& config,
                                                 const std::vector<std::string>& preference) const {
  std::vector<ProbeOutcome> outcomes;
  for (const std::string& name : preference) {
    ProbeOutcome o{name, false, ""};
    const Backend* backend = find(name);
    if (!backend) {
      o.reason = "unavailable: not built into this version of vdistream";
      outcomes.push_back(o);
      continue;
    }
    EncoderConfig probe_config = config;
    probe_config.width = kProbeWidth;
    probe_config.height = kProbeHeight;
    int64_t t0 = core::monotonic_now_ns();
    auto encoder = backend->create(probe_config);
    if (!encoder) {
      o.reason = "unavailable: " + encoder.error();
    } else if (core::Status s = test_encode(**encoder, backend->imports_dmabuf); !s) {
      o.reason = "unavailable: " + s.error();
    } else {
      o.usable = true;
      o.reason = fmt::format("usable: {} (test encode {:.1f} ms)", (*encoder)->name(),
                             double(core::monotonic_now_ns() - t0) / 1e6);
    }
    outcomes.push_back(o);
  }
  return outcomes;
}

core::Result<EncoderChoice> EncoderRegistry::choose(const EncoderConfig& config,
                                                    const std::vector<std::string>& preference) const {
  EncoderChoice choice;
  choice.outcomes = probe(config, preference);
  std::string passed_over;
  for (const ProbeOutcome& o : choice.outcomes) {
    if (o.usable) {
      choice.backend = o.backend;
      choice.why = passed_over.empty()
                       ? fmt::format("{}: first in the preference order and its test encode worked", o.backend)
                       : fmt::format("{}: the first usable backend; passed over {}", o.backend, passed_over);
      return choice;
    }
    if (!passed_over.empty()) passed_over += "; ";
    passed_over += o.backend + " (" + o.reason + ")";
  }
  return core::Error{"no usable encoder backend: " + (passed_over.empty() ? "none in the preference list" : passed_over)};
}

Backend EncoderRegistry::with_fallback(const EncoderChoice& choice, const std::string& log_scope) const {
  std::vector<FallbackLink> chain;
  bool after_chosen = false;
  for (const ProbeOutcome& o : choice.outcomes) {
    after_chosen = after_chosen || o.backend == choice.backend;
    const Backend* b = find(o.backend);
    if (after_chosen && o.usable && b) chain.push_back({b->name, b->create});
  }
  const Backend* chosen = find(choice.backend);
  Backend wrapped{choice.backend, chosen ? chosen->description : "", nullptr, chosen && chosen->imports_dmabuf};
  wrapped.create = [chain, log_scope](const EncoderConfig& config) -> core::Result<std::unique_ptr<Encoder>> {
    auto e = FallbackEncoder::create(chain, config, log_scope);
    if (!e) return core::Error{e.error()};
    return std::unique_ptr<Encoder>(std::move(*e));
  };
  return wrapped;
}

}  // namespace vdistream::encode
