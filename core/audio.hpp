// Sound of a desktop. A source hands on the VM's PCM as it comes (AudioPacket, laid out as its
// AudioFormat says); encode/audio converts it into what every sink takes: AudioChunks of 10 ms at
// 48 kHz, stereo, signed 16-bit, interleaved, the guest's volume applied.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.hpp"

namespace vdistream::core {

// How PCM is laid out, as QEMU's AudioOutListener.Init describes it.
struct AudioFormat {
  uint32_t rate = 0;      // frames per second
  uint32_t channels = 0;  // interleaved
  uint32_t bits = 0;      // per sample: 8, 16, 32
  bool is_signed = true;
  bool is_float = false;  // 32-bit float when set
  bool big_endian = false;
  uint32_t bytes_per_frame = 0;  // channels × bits / 8

  // "s16le 48000 Hz 2 ch"
  std::string describe() const;
  // Whether it can be converted: the numbers add up and the layout is one we read.
  Status check() const;
  bool operator==(const AudioFormat&) const = default;
};

// The guest's mixer: mute, and a level per channel (0..255; none given = full).
struct AudioVolume {
  bool mute = false;
  std::vector<uint8_t> levels;
  double gain(size_t channel) const;  // 0..1 for `channel` of the output
};

// PCM as the VM sent it: `size` bytes, whole frames of `format`. The bytes belong to the caller.
struct AudioPacket {
  uint64_t stream = 0;  // the VM's id for one playback stream (QEMU: one per voice)
  AudioFormat format;
  const uint8_t* data = nullptr;
  size_t size = 0;
  AudioVolume volume;
  int64_t captured_ns = 0;  // when it arrived (monotonic)
};

// What the sinks take: 10 ms of 48 kHz stereo s16, interleaved.
inline constexpr uint32_t kAudioRate = 48000;
inline constexpr uint32_t kAudioChannels = 2;
inline constexpr uint32_t kAudioChunkFrames = 480;
struct AudioChunk {
  std::array<int16_t, kAudioChunkFrames * kAudioChannels> samples{};
  uint64_t sequence = 0;    // chunks of this desktop's sound so far
  int64_t captured_ns = 0;  // when the packet holding its first sample arrived
};

// One Opus packet of 10 ms, shared by every WebRTC viewer of the desktop.
struct EncodedAudio {
  std::vector<uint8_t> data;
  uint64_t sequence = 0;    // consecutive numbers play back to back; a gap in time keeps counting
  int64_t captured_ns = 0;  // the chunk's
  static constexpr int64_t kDurationNs = 10'000'000;
};
using EncodedAudioPtr = std::shared_ptr<const EncodedAudio>;

// The desktop's microphone: what its viewers capture (push), for the VM to read in the format of
// its capture stream (QEMU's AudioInListener). encode/audio/microphone implements it.
class Microphone {
 public:
  virtual ~Microphone() = default;
  // Viewers, from any thread: `frames` interleaved 48 kHz stereo s16 frames captured by `source`
  // ("spice", "browser 3", ...).
  virtual void push(const std::string& source, const int16_t* samples, size_t frames) = 0;
  // `callback(listening)` runs at once with the current state and whenever the VM starts or stops
  // listening (on the VM's thread, with no lock held): viewers capture only while it listens.
  virtual void on_listening(std::function<void(bool)> callback) = 0;
  // Writes up to `frames` frames of `format` for the VM's capture stream `stream` into `out`
  // (room for frames × bytes_per_frame) and returns how many it wrote. Never blocks: the VM
  // waits for the answer.
  virtual size_t read(uint64_t stream, const AudioFormat& format, size_t frames, uint8_t* out) = 0;
  // The VM's capture stream started (`on`) or stopped listening: SetEnabled, Fini.
  virtual void vm_listening(uint64_t stream, bool on) = 0;
};

}  // namespace vdistream::core
