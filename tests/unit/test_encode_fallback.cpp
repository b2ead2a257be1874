#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "core/annexb.hpp"
#include "encode/decoder.hpp"
#include "encode/fallback_encoder.hpp"
#include "encode/pipeline.hpp"
#include "encode/software/x264_encoder.hpp"
#include "fixtures/sinks.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

// A real encoder (x264) that fails on purpose on its Nth encode, as a GPU encoder does when
// its device resets: the stand-in for hardware that cannot exist here.
class FailingEncoder final : public encode::Encoder {
 public:
  FailingEncoder(std::unique_ptr<encode::Encoder> inner, int fail_on) : inner_(std::move(inner)), fail_on_(fail_on) {}
  std::string name() const override { return "failing test encoder"; }
  core::Result<std::vector<core::EncodedFrame>> encode(const core::Frame& frame) override {
    if (++calls_ == fail_on_) return core::Error{"device lost on purpose (3rd frame)"};
    return inner_->encode(frame);
  }
  void request_keyframe() override { inner_->request_keyframe(); }
  void set_bitrate(uint32_t bps) override { inner_->set_bitrate(bps); }
  uint32_t bitrate() const override { return inner_->bitrate(); }
  encode::EncoderCounters counters() const override { return inner_->counters(); }

 private:
  std::unique_ptr<encode::Encoder> inner_;
  int fail_on_;
  int calls_ = 0;
};

core::Result<std::unique_ptr<encode::Encoder>> make_failing(const encode::EncoderConfig& c, int fail_on) {
  auto inner = encode::X264Encoder::create(c);
  if (!inner) return core::Error{inner.error()};
  return std::unique_ptr<encode::Encoder>(new FailingEncoder(std::move(*inner), fail_on));
}

encode::FallbackLink failing_link(int fail_on = 3) {
  return {"failing", [fail_on](const encode::EncoderConfig& c) { return make_failing(c, fail_on); }};
}
encode::FallbackLink software_link() { return {"software", encode::X264Encoder::create}; }
encode::FallbackLink refusing_link(const std::string& name, std::string why) {
  return {name, [why](const encode::EncoderConfig&) -> core::Result<std::unique_ptr<encode::Encoder>> { return core::Error{why}; }};
}

std::unique_ptr<capture::SyntheticSource> make_source() {
  capture::SyntheticConfig c;
  c.workload = capture::Workload::Typing;
  c.width = 640;
  c.height = 360;
  auto s = capture::SyntheticSource::create(c);
  REQUIRE(s.ok());
  return std::move(*s);
}

// Decodes every access unit in order; returns the barcode each picture shows.
std::vector<uint32_t> decode_barcodes(const std::vector<core::EncodedFrame>& aus, uint64_t& decoder_errors) {
  auto dec = encode::Decoder::create(core::Codec::H264);
  REQUIRE(dec.ok());
  std::vector<uint32_t> codes;
  for (const auto& au : aus) {
    auto pics = (*dec)->decode(au.data);
    REQUIRE(pics.ok());
    for (const auto& pic : *pics) {
      auto code = capture::Barcode::read_luma(pic.y.data(), uint32_t(pic.width), pic.width, pic.height);
      REQUIRE(code.has_value());
      codes.push_back(*code);
    }
  }
  decoder_errors = (*dec)->errors();
  return codes;
}

}  // namespace

TEST_CASE("a backend failing on its 3rd frame hands over with an IDR and the stream stays decodable", "[encode][fallback]") {
  encode::EncoderConfig c;
  auto wrapper = encode::FallbackEncoder::create({failing_link(3), software_link()}, c, "fallback-test");
  REQUIRE(wrapper.ok());
  encode::FallbackEncoder& enc = **wrapper;
  CHECK(enc.current_backend() == "failing");

  auto source = make_source();
  std::vector<core::EncodedFrame> aus;
  std::vector<uint32_t> expected;
  for (int i = 0; aus.size() < 8 && i < 200; ++i) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    if (i > 0 && frame->damage.empty()) continue;
    auto out = enc.encode(*frame);
    REQUIRE(out.ok());  // the failure never reaches the caller
    REQUIRE(out->size() == 1);
    expected.push_back(uint32_t(frame->sequence));
    aus.push_back(std::move(out->front()));
  }
  REQUIRE(aus.size() == 8);
  CHECK(enc.current_backend() == "software");
  CHECK_THAT(enc.name(), Catch::Contains("libx264") && Catch::Contains("fell back: failing failed at frame"));

  // Frame 1 is the first backend's IDR; frame 3 (index 2) is the new backend's; no others.
  for (size_t i = 0; i < aus.size(); ++i) {
    INFO("access unit " << i);
    const bool idr = core::contains_idr(core::Codec::H264, aus[i].data);
    CHECK(aus[i].keyframe == (i == 0 || i == 2));
    CHECK(idr == (i == 0 || i == 2));
  }

  uint64_t errors = 0;
  auto codes = decode_barcodes(aus, errors);
  CHECK(errors == 0);
  CHECK(codes == expected);  // every picture decoded, in order, the hand-over frame included

  auto events = enc.events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].from == "failing");
  CHECK(events[0].to == "software");
  CHECK_THAT(events[0].reason, Catch::Contains("device lost on purpose"));
  CHECK(events[0].at_frame == 2);
  CHECK(enc.counters().keyframes == 2);
  CHECK(enc.counters().frames == 8);
}

TEST_CASE("a backend that refuses a new session is passed over for this desktop alone", "[encode][fallback]") {
  encode::EncoderConfig c;
  auto first = encode::FallbackEncoder::create({refusing_link("nvenc", "OpenEncodeSessionEx: no encode session left"), software_link()}, c);
  REQUIRE(first.ok());
  CHECK((*first)->current_backend() == "software");
  CHECK_THAT((*first)->name(), Catch::EndsWith("(fell back: nvenc would not open: OpenEncodeSessionEx: no encode session left)"));
  auto events = (*first)->events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].from == "nvenc");
  CHECK(events[0].to.empty());
  CHECK_THAT(events[0].reason, Catch::Contains("no encode session left"));

  // Another desktop whose session opens keeps its backend.
  auto second = encode::FallbackEncoder::create({failing_link(1000), software_link()}, c);
  REQUIRE(second.ok());
  CHECK((*second)->current_backend() == "failing");
  CHECK((*second)->events().empty());
  CHECK((*second)->name() == "failing test encoder");
}

TEST_CASE("when no backend opens, or the last one fails, the error carries every reason", "[encode][fallback]") {
  encode::EncoderConfig c;
  auto none = encode::FallbackEncoder::create({refusing_link("nvenc", "libcuda.so.1 not found"),
                                               refusing_link("vaapi", "no render node in /dev/dri")}, c);
  REQUIRE_FALSE(none.ok());
  CHECK_THAT(none.error(), Catch::Contains("libcuda.so.1 not found") && Catch::Contains("no render node in /dev/dri"));

  auto only = encode::FallbackEncoder::create({failing_link(2)}, c);
  REQUIRE(only.ok());
  auto source = make_source();
  auto f1 = source->render_next();
  REQUIRE(f1.ok());
  REQUIRE((*only)->encode(*f1).ok());
  auto f2 = source->render_next();
  REQUIRE(f2.ok());
  auto out = (*only)->encode(*f2);
  REQUIRE_FALSE(out.ok());
  CHECK_THAT(out.error(), Catch::Contains("device lost on purpose") && Catch::Contains("no backend left"));
}

TEST_CASE("a re-probe brings an earlier backend back with an IDR", "[encode][fallback]") {
  auto available = std::make_shared<std::atomic<bool>>(false);
  encode::FallbackLink flaky{"vaapi", [available](const encode::EncoderConfig& c) -> core::Result<std::unique_ptr<encode::Encoder>> {
                               if (!*available) return core::Error{"no render node in /dev/dri"};
                               return encode::X264Encoder::create(c);
                             }};
  encode::EncoderConfig c;
  auto wrapper = encode::FallbackEncoder::create({flaky, software_link()}, c);
  REQUIRE(wrapper.ok());
  encode::FallbackEncoder& enc = **wrapper;
  REQUIRE(enc.current_backend() == "software");

  auto source = make_source();
  std::vector<core::EncodedFrame> aus;
  std::vector<uint32_t> expected;
  auto encode_next = [&] {
    for (;;) {
      auto frame = source->render_next();
      REQUIRE(frame.ok());
      if (!aus.empty() && frame->damage.empty()) continue;
      auto out = enc.encode(*frame);
      REQUIRE(out.ok());
      REQUIRE(out->size() == 1);
      expected.push_back(uint32_t(frame->sequence));
      aus.push_back(std::move(out->front()));
      return;
    }
  };
  encode_next();
  encode_next();
  enc.request_reprobe();  // still unavailable: stays on software, no keyframe
  encode_next();
  CHECK(enc.current_backend() == "software");
  CHECK_FALSE(aus.back().keyframe);

  *available = true;
  enc.request_reprobe();
  encode_next();
  CHECK(enc.current_backend() == "vaapi");
  CHECK(aus.back().keyframe);
  encode_next();

  uint64_t errors = 0;
  CHECK(decode_barcodes(aus, errors) == expected);
  CHECK(errors == 0);
  auto events = enc.events();
  REQUIRE_FALSE(events.empty());
  CHECK(events.back().from == "software");
  CHECK(events.back().to == "vaapi");
}

TEST_CASE("the desktop pipeline hands over mid-stream and its viewers get a decodable stream", "[encode][fallback][pipeline]") {
  encode::EncoderRegistry registry;
  registry.add({"failing", "x264 that fails on its 3rd frame", [](const encode::EncoderConfig& c) { return make_failing(c, 3); }});
  registry.add({"software", "x264", encode::X264Encoder::create});
  encode::PipelineConfig pc;
  pc.name = "fallback-pipeline";
  pc.encoder_preference = {"failing", "software"};
  pc.keepalive_interval_ns = int64_t(3600) * 1'000'000'000;
  auto pipeline = encode::DesktopPipeline::create(pc, registry);
  REQUIRE(pipeline.ok());
  REQUIRE((*pipeline)->encoder_choice().backend == "failing");  // its probe's test encode worked

  auto sink = std::make_shared<test::CollectingSink>();
  (*pipeline)->add_sink(sink);
  (*pipeline)->start();
  auto source = make_source();
  std::vector<uint32_t> expected;
  for (int i = 0; expected.size() < 6 && i < 200; ++i) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    if (i > 0 && frame->damage.empty()) continue;
    expected.push_back(uint32_t(frame->sequence));
    (*pipeline)->submit(std::move(*frame));
    REQUIRE((*pipeline)->wait_idle(30s));
  }
  (*pipeline)->stop();

  auto frames = sink->frames();
  REQUIRE(frames.size() == expected.size());  // no frame lost at the hand-over
  std::vector<core::EncodedFrame> aus;
  for (const auto& f : frames) aus.push_back(*f);
  uint64_t errors = 0;
  CHECK(decode_barcodes(aus, errors) == expected);
  CHECK(errors == 0);
  CHECK(aus[2].keyframe);
  CHECK((*pipeline)->stats().encode_errors == 0);
  CHECK_THAT((*pipeline)->encoder_name(), Catch::Contains("libx264"));
}
