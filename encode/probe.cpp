#include "encode/probe.hpp"

#include <drm_fourcc.h>
#include <fmt/format.h>

#include <cstring>

#include "core/annexb.hpp"
#include "core/clock.hpp"
#include "core/mapped_buffer.hpp"
#include "encode/software/x264_encoder.hpp"

namespace vdistream::encode {

namespace {
constexpr int32_t kProbeWidth = 256;
constexpr int32_t kProbeHeight = 144;
}  // namespace

EncoderRegistry EncoderRegistry::builtin() {
  EncoderRegistry r;
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

core::Status test_encode(Encoder& encoder) {
  auto buffer = core::FrameBuffer::allocate_memfd(kProbeWidth, kProbeHeight, DRM_FORMAT_XRGB8888, "vdistream-probe");
  if (!buffer) return core::Error{buffer.error()};
  {
    auto mapped = core::MappedBuffer::map(**buffer, core::MappedBuffer::Access::ReadWrite);
    if (!mapped) return core::Error{mapped.error()};
    uint8_t* px = (*mapped)->writable_data();
    for (int32_t y = 0; y < kProbeHeight; ++y)
      for (int32_t x = 0; x < kProbeWidth; ++x) {
        uint8_t* p = px + size_t(y) * (*mapped)->pitch() + size_t(x) * 4;
        p[0] = uint8_t(x), p[1] = uint8_t(y), p[2] = uint8_t(x ^ y), p[3] = 0xff;
      }
  }
  core::Frame frame{*buffer, core::DamageRegion::full(kProbeWidth, kProbeHeight), 0, {}};
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
    } else if (core::Status s = test_encode(**encoder); !s) {
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

}  // namespace vdistream::encode
