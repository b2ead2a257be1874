#include <catch2/catch.hpp>

#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "core/annexb.hpp"
#include "encode/decoder.hpp"
#include "encode/software/x264_encoder.hpp"
#include "fixtures/reference.hpp"
#include "fixtures/synthetic.hpp"

using namespace vdistream;
using test::make_source;

namespace {

std::unique_ptr<encode::Encoder> make_encoder(encode::EncoderConfig c = {}) {
  auto e = encode::X264Encoder::create(c);
  REQUIRE(e.ok());
  return std::move(*e);
}

// Encodes one frame and returns its single access unit.
core::EncodedFrame encode_one(encode::Encoder& enc, const core::Frame& frame) {
  auto out = enc.encode(frame);
  REQUIRE(out.ok());
  REQUIRE(out->size() == 1);  // zero latency: one frame in, one access unit out
  return std::move(out->front());
}

encode::DecodedPicture decode_one(encode::Decoder& dec, const core::EncodedFrame& au) {
  auto pics = dec.decode(au.data);
  REQUIRE(pics.ok());
  REQUIRE(pics->size() == 1);  // the decoder must not hold frames back either
  return std::move(pics->front());
}

// The SPS of an access unit: profile_idc and the constraint flags byte.
std::pair<int, int> sps_profile(const core::EncodedFrame& au) {
  for (const auto& nal : core::split_annexb(au.data))
    if (core::nal_type(core::Codec::H264, nal) == 7 && nal.payload.size() > 3) return {nal.payload[1], nal.payload[2]};
  return {-1, -1};
}

}  // namespace

TEST_CASE("typing decodes with the right barcodes in order and at least 35 dB PSNR", "[encode][x264]") {
  auto source = make_source(capture::Workload::Typing, 1280, 720);
  encode::EncoderConfig cfg;
  cfg.bitrate_bps = 4'000'000;
  auto enc = make_encoder(cfg);
  auto dec = encode::Decoder::create(core::Codec::H264);
  REQUIRE(dec.ok());

  uint32_t last_barcode = 0;
  double first_idr_psnr = 0, worst_after_first_second = 99;
  int decoded = 0;
  for (int i = 0; i < 90; ++i) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    if (i > 0 && frame->damage.empty()) continue;  // nothing changed: the pipeline would not encode it
    auto au = encode_one(*enc, *frame);
    auto pic = decode_one(**dec, au);
    REQUIRE(pic.width == 1280);
    REQUIRE(pic.height == 720);
    auto code = capture::Barcode::read_luma(pic.y.data(), uint32_t(pic.width), pic.width, pic.height);
    REQUIRE(code.has_value());
    CHECK(*code == uint32_t(frame->sequence));
    if (decoded > 0) CHECK(*code > last_barcode);
    last_barcode = *code;
    double p = encode::psnr(pic.y, test::reference_luma(*source, frame->sequence));
    if (decoded == 0) first_idr_psnr = p;
    if (frame->sequence >= 30) worst_after_first_second = std::min(worst_after_first_second, p);
    ++decoded;
  }
  CHECK(decoded > 20);
  // The one-frame VBV starves the first IDR of a whole desktop (about 30 dB at 4 Mbit/s, 720p);
  // the P-frames that follow refine it, and from the first second on every frame is sharp.
  INFO("first IDR " << first_idr_psnr << " dB, worst after 1 s " << worst_after_first_second << " dB");
  CHECK(first_idr_psnr >= 27.0);
  CHECK(worst_after_first_second >= 35.0);
  CHECK(enc->counters().full_frame_copies == 0);
}

TEST_CASE("a requested keyframe arrives as an IDR, and only then", "[encode][x264]") {
  auto source = make_source(capture::Workload::FullMotion, 640, 360);
  auto enc = make_encoder();
  for (int i = 0; i < 20; ++i) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    if (i == 12) enc->request_keyframe();
    auto au = encode_one(*enc, *frame);
    bool expect_idr = i == 0 || i == 12;
    CHECK(au.keyframe == expect_idr);
    CHECK(core::contains_idr(core::Codec::H264, au.data) == expect_idr);
    if (expect_idr) CHECK_FALSE(core::parameter_sets(core::Codec::H264, au.data).empty());
  }
  CHECK(enc->counters().keyframes == 2);
}

TEST_CASE("only damaged tiles are converted, and no frame is copied whole", "[encode][x264]") {
  auto source = make_source(capture::Workload::Typing, 1920, 1080);
  auto enc = make_encoder();
  uint64_t expected_tiles = 0;
  for (int i = 0; i < 30; ++i) {
    auto frame = source->render_next();
    REQUIRE(frame.ok());
    expected_tiles += frame->damage.to_tile_mask(1920, 1080, encode::I420Converter::kTile).count();
    (void)enc->encode(*frame);
  }
  const uint64_t full_frame_tiles = core::TileMask(1920, 1080, encode::I420Converter::kTile).columns() *
                                    core::TileMask(1920, 1080, encode::I420Converter::kTile).rows();
  CHECK(enc->counters().tiles_converted == expected_tiles);
  CHECK(enc->counters().tiles_converted < 2 * full_frame_tiles);  // the first frame, plus a little
  CHECK(enc->counters().full_frame_copies == 0);
}

TEST_CASE("profiles: constrained baseline by default, main on request", "[encode][x264]") {
  auto source = make_source(capture::Workload::Idle, 320, 240);
  auto frame = source->render_next();
  REQUIRE(frame.ok());
  SECTION("constrained baseline") {
    auto au = encode_one(*make_encoder(), *frame);
    auto [profile, flags] = sps_profile(au);
    CHECK(profile == 66);
    CHECK((flags & 0x40) != 0);  // constraint_set1_flag: constrained baseline
  }
  SECTION("main") {
    encode::EncoderConfig c;
    c.profile = encode::H264Profile::Main;
    auto au = encode_one(*make_encoder(c), *frame);
    CHECK(sps_profile(au).first == 77);
  }
}

TEST_CASE("lowering the bitrate while running shrinks the access units", "[encode][x264]") {
  auto source = make_source(capture::Workload::FullMotion, 640, 360);
  encode::EncoderConfig c;
  c.bitrate_bps = 8'000'000;
  auto enc = make_encoder(c);
  auto run = [&](int frames) {
    size_t bytes = 0;
    for (int i = 0; i < frames; ++i) {
      auto frame = source->render_next();
      REQUIRE(frame.ok());
      bytes += encode_one(*enc, *frame).data.size();
    }
    return bytes;
  };
  run(10);  // past the first IDR
  size_t high = run(30);
  enc->set_bitrate(500'000);
  run(5);  // let the rate control settle
  size_t low = run(30);
  INFO("8 Mbit/s: " << high << " bytes, 0.5 Mbit/s: " << low << " bytes");
  CHECK(enc->bitrate() == 500'000u);
  CHECK(low * 3 < high);
}

TEST_CASE("a frame of a new size reopens the encoder with an IDR at that size", "[encode][x264]") {
  auto small = make_source(capture::Workload::FullMotion, 320, 240);
  auto large = make_source(capture::Workload::FullMotion, 640, 480);
  auto enc = make_encoder();
  auto dec = encode::Decoder::create(core::Codec::H264);
  REQUIRE(dec.ok());
  for (int i = 0; i < 3; ++i) decode_one(**dec, encode_one(*enc, *small->render_next()));
  auto au = encode_one(*enc, *large->render_next());
  CHECK(au.keyframe);
  auto pic = decode_one(**dec, au);
  CHECK(pic.width == 640);
  CHECK(pic.height == 480);
  CHECK(enc->counters().reconfigurations == 1);
}

TEST_CASE("an odd-sized desktop is encoded, padded to even", "[encode][x264]") {
  auto source = make_source(capture::Workload::Typing, 641, 361);
  auto enc = make_encoder();
  auto dec = encode::Decoder::create(core::Codec::H264);
  REQUIRE(dec.ok());
  auto pic = decode_one(**dec, encode_one(*enc, *source->render_next()));
  CHECK(pic.width == 642);
  CHECK(pic.height == 362);
}

TEST_CASE("a tiled buffer is refused with a reason, not read", "[encode][x264]") {
  auto source = make_source(capture::Workload::Idle, 64, 64);
  auto good = source->render_next();
  REQUIRE(good.ok());
  std::array<core::Plane, 4> planes;
  planes[0] = core::Plane{core::UniqueFd(dup(good->buffer->plane(0).fd.get())), 0, good->buffer->plane(0).pitch};
  auto tiled = core::FrameBuffer::create(64, 64, {good->buffer->format().fourcc, 0x0100000000000001ull /* X-tiled */},
                                         std::move(planes), 1);
  REQUIRE(tiled.ok());
  core::Frame frame{*tiled, core::DamageRegion::full(64, 64), 1, {}};
  auto out = make_encoder()->encode(frame);
  REQUIRE_FALSE(out.ok());
  CHECK_THAT(out.error(), Catch::Contains("not linear"));
}
