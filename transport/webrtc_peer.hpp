// One browser viewer: an appsrc of the desktop's shared access units (no re-encode) into
// h264parse → rtph264pay (TWCC extension) → webrtcbin (NACK/RTX), with audio a second appsrc
// of the desktop's shared Opus packets → rtpopuspay → webrtcbin (one clock for both), plus the
// "input" data channel. With a microphone, the page's Opus track comes back (the audio
// transceiver sendrecv, or a recvonly one) and is decoded to 48 kHz stereo s16 in 10 ms chunks.
// Feedback goes out through callbacks: keyframe requests (connect, PLI/FIR, drops), congestion
// reports, input events, the page's microphone, failure.
#pragma once

#include <atomic>
#include <map>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "core/audio.hpp"
#include "core/frame.hpp"
#include "core/input.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "transport/messages.hpp"
#include "transport/rate_controller.hpp"

typedef struct _GstElement GstElement;
typedef struct _GstPad GstPad;
typedef struct _GstAppSink GstAppSink;
typedef struct _GstPromise GstPromise;
typedef struct _GstStructure GstStructure;
typedef struct _GObject GObject;

namespace vdistream::transport {

struct PeerGlue;

enum class PeerState { Negotiating, Connected, Failed, Closed };
const char* to_string(PeerState state);

struct PeerCallbacks {
  std::function<void(std::string)> send_signal;  // JSON text to the page's WebSocket (any thread)
  std::function<void()> request_keyframe;        // coalesced by the desktop
  std::function<void(std::string_view text)> on_input;  // data channel text (a GStreamer thread)
  std::function<void(PeerState)> on_state;              // a GStreamer thread
  std::function<void(const CongestionReport&)> on_congestion;
  // The data channel is open: what to send first (desktop size, cursor).
  std::function<std::vector<std::string>()> on_channel_open;
  // With a microphone: 10 ms (core::kAudioChunkFrames) of the page's microphone, interleaved
  // 48 kHz stereo s16, on a GStreamer streaming thread.
  std::function<void(const int16_t* samples, size_t frames)> on_microphone;
};

// What webrtcbin's ICE agent uses: the desktop's STUN/TURN servers (TURN with this viewer's
// credentials) in webrtcbin's URI forms, and the UDP ports it may bind (0/0: any).
struct PeerIce {
  std::string stun_uri;                // "stun://HOST:PORT" or empty (webrtcbin takes one)
  std::vector<std::string> turn_uris;  // "turn(s)://USER:PASS@HOST:PORT[?transport=tcp]"
  uint16_t min_port = 0, max_port = 0;
};

struct PeerCounters {
  uint64_t frames_sent = 0;
  // Not sent while connected: waiting for an IDR, or the queue was full. Of those, `dropped`
  // came after the viewer had a picture (its picture froze until the next IDR); the rest came
  // before its first picture, which the IDR it waits for carries whole (nothing was lost).
  uint64_t frames_discarded = 0;
  uint64_t frames_dropped = 0;
  uint64_t bytes_sent = 0;
  uint64_t keyframe_requests = 0;  // PLI/FIR from the browser (force-key-unit events)
  uint64_t rtp_packets_dropped = 0;  // on purpose (tests)
  uint64_t audio_packets_sent = 0, audio_packets_dropped = 0;  // dropped: not connected, or queued > 100 ms
  uint64_t nacks = 0, plis = 0;
  double rtt_ms = 0, fraction_lost = 0;
  // The page's microphone track: decoded, a chunk in the last WebRtcPeer::kMicrophoneLiveNs; its
  // 10 ms chunks so far.
  bool microphone_live = false;
  uint64_t microphone_chunks = 0;
  // The data channel: bytes SCTP has not taken yet; messages not queued because too many were
  // (the page was sent the desktop's current state once it took them).
  uint64_t data_buffered_bytes = 0;
  uint64_t data_messages_dropped = 0;
};

class WebRtcPeer {
 public:
  static constexpr int64_t kMicrophoneLiveNs = 500'000'000;
  // With `audio`, the offer has an Opus track (sendonly) fed by push_audio(). With
  // `microphone`, the page may send one Opus track back (callbacks.on_microphone).
  static core::Result<std::unique_ptr<WebRtcPeer>> create(uint64_t id, const core::Logger& log, PeerCallbacks callbacks,
                                                          const PeerIce& ice = {}, bool audio = false,
                                                          bool microphone = false);
  ~WebRtcPeer();  // call from a thread that is not one of this pipeline's
  WebRtcPeer(const WebRtcPeer&) = delete;
  WebRtcPeer& operator=(const WebRtcPeer&) = delete;

  core::Status start();
  void handle_answer(const std::string& sdp);
  void handle_ice(uint32_t mline_index, const std::string& candidate);

  // Encode thread; never blocks. Discards until an IDR whenever the picture would break.
  void push(const core::EncodedFramePtr& frame);
  // Any thread; never blocks. Sent only while connected; dropped when the viewer lags.
  void push_audio(const core::EncodedAudioPtr& packet);
  // On the data channel, when open; false when not sent. Messages are all sent or none: none
  // while more than 1 MiB waits unsent for this page (counted; once it is down to 256 KiB the
  // page is sent callbacks.on_channel_open()'s messages again, the desktop's current state).
  bool send_data(const std::string& text);
  bool send_data(std::span<const std::string> messages);
  void poll_stats(int64_t now_ns);          // asks webrtcbin and the RTP session; reports async
  void drop_rtp_packets(uint32_t count);    // loses the next `count` RTP packets on purpose
  void stall_data_channel(bool stall);      // tests: loses every outgoing SCTP packet while on

  uint64_t id() const { return id_; }
  PeerState state() const { return state_; }
  PeerCounters counters() const;

 private:
  WebRtcPeer(uint64_t id, const core::Logger& log, PeerCallbacks callbacks);
  void on_negotiation_needed();
  void on_offer_created(GstPromise* promise);
  void on_connection_state();
  void on_stats(const GstStructure* stats, int64_t now_ns);
  void set_state(PeerState state);
  void request_idr();  // callbacks_.request_keyframe(), noting when
  void count_discarded();  // push()'s, while connected
  uint64_t data_buffered() const;
  void on_data_drained();  // the data channel is down to kDataResyncBytes (a GStreamer thread)
  void install_outgoing_probe();  // drop_rtp_packets()'s and stall_data_channel()'s
  void on_incoming_pad(GstPad* pad);        // webrtcbin's streaming thread
  void on_microphone_sample(GstAppSink* sink);  // the microphone branch's streaming thread

  const uint64_t id_;
  core::Logger log_;
  PeerCallbacks callbacks_;
  GstElement* pipeline_ = nullptr;
  GstElement* appsrc_ = nullptr;
  GstElement* audio_src_ = nullptr;  // with audio only
  // push_audio()'s clock (one caller at a time): the packet that started the current run of
  // consecutive packets, and the running time it was given.
  bool audio_anchored_ = false;
  uint64_t audio_anchor_sequence_ = 0, audio_last_sequence_ = 0;
  uint64_t audio_anchor_pts_ = 0;
  GstElement* webrtc_ = nullptr;
  GObject* channel_ = nullptr;  // GstWebRTCDataChannel
  std::atomic<PeerState> state_{PeerState::Negotiating};
  std::atomic<bool> caps_given_{false};     // the first IDR went in so negotiation can start
  std::atomic<bool> waiting_for_idr_{true};
  bool had_picture_ = false;  // push()'s: an IDR went in since the connection came up
  // When this viewer last asked for an IDR (monotonic ns): a viewer still waiting for one a
  // second later asks again, so no lost request (an IDR that went in while appsrc was not
  // taking buffers, one coalesced away) leaves it black for good.
  std::atomic<int64_t> idr_requested_ns_{0};
  std::atomic<bool> channel_open_{false};
  std::atomic<uint32_t> drop_rtp_{0};
  std::atomic<bool> stall_data_{false};
  std::atomic<bool> data_behind_{false};  // messages were dropped; the page is owed the current state
  std::atomic<bool> loss_probe_installed_{false};
  bool microphone_ = false;
  std::atomic<bool> microphone_linked_{false};   // the page's track reached its decoder
  std::atomic<int64_t> microphone_sound_ns_{0};  // when the last chunk arrived (monotonic)
  std::vector<int16_t> microphone_pending_;      // less than a chunk, the streaming thread's
  std::shared_ptr<PeerGlue> glue_;

  mutable std::mutex counters_mutex_;
  PeerCounters counters_;

  friend struct PeerGlue;
};

}  // namespace vdistream::transport
