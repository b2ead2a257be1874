#include "transport/webrtc_desktop.hpp"

#include <fmt/format.h>
#include <glib.h>
#include <time.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/memory.hpp"
#include "glib/loop_thread.hpp"

namespace vdistream::transport {

namespace {

int64_t realtime_minus_monotonic_ns() {
  timespec rt{}, mono{};
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (int64_t(rt.tv_sec) - int64_t(mono.tv_sec)) * 1'000'000'000 + (rt.tv_nsec - mono.tv_nsec);
}

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), [](char c) { return g_ascii_isalnum(c) || c == '-' || c == '_'; });
}

}  // namespace

WebRtcDesktop::WebRtcDesktop(HttpServer& server, const WebRtcDesktopConfig& config, WebRtcDesktopHooks hooks)
    : server_(server), config_(config), hooks_(std::move(hooks)), log_(config.name), rate_(config.rate) {}

core::Result<std::shared_ptr<WebRtcDesktop>> WebRtcDesktop::create(HttpServer& server,
                                                                   const WebRtcDesktopConfig& config,
                                                                   WebRtcDesktopHooks hooks) {
  if (!valid_name(config.name))
    return core::Error{"desktop name '" + config.name + "': use 1-64 letters, digits, '-' or '_'"};
  if (auto problems = check_ice_settings(config.ice); !problems.empty()) {
    std::string why = "NAT traversal settings:";
    for (const auto& p : problems) why += " " + p + ";";
    why.pop_back();
    return core::Error{why};
  }
  std::shared_ptr<WebRtcDesktop> d(new WebRtcDesktop(server, config, std::move(hooks)));
  // Probe once that the pipeline can be built (with the ICE servers), so a missing plugin or a
  // TURN server webrtcbin refuses is an error now, not per viewer.
  {
    std::string page_config;
    auto probe = WebRtcPeer::create(0, core::Logger(config.name), PeerCallbacks{}, d->peer_ice(0, page_config));
    if (!probe) return core::Error{probe.error()};
  }
  if (d->hooks_.clipboard) d->hooks_.clipboard->add_client(&d->clipboard_);
  std::weak_ptr<WebRtcDesktop> weak = d;
  // The microphone keeps its callbacks for good: this one outlives the desktop harmlessly.
  if (d->hooks_.microphone)
    d->hooks_.microphone->on_listening([weak](bool listening) {
      if (auto self = weak.lock()) self->microphone_listening(listening);
    });
  server.add_handler(d->path(), [weak](const HttpRequest& request) {
    auto self = weak.lock();
    return self ? self->serve_page(request) : HttpResponse::text(404, "no such desktop\n");
  });
  WebSocketOptions ws;
  ws.max_message_bytes = kMaxSignalBytes;
  ws.check = [token = config.token](const HttpRequest& request) { return check_token(request, token); };
  ws.on_open = [weak](const std::shared_ptr<WebSocket>& socket, const HttpRequest& request) {
    if (auto self = weak.lock()) self->open_viewer(socket, request);
    else socket->close(1001, "desktop gone");
  };
  server.add_websocket_handler(d->path() + "ws", std::move(ws));
  server.run_on_thread([&] {
    GSource* timer = g_timeout_source_new(guint(config.stats_interval_ms));
    g_source_set_callback(
        timer,
        [](gpointer data) -> gboolean {
          if (auto self = static_cast<std::weak_ptr<WebRtcDesktop>*>(data)->lock()) self->poll_stats();
          return G_SOURCE_CONTINUE;
        },
        new std::weak_ptr<WebRtcDesktop>(weak), [](gpointer data) { delete static_cast<std::weak_ptr<WebRtcDesktop>*>(data); });
    d->stats_timer_ = g_source_attach(timer, server.thread().context());
    g_source_unref(timer);
  });
  d->log_.info("WebRTC at {}{}", d->path(), config.token.empty() ? " (no token: --no-auth)" : "");
  return d;
}

WebRtcDesktop::~WebRtcDesktop() {
  if (hooks_.clipboard) hooks_.clipboard->remove_client(&clipboard_);
  server_.remove_handler(path() + "ws");
  server_.remove_handler(path());
  std::map<uint64_t, Viewer> viewers;
  server_.run_on_thread([&] {
    if (GSource* timer = g_main_context_find_source_by_id(server_.thread().context(), stats_timer_))
      g_source_destroy(timer);
    std::lock_guard lock(viewers_mutex_);
    viewers.swap(viewers_);
    for (auto& [id, v] : viewers) {
      v.socket->on_text = nullptr;
      v.socket->on_closed = nullptr;
      v.socket->close(1001, "desktop stopped");
    }
  });
  viewers.clear();  // the peers' pipelines stop here, on this thread
  if (hooks_.set_active) hooks_.set_active(false);
}

std::string WebRtcDesktop::url(const std::string& base) const {
  if (config_.token.empty()) return base + path();
  gchar* escaped = g_uri_escape_string(config_.token.c_str(), nullptr, FALSE);
  std::string u = base + path() + "?token=" + escaped;
  g_free(escaped);
  return u;
}

HttpResponse WebRtcDesktop::serve_page(const HttpRequest& request) const {
  if (auto refused = check_token(request, config_.token)) return *refused;
  const std::string rest = request.path.substr(std::min(request.path.size(), path().size()));
  if (request.method != "GET" && request.method != "HEAD") return HttpResponse::text(405, "GET only\n");
  if (rest.empty() || rest == "index.html") {
    // One document: the script goes inline, so no second request has to carry the token.
    std::string page(web_asset("index.html"));
    const std::string tag = "<script src=\"client.js\"></script>";
    if (auto at = page.find(tag); at != std::string::npos)
      page.replace(at, tag.size(), "<script>\n" + std::string(web_asset("client.js")) + "\n</script>");
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::move(page);
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                           "connect-src 'self' ws: wss:; img-src data:; media-src 'self' blob: mediastream:");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    return r;
  }
  return HttpResponse::text(404, "not found\n");
}

PeerIce WebRtcDesktop::peer_ice(uint64_t id, std::string& page_config) const {
  const IceSettings& ice = config_.ice;
  const int64_t now = config_.unix_now ? config_.unix_now() : int64_t(g_get_real_time() / 1000000);
  // coturn's REST user part names the desktop and the viewer, for its logs and quotas.
  const TurnCredentials credentials = viewer_turn_credentials(ice, fmt::format("{}.{}", config_.name, id), now);
  page_config = ice_config_message(ice, credentials);
  PeerIce p;
  p.min_port = ice.min_port;
  p.max_port = ice.max_port;
  if (!ice.stun.empty())
    if (auto url = parse_ice_url(ice.stun.front())) p.stun_uri = webrtcbin_stun_uri(*url);  // webrtcbin takes one
  for (const auto& turn : ice.turn)
    if (auto url = parse_ice_url(turn)) p.turn_uris.push_back(webrtcbin_turn_uri(*url, credentials));
  return p;
}

void WebRtcDesktop::open_viewer(const std::shared_ptr<WebSocket>& socket, const HttpRequest& request) {
  const uint64_t id = next_id_++;
  {
    std::lock_guard lock(viewers_mutex_);
    if (viewers_.size() >= config_.max_viewers) {
      ++sessions_refused_;
      socket->send_text(error_message("too many viewers (" + std::to_string(config_.max_viewers) + ")"));
      // 1008 (policy): libsoup 3.2 turns the codes it does not know below 3000, 1013 (try again
      // later) among them, into a protocol error (1002) on the wire.
      socket->close(1008, "too many viewers");
      return;
    }
  }
  std::weak_ptr<WebRtcDesktop> weak = weak_from_this();
  std::weak_ptr<WebSocket> weak_socket = socket;
  PeerCallbacks callbacks;
  callbacks.send_signal = [weak_socket](std::string text) {
    if (auto s = weak_socket.lock()) s->send_text(std::move(text));
  };
  callbacks.request_keyframe = [this] { request_keyframe(); };
  callbacks.on_input = [this, id](std::string_view text) { on_input(id, text); };
  callbacks.on_state = [weak, id, this](PeerState state) {
    if (state == PeerState::Failed || state == PeerState::Closed)
      server_.thread().post([weak, id] {
        if (auto self = weak.lock()) self->remove_viewer(id);
      });
  };
  callbacks.on_congestion = [this, id](const CongestionReport& report) {
    std::optional<RateDecision> decision;
    {
      std::lock_guard lock(rate_mutex_);
      decision = rate_.report(id, report);
    }
    if (decision) {
      log_.info("bitrate: {}", decision->reason);
      if (hooks_.set_bitrate) hooks_.set_bitrate(decision->bitrate_bps);
    }
  };
  callbacks.on_channel_open = [this] {
    std::vector<std::string> messages;
    std::lock_guard lock(cursor_mutex_);
    if (width_ > 0) messages.push_back(desktop_size_message(width_, height_));
    if (!cursor_shape_message_.empty()) messages.push_back(cursor_shape_message_);
    if (!cursor_position_message_.empty()) messages.push_back(cursor_position_message_);
    messages.insert(messages.end(), clip_messages_.begin(), clip_messages_.end());  // the VM's last copy
    if (hooks_.microphone) messages.push_back(microphone_listening_message(microphone_listening_));
    return messages;
  };
  if (hooks_.microphone)
    callbacks.on_microphone = [this, id](const int16_t* samples, size_t frames) { on_microphone(id, samples, frames); };
  std::string page_config;
  const PeerIce ice = peer_ice(id, page_config);
  if (hooks_.microphone) {
    // The page shows its microphone button, and answers with a sender for it, only when told.
    auto config = nlohmann::json::parse(page_config);
    config["microphone"] = true;
    page_config = config.dump();
  }
  auto peer = WebRtcPeer::create(id, log_, std::move(callbacks), ice, config_.audio, hooks_.microphone != nullptr);
  if (!peer) {
    ++sessions_refused_;
    log_.error("viewer {}: {}", id, peer.error());
    socket->send_text(error_message("the server could not start a session"));
    socket->close(1011, "no session");
    return;
  }
  // The page's ICE servers and policy, before the offer it answers with them.
  socket->send_text(page_config);
  socket->on_text = [weak, id](const std::string& text) {
    if (auto self = weak.lock()) self->on_signal(id, text);
  };
  socket->on_closed = [weak, id] {
    if (auto self = weak.lock()) self->remove_viewer(id);
  };
  bool first = false;
  {
    std::lock_guard lock(viewers_mutex_);
    first = viewers_.empty();
    Viewer v;
    v.peer = std::move(*peer);
    v.socket = socket;
    v.remote_address = request.remote_address;
    viewers_.emplace(id, std::move(v));
  }
  {
    std::lock_guard lock(rate_mutex_);
    rate_.add_viewer(id, core::monotonic_now_ns());
  }
  ++viewers_total_;
  log_.info("viewer {} from {}", id, request.remote_address);
  if (first && hooks_.set_active) hooks_.set_active(true);
  WebRtcPeer* started = nullptr;
  {
    std::lock_guard lock(viewers_mutex_);
    started = viewers_.at(id).peer.get();
  }
  if (core::Status s = started->start(); !s) {
    ++sessions_refused_;
    log_.error("viewer {}: {}", id, s.error());
    socket->send_text(error_message("the server could not start a session"));
    remove_viewer(id);
  }
}

void WebRtcDesktop::on_signal(uint64_t id, const std::string& text) {
  auto message = parse_signal_message(text);
  if (message) {
    if (auto* frames = std::get_if<FrameReport>(&*message)) {
      handle_frames(id, std::move(*frames));
      return;
    }
  }
  std::lock_guard lock(viewers_mutex_);
  auto it = viewers_.find(id);
  if (it == viewers_.end()) return;
  Viewer& v = it->second;
  if (!message) {
    ++messages_refused_;
    log_.warn_limited(refusals_logged_, "viewer {}: signalling message refused: {}", id, message.error());
    v.socket->send_reply(error_message("refused: " + message.error()));
    return;
  }
  if (auto* answer = std::get_if<SdpAnswer>(&*message)) {
    v.peer->handle_answer(answer->sdp);
  } else if (auto* ice = std::get_if<IceCandidate>(&*message)) {
    v.peer->handle_ice(ice->mline_index, ice->candidate);
  } else if (auto* page = std::get_if<ViewerStatsReport>(&*message)) {
    v.page = *page;
  } else if (auto* audio = std::get_if<AudioReport>(&*message)) {
    v.audio = *audio;
    if (hooks_.on_audio_report) hooks_.on_audio_report(id, *audio);
  } else if (auto* clip = std::get_if<ClipboardReport>(&*message)) {
    v.clipboard = *clip;
  } else if (auto* mic = std::get_if<MicrophoneReport>(&*message)) {
    if (!v.microphone || mic->captured != v.microphone->captured || mic->sending != v.microphone->sending)
      log_.info("viewer {}: microphone {}", id, mic->sending ? "sending" : mic->captured ? "on, not sending" : "off");
    v.microphone = *mic;
  } else if (auto* error = std::get_if<IceErrorReport>(&*message)) {
    ++ice_errors_;
    last_ice_error_ = fmt::format("{} {} ({})", error->code, error->text, error->url);
    log_.warn("viewer {}: ICE server error {}{}", id, last_ice_error_,
              error->code == 401 ? ": the TURN server refused the credentials (wrong or expired)" : "");
  }
}

void WebRtcDesktop::handle_frames(uint64_t id, FrameReport report) {
  const double offset_ms = double(realtime_minus_monotonic_ns()) / 1e6;
  std::vector<double> latencies;
  if (config_.barcode_is_sequence) {
    std::lock_guard lock(capture_mutex_);
    for (auto& f : report.frames) {
      const auto& [sequence, captured_ns] = capture_ring_[f.barcode % kCaptureRing];
      if ((sequence & 0xffffff) != f.barcode || captured_ns == 0) continue;
      f.latency_ms = f.present_ms - (double(captured_ns) / 1e6 + offset_ms);
      latencies.push_back(f.latency_ms);
    }
  }
  if (!latencies.empty()) {
    std::nth_element(latencies.begin(), latencies.begin() + ptrdiff_t(latencies.size() / 2), latencies.end());
    const double p50 = latencies[latencies.size() / 2];
    std::lock_guard lock(viewers_mutex_);
    auto it = viewers_.find(id);
    if (it != viewers_.end()) {
      it->second.latency_p50_ms = p50;
      it->second.socket->send_reply(nlohmann::json{{"type", "latency"}, {"p50_ms", p50}}.dump());
    }
  }
  if (hooks_.on_frames) hooks_.on_frames(id, report);
}

void WebRtcDesktop::on_input(uint64_t id, std::string_view text) {
  if (is_clipboard_message(text)) return on_clipboard_piece(id, text);
  auto events = parse_input_message(text, width_, height_);
  if (!events) {
    ++messages_refused_;
    log_.debug("input refused: {}", events.error());
    return;
  }
  if (!hooks_.input) return;
  std::lock_guard lock(input_mutex_);
  for (const auto& e : *events) hooks_.input->send(e);
}

void WebRtcDesktop::remove_viewer(uint64_t id) {
  Viewer gone;
  bool last = false;
  {
    std::lock_guard lock(viewers_mutex_);
    auto it = viewers_.find(id);
    if (it == viewers_.end()) return;
    gone = std::move(it->second);
    viewers_.erase(it);
    last = viewers_.empty();
  }
  uint32_t before = 0, after = 0;  // the slowest viewer may have been this one
  {
    std::lock_guard lock(rate_mutex_);
    before = rate_.bitrate();
    rate_.remove_viewer(id, core::monotonic_now_ns());
    after = rate_.bitrate();
  }
  gone.socket->on_text = nullptr;
  gone.socket->on_closed = nullptr;
  gone.socket->close(1000, "session ended");
  gone.peer.reset();
  core::release_free_memory();  // its webrtcbin's buffers, freed on GStreamer's threads
  log_.info("viewer {} left", id);
  if (last && hooks_.set_active) hooks_.set_active(false);
  if (after != before && hooks_.set_bitrate) hooks_.set_bitrate(after);
}

void WebRtcDesktop::request_keyframe() {
  ++idr_requests_;
  if (hooks_.keyframes) hooks_.keyframes->request_keyframe();
}

void WebRtcDesktop::poll_stats() {
  const int64_t now = core::monotonic_now_ns();
  std::lock_guard lock(viewers_mutex_);
  for (auto& [id, v] : viewers_) v.peer->poll_stats(now);
}

void WebRtcDesktop::on_encoded(const core::EncodedFramePtr& frame) {
  width_ = frame->width;
  height_ = frame->height;
  {
    std::lock_guard lock(capture_mutex_);
    capture_ring_[(frame->sequence & 0xffffff) % kCaptureRing] = {frame->sequence, frame->timestamps.captured_ns};
  }
  std::lock_guard lock(viewers_mutex_);
  for (auto& [id, v] : viewers_) v.peer->push(frame);
}

void WebRtcDesktop::on_audio(const core::EncodedAudioPtr& packet) {
  if (!config_.audio) return;
  ++audio_packets_;
  std::lock_guard lock(viewers_mutex_);
  for (auto& [id, v] : viewers_) v.peer->push_audio(packet);
}

void WebRtcDesktop::on_microphone(uint64_t id, const int16_t* samples, size_t frames) {
  // The page sends only while the VM listens; what still comes after it stopped goes nowhere.
  if (!microphone_listening_) {
    ++microphone_chunks_unheard_;
    return;
  }
  hooks_.microphone->push(fmt::format("browser {}", id), samples, frames);
  ++microphone_chunks_;
}

void WebRtcDesktop::microphone_listening(bool listening) {
  if (microphone_listening_.exchange(listening) == listening) return;
  log_.info("the desktop's microphone {}", listening ? "listens: pages with theirs on send it" : "stopped listening");
  const std::string message = microphone_listening_message(listening);
  std::lock_guard lock(viewers_mutex_);
  for (auto& [id, v] : viewers_) v.peer->send_data(message);
}

void WebRtcDesktop::on_clipboard_piece(uint64_t id, std::string_view text) {
  auto piece = parse_clipboard_piece(text);
  if (!piece) {
    ++messages_refused_;
    log_.debug("clipboard piece refused: {}", piece.error());
    return;
  }
  if (!hooks_.clipboard) return;  // the clipboard is off: the page's copies go nowhere
  const size_t limit = hooks_.clipboard->max_bytes();
  std::string copied;
  {
    std::lock_guard lock(viewers_mutex_);
    auto it = viewers_.find(id);
    if (it == viewers_.end()) return;
    Viewer& v = it->second;
    if (!v.clip_refused && v.clip_text.size() + piece->text.size() > limit) {
      // Past the limit: say so once, to the page and in the counters, and drop the rest of it.
      v.clip_refused = true;
      const std::string why = fmt::format("a copy of more than {} bytes (clipboard_max_bytes) was refused", limit);
      hooks_.clipboard->refuse(fmt::format("viewer {}: {}", id, why));
      v.peer->send_data(clipboard_refused_message(why));
      std::string().swap(v.clip_text);
    }
    if (!v.clip_refused) v.clip_text += piece->text;
    if (piece->more) return;
    const bool refused = v.clip_refused;
    v.clip_refused = false;
    copied.swap(v.clip_text);
    if (refused) return;
  }
  if (core::Status s = hooks_.clipboard->client_copied(std::move(copied)); !s) {
    log_.debug("clipboard: viewer {}'s copy was not taken: {}", id, s.error());
    return;
  }
  ++clip_from_pages_;
}

void WebRtcDesktop::Clipboard::vm_copied(const core::ClipboardTextPtr& text) {
  auto messages = clipboard_messages(text->text);
  {
    std::lock_guard lock(desktop_.cursor_mutex_);
    desktop_.clip_messages_ = messages;
  }
  std::lock_guard lock(desktop_.viewers_mutex_);
  for (auto& [id, v] : desktop_.viewers_)
    if (v.peer->send_data(messages)) ++desktop_.clip_to_pages_;  // whole, or not at all
}

void WebRtcDesktop::Clipboard::vm_cleared() {
  std::lock_guard lock(desktop_.cursor_mutex_);
  desktop_.clip_messages_.clear();
}

void WebRtcDesktop::set_cursor(const core::CursorShape& shape) {
  std::string message = cursor_shape_message(shape);
  {
    std::lock_guard lock(cursor_mutex_);
    cursor_shape_message_ = message;
  }
  std::lock_guard lock(viewers_mutex_);
  for (auto& [id, v] : viewers_) v.peer->send_data(message);
}

void WebRtcDesktop::move_cursor(const core::CursorPosition& position) {
  std::string message = cursor_position_message(position);
  {
    std::lock_guard lock(cursor_mutex_);
    cursor_position_message_ = message;
  }
  std::lock_guard lock(viewers_mutex_);
  for (auto& [id, v] : viewers_) v.peer->send_data(message);
}

void WebRtcDesktop::drop_rtp_packets(uint32_t count) {
  std::lock_guard lock(viewers_mutex_);
  for (auto& [id, v] : viewers_) v.peer->drop_rtp_packets(count);
}

void WebRtcDesktop::stall_data_channels(bool stall) {
  std::lock_guard lock(viewers_mutex_);
  for (auto& [id, v] : viewers_) v.peer->stall_data_channel(stall);
}

WebRtcStats WebRtcDesktop::stats() const {
  WebRtcStats s;
  s.name = config_.name;
  s.viewers_total = viewers_total_;
  s.sessions_refused = sessions_refused_;
  s.messages_refused = messages_refused_;
  s.idr_requests = idr_requests_;
  s.ice_errors = ice_errors_;
  s.ice = config_.ice;
  s.ice_credentials = s.ice.turn.empty() ? "none" : s.ice.turn_secret.empty() ? "long-term" : "rest";
  s.ice.turn_username.clear();  // the stats go to the API and logs: no credentials in them
  s.ice.turn_password.clear();
  s.ice.turn_secret.clear();
  {
    std::lock_guard lock(rate_mutex_);
    s.bitrate_bps = rate_.bitrate();
    s.decisions = rate_.decisions();
  }
  s.audio = config_.audio;
  s.audio_packets = audio_packets_;
  s.clipboard = hooks_.clipboard != nullptr;
  s.clipboard_from_pages = clip_from_pages_;
  s.clipboard_to_pages = clip_to_pages_;
  s.microphone = hooks_.microphone != nullptr;
  s.microphone_listening = microphone_listening_;
  s.microphone_chunks = microphone_chunks_;
  s.microphone_chunks_unheard = microphone_chunks_unheard_;
  std::lock_guard lock(viewers_mutex_);
  s.last_ice_error = last_ice_error_;
  s.viewers = viewers_.size();
  for (const auto& [id, v] : viewers_) {
    ViewerStats vs;
    vs.id = id;
    vs.state = to_string(v.peer->state());
    vs.remote_address = v.remote_address;
    vs.counters = v.peer->counters();
    vs.page = v.page;
    vs.latency_p50_ms = v.latency_p50_ms;
    vs.audio = v.audio;
    vs.clipboard = v.clipboard;
    vs.microphone = v.microphone;
    vs.replies_dropped = v.socket->replies_dropped();
    {
      std::lock_guard rate_lock(rate_mutex_);
      vs.estimate_bps = rate_.estimate(id);
    }
    s.per_viewer.push_back(vs);
  }
  return s;
}

}  // namespace vdistream::transport
