// The desktop's microphone: what its viewers capture (a SPICE client's record channel, a
// browser's microphone), 48 kHz stereo s16, for the VM to read in the format of its capture
// stream. One viewer talks at a time: the first to send sound (above kQuietPeak) holds the
// microphone until it has been quiet for kTalkerHoldNs, and what another sends meanwhile is
// dropped (mixing two rooms' echo into one is worse than either); silence holds nothing. The VM
// reads in real time; what waits for it is bounded, the oldest dropped first, so the microphone
// stays live.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/audio.hpp"
#include "core/clock.hpp"

struct SwrContext;

namespace vdistream::encode {

struct MicrophoneStats {
  bool vm_listening = false;        // a capture stream of the VM is enabled
  std::string talker;               // the viewer holding the microphone ("" when nobody talks)
  uint64_t frames_in = 0;           // 48 kHz frames viewers sent
  uint64_t frames_dropped = 0;      // beyond kMaxBufferedFrames, oldest first
  uint64_t frames_refused = 0;      // sent while another viewer held the microphone
  uint64_t quiet_frames = 0;        // silence sent while nobody talked (not kept)
  uint64_t frames_to_vm = 0;        // frames of the VM's format it read (silence included)
  uint64_t silent_frames_to_vm = 0;  // of those, silence because nobody talked
  uint64_t reads = 0;
  int peak = 0;                     // the largest |sample| sent in the last read that had sound
};

class MicrophoneMixer : public core::Microphone {
 public:
  static constexpr size_t kMaxBufferedFrames = core::kAudioRate / 10;  // 100 ms
  static constexpr int64_t kTalkerHoldNs = 200'000'000;
  static constexpr int kQuietPeak = 64;  // of 32767 (−54 dBFS): below it a packet is silence
  static constexpr size_t kMaxReadFrames = 1 << 18;  // a VM asking for more is given this much
  using ListeningCallback = std::function<void(bool)>;

  explicit MicrophoneMixer(const core::Clock& clock = core::MonotonicClock::instance());
  ~MicrophoneMixer() override;
  MicrophoneMixer(const MicrophoneMixer&) = delete;
  MicrophoneMixer& operator=(const MicrophoneMixer&) = delete;

  void on_listening(ListeningCallback callback) override;
  void push(const std::string& source, const int16_t* samples, size_t frames) override;

  size_t read(uint64_t stream, const core::AudioFormat& format, size_t frames, uint8_t* out) override;
  void vm_listening(uint64_t stream, bool on) override;

  bool listening() const;
  MicrophoneStats stats() const;

 private:
  struct SwrFree {
    void operator()(SwrContext* ctx) const;
  };
  struct Stream {
    core::AudioFormat format;
    std::unique_ptr<SwrContext, SwrFree> swr;
    std::vector<uint8_t> ready;  // converted, in the stream's format, not yet read
    bool listening = false;
  };
  bool converter_for(Stream& s, const core::AudioFormat& format);
  bool listening_locked() const;
  bool talking_locked() const;

  const core::Clock& clock_;
  mutable std::mutex mutex_;
  std::vector<ListeningCallback> callbacks_;
  std::deque<int16_t> buffered_;  // interleaved stereo, oldest first
  std::string talker_;
  int64_t talker_last_ns_ = 0;
  std::map<uint64_t, Stream> streams_;
  std::vector<int16_t> take_;
  std::vector<uint8_t> converted_;
  MicrophoneStats stats_;
};

}  // namespace vdistream::encode
