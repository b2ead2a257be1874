// encode/audio/microphone: viewers' capture → the VM's capture stream, converted into its format,
// one talker at a time, bounded, silence when nobody talks and nothing kept while the VM is deaf.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "encode/audio/microphone.hpp"
#include "encode/audio/spectrum.hpp"

using namespace vdistream;

namespace {

core::AudioFormat s16le(uint32_t rate, uint32_t channels) { return {rate, channels, 16, true, false, false, channels * 2}; }

// `frames` of 48 kHz stereo s16: a sine of `hz` starting at frame `from`.
std::vector<int16_t> tone(double hz, size_t frames, size_t from = 0, double amplitude = 0.5) {
  std::vector<int16_t> out(frames * 2);
  for (size_t i = 0; i < frames; ++i)
    out[2 * i] = out[2 * i + 1] = int16_t(std::lround(amplitude * 32767 * std::sin(2 * M_PI * hz * double(from + i) / 48000)));
  return out;
}

// Reads `frames` of s16 `format` (any channel count) in periods of `period` frames.
std::vector<int16_t> read_s16(encode::MicrophoneMixer& mic, const core::AudioFormat& f, size_t period, size_t periods,
                              size_t* got = nullptr) {
  std::vector<int16_t> all;
  size_t total = 0;
  for (size_t p = 0; p < periods; ++p) {
    std::vector<int16_t> buf(period * f.channels);
    const size_t n = mic.read(7, f, period, reinterpret_cast<uint8_t*>(buf.data()));
    total += n;
    all.insert(all.end(), buf.begin(), buf.begin() + ptrdiff_t(n * f.channels));
  }
  if (got) *got = total;
  return all;
}

}  // namespace

TEST_CASE("the microphone: a viewer's tone reaches the VM's capture stream at its own rate and channels") {
  for (const auto& f : {s16le(48000, 2), s16le(44100, 2), s16le(16000, 1)}) {
    DYNAMIC_SECTION(f.describe()) {
      encode::MicrophoneMixer mic;
      std::vector<bool> heard;
      mic.on_listening([&](bool on) { heard.push_back(on); });
      mic.vm_listening(7, true);
      REQUIRE(heard == std::vector<bool>{false, true});
      // 300 ms of 1 kHz in 10 ms packets, the VM reading 10 ms after each.
      std::vector<int16_t> got;
      for (size_t i = 0; i < 30; ++i) {
        const auto packet = tone(1000, 480, i * 480);
        mic.push("spice", packet.data(), 480);
        const auto part = read_s16(mic, f, f.rate / 100, 1);
        got.insert(got.end(), part.begin(), part.end());
      }
      // The resampler's delay holds a few frames back; the rest arrives.
      CHECK(got.size() / f.channels >= size_t(f.rate) * 3 / 10 - 64);
      const auto s = encode::analyse(got, int(f.channels), int(f.rate));
      CHECK(s.peak_hz == Approx(1000).epsilon(0.02));
      CHECK(s.level > 0.3);
      const auto stats = mic.stats();
      CHECK(stats.frames_in == 30 * 480);
      CHECK(stats.talker == "spice");
      CHECK(stats.vm_listening);
      CHECK(stats.peak > 16000);
      mic.vm_listening(7, false);
      CHECK(heard.back() == false);
    }
  }
}

TEST_CASE("the microphone: formats QEMU may ask for are written in their own bytes") {
  encode::MicrophoneMixer mic;
  mic.vm_listening(7, true);
  const auto packet = tone(1000, 4800);
  SECTION("u8") {
    const core::AudioFormat f{48000, 1, 8, false, false, false, 1};
    mic.push("a", packet.data(), 4800);
    std::vector<uint8_t> out(4800);
    const size_t n = mic.read(7, f, 4800, out.data());
    REQUIRE(n > 4000);
    std::vector<int16_t> as16;
    for (size_t i = 0; i < n; ++i) as16.push_back(int16_t((int(out[i]) - 128) * 256));
    CHECK(encode::analyse(as16, 1, 48000).peak_hz == Approx(1000).epsilon(0.02));
  }
  SECTION("s16be") {
    const core::AudioFormat f{48000, 2, 16, true, false, true, 4};
    mic.push("a", packet.data(), 4800);
    std::vector<uint8_t> out(4800 * 4);
    const size_t n = mic.read(7, f, 4800, out.data());
    REQUIRE(n > 4000);
    std::vector<int16_t> as16;
    for (size_t i = 0; i < n * 2; ++i) as16.push_back(int16_t(out[2 * i] << 8 | out[2 * i + 1]));
    CHECK(encode::analyse(as16, 2, 48000).peak_hz == Approx(1000).epsilon(0.02));
  }
  SECTION("silence of unsigned 8-bit is its middle") {
    const core::AudioFormat f{48000, 1, 8, false, false, false, 1};
    std::vector<uint8_t> out(480, 0);
    REQUIRE(mic.read(7, f, 480, out.data()) == 480);
    CHECK(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0x80; }));
  }
  SECTION("a format that does not add up reads nothing") {
    const core::AudioFormat f{48000, 2, 16, true, false, false, 3};
    std::vector<uint8_t> out(480 * 4);
    CHECK(mic.read(7, f, 480, out.data()) == 0);
  }
}

TEST_CASE("the microphone: silence while nobody talks, short reads while a talker's packet is on its way") {
  core::ManualClock clock(1'000'000'000);
  encode::MicrophoneMixer mic(clock);
  mic.vm_listening(7, true);
  const auto f = s16le(48000, 2);
  std::vector<int16_t> buf(480 * 2, 123);
  CHECK(mic.read(7, f, 480, reinterpret_cast<uint8_t*>(buf.data())) == 480);
  CHECK(std::all_of(buf.begin(), buf.end(), [](int16_t v) { return v == 0; }));
  const auto packet = tone(1000, 480);
  mic.push("browser 1", packet.data(), 480);
  size_t got = 0;
  read_s16(mic, f, 480, 2, &got);
  CHECK(got <= 480);  // what was sent, no silence padded in while the viewer talks
  CHECK(mic.stats().silent_frames_to_vm == 480);
  clock.advance_ns(encode::MicrophoneMixer::kTalkerHoldNs);
  read_s16(mic, f, 480, 1, &got);
  CHECK(got == 480);  // quiet long enough: silence again
  CHECK(mic.stats().talker == "");
}

TEST_CASE("the microphone: one talker at a time - nothing is kept while the VM does not listen - bounded") {
  core::ManualClock clock(1'000'000'000);
  encode::MicrophoneMixer mic(clock);
  const auto packet = tone(1000, 480);
  mic.push("spice", packet.data(), 480);  // the VM is not listening: not kept
  mic.vm_listening(7, true);
  size_t got = 0;
  read_s16(mic, s16le(48000, 2), 480, 1, &got);
  CHECK(mic.stats().silent_frames_to_vm == 0);  // spice still holds the microphone: a short read
  CHECK(got == 0);

  mic.push("spice", packet.data(), 480);
  mic.push("browser 2", packet.data(), 480);  // refused: spice talks
  CHECK(mic.stats().frames_refused == 480);
  CHECK(mic.stats().talker == "spice");
  clock.advance_ns(encode::MicrophoneMixer::kTalkerHoldNs);
  mic.push("browser 2", packet.data(), 480);  // spice went quiet: browser 2 takes it
  CHECK(mic.stats().talker == "browser 2");

  // A viewer sending faster than the VM reads: the oldest goes, at most 100 ms wait.
  for (int i = 0; i < 50; ++i) mic.push("browser 2", packet.data(), 480);
  const auto s = mic.stats();
  CHECK(s.frames_dropped == 52 * 480 - encode::MicrophoneMixer::kMaxBufferedFrames);
  read_s16(mic, s16le(48000, 2), 48000, 1, &got);
  CHECK(got <= encode::MicrophoneMixer::kMaxBufferedFrames);
  CHECK(got >= encode::MicrophoneMixer::kMaxBufferedFrames - 64);
}

TEST_CASE("the microphone: a viewer sending silence holds nothing - another one's voice gets through") {
  core::ManualClock clock(1'000'000'000);
  encode::MicrophoneMixer mic(clock);
  mic.vm_listening(7, true);
  const std::vector<int16_t> silence(480 * 2, 3);  // an open microphone in a quiet room
  const auto voice = tone(300, 480);
  mic.push("spice", silence.data(), 480);
  CHECK(mic.stats().talker == "");
  CHECK(mic.stats().quiet_frames == 480);
  mic.push("browser 4", voice.data(), 480);
  mic.push("spice", silence.data(), 480);  // refused: browser 4 talks
  auto s = mic.stats();
  CHECK(s.talker == "browser 4");
  CHECK(s.frames_refused == 480);
  size_t got = 0;
  read_s16(mic, s16le(48000, 2), 4800, 1, &got);
  CHECK(got >= 480 - 64);
  CHECK(got <= 480);
}
