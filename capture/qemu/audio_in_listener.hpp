// The org.qemu.Display1.AudioInListener object: QEMU (started with -audiodev dbus and a sound
// device that records on it) calls it over a peer-to-peer connection of its own, made by
// Audio.RegisterInListener, for the guest's capture streams: Init (the format of one stream),
// SetEnabled, SetVolume, Fini, and Read(id, size) → PCM, which QEMU waits for in its main loop.
// Read is answered at once from the desktop's microphone (core::Microphone); a Read that asks for
// something impossible gets no bytes, never an error (QEMU would hand the guest stale bytes).
#pragma once

#include <gio/gio.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "capture/source.hpp"
#include "core/audio.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "glib/ptr.hpp"

namespace vdistream::capture::qemu {

class AudioInListener {
 public:
  static constexpr const char* kObjectPath = "/org/qemu/Display1/AudioInListener";
  static constexpr const char* kInterface = "org.qemu.Display1.AudioInListener";
  // A Read asking for more is answered with this much at most (QEMU asks for one period).
  static constexpr size_t kMaxReadBytes = 1 << 20;

  // Exports the object on `connection` (made with G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING)
  // and starts processing its messages, on the thread whose thread-default context it was made on.
  static core::Result<std::unique_ptr<AudioInListener>> create(glib::GObjectPtr<GDBusConnection> connection,
                                                               const std::string& name,
                                                               std::shared_ptr<core::Microphone> microphone);
  ~AudioInListener();
  AudioInListener(const AudioInListener&) = delete;
  AudioInListener& operator=(const AudioInListener&) = delete;

  bool closed() const { return closed_; }
  MicrophoneCaptureStats stats() const;

 private:
  AudioInListener(const std::string& name, std::shared_ptr<core::Microphone> microphone);
  static void on_method_call(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* method,
                             GVariant* parameters, GDBusMethodInvocation* invocation, gpointer self);
  static void on_closed(GDBusConnection*, gboolean, GError*, gpointer self);
  core::Status dispatch(std::string_view method, GVariant* parameters);
  core::Status read(GVariant* parameters, std::vector<uint8_t>& out);
  void set_listening(uint64_t id, bool on);

  struct Stream {
    core::AudioFormat format;
    bool enabled = false;
  };

  core::Logger log_;
  core::LogLimiter refusals_logged_;  // a peer repeats refused calls at its own pace
  std::shared_ptr<core::Microphone> microphone_;
  glib::GDBusNodeInfoPtr node_;
  glib::GObjectPtr<GDBusConnection> connection_;
  guint registration_ = 0;
  gulong closed_handler_ = 0;
  std::atomic<bool> closed_{false};
  std::map<uint64_t, Stream> streams_;  // by QEMU's id; the listener's thread only

  mutable std::mutex stats_mutex_;
  MicrophoneCaptureStats stats_;
};

}  // namespace vdistream::capture::qemu
