// encode/audio: a VM's PCM in any format QEMU may send becomes 10 ms chunks of 48 kHz stereo s16
// with the guest's volume applied; one Opus encode per desktop; the spectrum the tests measure with.
#include <catch2/catch.hpp>
#include <opus.h>

#include <cmath>
#include <cstring>

#include "core/audio.hpp"
#include "encode/audio/audio_converter.hpp"
#include "encode/audio/audio_pipeline.hpp"
#include "encode/audio/opus_encoder.hpp"
#include "encode/audio/spectrum.hpp"

using namespace vdistream;

namespace {

core::AudioFormat s16le(uint32_t rate, uint32_t channels) { return {rate, channels, 16, true, false, false, channels * 2}; }

// `seconds` of a sine of `hz` at `amplitude` (of full scale) in `format`'s layout.
std::vector<uint8_t> sine(const core::AudioFormat& f, double hz, double seconds, double amplitude = 0.5) {
  const size_t frames = size_t(seconds * f.rate);
  std::vector<uint8_t> out(frames * f.bytes_per_frame);
  for (size_t i = 0; i < frames; ++i) {
    const double v = amplitude * std::sin(2 * M_PI * hz * double(i) / f.rate);
    for (uint32_t c = 0; c < f.channels; ++c) {
      uint8_t* s = out.data() + i * f.bytes_per_frame + c * (f.bits / 8);
      if (f.is_float) {
        const float x = float(v);
        std::memcpy(s, &x, 4);
      } else if (f.bits == 8) {
        s[0] = uint8_t(int(std::lround(v * 127)) + (f.is_signed ? 0 : 128));
      } else {
        const auto x = int16_t(std::lround(v * 32767)) ^ (f.is_signed ? 0 : 0x8000);
        s[f.big_endian ? 1 : 0] = uint8_t(x & 0xff);
        s[f.big_endian ? 0 : 1] = uint8_t((x >> 8) & 0xff);
      }
    }
  }
  return out;
}

struct Collected {
  std::vector<int16_t> samples;
  std::vector<uint64_t> sequences;
};

Collected convert(const core::AudioFormat& format, const std::vector<uint8_t>& pcm, core::AudioVolume volume = {},
                  bool flush = false) {
  Collected got;
  encode::AudioConverter converter([&](const core::AudioChunk& c) {
    got.samples.insert(got.samples.end(), c.samples.begin(), c.samples.end());
    got.sequences.push_back(c.sequence);
  });
  // QEMU's periods: 10 ms at the source's rate.
  const size_t period = format.rate / 100 * format.bytes_per_frame;
  for (size_t at = 0; at < pcm.size(); at += period) {
    core::AudioPacket p{7, format, pcm.data() + at, std::min(period, pcm.size() - at), volume, 0};
    REQUIRE(converter.push(p));
  }
  if (flush) converter.flush();
  return got;
}

}  // namespace

TEST_CASE("an audio format that does not add up is refused with its numbers") {
  CHECK(s16le(48000, 2).check());
  CHECK(s16le(48000, 2).describe() == "s16le 48000 Hz 2 ch");
  CHECK_FALSE(s16le(4000, 2).check());
  CHECK_FALSE(s16le(48000, 0).check());
  CHECK_FALSE(s16le(48000, 9).check());
  core::AudioFormat odd = s16le(48000, 2);
  odd.bytes_per_frame = 3;
  CHECK(odd.check().error().find("2 channels × 16 bits make 4") != std::string::npos);
  core::AudioFormat float16 = s16le(48000, 2);
  float16.is_float = true;
  CHECK_FALSE(float16.check());
  core::AudioFormat bits24 = s16le(48000, 1);
  bits24.bits = 24;
  bits24.bytes_per_frame = 3;
  CHECK_FALSE(bits24.check());
}

TEST_CASE("PCM in QEMU's formats becomes 10 ms chunks of 48 kHz stereo with its pitch kept") {
  struct Case {
    const char* name;
    core::AudioFormat format;
  };
  const Case cases[] = {
      {"s16le 48 kHz stereo", s16le(48000, 2)},
      {"s16le 44.1 kHz stereo", s16le(44100, 2)},
      {"s16le 32 kHz mono", s16le(32000, 1)},
      {"u8 22.05 kHz mono", {22050, 1, 8, false, false, false, 1}},
      {"s16be 48 kHz stereo", {48000, 2, 16, true, false, true, 4}},
      {"u16le 48 kHz stereo", {48000, 2, 16, false, false, false, 4}},
      {"f32 44.1 kHz stereo", {44100, 2, 32, true, true, false, 8}},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const auto got = convert(c.format, sine(c.format, 440, 1.0));
    // One second in, one second out (less the resampler's few ms of delay and a partial chunk).
    CHECK(got.sequences.size() >= 97);
    CHECK(got.sequences.size() <= 100);
    for (size_t i = 0; i < got.sequences.size(); ++i) CHECK(got.sequences[i] == i);
    const auto heard = encode::analyse(got.samples, 2, 48000);
    CHECK(heard.peak_hz == Approx(440).epsilon(0.005));
    CHECK(heard.level == Approx(0.5 / std::sqrt(2)).epsilon(0.05));
  }
}

TEST_CASE("the guest's volume and mute are applied to the chunks") {
  const auto format = s16le(48000, 2);
  const auto pcm = sine(format, 1000, 0.5);
  const double full = encode::analyse(convert(format, pcm).samples, 2, 48000).level;
  const double half = encode::analyse(convert(format, pcm, {false, {128, 128}}).samples, 2, 48000).level;
  CHECK(half == Approx(full * 128 / 255).epsilon(0.01));
  const auto muted = convert(format, pcm, {true, {255, 255}});
  REQUIRE_FALSE(muted.samples.empty());
  CHECK(std::all_of(muted.samples.begin(), muted.samples.end(), [](int16_t s) { return s == 0; }));
  // One level for a mono stream applies to both output channels.
  const auto mono = s16le(48000, 1);
  CHECK(encode::analyse(convert(mono, sine(mono, 1000, 0.5), {false, {0}}).samples, 2, 48000).level == 0);
}

TEST_CASE("a stream's end pads its last chunk with silence, and a new format starts a new resampler") {
  const auto format = s16le(48000, 2);
  auto got = convert(format, sine(format, 1000, 0.015), {}, /*flush=*/true);  // 1.5 chunks
  CHECK(got.sequences.size() == 2);
  Collected all;
  encode::AudioConverter converter([&](const core::AudioChunk& c) { all.sequences.push_back(c.sequence); });
  const auto a = sine(format, 1000, 0.1);
  const auto other = s16le(44100, 1);
  const auto b = sine(other, 1000, 0.1);
  REQUIRE(converter.push({1, format, a.data(), a.size(), {}, 0}));
  REQUIRE(converter.push({1, other, b.data(), b.size(), {}, 0}));
  converter.flush();
  CHECK(all.sequences.size() >= 19);
  for (size_t i = 0; i < all.sequences.size(); ++i) CHECK(all.sequences[i] == i);  // one desktop, one count
  core::AudioFormat bad = format;
  bad.rate = 1;
  CHECK_FALSE(converter.push({1, bad, a.data(), a.size(), {}, 0}));
}

TEST_CASE("one Opus encode per desktop: its packets decode to the same tone") {
  auto encoder = encode::OpusAudioEncoder::create();
  REQUIRE(encoder);
  int err = 0;
  OpusDecoder* decoder = opus_decoder_create(48000, 2, &err);
  REQUIRE(decoder);
  const auto format = s16le(48000, 2);
  std::vector<int16_t> decoded;
  uint64_t sequence = 100;
  encode::AudioConverter converter([&](const core::AudioChunk& c) {
    auto packet = (*encoder)->encode(c, sequence++);
    REQUIRE(packet);
    CHECK((*packet)->sequence == sequence - 1);
    CHECK((*packet)->data.size() < 400);  // 96 kbit/s: about 120 bytes per 10 ms
    std::vector<int16_t> pcm(960 * 2);
    const int n = opus_decode(decoder, (*packet)->data.data(), opus_int32((*packet)->data.size()), pcm.data(), 960, 0);
    REQUIRE(n == 480);
    decoded.insert(decoded.end(), pcm.begin(), pcm.begin() + n * 2);
  });
  const auto pcm = sine(format, 1000, 0.5);
  REQUIRE(converter.push({1, format, pcm.data(), pcm.size(), {}, 0}));
  opus_decoder_destroy(decoder);
  const auto heard = encode::analyse(decoded, 2, 48000);
  CHECK(heard.peak_hz == Approx(1000).epsilon(0.005));
  CHECK(heard.level == Approx(0.5 / std::sqrt(2)).epsilon(0.1));
}

TEST_CASE("the desktop's sound follows one stream at a time and ends browsers' sound with silence") {
  std::vector<core::EncodedAudioPtr> packets;
  size_t pcm_chunks = 0, stops = 0;
  encode::AudioPipeline pipeline("test", {[&](const core::AudioChunk&) { ++pcm_chunks; },
                                          [&](const core::EncodedAudioPtr& p) { packets.push_back(p); },
                                          [&] { ++stops; }});
  const auto format = s16le(48000, 2);
  const auto pcm = sine(format, 1000, 0.01);
  pipeline.push({1, format, pcm.data(), pcm.size(), {}, 0});
  pipeline.push({2, format, pcm.data(), pcm.size(), {}, 0});  // a second voice while the first plays
  pipeline.stop_stream(2);                                    // not the one playing: nothing happens
  CHECK(stops == 0);
  pipeline.stop_stream(1);
  CHECK(stops == 1);
  CHECK(pcm_chunks == 1);
  REQUIRE(packets.size() == 1 + encode::AudioPipeline::kSilenceTailChunks);
  for (size_t i = 0; i < packets.size(); ++i) CHECK(packets[i]->sequence == i);
  auto stats = pipeline.stats();
  CHECK(stats.other_stream_packets == 1);
  CHECK(stats.opus_packets == packets.size());
  CHECK_FALSE(stats.playing);
  pipeline.push({2, format, pcm.data(), pcm.size(), {}, 0});  // now the second may play
  CHECK(pcm_chunks == 2);
  CHECK(packets.back()->sequence == packets.size() - 1);
}

TEST_CASE("the spectrum finds a tone's frequency and level, and refuses to guess from too little") {
  std::vector<int16_t> tone(48000 * 2);
  for (size_t i = 0; i < 48000; ++i)
    tone[2 * i] = tone[2 * i + 1] = int16_t(std::lround(16384 * std::sin(2 * M_PI * 1234.5 * double(i) / 48000)));
  const auto s = encode::analyse(tone, 2, 48000);
  CHECK(s.peak_hz == Approx(1234.5).epsilon(0.001));
  CHECK(s.level == Approx(0.5 / std::sqrt(2)).epsilon(0.01));
  const auto few = encode::analyse(std::vector<int16_t>(tone.begin(), tone.begin() + 1000), 2, 48000);
  CHECK(few.peak_hz == 0);
  CHECK(few.level > 0);
  CHECK(encode::analyse({}, 2, 48000).level == 0);
}
