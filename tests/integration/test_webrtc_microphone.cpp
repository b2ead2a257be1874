// The browser's microphone into the desktop's: headless Chromium with its fake capture device (a
// beep) opens the page, its selftest presses the microphone button, and the test reads a real
// MicrophoneMixer as QEMU's AudioInListener would (s16le 48 kHz stereo, 10 ms at a time).
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "core/audio.hpp"
#include "encode/audio/microphone.hpp"
#include "encode/audio/spectrum.hpp"
#include "fixtures/browser.hpp"
#include "fixtures/wait.hpp"
#include "fixtures/webrtc_rig.hpp"
#include "transport/webrtc_desktop.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

// Chromium's fake microphone, granted without a prompt (nothing else may be captured here).
const std::vector<std::string> kFakeMicrophone = {"--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"};

core::AudioFormat vm_format() {
  core::AudioFormat f;
  f.rate = 48000;
  f.channels = 2;
  f.bits = 16;
  f.is_signed = true;
  f.bytes_per_frame = 4;
  return f;
}

// The one viewer's stats (the test opens one page); nullopt before it is there.
std::optional<transport::ViewerStats> viewer_of(const test::WebRtcRig& rig) {
  auto stats = rig.desktop->stats();
  if (stats.per_viewer.size() != 1) return std::nullopt;
  return stats.per_viewer[0];
}

int peak_of(const std::vector<int16_t>& samples, size_t from = 0, size_t to = SIZE_MAX) {
  int peak = 0;
  for (size_t i = from; i < std::min(to, samples.size()); ++i) peak = std::max(peak, std::abs(int(samples[i])));
  return peak;
}

// The fake device beeps briefly (20 ms) now and then: each beep, from its onset (sound after at
// least 50 ms of quiet), is analysed in a 1024-frame block that holds it whole, and the median of
// the beeps' strongest frequencies and levels is the device's. (Blocks that cut a beep, or the
// loudest block alone, leak into neighbouring bins and mislead by tens of Hz.)
struct Beeps {
  size_t beeps = 0;
  double peak_hz = 0, level = 0;
};
Beeps beeps_in(const std::vector<int16_t>& samples) {
  constexpr size_t kFrames = 1024, kQuietFrames = 2400, kLead = 32;
  constexpr int kSound = 1000;
  std::vector<double> hz, levels;
  size_t quiet = 0;
  for (size_t f = 0; f < samples.size() / 2; ++f) {
    const bool loud = std::abs(int(samples[2 * f])) > kSound || std::abs(int(samples[2 * f + 1])) > kSound;
    if (!loud) {
      ++quiet;
      continue;
    }
    const bool onset = quiet >= kQuietFrames;
    quiet = 0;
    if (!onset || f < kLead || (f - kLead + kFrames) * 2 > samples.size()) continue;
    std::vector<int16_t> block(samples.begin() + ptrdiff_t((f - kLead) * 2),
                               samples.begin() + ptrdiff_t((f - kLead + kFrames) * 2));
    const auto s = encode::analyse(block, 2, 48000);
    hz.push_back(s.peak_hz);
    levels.push_back(s.level);
  }
  if (hz.empty()) return {};
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + ptrdiff_t(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  return {hz.size(), median(hz), median(levels)};
}

}  // namespace

TEST_CASE("a page's microphone reaches the desktop's once the VM listens - Chromium's fake device beeps into MicrophoneMixer",
          "[webrtc][microphone]") {
  REQUIRE(bench::Chromium::available());
  // With the desktop's sound, the page's microphone comes back on the same (sendrecv) audio
  // transceiver; without, on a recvonly one of its own.
  const bool sound = GENERATE(false, true);
  INFO("the desktop's sound to the page: " << (sound ? "yes" : "no"));
  auto mixer = std::make_shared<encode::MicrophoneMixer>();
  test::WebRtcRigOptions options;
  options.microphone = mixer;
  options.audio = sound;
  test::WebRtcRig rig(options);
  const auto browser = test::launch_chromium(rig.url() + "&selftest=mic", kFakeMicrophone);
  INFO("Chromium log: " << browser->log_path());

  // The selftest pressed the button: the browser captures, but the VM does not listen yet.
  REQUIRE(test::eventually(
      [&] {
        auto v = viewer_of(rig);
        return v && v->state == "connected" && v->microphone && v->microphone->captured;
      },
      60s));
  const uint64_t id = viewer_of(rig)->id;
  const std::string talker = fmt::format("browser {}", id);
  {
    // Privacy: a captured microphone goes nowhere while the desktop does not listen. Give a track
    // that was (wrongly) sent a second to arrive, then look.
    std::this_thread::sleep_for(1s);
    auto v = viewer_of(rig);
    REQUIRE(v);
    REQUIRE(v->microphone);
    CHECK(v->microphone->available);
    CHECK(!v->microphone->sending);
    CHECK(v->counters.microphone_chunks == 0);
    CHECK(!v->counters.microphone_live);
    CHECK(mixer->stats().frames_in == 0);
    auto stats = rig.desktop->stats();
    CHECK(stats.microphone);
    CHECK(!stats.microphone_listening);
    CHECK(stats.microphone_chunks == 0);
    CHECK(stats.microphone_chunks_unheard == 0);
  }

  // The VM starts recording, and reads 10 ms at a time as QEMU would.
  mixer->vm_listening(1, true);
  const core::AudioFormat format = vm_format();
  std::vector<int16_t> heard;
  std::vector<uint8_t> buffer(core::kAudioChunkFrames * format.bytes_per_frame);
  bool talker_seen = false, live_seen = false;
  size_t first_sound = SIZE_MAX;
  const auto started = std::chrono::steady_clock::now();
  const bool sounded = test::eventually(
      [&] {
        const size_t n = mixer->read(1, format, core::kAudioChunkFrames, buffer.data());
        const auto* s = reinterpret_cast<const int16_t*>(buffer.data());
        heard.insert(heard.end(), s, s + n * 2);
        talker_seen = talker_seen || mixer->stats().talker == talker;
        if (auto v = viewer_of(rig)) live_seen = live_seen || v->counters.microphone_live;
        if (first_sound == SIZE_MAX && peak_of(heard, heard.size() - n * 2) > 1000) first_sound = heard.size();
        // Two seconds of sound after the first beep: a few beeps for the spectrum.
        return first_sound != SIZE_MAX && heard.size() >= first_sound + 2 * 48000 * 2 && talker_seen && live_seen;
      },
      60s, 10ms);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto mic_stats = mixer->stats();
  auto stats = rig.desktop->stats();
  REQUIRE(stats.per_viewer.size() == 1);
  const auto& v = stats.per_viewer[0];
  const Beeps tone = beeps_in(heard);
  INFO(fmt::format("{:.1f} s read: {} frames, peak {}; talker '{}' (seen: {}); frames in {}, quiet {}, refused {}, "
                   "dropped {}; viewer {} chunks {} live {}; desktop chunks {} unheard {}",
                   seconds, heard.size() / 2, peak_of(heard), mic_stats.talker, talker_seen, mic_stats.frames_in,
                   mic_stats.quiet_frames, mic_stats.frames_refused, mic_stats.frames_dropped, v.id,
                   v.counters.microphone_chunks, v.counters.microphone_live, stats.microphone_chunks,
                   stats.microphone_chunks_unheard));
  WARN(fmt::format("Chromium's fake microphone as the VM read it: peak {} of 32767; {} beeps, median "
                   "strongest {:.1f} Hz at level {:.3f}; sound {:.2f} s into what the VM read",
                   peak_of(heard), tone.beeps, tone.peak_hz, tone.level,
                   first_sound == SIZE_MAX ? -1.0 : double(first_sound) / 2 / 48000));
  CHECK(sounded);
  CHECK(peak_of(heard) > 1000);  // well above silence (MicrophoneMixer::kQuietPeak is 64)
  // Chromium's fake capture device beeps at 400 Hz (media/audio/fake_audio_input_stream.cc):
  // decoded and converted at the right rate, it is 400 Hz here.
  CHECK(tone.beeps >= 3);
  CHECK(std::abs(tone.peak_hz - 400) <= 20);
  CHECK(talker_seen);
  CHECK(live_seen);
  CHECK(v.microphone);
  CHECK((v.microphone && v.microphone->sending));
  CHECK(v.counters.microphone_chunks > 100);
  CHECK(stats.microphone_listening);
  CHECK(stats.microphone_chunks > 100);
  CHECK(mic_stats.frames_in > 0);

  // The VM stops recording: the page stops sending (its track leaves the sender).
  mixer->vm_listening(1, false);
  CHECK(test::eventually(
      [&] {
        auto w = viewer_of(rig);
        return w && w->microphone && !w->microphone->sending && w->microphone->captured && !w->counters.microphone_live;
      },
      20s));
  CHECK(!rig.desktop->stats().microphone_listening);
}

TEST_CASE("a desktop without a microphone offers the page none - no button and nothing arrives", "[webrtc][microphone]") {
  REQUIRE(bench::Chromium::available());
  test::WebRtcRig rig(test::WebRtcRigOptions{});
  const auto browser = test::launch_chromium(rig.url() + "&selftest=mic", kFakeMicrophone);
  INFO("Chromium log: " << browser->log_path());
  // The page decodes the desktop and has said what it knows of a microphone.
  REQUIRE(rig.wait_frames(30, 60s));
  REQUIRE(test::eventually([&] {
    auto v = viewer_of(rig);
    return v && v->microphone.has_value();
  }));
  // The selftest's press comes 300 ms after the data channel opened: let it have come.
  std::this_thread::sleep_for(1s);
  auto stats = rig.desktop->stats();
  REQUIRE(stats.per_viewer.size() == 1);
  const auto& v = stats.per_viewer[0];
  REQUIRE(v.microphone);
  CHECK(!v.microphone->available);  // no button shown, so none pressed
  CHECK(!v.microphone->captured);
  CHECK(!v.microphone->sending);
  CHECK(v.counters.microphone_chunks == 0);
  CHECK(!v.counters.microphone_live);
  CHECK(!stats.microphone);
  CHECK(stats.microphone_chunks == 0);
  CHECK(stats.microphone_chunks_unheard == 0);
}
