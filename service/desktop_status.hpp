// What one desktop is doing, as a value: the control API's JSON and /metrics are pure functions
// of a list of these (see metrics.hpp), so they are tested without a running service.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "capture/source.hpp"
#include "core/clipboard.hpp"
#include "encode/audio/audio_pipeline.hpp"
#include "encode/audio/microphone.hpp"
#include "encode/pipeline_stats.hpp"
#include "encode/probe.hpp"
#include "spice/agent.hpp"
#include "spice/playback.hpp"
#include "spice/record.hpp"
#include "spice/qxl_display.hpp"
#include "spice/stream_producer.hpp"

namespace vdistream::service {

enum class SessionState {
  Starting,      // building its source, encoder and servers
  Connected,     // the source delivers frames
  Disconnected,  // the source lost its VM and is reconnecting with backoff
  Failed,        // could not start (reason in state_reason); retried with backoff
  Stopped,
};
const char* state_name(SessionState s);

struct DesktopStatus {
  std::string name;
  std::string source;  // the source's description
  SessionState state = SessionState::Starting;
  std::string state_reason;
  bool connected = false;
  bool streaming = false;  // frames are reaching a viewer or an encoded sink right now
  uint32_t viewers = 0;    // WebRTC viewers + connected SPICE clients + other encoded sinks
  uint64_t source_connections = 0;  // times the source (re)connected
  double uptime_seconds = 0;        // since this session started

  // Encoder: the backend the probe chose and why (with the probe's outcome per backend).
  std::string encoder;
  std::string encoder_why;
  std::vector<encode::ProbeOutcome> encoder_outcomes;
  uint32_t bitrate_target_bps = 0;

  // Rates over the last sampling window (about one second).
  double fps_in = 0;      // frames from the source
  double fps_out = 0;     // access units encoded (or, in QXL mode, frames handed to SPICE)
  double bitrate_bps = 0; // encoded bytes out × 8

  encode::PipelineStats pipeline;  // counters and per-stage latency histograms
  std::optional<capture::CaptureStats> capture;  // a VM's display: how frames arrive, what it costs

  // SPICE, when the desktop serves it.
  std::string spice_listen;  // "" when off
  std::string spice_mode;
  spice::QxlStats spice_qxl;
  spice::StreamStats spice_stream;

  // Sound (audio = true): how it comes from the VM, what the desktop made of it, SPICE playback.
  bool audio = false;
  std::optional<capture::AudioCaptureStats> audio_source;  // none for sources without sound
  encode::AudioPipelineStats audio_pipeline;
  spice::PlaybackStats spice_playback;

  // The viewers' microphone (audio_in = true, a VM's desktop): the VM's side, the mixer's, SPICE's.
  bool microphone = false;
  std::optional<capture::MicrophoneCaptureStats> microphone_source;
  encode::MicrophoneStats microphone_stats;
  spice::RecordStats spice_record;

  // Copy and paste (clipboard = true, a VM's desktop): the hub's transfers, the SPICE agent's.
  bool clipboard = false;
  core::ClipboardStats clipboard_stats;
  spice::AgentStats spice_agent;

  bool webrtc = false;
  std::string webrtc_stats_json;  // transport::stats_json of its viewers ("" when WebRTC is off)
  std::string record;  // file being recorded, "" when none
  uint64_t recorded_frames = 0;  // access units written to it so far
  std::string record_error;      // why closing it failed, once the desktop stopped
};

}  // namespace vdistream::service
