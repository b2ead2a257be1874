#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "encode/decoder.hpp"
#include "encode/pipeline.hpp"
#include "fixtures/reference.hpp"
#include "fixtures/synthetic.hpp"
#include "fixtures/sinks.hpp"
#include "fixtures/wait.hpp"

using namespace vdistream;
using test::make_source;
using namespace std::chrono_literals;
using test::eventually;

namespace {

std::unique_ptr<encode::DesktopPipeline> make_pipeline(int64_t keepalive_ns = int64_t(3600) * 1'000'000'000) {
  encode::PipelineConfig pc;
  pc.name = "test";
  pc.keepalive_interval_ns = keepalive_ns;
  auto p = encode::DesktopPipeline::create(pc, encode::EncoderRegistry::builtin());
  REQUIRE(p.ok());
  return std::move(*p);
}

// Submits the next frame and waits until the pipeline has dealt with it.
void step(capture::SyntheticSource& source, encode::DesktopPipeline& pipeline) {
  auto frame = source.render_next();
  REQUIRE(frame.ok());
  pipeline.submit(std::move(*frame));
  REQUIRE(pipeline.wait_idle(30s));
}

}  // namespace

TEST_CASE("an idle desktop is encoded once and then only skipped", "[pipeline]") {
  auto source = make_source(capture::Workload::Idle);
  auto pipeline = make_pipeline();
  auto sink = std::make_shared<test::CollectingSink>();
  pipeline->add_sink(sink);
  pipeline->start();
  for (int i = 0; i < 60; ++i) step(*source, *pipeline);
  auto s = pipeline->stats();
  CHECK(s.frames_captured == 60);
  CHECK(s.frames_encoded == 1);
  CHECK(s.frames_skipped == 59);
  CHECK(sink->count() == 1);
  CHECK(sink->frames().front()->keyframe);
}

TEST_CASE("an idle desktop sends a keep-alive frame after the keep-alive interval", "[pipeline]") {
  auto source = make_source(capture::Workload::Idle);
  auto pipeline = make_pipeline(50'000'000);
  auto sink = std::make_shared<test::CollectingSink>();
  pipeline->add_sink(sink);
  pipeline->start();
  step(*source, *pipeline);
  REQUIRE(eventually([&] { return pipeline->stats().keepalives >= 2; }));
  auto frames = sink->frames();
  REQUIRE(frames.size() >= 3);
  CHECK_FALSE(frames[1]->keyframe);  // keep-alives are small P-frames
}

namespace {
// A client whose decoder holds one picture back (spice-gtk's stream mode).
class TrailingSink : public test::CollectingSink {
 public:
  bool wants_trailing_frame() const override { return true; }
};
}  // namespace

TEST_CASE("a sink that wants a trailing frame gets one unchanged frame after the last change, and only one",
          "[pipeline]") {
  auto source = make_source(capture::Workload::Idle);
  auto pipeline = make_pipeline();
  auto sink = std::make_shared<TrailingSink>();
  pipeline->add_sink(sink);
  pipeline->start();
  step(*source, *pipeline);
  REQUIRE(eventually([&] { return pipeline->stats().trailing_frames == 1; }));
  for (int i = 0; i < 10; ++i) step(*source, *pipeline);  // nothing changes: skipped, nothing follows
  auto frames = sink->frames();
  REQUIRE(frames.size() == 2);
  CHECK(frames[0]->keyframe);
  CHECK_FALSE(frames[1]->keyframe);
  CHECK(pipeline->stats().keepalives == 0);
  CHECK(pipeline->stats().trailing_frames == 1);
}

TEST_CASE("a desktop nobody watches is not encoded, and a new sink starts with an IDR", "[pipeline]") {
  auto source = make_source(capture::Workload::Typing);
  auto pipeline = make_pipeline();
  pipeline->start();
  for (int i = 0; i < 10; ++i) step(*source, *pipeline);
  CHECK(pipeline->stats().frames_encoded == 0);
  CHECK(pipeline->stats().frames_unwatched == 10);

  auto sink = std::make_shared<test::CollectingSink>();
  pipeline->add_sink(sink);
  REQUIRE(eventually([&] { return sink->count() >= 1; }));  // the IDR comes even if nothing changes
  CHECK(sink->frames().front()->keyframe);

  // What it decodes is the current picture, whole, though the encoder missed ten frames.
  auto dec = encode::Decoder::create(core::Codec::H264);
  REQUIRE(dec.ok());
  auto pics = (*dec)->decode(sink->frames().front()->data);
  REQUIRE(pics.ok());
  REQUIRE(pics->size() == 1);
  auto ref = test::reference_luma(*source, source->next_sequence() - 1);
  CHECK(encode::psnr(pics->front().y, ref) > 35.0);
}

TEST_CASE("keyframe requests made while the encoder is busy cost one IDR", "[pipeline]") {
  auto source = make_source(capture::Workload::Video);
  auto pipeline = make_pipeline();
  auto gate = std::make_shared<test::GateSink>();
  pipeline->add_sink(gate);
  pipeline->start();
  step(*source, *pipeline);  // the first IDR
  const uint64_t before = pipeline->stats().keyframes;

  gate->close_gate();
  auto frame = source->render_next();
  REQUIRE(frame.ok());
  pipeline->submit(std::move(*frame));
  REQUIRE(gate->wait_entered(2));  // the encode thread is now held inside the sink
  for (int i = 0; i < 10; ++i) pipeline->request_keyframe();
  gate->open_gate();
  REQUIRE(eventually([&] { return pipeline->stats().keyframes >= before + 1; }));
  REQUIRE(pipeline->wait_idle(30s));
  // Give a wrongly queued second IDR the chance to appear: step a few idle-ish frames.
  for (int i = 0; i < 3; ++i) step(*source, *pipeline);
  CHECK(pipeline->stats().keyframes == before + 1);
  CHECK(pipeline->stats().keyframe_requests >= 11);
}

TEST_CASE("under a slow encoder newer frames replace older ones and no damage is lost", "[pipeline]") {
  auto source = make_source(capture::Workload::WindowDrag, 640, 360, 4);
  auto pipeline = make_pipeline();
  auto gate = std::make_shared<test::GateSink>();
  pipeline->add_sink(gate);
  pipeline->start();
  step(*source, *pipeline);

  // Hold the encoder while 30 frames arrive: all but the last are replaced in the slot.
  gate->close_gate();
  auto first = source->render_next();
  REQUIRE(first.ok());
  pipeline->submit(std::move(*first));
  REQUIRE(gate->wait_entered(2));
  for (int i = 0; i < 30; ++i) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    pipeline->submit(std::move(*frame));
  }
  gate->open_gate();
  REQUIRE(pipeline->wait_idle(30s));
  auto s = pipeline->stats();
  CHECK(s.frames_replaced == 29);

  // Decoding everything gives exactly the newest picture: merged damage left nothing stale.
  auto dec = encode::Decoder::create(core::Codec::H264);
  REQUIRE(dec.ok());
  encode::DecodedPicture last;
  for (const auto& au : gate->frames()) {
    auto pics = (*dec)->decode(au->data);
    REQUIRE(pics.ok());
    for (auto& p : *pics) last = std::move(p);
  }
  const uint64_t newest = source->next_sequence() - 1;
  auto code = capture::Barcode::read_luma(last.y.data(), uint32_t(last.width), last.width, last.height);
  REQUIRE(code.has_value());
  CHECK(*code == newest);
  CHECK(encode::psnr(last.y, test::reference_luma(*source, newest)) > 35.0);
  CHECK(s.full_frame_copies == 0);
}

TEST_CASE("paced frames come out decodable with increasing barcodes and per-stage latencies", "[pipeline]") {
  capture::SyntheticConfig c;
  c.workload = capture::Workload::Video;
  c.width = 1280;
  c.height = 720;
  c.fps = 60;
  auto source = capture::SyntheticSource::create(c);
  REQUIRE(source.ok());
  auto pipeline = make_pipeline();
  auto sink = std::make_shared<test::CollectingSink>();
  pipeline->add_sink(sink);
  pipeline->start();
  (*source)->set_max_frames(60);
  capture::SourceCallbacks cb;
  cb.on_frame = [&](core::Frame f) { pipeline->submit(std::move(f)); };
  REQUIRE((*source)->start(cb).ok());
  REQUIRE(eventually([&] { return (*source)->finished(); }));
  (*source)->stop();
  REQUIRE(pipeline->wait_idle(30s));

  auto dec = encode::Decoder::create(core::Codec::H264);
  REQUIRE(dec.ok());
  int64_t last = -1;
  size_t decoded = 0;
  for (const auto& au : sink->frames()) {
    auto pics = (*dec)->decode(au->data);
    REQUIRE(pics.ok());
    for (const auto& p : *pics) {
      auto code = capture::Barcode::read_luma(p.y.data(), uint32_t(p.width), p.width, p.height);
      REQUIRE(code.has_value());
      CHECK(int64_t(*code) > last);
      CHECK(*code == au->sequence);
      last = *code;
      ++decoded;
    }
  }
  auto s = pipeline->stats();
  CHECK(decoded == sink->count());
  CHECK(s.frames_encoded + s.frames_replaced + s.frames_skipped == s.frames_captured);
  CHECK(s.total.count() == s.frames_encoded);
  // Stages are ordered on one clock: each stage ends after the previous one.
  for (const auto& au : sink->frames()) {
    const auto& t = au->timestamps;
    CHECK(t.captured_ns > 0);
    CHECK(t.dequeued_ns >= t.captured_ns);
    CHECK(t.converted_ns >= t.dequeued_ns);
    CHECK(t.encoded_ns >= t.converted_ns);
  }
  CHECK(s.full_frame_copies == 0);
}

TEST_CASE("the copy counter counts the damage tracker's whole-picture copies, and only those", "[pipeline]") {
  auto source = make_source(capture::Workload::Video);
  auto pipeline = make_pipeline();
  auto sink = std::make_shared<test::CollectingSink>();
  pipeline->add_sink(sink);
  pipeline->start();
  for (int i = 0; i < 5; ++i) step(*source, *pipeline);  // exact damage: nothing copied
  CHECK(pipeline->stats().full_frame_copies == 0);

  // A source that only knows "the whole frame may have changed" (GVT-g): the tracker fills its
  // shadow once (one whole-picture copy), then copies only what the video region changed.
  for (int i = 0; i < 5; ++i) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    frame->damage = core::DamageRegion::full(frame->width(), frame->height());
    frame->damage_exact = false;
    pipeline->submit(std::move(*frame));
    REQUIRE(pipeline->wait_idle(30s));
  }
  CHECK(pipeline->stats().full_frame_copies == 1);
}
