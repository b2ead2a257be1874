// The desktop's sound on spice-server's playback channel. spice-server negotiates Opus or raw
// PCM with each client itself; we hand it 48 kHz stereo s16 in the frames it lends us
// (spice_server_playback_get_buffer / put_samples). Chunks come from any thread and are played
// on the desktop's thread; with no client, or a client that does not drain, they are dropped
// rather than queued (the sound stays live, as the picture does).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/audio.hpp"
#include "core/log.hpp"
#include "glib/loop_thread.hpp"

typedef struct SpiceBaseInstance SpiceBaseInstance;

namespace vdistream::spice {

struct PlaybackStats {
  uint64_t chunks = 0;          // 10 ms chunks handed in
  uint64_t frames_sent = 0;     // spice-server frames filled and put
  uint64_t chunks_dropped = 0;  // no client, or no free frame for long enough
  bool playing = false;
};

class SpicePlayback {
 public:
  // At most this much sound waits for spice-server to lend a frame; older sound is dropped.
  static constexpr uint32_t kMaxQueuedFrames = core::kAudioRate / 20;  // 50 ms

  explicit SpicePlayback(glib::LoopThread& thread);
  ~SpicePlayback();
  SpicePlayback(const SpicePlayback&) = delete;
  SpicePlayback& operator=(const SpicePlayback&) = delete;

  SpiceBaseInstance* instance();
  void attached();  // desktop thread, after spice_server_add_interface
  void detach();    // desktop thread, before the server goes: nothing more is played

  // Any thread.
  void play(const core::AudioChunk& chunk);
  void stop();
  PlaybackStats stats() const;

  struct Instance;

 private:
  void play_on_thread(const core::AudioChunk& chunk);
  void stop_on_thread();

  glib::LoopThread& thread_;
  std::unique_ptr<Instance> instance_;
  bool attached_ = false, started_ = false;  // desktop thread
  std::vector<int16_t> queued_;              // desktop thread: interleaved stereo not yet in a frame
  uint32_t* frame_ = nullptr;                // desktop thread: the frame spice-server lent us, if any
  uint32_t frame_samples_ = 0, frame_filled_ = 0;
  mutable std::mutex stats_mutex_;
  PlaybackStats stats_;
};

}  // namespace vdistream::spice
