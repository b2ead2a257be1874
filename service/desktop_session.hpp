// One desktop of the service: its source → encode pipeline → sinks (SPICE, recorder, WebRTC and
// any encoded sink added at run time), on threads of its own, supervised so that a fault here
// (no VM, a port taken, an encoder error) never touches another desktop.
//
// Threads: the session's supervisor thread builds the desktop, retries with backoff when that
// fails, and samples the rates once a second. The source has its own thread (a QEMU source
// its GLib context, reconnecting by itself), the pipeline its encode thread, SPICE its context
// thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "capture/source.hpp"
#include "encode/file_sink.hpp"
#include "encode/pipeline.hpp"
#include "encode/probe.hpp"
#include "service/config.hpp"
#include "service/desktop_status.hpp"
#include "spice/spice_desktop.hpp"
#include "transport/http_server.hpp"

namespace vdistream::service {

class DesktopSession {
 public:
  // `http`: the service's HTTP server, where a desktop with webrtc = true serves its page and
  // signalling (/desktops/NAME/); it must outlive the session. nullptr: no WebRTC.
  DesktopSession(DesktopConfig config, const encode::EncoderRegistry& registry,
                 transport::HttpServer* http = nullptr);
  ~DesktopSession();  // stop()
  DesktopSession(const DesktopSession&) = delete;
  DesktopSession& operator=(const DesktopSession&) = delete;

  // Returns at once: the supervisor thread builds the desktop (and retries until stop()).
  void start();
  // Stops the source first (no more frames), then SPICE, the encoder and the recorder. Idempotent.
  void stop();

  const DesktopConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  DesktopStatus status() const;

  // An IDR on the next encoded frame (for every encoded sink). Fails while the desktop is not
  // built.
  core::Status request_keyframe();
  // Forgets the latency histograms (not the counters): a benchmark's measuring window starts.
  core::Status reset_latency();
  // Drops every viewer: SPICE clients (its server restarts on the same address), WebRTC viewers
  // (its page and signalling are re-registered) and encoded sinks added with add_encoded_sink().
  // Returns how many servers/sinks were reset.
  core::Result<size_t> disconnect_viewers();

  // What the desktop's browser viewers reported presenting (a frame-number barcode read off each
  // picture, with the page's wall-clock receive and present times), oldest first, from report
  // number `after` on; the last kPresentedKept are kept. For measuring a desktop that draws
  // barcodes (the synthetic desktop, the project's test guest) from outside the service.
  struct Presented {
    uint64_t index = 0;  // counts every report entry since the session started
    uint64_t viewer = 0;
    uint32_t barcode = 0;
    double receive_ms = 0, present_ms = 0;  // CLOCK_REALTIME milliseconds, as the page measured them
  };
  static constexpr size_t kPresentedKept = 8192;
  std::vector<Presented> presented(uint64_t after) const;

  // An encoded sink for the life of the session (kept across rebuilds): WebRTC, benchmarks.
  void add_encoded_sink(std::shared_ptr<core::EncodedSink> sink);
  void remove_encoded_sink(const std::shared_ptr<core::EncodedSink>& sink);

  // How long the supervisor waits before retrying a failed build: 1 s, doubling up to 30 s.
  static constexpr std::chrono::milliseconds kMinBackoff{1000}, kMaxBackoff{30000};

 private:
  struct Parts;  // what one successful build made
  void supervise();
  core::Result<std::unique_ptr<Parts>> build();
  void teardown(std::unique_ptr<Parts> parts);
  // The figures of a built desktop (its source, encoder, pipeline, SPICE and WebRTC).
  void fill_parts_status(DesktopStatus& s, Parts& p) const;
  void sample_rates();
  void set_state(SessionState state, const std::string& reason);
  core::Status start_webrtc(Parts& p);
  bool has_audio() const;      // the desktop plays its VM's sound
  bool has_clipboard() const;  // the desktop shares its VM's clipboard
  bool has_microphone() const;  // the VM hears its viewers (audio_in)
  // The configuration's, with audio as has_audio() says and the parts' clipboard.
  spice::SpiceConfig spice_config(const Parts& p) const;
  bool wait_for(std::chrono::milliseconds d);  // false when stop() was called

  const DesktopConfig config_;
  const encode::EncoderRegistry& registry_;
  transport::HttpServer* const http_;
  core::Logger log_;
  const int64_t created_ns_;

  std::thread thread_;
  mutable std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;

  mutable std::mutex mutex_;  // parts_ pointer, state, rates, external sinks
  std::unique_ptr<Parts> parts_;
  std::optional<DesktopStatus> last_parts_status_;  // of the last parts torn down
  SessionState state_ = SessionState::Starting;
  std::string state_reason_ = "starting";
  std::vector<std::shared_ptr<core::EncodedSink>> external_sinks_;
  double fps_in_ = 0, fps_out_ = 0, bitrate_bps_ = 0;
  bool streaming_ = false;
  struct Sample {
    int64_t at_ns = 0;
    uint64_t captured = 0, out = 0, bytes = 0;
  } last_sample_;

  mutable std::mutex presented_mutex_;
  std::deque<Presented> presented_;
  uint64_t presented_count_ = 0;

  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> connections_{0};
};

}  // namespace vdistream::service
