#include "service/metrics.hpp"

#include <fmt/format.h>

#include <functional>

namespace vdistream::service {

const char* state_name(SessionState s) {
  switch (s) {
    case SessionState::Starting: return "starting";
    case SessionState::Connected: return "connected";
    case SessionState::Disconnected: return "disconnected";
    case SessionState::Failed: return "failed";
    case SessionState::Stopped: return "stopped";
  }
  return "unknown";
}

namespace {

nlohmann::json latency_json(const core::LatencyHistogram& h) {
  return {{"count", h.count()},
          {"p50_ms", h.percentile_ms(50)},
          {"p95_ms", h.percentile_ms(95)},
          {"p99_ms", h.percentile_ms(99)},
          {"max_ms", double(h.max_ns()) / 1e6}};
}

// Prometheus floats: finite numbers in plain notation.
std::string number(double v) { return fmt::format("{}", v); }

struct Family {
  const char* name;
  const char* type;  // counter | gauge
  const char* help;
  std::function<double(const DesktopStatus&)> value;
};

}  // namespace

nlohmann::json status_json(const DesktopStatus& s, bool detailed) {
  const auto& p = s.pipeline;
  nlohmann::json j = {
      {"name", s.name},
      {"source", s.source},
      {"state", state_name(s.state)},
      {"state_reason", s.state_reason},
      {"connected", s.connected},
      {"streaming", s.streaming},
      {"viewers", s.viewers},
      {"source_connections", s.source_connections},
      {"uptime_seconds", s.uptime_seconds},
      {"encoder", {{"backend", s.encoder}, {"why", s.encoder_why}, {"bitrate_target_bps", s.bitrate_target_bps}}},
      {"fps_in", s.fps_in},
      {"fps_out", s.fps_out},
      {"bitrate_bps", s.bitrate_bps},
      {"frames",
       {{"captured", p.frames_captured},
        {"replaced", p.frames_replaced},
        {"skipped", p.frames_skipped},
        {"unwatched", p.frames_unwatched},
        {"encoded", p.frames_encoded},
        {"keepalives", p.keepalives},
        {"trailing", p.trailing_frames},
        {"keyframes", p.keyframes},
        {"keyframe_requests", p.keyframe_requests},
        {"encode_errors", p.encode_errors},
        {"bytes_out", p.bytes_out},
        {"full_frame_copies", p.full_frame_copies}}},
      {"spice", nullptr},
      {"webrtc", s.webrtc},
  };
  if (!s.spice_listen.empty())
    j["spice"] = {{"listen", s.spice_listen},
                  {"mode", s.spice_mode},
                  {"frames", s.spice_qxl.frames},
                  {"drawables", s.spice_qxl.drawables},
                  {"stream_access_units", s.spice_stream.access_units_sent},
                  {"stream_dropped", s.spice_stream.dropped},
                  {"stream_jpegs", s.spice_stream.jpegs_sent},
                  {"streaming", s.spice_stream.streaming},
                  {"stream_codec", s.spice_stream.codec.empty() ? nlohmann::json() : nlohmann::json(s.spice_stream.codec)}};
  if (s.capture) {
    const capture::CaptureStats& c = *s.capture;
    j["capture"] = {{"path", c.path},
                    {"frames", c.frames},
                    {"display_messages", c.display_messages},
                    {"messages_per_frame", c.frames ? double(c.display_messages) / double(c.frames) : 0.0},
                    {"unchanged_refreshes", c.unchanged_refreshes},
                    {"pixel_bytes_received", c.pixel_bytes_received},
                    {"update_bytes", c.update_bytes},
                    {"bytes_written", c.bytes_written},
                    {"mirror_bytes", c.mirror_bytes},
                    {"tiles_compared", c.tiles_compared},
                    {"tiles_changed", c.tiles_changed},
                    {"cpu_ms", double(c.cpu_ns) / 1e6},
                    {"cpu_ms_per_frame", c.frames ? double(c.cpu_ns) / 1e6 / double(c.frames) : 0.0},
                    {"refresh_quiet_ms", double(c.refresh_quiet_ns) / 1e6},
                    {"refused", c.refused},
                    {"last_refusal", c.last_refusal},
                    {"input", {{"sent", c.input_sent}, {"errors", c.input_errors}, {"shed", c.input_shed}}}};
  }
  if (s.audio) {
    const encode::AudioPipelineStats& a = s.audio_pipeline;
    nlohmann::json source = nullptr;
    if (s.audio_source) {
      const capture::AudioCaptureStats& c = *s.audio_source;
      source = {{"connected", c.connected}, {"unavailable", c.unavailable}, {"format", c.format},
                {"streams", c.streams},     {"packets", c.packets},         {"bytes", c.bytes},
                {"playing", c.playing},     {"mute", c.mute},               {"refused", c.refused},
                {"last_refusal", c.last_refusal}};
    }
    j["audio"] = {{"source", source},
                  {"playing", a.playing},
                  {"chunks", a.chunks},
                  {"opus_packets", a.opus_packets},
                  {"opus_bytes", a.opus_bytes},
                  {"other_stream_packets", a.other_stream_packets},
                  {"refused", a.refused},
                  {"last_error", a.last_error},
                  {"spice",
                   {{"chunks", s.spice_playback.chunks},
                    {"frames_sent", s.spice_playback.frames_sent},
                    {"chunks_dropped", s.spice_playback.chunks_dropped},
                    {"playing", s.spice_playback.playing}}}};
  } else {
    j["audio"] = nullptr;
  }
  if (s.microphone) {
    const encode::MicrophoneStats& m = s.microphone_stats;
    nlohmann::json vm = nullptr;
    if (s.microphone_source) {
      const auto& v = *s.microphone_source;
      vm = {{"connected", v.connected}, {"unavailable", v.unavailable}, {"format", v.format},
            {"streams", v.streams},     {"recording", v.listening},     {"reads", v.reads},
            {"bytes", v.bytes},         {"refused", v.refused},         {"last_refusal", v.last_refusal}};
    }
    j["microphone"] = {{"vm", vm},
                       {"vm_listening", m.vm_listening},
                       {"talker", m.talker},
                       {"frames_in", m.frames_in},
                       {"frames_dropped", m.frames_dropped},
                       {"frames_refused", m.frames_refused},
                       {"quiet_frames", m.quiet_frames},
                       {"frames_to_vm", m.frames_to_vm},
                       {"silent_frames_to_vm", m.silent_frames_to_vm},
                       {"peak", m.peak},
                       {"spice", {{"recording", s.spice_record.recording},
                                  {"starts", s.spice_record.starts},
                                  {"frames", s.spice_record.frames}}}};
  } else {
    j["microphone"] = nullptr;
  }
  if (s.clipboard) {
    const core::ClipboardStats& c = s.clipboard_stats;
    j["clipboard"] = {{"vm_connected", c.vm_connected},
                      {"unavailable", c.unavailable},
                      {"owner", c.owner},
                      {"to_vm", c.to_vm},
                      {"to_vm_bytes", c.to_vm_bytes},
                      {"from_vm", c.from_vm},
                      {"from_vm_bytes", c.from_vm_bytes},
                      {"vm_pastes", c.vm_requests},
                      {"refused", c.refused},
                      {"last_refusal", c.last_refusal},
                      {"max_bytes", c.max_bytes},
                      {"spice",
                       {{"client_agent", s.spice_agent.client_agent},
                        {"client_copies", s.spice_agent.client_copies},
                        {"vm_copies_offered", s.spice_agent.vm_copies_offered},
                        {"pastes", s.spice_agent.pastes}}}};
  } else {
    j["clipboard"] = nullptr;
  }
  if (!s.record.empty()) j["record"] = s.record;
  if (detailed) {
    j["latency"] = {{"wait", latency_json(p.wait)},
                    {"convert", latency_json(p.convert)},
                    {"encode", latency_json(p.encode)},
                    {"total", latency_json(p.total)}};
    auto outcomes = nlohmann::json::array();
    for (const auto& o : s.encoder_outcomes)
      outcomes.push_back({{"backend", o.backend}, {"usable", o.usable}, {"reason", o.reason}});
    j["encoder"]["probe"] = outcomes;
    // Per viewer: state, counters, bitrate estimate, the page's own report (transport's JSON).
    if (!s.webrtc_stats_json.empty())
      j["webrtc_viewers"] = nlohmann::json::parse(s.webrtc_stats_json, nullptr, /*allow_exceptions=*/false);
  }
  return j;
}

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string prometheus_text(const std::vector<DesktopStatus>& desktops) {
  std::string out;
  auto header = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  header("vdistream_desktops", "gauge", "Desktops configured in this service.");
  out += fmt::format("vdistream_desktops {}\n", desktops.size());

  header("vdistream_desktop_info", "gauge", "A desktop's source, state and encoder (value 1).");
  for (const auto& d : desktops)
    out += fmt::format("vdistream_desktop_info{{desktop=\"{}\",source=\"{}\",state=\"{}\",encoder=\"{}\"}} 1\n",
                       escape_label_value(d.name), escape_label_value(d.source), state_name(d.state),
                       escape_label_value(d.encoder));

  const auto& b = [](bool v) { return v ? 1.0 : 0.0; };
  const std::vector<Family> families = {
      {"vdistream_desktop_connected", "gauge", "1 when the desktop's source is connected.",
       [&](const DesktopStatus& d) { return b(d.connected); }},
      {"vdistream_desktop_streaming", "gauge", "1 when frames reach a viewer or an encoded sink.",
       [&](const DesktopStatus& d) { return b(d.streaming); }},
      {"vdistream_desktop_viewers", "gauge", "Viewers streaming (WebRTC, SPICE stream mode).",
       [](const DesktopStatus& d) { return double(d.viewers); }},
      {"vdistream_source_connections_total", "counter", "Times the source connected to its VM.",
       [](const DesktopStatus& d) { return double(d.source_connections); }},
      {"vdistream_fps_in", "gauge", "Frames per second from the source (last second).",
       [](const DesktopStatus& d) { return d.fps_in; }},
      {"vdistream_fps_out", "gauge", "Frames per second out: encoded, or handed to SPICE in QXL mode.",
       [](const DesktopStatus& d) { return d.fps_out; }},
      {"vdistream_bitrate_bits_per_second", "gauge", "Encoded bitrate over the last second.",
       [](const DesktopStatus& d) { return d.bitrate_bps; }},
      {"vdistream_encoder_target_bits_per_second", "gauge", "The encoder's target bitrate.",
       [](const DesktopStatus& d) { return double(d.bitrate_target_bps); }},
      {"vdistream_frames_captured_total", "counter", "Frames the source delivered.",
       [](const DesktopStatus& d) { return double(d.pipeline.frames_captured); }},
      {"vdistream_frames_replaced_total", "counter", "Frames replaced in the latest-wins slot before encoding.",
       [](const DesktopStatus& d) { return double(d.pipeline.frames_replaced); }},
      {"vdistream_frames_skipped_total", "counter", "Frames with nothing changed (not encoded).",
       [](const DesktopStatus& d) { return double(d.pipeline.frames_skipped); }},
      {"vdistream_frames_unwatched_total", "counter", "Frames taken while no encoded sink was attached.",
       [](const DesktopStatus& d) { return double(d.pipeline.frames_unwatched); }},
      {"vdistream_frames_encoded_total", "counter", "Access units encoded (keep-alives included).",
       [](const DesktopStatus& d) { return double(d.pipeline.frames_encoded); }},
      {"vdistream_keepalives_total", "counter", "Keep-alive access units.",
       [](const DesktopStatus& d) { return double(d.pipeline.keepalives); }},
      {"vdistream_trailing_frames_total", "counter",
       "Unchanged pictures encoded once after the last change, so a buffering decoder shows it.",
       [](const DesktopStatus& d) { return double(d.pipeline.trailing_frames); }},
      {"vdistream_keyframes_total", "counter", "IDR access units encoded.",
       [](const DesktopStatus& d) { return double(d.pipeline.keyframes); }},
      {"vdistream_keyframe_requests_total", "counter", "Keyframe requests from sinks (coalesced).",
       [](const DesktopStatus& d) { return double(d.pipeline.keyframe_requests); }},
      {"vdistream_encode_errors_total", "counter", "Encoder errors.",
       [](const DesktopStatus& d) { return double(d.pipeline.encode_errors); }},
      {"vdistream_encoded_bytes_total", "counter", "Encoded bytes.",
       [](const DesktopStatus& d) { return double(d.pipeline.bytes_out); }},
      {"vdistream_full_frame_copies_total", "counter", "Whole-picture CPU copies on the way to the encoder.",
       [](const DesktopStatus& d) { return double(d.pipeline.full_frame_copies); }},
      {"vdistream_capture_frames_total", "counter", "Frames a VM's display gave (one per refresh).",
       [](const DesktopStatus& d) { return d.capture ? double(d.capture->frames) : 0.0; }},
      {"vdistream_capture_messages_total", "counter", "Display messages (scanouts, updates) merged into those frames.",
       [](const DesktopStatus& d) { return d.capture ? double(d.capture->display_messages) : 0.0; }},
      {"vdistream_capture_pixel_bytes_total", "counter", "Pixel data received by value over the display socket.",
       [](const DesktopStatus& d) { return d.capture ? double(d.capture->pixel_bytes_received) : 0.0; }},
      {"vdistream_capture_cpu_seconds_total", "counter", "CPU time spent taking frames from the VM's display.",
       [](const DesktopStatus& d) { return d.capture ? double(d.capture->cpu_ns) / 1e9 : 0.0; }},
      {"vdistream_capture_refused_total", "counter", "Display messages refused at the edge.",
       [](const DesktopStatus& d) { return d.capture ? double(d.capture->refused) : 0.0; }},
      {"vdistream_input_shed_total", "counter",
       "Keyboard and mouse events not sent because the VM left too many input calls unanswered.",
       [](const DesktopStatus& d) { return d.capture ? double(d.capture->input_shed) : 0.0; }},
      {"vdistream_audio_chunks_total", "counter", "10 ms chunks of the VM's sound, converted to 48 kHz stereo.",
       [](const DesktopStatus& d) { return double(d.audio_pipeline.chunks); }},
      {"vdistream_audio_opus_packets_total", "counter", "Opus packets encoded for the desktop's browser viewers.",
       [](const DesktopStatus& d) { return double(d.audio_pipeline.opus_packets); }},
      {"vdistream_audio_refused_total", "counter", "The VM's sound refused: bad formats or writes, other streams.",
       [](const DesktopStatus& d) {
         return double(d.audio_pipeline.refused + d.audio_pipeline.other_stream_packets +
                       (d.audio_source ? d.audio_source->refused : 0));
       }},
      {"vdistream_microphone_frames_total", "counter",
       "48 kHz frames of the viewers' microphone (SPICE record channel, browsers) handed in.",
       [](const DesktopStatus& d) { return double(d.microphone_stats.frames_in); }},
      {"vdistream_microphone_vm_frames_total", "counter",
       "Frames the VM read from the microphone, in its capture format (silence included).",
       [](const DesktopStatus& d) { return double(d.microphone_stats.frames_to_vm); }},
      {"vdistream_microphone_dropped_frames_total", "counter",
       "Microphone frames dropped: over 100 ms waiting for the VM, or sent while another viewer talked.",
       [](const DesktopStatus& d) { return double(d.microphone_stats.frames_dropped + d.microphone_stats.frames_refused); }},
      {"vdistream_clipboard_to_vm_total", "counter", "Texts copied in a SPICE client or a browser, handed to the VM.",
       [](const DesktopStatus& d) { return double(d.clipboard_stats.to_vm); }},
      {"vdistream_clipboard_from_vm_total", "counter", "Texts copied in the VM, handed to the SPICE clients and browsers.",
       [](const DesktopStatus& d) { return double(d.clipboard_stats.from_vm); }},
      {"vdistream_clipboard_refused_total", "counter", "Clipboard transfers refused (beyond clipboard_max_bytes, not UTF-8).",
       [](const DesktopStatus& d) { return double(d.clipboard_stats.refused); }},
      {"vdistream_audio_spice_dropped_total", "counter", "Chunks of sound no SPICE client took in time (dropped).",
       [](const DesktopStatus& d) { return double(d.spice_playback.chunks_dropped); }},
      {"vdistream_spice_frames_total", "counter", "Frames with damage handed to SPICE (QXL mode).",
       [](const DesktopStatus& d) { return double(d.spice_qxl.frames); }},
      {"vdistream_spice_stream_access_units_total", "counter", "Access units sent through SPICE's stream device.",
       [](const DesktopStatus& d) { return double(d.spice_stream.access_units_sent); }},
      {"vdistream_spice_stream_jpegs_total", "counter",
       "JPEGs sent through SPICE's stream device (MJPEG, for clients without an H.264 decoder).",
       [](const DesktopStatus& d) { return double(d.spice_stream.jpegs_sent); }},
  };
  for (const auto& f : families) {
    header(f.name, f.type, f.help);
    for (const auto& d : desktops)
      out += fmt::format("{}{{desktop=\"{}\"}} {}\n", f.name, escape_label_value(d.name), number(f.value(d)));
  }

  header("vdistream_stage_latency_seconds", "summary",
         "Host latency per stage: wait (captured to dequeued), convert, encode, total (captured to encoded).");
  for (const auto& d : desktops) {
    const std::string name = escape_label_value(d.name);
    const std::pair<const char*, const core::LatencyHistogram*> stages[] = {
        {"wait", &d.pipeline.wait}, {"convert", &d.pipeline.convert}, {"encode", &d.pipeline.encode},
        {"total", &d.pipeline.total}};
    for (const auto& [stage, h] : stages) {
      for (double q : {0.5, 0.95, 0.99})
        out += fmt::format("vdistream_stage_latency_seconds{{desktop=\"{}\",stage=\"{}\",quantile=\"{}\"}} {}\n", name,
                           stage, q, number(double(h->percentile_ns(q * 100)) / 1e9));
      out += fmt::format("vdistream_stage_latency_seconds_sum{{desktop=\"{}\",stage=\"{}\"}} {}\n", name, stage,
                         number(h->mean_ns() * double(h->count()) / 1e9));
      out += fmt::format("vdistream_stage_latency_seconds_count{{desktop=\"{}\",stage=\"{}\"}} {}\n", name, stage,
                         h->count());
    }
  }
  return out;
}

}  // namespace vdistream::service
