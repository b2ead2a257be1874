// The org.qemu.Display1.AudioOutListener object: QEMU (started with -audiodev dbus and a sound
// device on it) calls it over a peer-to-peer connection of its own, made by
// Audio.RegisterOutListener, with the guest's playback streams: Init (the format of one
// stream), SetEnabled, SetVolume, Write (PCM) and Fini. Each becomes an AudioPacket or the end
// of a stream for the source's callbacks; a Write that does not fit its stream's format is
// refused at the edge.
#pragma once

#include <gio/gio.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "capture/source.hpp"
#include "core/audio.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "glib/ptr.hpp"

namespace vdistream::capture::qemu {

// Init(t id, y bits, b signed, b float, u freq, y channels, u bytes_per_frame,
// u bytes_per_second, b big_endian) of either listener: the stream's id and its format, or why
// the numbers do not add up.
core::Result<std::pair<uint64_t, core::AudioFormat>> parse_audio_init(GVariant* parameters);

// The introspection XML of one of QEMU's audio listeners: the methods both have (Init, Fini,
// SetEnabled, SetVolume) and its own (`own_methods`, <method> elements).
std::string audio_listener_xml(std::string_view interface, std::string_view own_methods);

class AudioListener {
 public:
  static constexpr const char* kObjectPath = "/org/qemu/Display1/AudioOutListener";
  static constexpr const char* kInterface = "org.qemu.Display1.AudioOutListener";
  // PCM larger than this in one Write is refused (QEMU sends one period: 480 frames by default).
  static constexpr size_t kMaxWriteBytes = 1 << 20;

  // Exports the object on `connection` (a peer-to-peer connection to QEMU, made with
  // G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING) and starts processing its messages.
  // Callbacks run on the thread whose thread-default context the connection was made on.
  static core::Result<std::unique_ptr<AudioListener>> create(glib::GObjectPtr<GDBusConnection> connection,
                                                             const std::string& name, SourceCallbacks callbacks);
  ~AudioListener();
  AudioListener(const AudioListener&) = delete;
  AudioListener& operator=(const AudioListener&) = delete;

  bool closed() const { return closed_; }
  AudioCaptureStats stats() const;

 private:
  AudioListener(const std::string& name, SourceCallbacks callbacks);
  static void on_method_call(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar* method,
                             GVariant* parameters, GDBusMethodInvocation* invocation, gpointer self);
  static void on_closed(GDBusConnection*, gboolean, GError*, gpointer self);
  core::Status dispatch(std::string_view method, GVariant* parameters);
  core::Status init(GVariant* parameters);
  core::Status write(GVariant* parameters);
  void stop_stream(uint64_t id);

  struct Stream {
    core::AudioFormat format;
    core::AudioVolume volume;
    bool enabled = false;
  };

  core::Logger log_;
  core::LogLimiter refusals_logged_;  // a peer repeats refused calls at its own pace
  SourceCallbacks callbacks_;
  glib::GDBusNodeInfoPtr node_;
  glib::GObjectPtr<GDBusConnection> connection_;
  guint registration_ = 0;
  gulong closed_handler_ = 0;
  std::atomic<bool> closed_{false};  // set on the listener's thread, read by stats()
  std::map<uint64_t, Stream> streams_;  // by QEMU's id; the listener's thread only

  mutable std::mutex stats_mutex_;
  AudioCaptureStats stats_;
};

}  // namespace vdistream::capture::qemu
