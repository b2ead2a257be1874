// A QEMU VM's display head as a capture::Source: connects by D-Bus address or through QMP,
// registers a Listener on one graphic console, and reconnects with backoff when QEMU goes away.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "capture/qemu/audio_in_listener.hpp"
#include "capture/qemu/audio_listener.hpp"
#include "capture/qemu/clipboard.hpp"
#include "capture/qemu/display_connection.hpp"
#include "capture/qemu/listener.hpp"
#include "capture/qemu/vm_input.hpp"
#include "capture/source.hpp"
#include "glib/loop_thread.hpp"
#include "glib/ptr.hpp"

namespace vdistream::capture::qemu {

struct QemuSourceConfig {
  DisplayTarget target;
  int64_t console = -1;  // a ConsoleID; -1 = the first graphic console
  std::string name = "qemu";
  bool accept_tiled = false;  // see ListenerConfig
  // The VM's sound (QEMU's -audiodev dbus): an AudioOutListener is registered when the VM has
  // the Audio object; without it the display still works and audio_stats() says why not.
  bool audio = false;
  std::chrono::milliseconds min_backoff{100}, max_backoff{2000};
};

// "qemu-dbus:ADDRESS[#console=N]" (ADDRESS a D-Bus address such as unix:path=/run/vm.sock, or
// "session") and "qemu-qmp:SOCKET[#console=N]".
core::Result<QemuSourceConfig> parse_qemu_spec(const std::string& spec);
bool is_qemu_spec(const std::string& spec);

class QemuSource final : public Source {
 public:
  static core::Result<std::unique_ptr<QemuSource>> create(const QemuSourceConfig& config);
  ~QemuSource() override;

  std::string describe() const override;
  // Returns at once: the source's thread connects, reports on_state(true, ...) when a console
  // is registered, on_state(false, why) when that fails or QEMU goes away, and retries.
  core::Status start(SourceCallbacks callbacks) override;
  void stop() override;
  core::InputSink* input() override { return &input_; }
  std::optional<CaptureStats> capture_stats() const override;
  std::optional<AudioCaptureStats> audio_stats() const override;
  std::optional<MicrophoneCaptureStats> microphone_stats() const override;
  VmInput& vm_input() { return input_; }

  // Asks the guest to resize the console to a client's window (see VmInput::set_ui_info).
  void request_resize(uint32_t width, uint32_t height, std::function<void(core::Status)> done = {});

  bool connected() const { return connected_; }
  uint64_t connections() const { return connections_; }  // successful registrations so far
  ConsoleInfo console() const;                            // of the current or last connection
  ListenerStats listener_stats() const;                   // of the current or last connection

 private:
  explicit QemuSource(const QemuSourceConfig& config);
  void run(const SourceCallbacks& callbacks);  // on the loop, until stop()
  struct Session;
  core::Result<std::unique_ptr<Session>> connect_once(const SourceCallbacks& callbacks);
  void wait_on_context(std::chrono::milliseconds limit, const std::function<bool()>& done);
  // Audio.RegisterOutListener or RegisterInListener (`method`): the peer-to-peer connection on
  // which QEMU will call our listener, or the reason there is none.
  core::Result<glib::GObjectPtr<GDBusConnection>> connect_audio(const DisplayConnection& display, const char* method);

  QemuSourceConfig config_;
  core::Logger log_;
  glib::LoopThread loop_;  // first: input_ posts its events to it
  VmInput input_;
  glib::GObjectPtr<GCancellable> cancellable_;
  std::atomic<bool> running_{false};
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> connections_{0};

  mutable std::mutex session_mutex_;
  const Listener* listener_ = nullptr;  // of the live session, under session_mutex_
  ConsoleInfo console_;
  ListenerStats last_stats_;
  const AudioListener* audio_ = nullptr;  // of the live session, under session_mutex_
  AudioCaptureStats last_audio_stats_;
  const AudioInListener* microphone_ = nullptr;  // of the live session, under session_mutex_
  MicrophoneCaptureStats last_microphone_stats_;
  std::atomic<bool> microphone_configured_{false};  // start() was given a microphone
};

}  // namespace vdistream::capture::qemu
