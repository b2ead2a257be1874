// Where frames come from: one Source per desktop head.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/audio.hpp"
#include "core/clipboard.hpp"
#include "core/frame.hpp"
#include "core/input.hpp"
#include "core/status.hpp"

namespace vdistream::capture {

// Callbacks a source calls, from its own thread. on_frame must return quickly (it hands the
// frame to a latest-wins slot).
struct SourceCallbacks {
  std::function<void(core::Frame)> on_frame;
  std::function<void(const core::CursorShape&)> on_cursor_shape;
  std::function<void(const core::CursorPosition&)> on_cursor_position;
  // Connected / disconnected (with the reason), for sources that can lose their VM.
  std::function<void(bool connected, const std::string& why)> on_state;
  // The VM's sound (sources that have it, when asked for): PCM as it comes, and the end of a
  // playback stream (the guest stopped it, or the VM went away).
  std::function<void(const core::AudioPacket&)> on_audio;
  std::function<void(uint64_t stream)> on_audio_stop;
  // The desktop's microphone (sources whose VM records through QEMU's D-Bus audio): the VM reads
  // it while connected. nullptr: the microphone is off.
  std::shared_ptr<core::Microphone> microphone;
  // The desktop's clipboard (sources whose VM has one): the source attaches the VM's side to it
  // while connected. nullptr: the clipboard is off.
  std::shared_ptr<core::ClipboardHub> clipboard;
};

// How the VM's sound came, for the status API and metrics.
struct AudioCaptureStats {
  bool connected = false;  // the VM's audio listener is registered
  std::string format;      // of the stream that wrote last ("" before any)
  uint64_t streams = 0;    // Init calls
  uint64_t packets = 0, bytes = 0;
  bool playing = false, mute = false;
  uint64_t refused = 0;
  std::string last_refusal;
  std::string unavailable;  // why there is no sound from this VM (empty when connected)
};

// The VM reading the desktop's microphone (QEMU's AudioInListener).
struct MicrophoneCaptureStats {
  bool connected = false;  // the VM's capture listener is registered
  std::string format;      // of the stream read last ("" before any)
  uint64_t streams = 0;    // Init calls
  bool listening = false;  // a capture stream is enabled: the guest records
  uint64_t reads = 0, bytes = 0;
  uint64_t refused = 0;
  std::string last_refusal;
  std::string unavailable;  // why the VM cannot hear the viewers (empty when connected)
};

// How a source's frames came and what taking them cost, for the status API and metrics. Sources
// that draw their own pictures report nothing.
struct CaptureStats {
  std::string path;  // how pixels arrive now: "shared-memory", "pixels-by-value", "dma-buf" ("" before any)
  uint64_t frames = 0;               // frames handed on: one per display refresh
  uint64_t display_messages = 0;     // scanouts and updates merged into them
  uint64_t unchanged_refreshes = 0;  // refreshes whose updates held nothing new
  uint64_t pixel_bytes_received = 0; // pixel data that crossed the socket (by value)
  uint64_t update_bytes = 0;         // area the VM named as changed, × 4 bytes
  uint64_t bytes_written = 0;        // of it, written into the desktop's surface
  uint64_t mirror_bytes = 0;         // copied into a mirror to find what changed (shared memory)
  uint64_t tiles_compared = 0, tiles_changed = 0;
  uint64_t refused = 0;  // messages refused at the edge
  std::string last_refusal;
  int64_t cpu_ns = 0;  // CPU time spent taking frames (the source's own thread)
  int64_t refresh_quiet_ns = 0;  // how long the display must be quiet before a refresh is a frame
  // Keyboard and mouse toward the VM, over the source's life (not reset per connection).
  uint64_t input_sent = 0, input_errors = 0;
  uint64_t input_shed = 0;  // not sent: the VM left too many calls unanswered
};

class Source {
 public:
  virtual ~Source() = default;
  virtual std::string describe() const = 0;
  // Frames per second the source aims at (sizes the encoder's one-frame VBV); 0 if unknown.
  virtual double frame_rate() const { return 0; }
  virtual core::Status start(SourceCallbacks callbacks) = 0;
  virtual void stop() = 0;
  // Keyboard and mouse of the VM behind this source; nullptr when it has none.
  virtual core::InputSink* input() { return nullptr; }
  // Counters since the source's current connection began; none for sources that draw.
  virtual std::optional<CaptureStats> capture_stats() const { return std::nullopt; }
  // The same for sound; none for sources without it.
  virtual std::optional<AudioCaptureStats> audio_stats() const { return std::nullopt; }
  // With SourceCallbacks::microphone: the VM's side of it.
  virtual std::optional<MicrophoneCaptureStats> microphone_stats() const { return std::nullopt; }
};

}  // namespace vdistream::capture
