// One desktop served to SPICE clients: an embedded spice-server on the desktop's own GLib
// thread, with ticket (or explicitly no) authentication, optional TLS, QXL display and inputs.
//
//   auto desktop = spice::SpiceDesktop::create(config, source->input());
//   callbacks.on_frame = [&](core::Frame f) { (*desktop)->on_frame(f); ... };
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/frame.hpp"
#include "core/input.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "glib/loop_thread.hpp"
#include "spice/glib_core.hpp"
#include "spice/agent.hpp"
#include "spice/listen_config.hpp"
#include "spice/playback.hpp"
#include "spice/record.hpp"
#include "spice/qxl_display.hpp"
#include "spice/stream_producer.hpp"

typedef struct RedsState SpiceServer;

namespace vdistream::spice {

class SpiceInputs;

enum class SpiceMode { Qxl, Stream };
core::Result<SpiceMode> parse_spice_mode(const std::string& name);  // "qxl" | "stream"

struct SpiceConfig {
  std::string name = "default";  // the desktop's name: in every log line, and the client's title
  ListenAddress listen;
  std::optional<Ticket> ticket;  // required unless no_auth
  bool no_auth = false;          // only when the operator asks for it
  std::optional<TlsFiles> tls;
  SpiceMode mode = SpiceMode::Qxl;
  bool lossy = false;  // let spice-server use JPEG (WAN); lossless otherwise
  // Stream mode: end each DATA with the next access unit's delimiter (see stream::data_message).
  // Off: it saves spice-glib ~34 ms of its ~400, and remote-viewer ~10 ms, but remote-viewer
  // (avdec_h264's QoS) then drops two frames in three (README, vdistream-bench spice).
  bool stream_trailing_delimiter = false;
  bool audio = false;  // a playback channel for the desktop's sound (play_audio)
  // The desktop's microphone: a record channel whose clients record while the VM listens.
  // nullptr: no record channel.
  std::shared_ptr<core::Microphone> microphone;
  // The desktop's clipboard: clients' copy and paste through the agent protocol (a vdagent
  // device of ours). nullptr: no agent, as without a guest agent.
  std::shared_ptr<core::ClipboardHub> clipboard;
};

// vdistreamd's SPICE options as typed: --spice, --spice-mode, --spice-ticket-file, --no-auth,
// --spice-tls-dir.
struct SpiceOptions {
  std::string address;  // ADDRESS:PORT or unix:PATH
  std::string mode = "qxl";
  std::string ticket_file;
  bool no_auth = false;
  std::string tls_dir;  // ca-cert.pem, server-cert.pem, server-key.pem; TLS on port + 1
  bool lossy = false;   // QXL mode: JPEG for photographic images (WAN); lossless otherwise
};
// Checks them together (a ticket or --no-auth, not both; TLS needs a TCP port) and reads the
// ticket file. An empty ticket_file without no_auth is an error: the caller decides whether to
// make up a password (vdistreamd --demo does, and prints it).
core::Result<SpiceConfig> spice_config_from_options(const SpiceOptions& options, const std::string& desktop_name);

// The remote-viewer command that connects to a server listening at `at` (with the password in
// the URI when one is given).
std::string viewer_command(const ListenAddress& at, const std::string& password);

class SpiceDesktop {
 public:
  // Listens and serves from the moment it returns. `input` (may be nullptr) receives the
  // clients' keyboard and mouse on the desktop's thread and must outlive the desktop. Stream
  // mode needs `keyframes` (the encoder's pipeline), asked for an IDR when a client starts
  // the stream or after a drop; it must outlive the desktop too.
  static core::Result<std::unique_ptr<SpiceDesktop>> create(const SpiceConfig& config, core::InputSink* input,
                                                            core::KeyframeRequester* keyframes = nullptr);
  ~SpiceDesktop();
  SpiceDesktop(const SpiceDesktop&) = delete;
  SpiceDesktop& operator=(const SpiceDesktop&) = delete;

  // QXL mode, from the source's thread (one caller at a time): the frame's damaged
  // rectangles go to the clients. Never blocks on the network. Refused in stream mode.
  core::Status on_frame(const core::Frame& frame);

  // Stream mode: the sink to add to the desktop's encoder pipeline (nullptr in QXL mode). It
  // ignores access units once the desktop is gone.
  std::shared_ptr<core::EncodedSink> stream_sink() const { return stream_; }
  // Stream mode: the sink for MJPEG, for clients without an H.264 decoder (nullptr in QXL mode):
  //   pipeline->add_sink(desktop->stream_mjpeg_sink(), core::Codec::Mjpeg);
  std::shared_ptr<core::EncodedSink> stream_mjpeg_sink() const { return stream_mjpeg_; }
  StreamStats stream_stats() const { return stream_ ? stream_->stats() : StreamStats{}; }

  // From any thread: the desktop's pointer image and position (QXL cursor commands, or the
  // stream device's CURSOR_SET / CURSOR_MOVE in stream mode).
  void set_cursor(const core::CursorShape& shape, const core::CursorPosition& at);
  void move_cursor(const core::CursorPosition& at);

  // From any thread, with SpiceConfig::audio: the desktop's sound to the clients' playback
  // channels, and its end (ignored without audio).
  void play_audio(const core::AudioChunk& chunk) {
    if (playback_) playback_->play(chunk);
  }
  void stop_audio() {
    if (playback_) playback_->stop();
  }
  PlaybackStats playback_stats() const { return playback_ ? playback_->stats() : PlaybackStats{}; }
  RecordStats record_stats() const { return record_ ? record_->stats() : RecordStats{}; }
  AgentStats agent_stats() const { return agent_ ? agent_->stats() : AgentStats{}; }

  const SpiceConfig& config() const { return config_; }
  int clients() const { return clients_.clients(); }  // connected SPICE clients
  QxlStats stats() const { return qxl_.stats(); }
  // What a user pastes: "remote-viewer spice://127.0.0.1:5900?password=..." (the password
  // is part of the command only when given here; it is never logged).
  std::string viewer_command(const std::string& password) const { return spice::viewer_command(config_.listen, password); }

 private:
  SpiceDesktop(const SpiceConfig& config, core::InputSink* input, core::KeyframeRequester* keyframes);
  core::InputSink* input_;
  core::Status start_server();  // on the thread
  void stop_server();           // on the thread

  SpiceConfig config_;
  core::Logger log_;
  glib::LoopThread thread_;
  ClientCount clients_;
  std::unique_ptr<SpiceInputs> inputs_;
  QxlDisplay qxl_;
  std::shared_ptr<StreamProducer> stream_;  // stream mode only
  std::shared_ptr<core::EncodedSink> stream_mjpeg_;
  std::unique_ptr<SpicePlayback> playback_;  // with audio only
  std::unique_ptr<SpiceRecord> record_;      // with a microphone only
  std::unique_ptr<SpiceAgent> agent_;        // with a clipboard only
  SpiceServer* server_ = nullptr;  // desktop thread only
  unsigned led_timer_ = 0;         // GLib source id: polls the VM's keyboard LEDs
};

}  // namespace vdistream::spice
