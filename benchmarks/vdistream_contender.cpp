// vdistream's encoder backends as a Contender: damage-only conversion, unchanged macroblocks
// flagged, exactly as the desktop pipeline drives them.
#include <fmt/format.h>

#include "benchmarks/contender.hpp"
#include "core/clock.hpp"

namespace vdistream::bench {

namespace {

class VdistreamContender final : public Contender {
 public:
  VdistreamContender(std::string backend, std::unique_ptr<encode::Encoder> encoder)
      : backend_(std::move(backend)), encoder_(std::move(encoder)) {}

  std::string name() const override { return "vdistream-" + backend_; }
  std::string description() const override { return encoder_->name(); }

  core::Result<Encoded> encode(const core::Frame& frame, const uint8_t*, uint32_t) override {
    core::Frame f = frame;
    f.timestamps.dequeued_ns = core::monotonic_now_ns();
    auto out = encoder_->encode(f);
    if (!out) return core::Error{out.error()};
    if (out->empty()) return core::Error{fmt::format("{} produced no access unit for frame {}", name(), frame.sequence)};
    Encoded e;
    const core::FrameTimestamps& ts = out->front().timestamps;
    e.convert_ns = ts.converted_ns - f.timestamps.dequeued_ns;
    e.encode_ns = out->back().timestamps.encoded_ns - ts.converted_ns;
    for (const core::EncodedFrame& au : *out) e.data.insert(e.data.end(), au.data.begin(), au.data.end());
    return e;
  }

 private:
  std::string backend_;
  std::unique_ptr<encode::Encoder> encoder_;
};

}  // namespace

core::Result<std::unique_ptr<Contender>> make_vdistream_contender(const encode::Backend& backend, const ContenderConfig& c) {
  encode::EncoderConfig ec;
  ec.width = c.width;
  ec.height = c.height;
  ec.fps = c.fps;
  ec.bitrate_bps = c.bitrate_kbps * 1000;
  ec.software_preset = c.preset;
  ec.threads = c.threads;
  auto encoder = backend.create(ec);
  if (!encoder) return core::Error{fmt::format("{}: {}", backend.name, encoder.error())};
  return std::unique_ptr<Contender>(new VdistreamContender(backend.name, std::move(*encoder)));
}

}  // namespace vdistream::bench
