#include "transport/webrtc_peer.hpp"

#define GST_USE_UNSTABLE_API
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/rtp/gstrtphdrext.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>

#include <mutex>

#include "core/clock.hpp"

namespace vdistream::transport {

namespace {

constexpr const char* kTwccUri = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
constexpr guint64 kMaxQueuedBytes = 2 * 1024 * 1024;  // beyond this the viewer is not keeping up
// The data channel's bytes not yet taken by SCTP (a page, or a path, that does not take them):
// past kMaxDataBufferedBytes nothing more is queued for the page; once it is down to
// kDataResyncBytes the page is sent the desktop's current state (what it missed is stale).
constexpr guint64 kMaxDataBufferedBytes = 1024 * 1024;
constexpr guint64 kDataResyncBytes = 256 * 1024;
// The page's microphone, decoded into what core::Microphone takes.
constexpr const char* kMicrophoneBranch =
    "queue max-size-time=200000000 leaky=downstream ! rtpopusdepay ! opusdec ! audioconvert ! audioresample "
    "! audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved "
    "! appsink name=mic sync=false async=false max-buffers=20 drop=true";
constexpr const char* kMicrophoneRtpCaps =
    "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111,encoding-params=(string)2";

void init_gstreamer() {
  static std::once_flag once;
  std::call_once(once, [] { gst_init(nullptr, nullptr); });
}

}  // namespace

const char* to_string(PeerState state) {
  switch (state) {
    case PeerState::Negotiating: return "negotiating";
    case PeerState::Connected: return "connected";
    case PeerState::Failed: return "failed";
    case PeerState::Closed: return "closed";
  }
  return "?";
}

// Every GStreamer callback reaches the peer through this guard: the destructor clears it (waiting
// for a callback in flight), so callbacks from webrtcbin's threads never see a dead peer.
struct PeerGlue {
  std::recursive_mutex mutex;
  WebRtcPeer* peer = nullptr;

  using Ptr = std::shared_ptr<PeerGlue>;
  static gpointer hold(const Ptr& glue) { return new Ptr(glue); }
  static void release(gpointer data, GClosure* = nullptr) { delete static_cast<Ptr*>(data); }
  static void release_notify(gpointer data) { delete static_cast<Ptr*>(data); }
  template <typename F>
  static void with(gpointer data, F fn) {
    Ptr glue = *static_cast<Ptr*>(data);
    std::lock_guard lock(glue->mutex);
    if (glue->peer) fn(*glue->peer);
  }

  static void negotiation_needed(GstElement*, gpointer data) {
    with(data, [](WebRtcPeer& p) { p.on_negotiation_needed(); });
  }
  static void offer_created(GstPromise* promise, gpointer data) {
    with(data, [promise](WebRtcPeer& p) { p.on_offer_created(promise); });
    gst_promise_unref(promise);
  }
  static void ice_candidate(GstElement*, guint mline, gchar* candidate, gpointer data) {
    with(data, [&](WebRtcPeer& p) { p.callbacks_.send_signal(ice_message(mline, candidate)); });
  }
  static void connection_state(GstElement*, GParamSpec*, gpointer data) {
    with(data, [](WebRtcPeer& p) { p.on_connection_state(); });
  }
  static void channel_open(GObject*, gpointer data) {
    with(data, [](WebRtcPeer& p) {
      p.channel_open_ = true;
      if (p.callbacks_.on_channel_open)
        p.send_data(p.callbacks_.on_channel_open());
    });
  }
  static void channel_message(GObject*, gchar* text, gpointer data) {
    with(data, [text](WebRtcPeer& p) {
      if (text && p.callbacks_.on_input) p.callbacks_.on_input(text);
    });
  }
  static void channel_close(GObject*, gpointer data) {
    with(data, [](WebRtcPeer& p) { p.channel_open_ = false; });
  }
  static void channel_drained(GObject*, gpointer data) {
    with(data, [](WebRtcPeer& p) { p.on_data_drained(); });
  }
  // A PLI/FIR from the browser arrives as an upstream force-key-unit event that appsrc ignores.
  static GstPadProbeReturn upstream_event(GstPad*, GstPadProbeInfo* info, gpointer data) {
    GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
    if (event && gst_video_event_is_force_key_unit(event)) {
      with(data, [](WebRtcPeer& p) {
        {
          std::lock_guard lock(p.counters_mutex_);
          ++p.counters_.keyframe_requests;
        }
        p.callbacks_.request_keyframe();
      });
    }
    return GST_PAD_PROBE_OK;
  }
  // Loses video RTP packets where they leave for the network (after the RTX history has kept
  // them, as a real loss would), so NACK can bring them back.
  static bool take_drop(WebRtcPeer& p, GstBuffer* buffer) {
    guint8 head[2] = {0, 0};
    if (gst_buffer_extract(buffer, 0, head, 2) != 2) return false;
    if (p.stall_data_ && head[0] == 23) return true;  // a DTLS application-data record: SCTP, the data channel
    const bool rtp = head[0] >= 128 && head[0] < 192 && (head[1] & 0x7f) == 96;  // SRTP video, not RTX/RTCP/DTLS
    if (!rtp) return false;
    uint32_t n = p.drop_rtp_.load();
    while (n > 0 && !p.drop_rtp_.compare_exchange_weak(n, n - 1)) {
    }
    if (n == 0) return false;
    std::lock_guard lock(p.counters_mutex_);
    ++p.counters_.rtp_packets_dropped;
    return true;
  }
  static GstPadProbeReturn outgoing_packet(GstPad*, GstPadProbeInfo* info, gpointer data) {
    GstPadProbeReturn result = GST_PAD_PROBE_OK;
    with(data, [&](WebRtcPeer& p) {
      if (p.drop_rtp_ == 0 && !p.stall_data_) return;
      if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
        if (take_drop(p, GST_PAD_PROBE_INFO_BUFFER(info))) result = GST_PAD_PROBE_DROP;
      } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
        GstBufferList* list = gst_buffer_list_make_writable(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
        GST_PAD_PROBE_INFO_DATA(info) = list;
        for (guint i = 0; i < gst_buffer_list_length(list);) {
          if (take_drop(p, gst_buffer_list_get(list, i))) gst_buffer_list_remove(list, i, 1);
          else ++i;
        }
      }
    });
    return result;
  }
  struct StatsRequest {
    Ptr glue;
    int64_t now_ns;
  };
  static void stats_ready(GstPromise* promise, gpointer data) {
    auto* request = static_cast<StatsRequest*>(data);
    if (gst_promise_wait(promise) == GST_PROMISE_RESULT_REPLIED) {
      const GstStructure* reply = gst_promise_get_reply(promise);
      std::lock_guard lock(request->glue->mutex);
      if (request->glue->peer && reply) request->glue->peer->on_stats(reply, request->now_ns);
    }
    gst_promise_unref(promise);
  }
  static void free_stats_request(gpointer data) { delete static_cast<StatsRequest*>(data); }
  // A stream from the page: webrtcbin adds its pad on a streaming thread when the first packet came.
  static void pad_added(GstElement*, GstPad* pad, gpointer data) {
    with(data, [pad](WebRtcPeer& p) { p.on_incoming_pad(pad); });
  }
  static GstFlowReturn microphone_sample(GstAppSink* sink, gpointer data) {
    bool alive = false;
    with(data, [&](WebRtcPeer& p) {
      alive = true;
      p.on_microphone_sample(sink);
    });
    return alive ? GST_FLOW_OK : GST_FLOW_FLUSHING;
  }
};

WebRtcPeer::WebRtcPeer(uint64_t id, const core::Logger& log, PeerCallbacks callbacks)
    : id_(id),
      log_(log.scope() + " viewer " + std::to_string(id)),
      callbacks_(std::move(callbacks)),
      glue_(std::make_shared<PeerGlue>()) {
  glue_->peer = this;
}

core::Result<std::unique_ptr<WebRtcPeer>> WebRtcPeer::create(uint64_t id, const core::Logger& log,
                                                             PeerCallbacks callbacks, const PeerIce& ice, bool audio,
                                                             bool microphone) {
  init_gstreamer();
  std::unique_ptr<WebRtcPeer> p(new WebRtcPeer(id, log, std::move(callbacks)));
  GError* error = nullptr;
  std::string description =
      "appsrc name=src is-live=true format=time do-timestamp=true block=false max-bytes=4194304 "
      "caps=video/x-h264,stream-format=byte-stream,alignment=au "
      "! h264parse ! rtph264pay name=pay config-interval=-1 aggregate-mode=zero-latency mtu=1200 "
      "! application/x-rtp,media=video,encoding-name=H264,payload=96 "
      "! webrtcbin name=webrtc bundle-policy=max-bundle latency=0";
  if (audio)
    description +=
        " appsrc name=audio is-live=true format=time do-timestamp=false block=false max-bytes=65536 "
        "caps=audio/x-opus,channel-mapping-family=0,channels=2,rate=48000 "
        "! rtpopuspay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! webrtc.";
  p->pipeline_ = gst_parse_launch(description.c_str(), &error);
  if (!p->pipeline_) {
    std::string why = error ? error->message : "unknown";
    if (error) g_error_free(error);
    return core::Error{"cannot build the WebRTC pipeline (are gstreamer1.0-plugins-bad and gstreamer1.0-nice "
                       "installed?): " + why};
  }
  if (error) g_error_free(error);  // a warning with a pipeline still made
  gst_object_ref_sink(p->pipeline_);
  p->appsrc_ = gst_bin_get_by_name(GST_BIN(p->pipeline_), "src");
  p->webrtc_ = gst_bin_get_by_name(GST_BIN(p->pipeline_), "webrtc");
  if (audio && !(p->audio_src_ = gst_bin_get_by_name(GST_BIN(p->pipeline_), "audio")))
    return core::Error{"the WebRTC pipeline lacks its audio appsrc"};
  GstElement* pay = gst_bin_get_by_name(GST_BIN(p->pipeline_), "pay");
  if (!p->appsrc_ || !p->webrtc_ || !pay) {
    if (pay) gst_object_unref(pay);
    return core::Error{"the WebRTC pipeline lacks its appsrc, payloader or webrtcbin"};
  }
  const auto& glue = p->glue_;

  // NAT traversal: STUN/TURN servers and the UDP port range of the ICE agent.
  if (!ice.stun_uri.empty()) g_object_set(p->webrtc_, "stun-server", ice.stun_uri.c_str(), nullptr);
  for (const auto& turn : ice.turn_uris) {
    // Never the credentials in a log: the scheme and the server only.
    const std::string shown = turn.substr(0, turn.find(':')) + "://…@" + turn.substr(turn.rfind('@') + 1);
    gboolean added = FALSE;
    g_signal_emit_by_name(p->webrtc_, "add-turn-server", turn.c_str(), &added);
    if (!added) return core::Error{"webrtcbin refused the TURN server " + shown};
    p->log_.debug("viewer {}: TURN server {}", id, shown);
  }
  if (ice.min_port != 0) {
    GstObject* agent = nullptr;
    g_object_get(p->webrtc_, "ice-agent", &agent, nullptr);
    if (!agent) return core::Error{"webrtcbin has no ICE agent to give the UDP port range to"};
    g_object_set(agent, "min-rtp-port", guint(ice.min_port), "max-rtp-port", guint(ice.max_port), nullptr);
    gst_object_unref(agent);
  }

  // Congestion feedback: the transport-wide sequence numbers the browser reports back on.
  if (GstRTPHeaderExtension* twcc = gst_rtp_header_extension_create_from_uri(kTwccUri)) {
    gst_rtp_header_extension_set_id(twcc, 1);
    g_signal_emit_by_name(pay, "add-extension", twcc);
    gst_object_unref(twcc);
  } else {
    p->log_.warn("no TWCC header extension (gst-plugins-good rtpmanager): congestion control sees RTCP only");
  }
  gst_object_unref(pay);
  GstPad* src_pad = gst_element_get_static_pad(p->appsrc_, "src");
  gst_pad_add_probe(src_pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, PeerGlue::upstream_event, PeerGlue::hold(glue),
                    PeerGlue::release_notify);
  gst_object_unref(src_pad);

  // Send-only video with NACK + RTX: without them one lost packet freezes Chromium until its PLI.
  GstWebRTCRTPTransceiver* transceiver = nullptr;
  g_signal_emit_by_name(p->webrtc_, "get-transceiver", 0, &transceiver);
  if (!transceiver) return core::Error{"webrtcbin made no transceiver for the video"};
  g_object_set(transceiver, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "do-nack", TRUE, nullptr);
  gst_object_unref(transceiver);
  // The page's microphone comes back on the audio transceiver (or one of its own without sound).
  if (audio) {
    g_signal_emit_by_name(p->webrtc_, "get-transceiver", 1, &transceiver);
    if (!transceiver) return core::Error{"webrtcbin made no transceiver for the audio"};
    g_object_set(transceiver, "direction",
                 microphone ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV : GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY,
                 nullptr);
    gst_object_unref(transceiver);
  } else if (microphone) {
    GstCaps* caps = gst_caps_from_string(kMicrophoneRtpCaps);
    g_signal_emit_by_name(p->webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps,
                          &transceiver);
    gst_caps_unref(caps);
    if (!transceiver) return core::Error{"webrtcbin made no transceiver for the page's microphone"};
    gst_object_unref(transceiver);
  }
  p->microphone_ = microphone;
  if (microphone)
    g_signal_connect_data(p->webrtc_, "pad-added", G_CALLBACK(PeerGlue::pad_added), PeerGlue::hold(glue),
                          PeerGlue::release, GConnectFlags(0));

  g_signal_connect_data(p->webrtc_, "on-negotiation-needed", G_CALLBACK(PeerGlue::negotiation_needed),
                        PeerGlue::hold(glue), PeerGlue::release, GConnectFlags(0));
  g_signal_connect_data(p->webrtc_, "on-ice-candidate", G_CALLBACK(PeerGlue::ice_candidate), PeerGlue::hold(glue),
                        PeerGlue::release, GConnectFlags(0));
  g_signal_connect_data(p->webrtc_, "notify::connection-state", G_CALLBACK(PeerGlue::connection_state),
                        PeerGlue::hold(glue), PeerGlue::release, GConnectFlags(0));
  return p;
}

core::Status WebRtcPeer::start() {
  if (gst_element_set_state(pipeline_, GST_STATE_READY) == GST_STATE_CHANGE_FAILURE)
    return core::Error{"the WebRTC pipeline refused to get READY"};
  // The data channel before PLAYING, so it is in the first offer.
  GstStructure* options = gst_structure_new("options", "ordered", G_TYPE_BOOLEAN, TRUE, nullptr);
  GObject* channel = nullptr;
  g_signal_emit_by_name(webrtc_, "create-data-channel", "input", options, &channel);
  gst_structure_free(options);
  if (!channel) return core::Error{"webrtcbin made no data channel (is the sctp plugin there?)"};
  channel_ = channel;
  g_signal_connect_data(channel, "on-open", G_CALLBACK(PeerGlue::channel_open), PeerGlue::hold(glue_),
                        PeerGlue::release, GConnectFlags(0));
  g_signal_connect_data(channel, "on-message-string", G_CALLBACK(PeerGlue::channel_message), PeerGlue::hold(glue_),
                        PeerGlue::release, GConnectFlags(0));
  g_signal_connect_data(channel, "on-close", G_CALLBACK(PeerGlue::channel_close), PeerGlue::hold(glue_),
                        PeerGlue::release, GConnectFlags(0));
  g_object_set(channel, "buffered-amount-low-threshold", kDataResyncBytes, nullptr);
  g_signal_connect_data(channel, "on-buffered-amount-low", G_CALLBACK(PeerGlue::channel_drained), PeerGlue::hold(glue_),
                        PeerGlue::release, GConnectFlags(0));
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    return core::Error{"the WebRTC pipeline refused to play"};
  // The offer needs caps on webrtcbin's pads: the first IDR brings them for the video, one
  // packet of silence for the audio (the guest may be silent for hours).
  callbacks_.request_keyframe();
  if (audio_src_) {
    static const uint8_t kOpusSilence[] = {0xf8, 0xff, 0xfe};  // one 20 ms CELT frame of silence (RFC 6716 §3)
    GstBuffer* silence = gst_buffer_new_memdup(kOpusSilence, sizeof(kOpusSilence));
    if (gst_app_src_push_buffer(GST_APP_SRC(audio_src_), silence) != GST_FLOW_OK)
      return core::Error{"the audio appsrc refused its first packet"};
  }
  return core::Status::success();
}

WebRtcPeer::~WebRtcPeer() {
  {
    std::lock_guard lock(glue_->mutex);  // waits for a callback in flight
    glue_->peer = nullptr;
  }
  if (pipeline_) gst_element_set_state(pipeline_, GST_STATE_NULL);
  if (channel_) g_object_unref(channel_);
  if (appsrc_) gst_object_unref(appsrc_);
  if (audio_src_) gst_object_unref(audio_src_);
  if (webrtc_) gst_object_unref(webrtc_);
  if (pipeline_) gst_object_unref(pipeline_);
}

void WebRtcPeer::on_negotiation_needed() {
  GstPromise* promise = gst_promise_new_with_change_func(PeerGlue::offer_created, PeerGlue::hold(glue_),
                                                         PeerGlue::release_notify);
  g_signal_emit_by_name(webrtc_, "create-offer", nullptr, promise);
}

void WebRtcPeer::on_offer_created(GstPromise* promise) {
  if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) return;
  const GstStructure* reply = gst_promise_get_reply(promise);
  GstWebRTCSessionDescription* offer = nullptr;
  if (!reply || !gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr) || !offer) {
    log_.error("webrtcbin made no offer");
    set_state(PeerState::Failed);
    return;
  }
  g_signal_emit_by_name(webrtc_, "set-local-description", offer, nullptr);
  gchar* text = gst_sdp_message_as_text(offer->sdp);
  callbacks_.send_signal(offer_message(text));
  g_free(text);
  gst_webrtc_session_description_free(offer);
}

void WebRtcPeer::handle_answer(const std::string& sdp_text) {
  GstSDPMessage* sdp = nullptr;
  if (gst_sdp_message_new_from_text(sdp_text.c_str(), &sdp) != GST_SDP_OK || !sdp) {
    log_.warn("unreadable SDP answer refused");
    if (sdp) gst_sdp_message_free(sdp);
    return;
  }
  GstWebRTCSessionDescription* answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
  g_signal_emit_by_name(webrtc_, "set-remote-description", answer, nullptr);
  gst_webrtc_session_description_free(answer);
}

void WebRtcPeer::handle_ice(uint32_t mline_index, const std::string& candidate) {
  if (candidate.empty()) return;  // end of candidates
  g_signal_emit_by_name(webrtc_, "add-ice-candidate", mline_index, candidate.c_str());
}

void WebRtcPeer::set_state(PeerState state) {
  if (state_.exchange(state) == state) return;
  log_.info("{}", to_string(state));
  if (callbacks_.on_state) callbacks_.on_state(state);
}

void WebRtcPeer::on_connection_state() {
  GstWebRTCPeerConnectionState s = GST_WEBRTC_PEER_CONNECTION_STATE_NEW;
  g_object_get(webrtc_, "connection-state", &s, nullptr);
  switch (s) {
    case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED:
      // Whatever went in before the connection was up may be lost: start again from an IDR.
      waiting_for_idr_ = true;
      set_state(PeerState::Connected);
      request_idr();
      break;
    case GST_WEBRTC_PEER_CONNECTION_STATE_FAILED: set_state(PeerState::Failed); break;
    case GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED: set_state(PeerState::Closed); break;
    default: break;
  }
}

void WebRtcPeer::push(const core::EncodedFramePtr& frame) {
  const PeerState state = state_;
  bool send = false;
  if (state == PeerState::Negotiating) {
    // One IDR gives webrtcbin's pad its caps, so the offer can be made; nothing else until the
    // connection is up.
    send = frame->keyframe && !caps_given_.exchange(true);
  } else if (state == PeerState::Connected) {
    if (waiting_for_idr_ && frame->keyframe) waiting_for_idr_ = false;
    send = !waiting_for_idr_;
    if (send && gst_app_src_get_current_level_bytes(GST_APP_SRC(appsrc_)) > kMaxQueuedBytes) {
      // The viewer is not keeping up: drop, and start again from an IDR.
      waiting_for_idr_ = true;
      send = false;
      request_idr();
    }
  }
  if (!send) {
    if (state == PeerState::Connected) {
      // Still waiting: the IDR asked for may never come (see idr_requested_ns_).
      if (core::monotonic_now_ns() - idr_requested_ns_ >= 1'000'000'000) request_idr();
      count_discarded();
    }
    return;
  }
  auto* hold = new core::EncodedFramePtr(frame);
  GstBuffer* buffer = gst_buffer_new_wrapped_full(
      GST_MEMORY_FLAG_READONLY, const_cast<uint8_t*>(frame->data.data()), frame->data.size(), 0, frame->data.size(),
      hold, [](gpointer data) { delete static_cast<core::EncodedFramePtr*>(data); });
  if (!frame->keyframe) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  if (gst_app_src_push_buffer(GST_APP_SRC(appsrc_), buffer) != GST_FLOW_OK) {
    waiting_for_idr_ = true;  // asked for again by the next frames, at most once a second
    if (state == PeerState::Connected) count_discarded();
    return;
  }
  if (state == PeerState::Connected && frame->keyframe) had_picture_ = true;
  std::lock_guard lock(counters_mutex_);
  ++counters_.frames_sent;
  counters_.bytes_sent += frame->data.size();
}

void WebRtcPeer::count_discarded() {
  std::lock_guard lock(counters_mutex_);
  ++counters_.frames_discarded;
  if (had_picture_) ++counters_.frames_dropped;
}

void WebRtcPeer::push_audio(const core::EncodedAudioPtr& packet) {
  if (!audio_src_) return;
  // 100 ms of Opus at 96 kbit/s is about 1.2 kB: more waiting means the viewer's path lags.
  constexpr guint64 kMaxQueuedAudioBytes = 4096;
  if (state_ != PeerState::Connected || gst_app_src_get_current_level_bytes(GST_APP_SRC(audio_src_)) > kMaxQueuedAudioBytes) {
    std::lock_guard lock(counters_mutex_);
    ++counters_.audio_packets_dropped;
    return;
  }
  // RTP timestamps follow the sound's own clock (10 ms a packet), not when packets happen to
  // arrive: a burst (the silence after a stream ends) plays out over its length. A new stream,
  // or a clock that drifted 200 ms from the pipeline's, starts again from the pipeline's now.
  GstClock* clock = gst_element_get_clock(pipeline_);
  if (!clock) {  // not playing yet
    std::lock_guard lock(counters_mutex_);
    ++counters_.audio_packets_dropped;
    return;
  }
  const GstClockTime now = gst_clock_get_time(clock) - gst_element_get_base_time(pipeline_);
  gst_object_unref(clock);
  constexpr int64_t kDriftNs = 200'000'000;
  const auto pts_of = [&](uint64_t sequence) {
    return int64_t(audio_anchor_pts_) + int64_t(sequence - audio_anchor_sequence_) * core::EncodedAudio::kDurationNs;
  };
  if (!audio_anchored_ || packet->sequence != audio_last_sequence_ + 1 ||
      std::abs(pts_of(packet->sequence) - int64_t(now)) > kDriftNs) {
    audio_anchored_ = true;
    audio_anchor_sequence_ = packet->sequence;
    audio_anchor_pts_ = now;
  }
  audio_last_sequence_ = packet->sequence;
  auto* hold = new core::EncodedAudioPtr(packet);
  GstBuffer* buffer = gst_buffer_new_wrapped_full(
      GST_MEMORY_FLAG_READONLY, const_cast<uint8_t*>(packet->data.data()), packet->data.size(), 0, packet->data.size(),
      hold, [](gpointer data) { delete static_cast<core::EncodedAudioPtr*>(data); });
  GST_BUFFER_PTS(buffer) = GstClockTime(pts_of(packet->sequence));
  GST_BUFFER_DURATION(buffer) = GstClockTime(core::EncodedAudio::kDurationNs);
  const bool pushed = gst_app_src_push_buffer(GST_APP_SRC(audio_src_), buffer) == GST_FLOW_OK;
  std::lock_guard lock(counters_mutex_);
  ++(pushed ? counters_.audio_packets_sent : counters_.audio_packets_dropped);
}

void WebRtcPeer::on_incoming_pad(GstPad* pad) {
  if (!microphone_ || GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
  // The pad's caps say only application/x-rtp when it appears: its transceiver tells the kind.
  GstWebRTCKind kind = GST_WEBRTC_KIND_UNKNOWN;
  GstWebRTCRTPTransceiver* transceiver = nullptr;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(pad), "transceiver"))
    g_object_get(pad, "transceiver", &transceiver, nullptr);
  if (transceiver) {
    g_object_get(transceiver, "kind", &kind, nullptr);
    gst_object_unref(transceiver);
  }
  GstCaps* caps = gst_pad_query_caps(pad, nullptr);
  gchar* described = caps ? gst_caps_to_string(caps) : g_strdup("none");
  if (caps) gst_caps_unref(caps);
  const bool audio = kind == GST_WEBRTC_KIND_AUDIO;
  // One microphone a viewer; anything else the page sends is dropped (an unlinked pad would stop
  // webrtcbin's receive path with not-linked).
  bool take = audio && !microphone_linked_;
  GError* error = nullptr;
  GstElement* branch =
      take ? gst_parse_bin_from_description(kMicrophoneBranch, TRUE, &error) : gst_element_factory_make("fakesink", nullptr);
  if (error) {
    log_.error("the page's microphone cannot be decoded (gstreamer1.0-plugins-good/base?): {}", error->message);
    g_error_free(error);
    if (branch) gst_object_unref(branch);
    branch = gst_element_factory_make("fakesink", nullptr);
    take = false;  // dropped like any other stream
  } else if (!take) {
    log_.info("an incoming stream ({}, kind {}) is not a microphone this viewer may send: dropped", described, int(kind));
  }
  g_free(described);
  if (!branch) return;
  if (take) {
    GstElement* sink = gst_bin_get_by_name(GST_BIN(branch), "mic");  // named in kMicrophoneBranch
    GstAppSinkCallbacks callbacks{};
    callbacks.new_sample = PeerGlue::microphone_sample;
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, PeerGlue::hold(glue_), PeerGlue::release_notify);
    gst_object_unref(sink);
  } else {
    g_object_set(branch, "sync", FALSE, "async", FALSE, nullptr);
  }
  // In a playing pipeline: the branch plays before the pad feeds it, or its first buffers are refused.
  gst_bin_add(GST_BIN(pipeline_), branch);
  gst_element_sync_state_with_parent(branch);
  GstPad* sink_pad = gst_element_get_static_pad(branch, "sink");
  const GstPadLinkReturn linked = gst_pad_link(pad, sink_pad);
  gst_object_unref(sink_pad);
  if (linked != GST_PAD_LINK_OK) {
    log_.error("the page's stream could not be linked ({})", gst_pad_link_get_name(linked));
    return;
  }
  if (take) {
    microphone_linked_ = true;
    log_.info("the page's microphone track arrived");
  }
}

void WebRtcPeer::on_microphone_sample(GstAppSink* sink) {
  GstSample* sample = gst_app_sink_pull_sample(sink);
  if (!sample) return;
  GstBuffer* buffer = gst_sample_get_buffer(sample);
  GstMapInfo map;
  if (buffer && gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    const auto* samples = reinterpret_cast<const int16_t*>(map.data);
    microphone_pending_.insert(microphone_pending_.end(), samples, samples + map.size / sizeof(int16_t));
    gst_buffer_unmap(buffer, &map);
  }
  gst_sample_unref(sample);
  constexpr size_t kChunk = core::kAudioChunkFrames * core::kAudioChannels;
  size_t at = 0;
  for (; microphone_pending_.size() - at >= kChunk; at += kChunk) {
    if (callbacks_.on_microphone) callbacks_.on_microphone(microphone_pending_.data() + at, core::kAudioChunkFrames);
    microphone_sound_ns_ = core::monotonic_now_ns();
    std::lock_guard lock(counters_mutex_);
    ++counters_.microphone_chunks;
  }
  microphone_pending_.erase(microphone_pending_.begin(), microphone_pending_.begin() + ptrdiff_t(at));
}

void WebRtcPeer::request_idr() {
  idr_requested_ns_ = core::monotonic_now_ns();
  callbacks_.request_keyframe();
}

bool WebRtcPeer::send_data(const std::string& text) { return send_data(std::span<const std::string>(&text, 1)); }

bool WebRtcPeer::send_data(std::span<const std::string> messages) {
  if (!channel_ || !channel_open_ || messages.empty()) return false;
  if (const guint64 buffered = data_buffered(); buffered > kMaxDataBufferedBytes) {
    {
      std::lock_guard lock(counters_mutex_);
      counters_.data_messages_dropped += messages.size();
    }
    if (!data_behind_.exchange(true))
      log_.warn("the page is not taking its data channel ({} KiB unsent): cursor, clipboard and notices for it are "
                "dropped until it does, then it is sent the desktop's current state",
                buffered / 1024);
    // It may have drained meanwhile, past the signal that would have said so.
    if (data_buffered() <= kDataResyncBytes) on_data_drained();
    return false;
  }
  for (const auto& m : messages) g_signal_emit_by_name(channel_, "send-string", m.c_str());
  return true;
}

uint64_t WebRtcPeer::data_buffered() const {
  guint64 buffered = 0;
  if (channel_) g_object_get(channel_, "buffered-amount", &buffered, nullptr);
  return buffered;
}

void WebRtcPeer::on_data_drained() {
  if (!data_behind_.exchange(false)) return;
  log_.info("the page takes its data channel again: sent the desktop's current state");
  if (callbacks_.on_channel_open) send_data(callbacks_.on_channel_open());
}

void WebRtcPeer::stall_data_channel(bool stall) {
  install_outgoing_probe();
  stall_data_ = stall;
}

void WebRtcPeer::drop_rtp_packets(uint32_t count) {
  install_outgoing_probe();
  drop_rtp_ += count;
}

void WebRtcPeer::install_outgoing_probe() {
  if (!loss_probe_installed_.exchange(true)) {
    // webrtcbin makes its nicesink with the transport, after negotiation: look for it now.
    GstIterator* it = gst_bin_iterate_recurse(GST_BIN(webrtc_));
    GValue item = G_VALUE_INIT;
    while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
      auto* element = GST_ELEMENT(g_value_get_object(&item));
      GstElementFactory* factory = gst_element_get_factory(element);
      if (factory && std::string(GST_OBJECT_NAME(factory)) == "nicesink") {
        if (GstPad* sink = gst_element_get_static_pad(element, "sink")) {
          gst_pad_add_probe(sink, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                            PeerGlue::outgoing_packet, PeerGlue::hold(glue_), PeerGlue::release_notify);
          gst_object_unref(sink);
        }
      }
      g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
  }
}

PeerCounters WebRtcPeer::counters() const {
  PeerCounters c;
  {
    std::lock_guard lock(counters_mutex_);
    c = counters_;
  }
  const int64_t sound = microphone_sound_ns_;
  c.microphone_live = microphone_linked_ && sound != 0 && core::monotonic_now_ns() - sound < kMicrophoneLiveNs;
  c.data_buffered_bytes = data_buffered();
  return c;
}

void WebRtcPeer::poll_stats(int64_t now_ns) {
  if (state_ != PeerState::Connected) return;
  auto* request = new PeerGlue::StatsRequest{glue_, now_ns};
  GstPromise* promise = gst_promise_new_with_change_func(PeerGlue::stats_ready, request, PeerGlue::free_stats_request);
  g_signal_emit_by_name(webrtc_, "get-stats", nullptr, promise);
}

}  // namespace vdistream::transport
