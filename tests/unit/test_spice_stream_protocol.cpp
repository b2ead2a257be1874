// The stream-device protocol as spice-server 0.15.1 reads it, and the producer's rules.
#include <catch2/catch.hpp>
#include <spice/enums.h>
#include <spice/stream-device.h>

#include <cstring>

#include "spice/stream_protocol.hpp"

using namespace vdistream::spice::stream;

TEST_CASE("stream-device messages match spice-protocol's StreamDevHeader and StreamMsgFormat") {
  STATIC_REQUIRE(sizeof(StreamDevHeader) == kHeaderSize);
  auto format = format_message(1920, 1080, VideoCodec::H264);
  REQUIRE(format.size() == sizeof(StreamDevHeader) + sizeof(StreamMsgFormat));
  StreamDevHeader h{};
  std::memcpy(&h, format.data(), sizeof(h));
  CHECK(h.protocol_version == STREAM_DEVICE_PROTOCOL);
  CHECK(h.type == STREAM_TYPE_FORMAT);
  CHECK(h.size == sizeof(StreamMsgFormat));
  StreamMsgFormat f{};
  std::memcpy(&f, format.data() + sizeof(h), sizeof(f));
  CHECK(f.width == 1920);
  CHECK(f.height == 1080);
  CHECK(f.codec == SPICE_VIDEO_CODEC_TYPE_H264);

  auto data = data_message({0, 0, 0, 1, 0x65, 0x88});
  REQUIRE(data);
  std::memcpy(&h, data->data(), sizeof(h));
  CHECK(h.type == STREAM_TYPE_DATA);
  CHECK(h.size == 6);
  CHECK(data->back() == 0x88);

  auto move = cursor_move_message(-3, 7);
  std::memcpy(&h, move.data(), sizeof(h));
  CHECK(h.type == STREAM_TYPE_CURSOR_MOVE);
  CHECK(h.size == 8);
}

TEST_CASE("an empty or oversized access unit is refused with its size") {
  CHECK_THAT(data_message({}).error(), Catch::Contains("empty"));
  CHECK_THAT(data_message(std::vector<uint8_t>(kMaxDataSize + 1)).error(), Catch::Contains("33554433"));
}

TEST_CASE("server messages are reassembled from any split, unknown types are skipped") {
  const uint8_t start_stop[] = {1, 0, STREAM_TYPE_START_STOP, 0, 3, 0, 0, 0, 2, SPICE_VIDEO_CODEC_TYPE_MJPEG,
                                SPICE_VIDEO_CODEC_TYPE_H264};
  const uint8_t unknown[] = {1, 0, 42, 0, 1, 0, 0, 0, 9};
  ServerMessageParser parser;
  parser.feed(unknown, sizeof(unknown));
  parser.feed(start_stop, 5);
  auto none = parser.next();
  REQUIRE(none);
  CHECK(!*none);
  parser.feed(start_stop + 5, sizeof(start_stop) - 5);
  auto message = parser.next();
  REQUIRE(message);
  REQUIRE(*message);
  CHECK((*message)->type == MessageType::StartStop);
  auto codecs = parse_start_stop((*message)->payload);
  REQUIRE(codecs);
  CHECK(*codecs == std::vector<VideoCodec>{VideoCodec::Mjpeg, VideoCodec::H264});
  CHECK(!*parser.next());
}

TEST_CASE("a server message with the wrong protocol version or size stops the parser") {
  ServerMessageParser bad_version;
  const uint8_t v2[] = {2, 0, STREAM_TYPE_START_STOP, 0, 0, 0, 0, 0};
  bad_version.feed(v2, sizeof(v2));
  CHECK_THAT(bad_version.next().error(), Catch::Contains("protocol 2"));
  CHECK(!bad_version.next());

  ServerMessageParser too_big;
  const uint8_t huge[] = {1, 0, STREAM_TYPE_NOTIFY_ERROR, 0, 0, 0, 0, 1};
  too_big.feed(huge, sizeof(huge));
  CHECK_THAT(too_big.next().error(), Catch::Contains("16777216"));
}

TEST_CASE("START_STOP: codecs parsed, zero codecs means stop, short lists refused") {
  CHECK(parse_start_stop({0})->empty());
  CHECK_THAT(parse_start_stop({3, 1}).error(), Catch::Contains("3 codecs in 1 bytes"));
  CHECK_THAT(parse_start_stop({}).error(), Catch::Contains("num_codecs"));
}

TEST_CASE("the codec is ours in our order of preference, if any client can decode it") {
  const std::vector<VideoCodec> ours{VideoCodec::H264, VideoCodec::Mjpeg};
  CHECK(choose_codec({VideoCodec::Mjpeg, VideoCodec::H264}, ours) == VideoCodec::H264);
  CHECK(choose_codec({VideoCodec::Vp8, VideoCodec::Mjpeg}, ours) == VideoCodec::Mjpeg);
  CHECK(!choose_codec({VideoCodec::Vp9}, ours));
}

TEST_CASE("under back-pressure the producer drops, then sends nothing until an IDR") {
  Pacer pacer(1000);
  using D = Pacer::Decision;
  CHECK(pacer.on_access_unit(false, 0) == D::Drop);  // a fresh stream starts at an IDR
  CHECK(pacer.on_access_unit(true, 0) == D::Send);
  CHECK(pacer.on_access_unit(false, 500) == D::Send);
  CHECK(pacer.on_access_unit(false, 1001) == D::DropAndRequestIdr);  // the server stopped reading
  CHECK(pacer.on_access_unit(false, 0) == D::Drop);                  // drained, but no IDR yet
  CHECK(pacer.waiting_for_idr());
  CHECK(pacer.on_access_unit(true, 0) == D::Send);
  CHECK(pacer.on_access_unit(false, 0) == D::Send);
  pacer.reset();  // a new START_STOP
  CHECK(pacer.on_access_unit(false, 0) == D::Drop);
}

TEST_CASE("with a trailing delimiter, a DATA ends with an AUD and a leading AUD moves there") {
  const std::vector<uint8_t> with_aud = {0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x65, 0x88};
  auto data = data_message(with_aud, true);
  REQUIRE(data);
  StreamDevHeader h{};
  std::memcpy(&h, data->data(), sizeof(h));
  const std::vector<uint8_t> expected = {0, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 1, 0x09, 0xf0};
  CHECK(h.size == expected.size());
  CHECK(std::vector<uint8_t>(data->begin() + kHeaderSize, data->end()) == expected);

  // Without a leading AUD (3-byte start code), the access unit is kept whole.
  auto plain = data_message({0, 0, 1, 0x65, 0x88}, true);
  REQUIRE(plain);
  CHECK(std::vector<uint8_t>(plain->begin() + kHeaderSize, plain->end()) ==
        std::vector<uint8_t>{0, 0, 1, 0x65, 0x88, 0, 0, 0, 1, 0x09, 0xf0});
  // An access unit that is nothing but a delimiter is empty.
  CHECK_THAT(data_message({0, 0, 0, 1, 0x09, 0xf0}, true).error(), Catch::Contains("empty"));
}

TEST_CASE("CURSOR_SET matches StreamMsgCursorSet with an ALPHA image - bad shapes are refused") {
  vdistream::core::CursorShape shape;
  shape.width = 3;
  shape.height = 2;
  shape.hot_x = 1;
  shape.hot_y = 1;
  shape.argb = {0xff000000, 0xffffffff, 0x80808080, 0, 1, 2};
  auto set = cursor_set_message(shape);
  REQUIRE(set);
  StreamDevHeader h{};
  std::memcpy(&h, set->data(), sizeof(h));
  CHECK(h.type == STREAM_TYPE_CURSOR_SET);
  REQUIRE(h.size == sizeof(StreamMsgCursorSet) + 6 * 4);
  StreamMsgCursorSet c{};
  std::memcpy(&c, set->data() + sizeof(h), sizeof(c));
  CHECK(c.width == 3);
  CHECK(c.height == 2);
  CHECK(c.hot_spot_x == 1);
  CHECK(c.hot_spot_y == 1);
  CHECK(c.type == SPICE_CURSOR_TYPE_ALPHA);
  uint32_t second = 0;
  std::memcpy(&second, set->data() + sizeof(h) + sizeof(c) + 4, 4);
  CHECK(second == 0xffffffff);

  shape.argb.pop_back();
  CHECK_THAT(cursor_set_message(shape).error(), Catch::Contains("5 pixels, not 6"));
  shape.width = 1025;
  CHECK_THAT(cursor_set_message(shape).error(), Catch::Contains("1025x2"));
  CHECK(cursor_set_message(invisible_cursor()));
}
