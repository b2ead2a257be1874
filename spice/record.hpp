// The desktop's microphone on spice-server's record channel: while the VM listens (its guest
// records) the clients are told to record (spice_server_record_start) and what they send is
// taken every 10 ms (spice_server_record_get_samples: 48 kHz stereo s16, Opus or raw PCM as the
// client chose) and pushed into the desktop's core::Microphone as "spice". While the VM does not
// listen, the clients are told to stop: nothing is captured for nobody.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/audio.hpp"
#include "core/log.hpp"
#include "glib/loop_thread.hpp"

typedef struct SpiceBaseInstance SpiceBaseInstance;

namespace vdistream::spice {

struct RecordStats {
  bool recording = false;  // the clients were told to record
  uint64_t starts = 0;     // times they were
  uint64_t frames = 0;     // 48 kHz frames the clients sent
};

class SpiceRecord {
 public:
  static constexpr unsigned kPollMs = 10;

  SpiceRecord(const core::Logger& log, glib::LoopThread& thread, std::shared_ptr<core::Microphone> microphone);
  ~SpiceRecord();
  SpiceRecord(const SpiceRecord&) = delete;
  SpiceRecord& operator=(const SpiceRecord&) = delete;

  SpiceBaseInstance* instance();
  void attached();  // desktop thread, after spice_server_add_interface: follows the VM from now on
  void detach();    // desktop thread, before the server goes

  RecordStats stats() const;

  struct Instance;
  struct Gate;

 private:
  void set_recording(bool on);  // desktop thread
  static int poll(void* self);  // GSourceFunc

  const core::Logger& log_;
  glib::LoopThread& thread_;
  std::shared_ptr<core::Microphone> microphone_;
  std::unique_ptr<Instance> instance_;
  std::shared_ptr<Gate> gate_;  // lets the microphone's callback reach us while we live
  bool attached_ = false;       // desktop thread
  unsigned timer_ = 0;          // GLib source id while recording
  std::vector<uint32_t> samples_;
  mutable std::mutex stats_mutex_;
  RecordStats stats_;
};

}  // namespace vdistream::spice
