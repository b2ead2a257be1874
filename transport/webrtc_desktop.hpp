// One desktop served to browsers: the page at /desktops/<name>/ and its signalling WebSocket at
// /desktops/<name>/ws on the service's HttpServer, one WebRtcPeer per viewer fed with the
// desktop's shared access units, input back to the desktop's InputSink, cursor out to the page,
// and a rate controller that sets the encoder's bitrate for the slowest viewer.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/audio.hpp"
#include "core/clipboard.hpp"
#include "core/frame.hpp"
#include "core/input.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "transport/http_server.hpp"
#include "transport/ice.hpp"
#include "transport/messages.hpp"
#include "transport/rate_controller.hpp"
#include "transport/webrtc_peer.hpp"

namespace vdistream::transport {

struct WebRtcDesktopConfig {
  std::string name = "default";
  std::string token;  // empty: no token needed (only when the operator disabled auth)
  RateControllerConfig rate;
  size_t max_viewers = 16;
  int64_t stats_interval_ms = 1000;
  // The barcode a page reads is the frame's sequence number (the synthetic desktop): its reports
  // then become glass-to-glass latency in the stats and on the page. A VM's pictures may carry a
  // barcode of their own (the project's test guest), which says nothing about our sequence.
  bool barcode_is_sequence = true;
  // The desktop's sound as an Opus track on every viewer's connection (on_audio()).
  bool audio = false;
  // STUN/TURN for the page and webrtcbin, the page's candidate policy, webrtcbin's UDP ports.
  IceSettings ice;
  // Seconds since the epoch, for the expiry of TURN REST credentials (tests set another clock).
  std::function<int64_t()> unix_now;
};

// How the desktop reaches the rest of the service; every member is optional.
struct WebRtcDesktopHooks {
  core::KeyframeRequester* keyframes = nullptr;  // coalesces across viewers
  core::InputSink* input = nullptr;
  std::function<void(uint32_t bps)> set_bitrate;
  // true with the first viewer, false after the last: attach/detach from the encode pipeline.
  std::function<void(bool active)> set_active;
  // What a page decoded (barcodes with wall-clock receive/present times): tests and benchmarks.
  std::function<void(uint64_t viewer, const FrameReport&)> on_frames;
  // What a page's analyser heard (level, strongest frequency): tests and benchmarks.
  std::function<void(uint64_t viewer, const AudioReport&)> on_audio_report;
  // The desktop's clipboard: what a page copies goes to the VM, what the VM copies to every page.
  std::shared_ptr<core::ClipboardHub> clipboard;
  // The desktop's microphone (nullptr: none, and pages are offered none): each page may send its
  // user's microphone, asked for only when the user presses the page's button, and sent only
  // while the VM listens; it goes in as "browser <viewer id>".
  std::shared_ptr<core::Microphone> microphone;
};

struct ViewerStats {
  uint64_t id = 0;
  std::string state;
  std::string remote_address;
  PeerCounters counters;
  uint32_t estimate_bps = 0;      // the rate controller's estimate for this viewer
  ViewerStatsReport page;         // what the page's overlay shows
  double latency_p50_ms = -1;     // glass-to-glass from the page's barcode reports, last report
  AudioReport audio;              // the page's last audio report
  ClipboardReport clipboard;      // the page's last clipboard report
  std::optional<MicrophoneReport> microphone;  // the page's last microphone report (button, capture, sending)
  uint64_t replies_dropped = 0;   // signalling replies not sent: the page did not read its socket
};

struct WebRtcStats {
  std::string name;
  size_t viewers = 0;
  uint64_t viewers_total = 0;      // sessions ever opened
  uint64_t sessions_refused = 0;   // too many viewers, pipeline failures
  uint64_t messages_refused = 0;   // malformed/unknown signalling or input
  uint64_t idr_requests = 0;       // asked of the encoder (connects, PLI/FIR, drops)
  uint64_t ice_errors = 0;         // pages' icecandidateerror reports (a TURN server refusing, unreachable)
  std::string last_ice_error;      // "401 Unauthorized (turn:HOST:PORT)"
  IceSettings ice;                 // as configured, without the credentials
  std::string ice_credentials;     // "none", "long-term" or "rest" (coturn's shared secret)
  uint32_t bitrate_bps = 0;
  bool audio = false;              // an Opus track goes to every viewer
  uint64_t audio_packets = 0;      // Opus packets handed in (shared by the viewers)
  bool clipboard = false;          // pages share the desktop's clipboard
  uint64_t clipboard_from_pages = 0, clipboard_to_pages = 0;  // texts copied in a page; VM texts sent
  bool microphone = false;             // pages may send their microphone to the desktop's
  bool microphone_listening = false;   // the VM listens: pages send
  uint64_t microphone_chunks = 0;      // 10 ms chunks of the pages' microphones given to the desktop's
  uint64_t microphone_chunks_unheard = 0;  // arrived while the VM did not listen: dropped
  std::vector<ViewerStats> per_viewer;
  std::deque<RateDecision> decisions;
};

// The HttpServer must outlive the desktop (the destructor unregisters its paths from it).
class WebRtcDesktop final : public core::EncodedSink, public std::enable_shared_from_this<WebRtcDesktop> {
 public:
  static core::Result<std::shared_ptr<WebRtcDesktop>> create(HttpServer& server, const WebRtcDesktopConfig& config,
                                                             WebRtcDesktopHooks hooks);
  ~WebRtcDesktop() override;  // unregisters its paths, closes every viewer
  WebRtcDesktop(const WebRtcDesktop&) = delete;
  WebRtcDesktop& operator=(const WebRtcDesktop&) = delete;

  void on_encoded(const core::EncodedFramePtr& frame) override;  // encode thread, never blocks
  // The desktop's Opus packets (with audio), from any thread; never blocks.
  void on_audio(const core::EncodedAudioPtr& packet);

  void set_cursor(const core::CursorShape& shape);
  void move_cursor(const core::CursorPosition& position);

  WebRtcStats stats() const;
  std::string path() const { return "/desktops/" + config_.name + "/"; }
  // The page's URL on `base` (e.g. HttpServer::base_url()), with the token.
  std::string url(const std::string& base) const;

  void drop_rtp_packets(uint32_t count);  // every viewer loses its next `count` RTP packets
  void stall_data_channels(bool stall);    // tests: every viewer's data channel loses its packets while on

 private:
  struct Viewer {
    std::unique_ptr<WebRtcPeer> peer;
    std::shared_ptr<WebSocket> socket;
    std::string remote_address;
    ViewerStatsReport page;
    double latency_p50_ms = -1;
    AudioReport audio;
    ClipboardReport clipboard;  // what the page last got of the VM's clipboard
    std::optional<MicrophoneReport> microphone;
    std::string clip_text;    // a page's copy, piece by piece
    bool clip_refused = false;  // the copy under way went past the limit: its pieces are dropped
  };
  WebRtcDesktop(HttpServer& server, const WebRtcDesktopConfig& config, WebRtcDesktopHooks hooks);
  HttpResponse serve_page(const HttpRequest& request) const;
  void open_viewer(const std::shared_ptr<WebSocket>& socket, const HttpRequest& request);
  void on_signal(uint64_t id, const std::string& text);
  void on_input(uint64_t id, std::string_view text);
  void on_clipboard_piece(uint64_t id, std::string_view text);
  void on_microphone(uint64_t id, const int16_t* samples, size_t frames);  // a GStreamer thread
  void microphone_listening(bool listening);  // the VM's thread
  // The desktop's ClipboardClient: the VM's texts to every page.
  class Clipboard final : public core::ClipboardClient {
   public:
    explicit Clipboard(WebRtcDesktop& desktop) : desktop_(desktop) {}
    void vm_copied(const core::ClipboardTextPtr& text) override;
    void vm_cleared() override;

   private:
    WebRtcDesktop& desktop_;
  };
  void remove_viewer(uint64_t id);
  void poll_stats();
  void request_keyframe();
  void handle_frames(uint64_t id, FrameReport report);
  PeerIce peer_ice(uint64_t id, std::string& page_config) const;  // this viewer's ICE servers and credentials

  HttpServer& server_;
  WebRtcDesktopConfig config_;
  WebRtcDesktopHooks hooks_;
  core::Logger log_;
  core::LogLimiter refusals_logged_;  // a peer repeats refused calls at its own pace
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int32_t> width_{0}, height_{0};
  std::atomic<uint64_t> idr_requests_{0}, viewers_total_{0}, sessions_refused_{0}, messages_refused_{0};
  std::atomic<uint64_t> ice_errors_{0}, audio_packets_{0};
  std::string last_ice_error_;  // under viewers_mutex_
  unsigned stats_timer_ = 0;  // GSource id on the server's context

  mutable std::mutex viewers_mutex_;  // also serialises pushes
  std::map<uint64_t, Viewer> viewers_;
  std::mutex cursor_mutex_;
  std::string cursor_shape_message_, cursor_position_message_;

  std::mutex input_mutex_;
  Clipboard clipboard_{*this};
  std::vector<std::string> clip_messages_;  // the VM's last text as pieces, under cursor_mutex_
  std::atomic<uint64_t> clip_from_pages_{0}, clip_to_pages_{0};
  std::atomic<bool> microphone_listening_{false};
  std::atomic<uint64_t> microphone_chunks_{0}, microphone_chunks_unheard_{0};

  mutable std::mutex rate_mutex_;
  RateController rate_;

  // Capture times by barcode value (frame sequence modulo 2^24), for the latency figure.
  static constexpr size_t kCaptureRing = 1024;
  mutable std::mutex capture_mutex_;
  std::vector<std::pair<uint64_t, int64_t>> capture_ring_ = std::vector<std::pair<uint64_t, int64_t>>(kCaptureRing);
};

// The stats as JSON, for the control API and tests: {"name", "viewers", "bitrate_bps",
// "idr_requests", ..., "per_viewer": [...], "decisions": [{"at_ns", "bitrate_bps", "reason"}]}.
std::string stats_json(const WebRtcStats& stats);

// The web client's files, embedded at build time: "index.html", "client.js". Empty if unknown.
std::string_view web_asset(std::string_view name);

}  // namespace vdistream::transport
