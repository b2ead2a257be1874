#include <catch2/catch.hpp>

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/annexb.hpp"

namespace core = vdistream::core;
using core::Codec;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes to_bytes(std::span<const uint8_t> s) { return Bytes(s.begin(), s.end()); }

const Bytes kStart3{0, 0, 1};
const Bytes kStart4{0, 0, 0, 1};

// H.264 NAL units (header byte first). The SPS holds a zero byte inside, as real ones do.
const Bytes kAud{0x09, 0xf0};
const Bytes kSps{0x67, 0x42, 0x00, 0x1f, 0x95, 0xa8};
const Bytes kPps{0x68, 0xce, 0x3c, 0x80};
const Bytes kSei{0x06, 0x05, 0x01, 0x80};
const Bytes kIdr{0x65, 0x88, 0x84, 0x00, 0x21};
const Bytes kNonIdr{0x41, 0x9a, 0x02};

// H.265 NAL units: two-byte headers, type in bits 1..6 of the first byte.
const Bytes kVps265{0x40, 0x01, 0x0c, 0x01};
const Bytes kSps265{0x42, 0x01, 0x01, 0x01};
const Bytes kPps265{0x44, 0x01, 0xc1, 0x72};
const Bytes kIdrWRadl265{0x26, 0x01, 0xaf, 0x04};
const Bytes kIdrNLp265{0x28, 0x01, 0xaf, 0x04};
const Bytes kCra265{0x2a, 0x01, 0xaf, 0x04};
const Bytes kTrail265{0x02, 0x01, 0xd0, 0x08};

std::vector<Bytes> payloads(const Bytes& stream) {
  std::vector<Bytes> out;
  for (const core::NalUnit& nal : core::split_annexb(stream)) out.push_back(to_bytes(nal.payload));
  return out;
}

core::NalUnit header_only(const Bytes& nal) { return core::NalUnit{std::span<const uint8_t>(nal), {}}; }

}  // namespace

TEST_CASE("a stream with 4- and 3-byte start codes splits into its NAL units", "[annexb]") {
  Bytes stream = concat({kStart4, kSps, kStart3, kPps, kStart4, kIdr});
  auto nals = core::split_annexb(stream);
  REQUIRE(nals.size() == 3);
  CHECK(to_bytes(nals[0].payload) == kSps);
  CHECK(to_bytes(nals[1].payload) == kPps);
  CHECK(to_bytes(nals[2].payload) == kIdr);
  CHECK(to_bytes(nals[0].with_start_code) == concat({kStart4, kSps}));
  CHECK(to_bytes(nals[1].with_start_code) == concat({kStart3, kPps}));
  CHECK(to_bytes(nals[2].with_start_code) == concat({kStart4, kIdr}));
  // The spans point into the stream: no copy.
  CHECK(nals[0].payload.data() == stream.data() + 4);
}

TEST_CASE("zero bytes between NAL units belong to the next start code", "[annexb]") {
  Bytes stream = concat({kStart3, kAud, {0, 0}, kStart4, kSps, {0}, kStart3, kPps});
  auto p = payloads(stream);
  REQUIRE(p.size() == 3);
  CHECK(p[0] == kAud);
  CHECK(p[1] == kSps);
  CHECK(p[2] == kPps);
}

TEST_CASE("zero bytes after the last NAL unit are not part of it", "[annexb]") {
  // trailing_zero_8bits (H.264 B.1); encoders' output buffers are often padded with zeros.
  // A NAL unit never ends in 0x00 (7.4.1), so stripping them is always right.
  Bytes stream = concat({kStart4, kIdr, {0, 0, 0, 0}});
  auto nals = core::split_annexb(stream);
  REQUIRE(nals.size() == 1);
  CHECK(to_bytes(nals[0].payload) == kIdr);
  CHECK(to_bytes(nals[0].with_start_code) == concat({kStart4, kIdr}));

  CHECK(payloads(concat({kStart3, kNonIdr, {0}})) == std::vector<Bytes>{kNonIdr});
}

TEST_CASE("leading zero bytes before the first start code are skipped", "[annexb]") {
  CHECK(payloads(concat({{0, 0, 0, 0, 0}, kStart4, kSps})) == std::vector<Bytes>{kSps});
  CHECK(payloads(concat({{0xde, 0xad}, kStart3, kPps})) == std::vector<Bytes>{kPps});
}

TEST_CASE("empty input, garbage and bare start codes give no NAL units", "[annexb]") {
  CHECK(core::split_annexb({}).empty());
  CHECK(payloads(Bytes{0x12, 0x34, 0x56, 0x78, 0x9a}).empty());
  CHECK(payloads(Bytes{0}).empty());
  CHECK(payloads(Bytes{0, 0}).empty());
  CHECK(payloads(Bytes{0, 0, 0}).empty());
  CHECK(payloads(kStart3).empty());
  CHECK(payloads(kStart4).empty());
  CHECK(payloads(concat({kStart4, kStart4, kStart3})).empty());
  CHECK(payloads(concat({kStart4, {0, 0, 0}})).empty());
}

TEST_CASE("an emulation prevention byte is not a start code", "[annexb]") {
  Bytes nal{0x65, 0x00, 0x00, 0x03, 0x01, 0x7f};
  CHECK(payloads(concat({kStart4, nal})) == std::vector<Bytes>{nal});
}

TEST_CASE("the NAL type of an H.264 header is its low five bits", "[annexb]") {
  CHECK(core::nal_type(Codec::H264, header_only(kSps)) == 7);
  CHECK(core::nal_type(Codec::H264, header_only(kPps)) == 8);
  CHECK(core::nal_type(Codec::H264, header_only(kIdr)) == 5);
  CHECK(core::nal_type(Codec::H264, header_only(kNonIdr)) == 1);
  CHECK(core::nal_type(Codec::H264, header_only(kSei)) == 6);
  CHECK(core::nal_type(Codec::H264, header_only(kAud)) == 9);
  CHECK(core::nal_type(Codec::H264, core::NalUnit{}) == -1);
}

TEST_CASE("the NAL type of an H.265 header is bits 1 to 6 of its first byte", "[annexb]") {
  CHECK(core::nal_type(Codec::H265, header_only(kVps265)) == 32);
  CHECK(core::nal_type(Codec::H265, header_only(kSps265)) == 33);
  CHECK(core::nal_type(Codec::H265, header_only(kPps265)) == 34);
  CHECK(core::nal_type(Codec::H265, header_only(kIdrWRadl265)) == 19);
  CHECK(core::nal_type(Codec::H265, header_only(kIdrNLp265)) == 20);
  CHECK(core::nal_type(Codec::H265, header_only(kCra265)) == 21);
  CHECK(core::nal_type(Codec::H265, header_only(kTrail265)) == 1);
  CHECK(core::nal_type(Codec::H265, header_only(Bytes{0x81, 0x01})) == 0);  // forbidden bit ignored
  CHECK(core::nal_type(Codec::H265, core::NalUnit{}) == -1);
}

TEST_CASE("an access unit with an IDR slice is recognised as one", "[annexb]") {
  CHECK(core::contains_idr(Codec::H264, concat({kStart4, kAud, kStart4, kSps, kStart4, kPps, kStart3, kIdr})));
  CHECK_FALSE(core::contains_idr(Codec::H264, concat({kStart4, kAud, kStart4, kNonIdr})));
  CHECK_FALSE(core::contains_idr(Codec::H264, Bytes{}));
  CHECK_FALSE(core::contains_idr(Codec::H264, kIdr));  // no start code: not a NAL unit

  CHECK(core::contains_idr(Codec::H265, concat({kStart4, kVps265, kStart4, kSps265, kStart4, kPps265, kStart4,
                                                 kIdrWRadl265})));
  CHECK(core::contains_idr(Codec::H265, concat({kStart4, kIdrNLp265})));
  CHECK_FALSE(core::contains_idr(Codec::H265, concat({kStart4, kCra265})));
  CHECK_FALSE(core::contains_idr(Codec::H265, concat({kStart4, kTrail265})));
}

TEST_CASE("parameter sets are extracted with 4-byte start codes, in stream order", "[annexb]") {
  Bytes au = concat({kStart4, kAud, kStart3, kSps, kStart3, kPps, kStart4, kSei, kStart4, kIdr, {0, 0}});
  CHECK(core::parameter_sets(Codec::H264, au) == concat({kStart4, kSps, kStart4, kPps}));

  Bytes au265 = concat({kStart4, kVps265, kStart3, kSps265, kStart4, kPps265, kStart4, kIdrWRadl265});
  CHECK(core::parameter_sets(Codec::H265, au265) == concat({kStart4, kVps265, kStart4, kSps265, kStart4, kPps265}));
}

TEST_CASE("an access unit without parameter sets yields none", "[annexb]") {
  CHECK(core::parameter_sets(Codec::H264, concat({kStart4, kNonIdr})).empty());
  CHECK(core::parameter_sets(Codec::H265, concat({kStart4, kTrail265})).empty());
  CHECK(core::parameter_sets(Codec::H264, Bytes{}).empty());
}

TEST_CASE("parameter sets at the end of a padded access unit carry no padding", "[annexb]") {
  Bytes au = concat({kStart4, kSps, kStart4, kPps, {0, 0, 0}});
  CHECK(core::parameter_sets(Codec::H264, au) == concat({kStart4, kSps, kStart4, kPps}));
}
