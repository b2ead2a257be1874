// MJPEG for clients without H.264: JpegStream alone, and behind the pipeline.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "encode/decoder.hpp"
#include "encode/jpeg_stream.hpp"
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

// Full-range BT.601 luma, as JFIF defines it (libyuv's ARGBToJ420 rounds within one step of it).
std::vector<uint8_t> full_range_luma(const capture::SyntheticSource& source, uint64_t sequence) {
  const auto px = test::reference_xrgb(source, sequence);
  std::vector<uint8_t> y(px.size() / 4);
  for (size_t i = 0; i < y.size(); ++i) {
    const uint8_t* p = &px[i * 4];  // B, G, R, X
    y[i] = uint8_t((77 * p[2] + 150 * p[1] + 29 * p[0] + 128) >> 8);
  }
  return y;
}

bool is_jpeg(const core::EncodedFrame& f) {
  return f.codec == core::Codec::Mjpeg && f.keyframe && f.data.size() > 4 && f.data[0] == 0xff && f.data[1] == 0xd8 &&
         f.data[f.data.size() - 2] == 0xff && f.data[f.data.size() - 1] == 0xd9;  // SOI ... EOI
}

encode::DecodedPicture decode_jpeg(const core::EncodedFrame& f) {
  auto dec = encode::Decoder::create(core::Codec::Mjpeg);
  REQUIRE(dec.ok());
  auto pics = (*dec)->decode(f.data);
  REQUIRE(pics.ok());
  REQUIRE(pics->size() == 1);
  return std::move(pics->front());
}

// A sink that wants frames only when told to (a SPICE client that has or has not chosen MJPEG).
class SwitchedSink : public test::CollectingSink {
 public:
  bool wants_frames() const override { return wants; }
  std::atomic<bool> wants{false};
};

}  // namespace

TEST_CASE("MJPEG pictures of a dragged window decode to the desktop with its barcodes in order", "[encode][mjpeg]") {
  auto source = make_source(capture::Workload::WindowDrag, 640, 360);
  auto sink = std::make_shared<test::CollectingSink>();
  auto stream = encode::JpegStream::create({}, sink);
  REQUIRE(stream.ok());
  uint64_t expected_tiles = 0;
  for (int i = 0; i < 40; ++i) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    if (i > 0 && frame->damage.empty()) continue;
    (*stream)->on_picture(*frame);  // damage only, after the first (whole) picture
    REQUIRE((*stream)->wait_idle(30s));
    auto got = sink->frames();
    REQUIRE(!got.empty());
    const core::EncodedFrame& jpeg = *got.back();
    CHECK(is_jpeg(jpeg));
    CHECK(jpeg.sequence == frame->sequence);
    CHECK(jpeg.timestamps.encoded_ns >= jpeg.timestamps.converted_ns);
    CHECK(jpeg.timestamps.converted_ns >= jpeg.timestamps.captured_ns);
    const auto pic = decode_jpeg(jpeg);
    REQUIRE(pic.width == 640);
    REQUIRE(pic.height == 360);
    auto code = capture::Barcode::read_luma(pic.y.data(), uint32_t(pic.width), pic.width, pic.height);
    REQUIRE(code.has_value());
    CHECK(*code == uint32_t(frame->sequence));
    // Stale tiles (damage converted wrongly) would pull this far down.
    CHECK(encode::psnr(pic.y, full_range_luma(*source, frame->sequence)) >= 35.0);
    expected_tiles = (*stream)->stats().tiles_converted;
  }
  const auto st = (*stream)->stats();
  CHECK(st.jpegs == sink->count());
  CHECK(st.errors == 0);
  // Only damage was converted: far fewer tiles than a whole picture each time.
  const uint64_t whole = uint64_t((640 / 16) * ((360 + 15) / 16));
  CHECK(expected_tiles < whole * st.pictures / 2);
}

TEST_CASE("MJPEG: pictures that come while a JPEG is being made go into the next one and the last always goes out",
          "[encode][mjpeg]") {
  auto source = make_source(capture::Workload::Typing, 640, 360);
  auto sink = std::make_shared<test::GateSink>();
  auto stream = encode::JpegStream::create({}, sink);
  REQUIRE(stream.ok());
  sink->close_gate();
  auto first = source->render_next();
  REQUIRE(first.ok());
  (*stream)->on_picture(*first);
  REQUIRE(sink->wait_entered(1));  // the JPEG thread is held inside the sink
  uint64_t last_sequence = 0;
  int given = 0;
  while (given < 8) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    if (frame->damage.empty()) continue;
    (*stream)->on_picture(*frame);
    last_sequence = frame->sequence;
    ++given;
  }
  sink->open_gate();
  REQUIRE((*stream)->wait_idle(30s));
  const auto got = sink->frames();
  REQUIRE(got.size() == 2);
  CHECK(got.back()->sequence == last_sequence);
  auto code = capture::Barcode::read_luma(decode_jpeg(*got.back()).y.data(), 640, 640, 360);
  REQUIRE(code.has_value());
  CHECK(*code == uint32_t(last_sequence));
  CHECK((*stream)->stats().merged == 7);
}

TEST_CASE("MJPEG behind the pipeline: nothing until the sink wants pictures and then the whole picture at once",
          "[encode][mjpeg][pipeline]") {
  auto source = make_source(capture::Workload::Typing, 640, 360);
  encode::PipelineConfig pc;
  pc.name = "mjpeg-test";
  pc.keepalive_interval_ns = int64_t(3600) * 1'000'000'000;
  auto pipeline = encode::DesktopPipeline::create(pc, encode::EncoderRegistry::builtin());
  REQUIRE(pipeline.ok());
  auto sink = std::make_shared<SwitchedSink>();
  REQUIRE((*pipeline)->add_sink(sink, core::Codec::Mjpeg).ok());
  CHECK_FALSE((*pipeline)->add_sink(std::make_shared<test::CollectingSink>(), core::Codec::H265).ok());
  (*pipeline)->start();

  uint64_t last_changed = 0;
  for (int i = 0; i < 6; ++i) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    if (!frame->damage.empty()) last_changed = frame->sequence;
    (*pipeline)->submit(std::move(*frame));
    REQUIRE((*pipeline)->wait_idle(30s));
  }
  CHECK(sink->count() == 0);  // nobody wants pictures yet

  // A client chooses MJPEG: it asks for a keyframe, and gets the current picture with no new frame.
  sink->wants = true;
  (*pipeline)->request_keyframe();
  REQUIRE(eventually([&] { return sink->count() == 1; }));
  auto code = capture::Barcode::read_luma(decode_jpeg(*sink->frames().back()).y.data(), 640, 640, 360);
  REQUIRE(code.has_value());
  CHECK(*code == uint32_t(last_changed));

  // Then each change, while H.264 rests: no encoded sink wants frames.
  uint64_t changed_frames = 0;
  while (changed_frames < 3) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    if (frame->damage.empty()) continue;
    ++changed_frames;
    last_changed = frame->sequence;
    (*pipeline)->submit(std::move(*frame));
    REQUIRE((*pipeline)->wait_idle(30s));
    REQUIRE(eventually([&] { return !sink->frames().empty() && sink->frames().back()->sequence == last_changed; }));
  }
  CHECK((*pipeline)->stats().frames_encoded == 0);
  CHECK((*pipeline)->jpeg_stats().jpegs == sink->count());

  // Removed: no more pictures.
  (*pipeline)->remove_sink(sink);
  const size_t before = sink->count();
  for (int i = 0; i < 10; ++i) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    (*pipeline)->submit(std::move(*frame));
  }
  REQUIRE((*pipeline)->wait_idle(30s));
  CHECK(sink->count() == before);
  (*pipeline)->stop();
}
