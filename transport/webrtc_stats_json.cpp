// stats_json: a WebRTC desktop's figures, viewers and bitrate decisions as the API shows them.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "transport/webrtc_desktop.hpp"

namespace vdistream::transport {

std::string stats_json(const WebRtcStats& s) {
  nlohmann::json viewers = nlohmann::json::array();
  for (const auto& v : s.per_viewer) {
    viewers.push_back({{"id", v.id},
                       {"state", v.state},
                       {"remote_address", v.remote_address},
                       {"frames_sent", v.counters.frames_sent},
                       {"frames_discarded", v.counters.frames_discarded},
                       {"frames_dropped", v.counters.frames_dropped},
                       {"bytes_sent", v.counters.bytes_sent},
                       {"keyframe_requests", v.counters.keyframe_requests},
                       {"rtt_ms", v.counters.rtt_ms},
                       {"fraction_lost", v.counters.fraction_lost},
                       {"estimate_bps", v.estimate_bps},
                       {"page_fps", v.page.fps},
                       {"page_kbps", v.page.kbps},
                       {"latency_p50_ms", v.latency_p50_ms},
                       {"audio_packets_sent", v.counters.audio_packets_sent},
                       {"audio_packets_dropped", v.counters.audio_packets_dropped},
                       {"page_audio_level", v.audio.level},
                       {"page_audio_peak_hz", v.audio.peak_hz},
                       {"page_audio_onset_ms", v.audio.onset_ms},
                       {"page_clipboard_length", v.clipboard.length},
                       {"page_clipboard_fnv", v.clipboard.fnv},
                       {"page_clipboard_wrote", v.clipboard.wrote},
                       {"microphone_live", v.counters.microphone_live},
                       {"microphone_chunks", v.counters.microphone_chunks},
                       {"data_buffered_bytes", v.counters.data_buffered_bytes},
                       {"data_messages_dropped", v.counters.data_messages_dropped},
                       {"replies_dropped", v.replies_dropped}});
    if (v.microphone) {  // what the page said of its microphone, once it said anything
      viewers.back()["page_microphone_available"] = v.microphone->available;
      viewers.back()["page_microphone_captured"] = v.microphone->captured;
      viewers.back()["page_microphone_sending"] = v.microphone->sending;
    }
  }
  nlohmann::json decisions = nlohmann::json::array();
  for (const auto& d : s.decisions)
    decisions.push_back({{"at_ns", d.at_ns}, {"bitrate_bps", d.bitrate_bps}, {"viewer", d.limiting_viewer}, {"reason", d.reason}});
  return nlohmann::json{{"name", s.name},
                        {"viewers", s.viewers},
                        {"viewers_total", s.viewers_total},
                        {"sessions_refused", s.sessions_refused},
                        {"messages_refused", s.messages_refused},
                        {"idr_requests", s.idr_requests},
                        {"ice",
                         {{"stun", s.ice.stun},
                          {"turn", s.ice.turn},
                          {"credentials", s.ice_credentials},
                          {"policy", s.ice.relay_only ? "relay" : "all"},
                          {"udp_ports", s.ice.min_port ? fmt::format("{}-{}", s.ice.min_port, s.ice.max_port) : "any"},
                          {"errors", s.ice_errors},
                          {"last_error", s.last_ice_error}}},
                        {"bitrate_bps", s.bitrate_bps},
                        {"audio", s.audio},
                        {"audio_packets", s.audio_packets},
                        {"clipboard", s.clipboard},
                        {"clipboard_from_pages", s.clipboard_from_pages},
                        {"clipboard_to_pages", s.clipboard_to_pages},
                        {"microphone", s.microphone},
                        {"microphone_listening", s.microphone_listening},
                        {"microphone_chunks", s.microphone_chunks},
                        {"microphone_chunks_unheard", s.microphone_chunks_unheard},
                        {"per_viewer", viewers},
                        {"decisions", decisions}}
      .dump();
}

}  // namespace vdistream::transport
