// vdistream-bench audio: how long a VM's sound takes to be heard. The project's test guest plays a
// tone on the PC speaker again and again and says on its serial port when each one starts (stamped
// on arrival); this build's vdistreamd serves the VM (child process, as for the vm subcommand);
// a spice-glib client's playback channel and headless Chromium's page listen. Per tone: the
// guest started it → the first playback packet louder than −26 dBFS in spice-glib, and → the
// page's analyser first heard it rise from silence (its report read from vdistreamd's API).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vdistream::bench {

struct AudioBenchOptions {
  std::string qemu = "10";  // 7.2 | 10
  int tones = 20;
  int tone_ms = 400;        // on, then off for as long
};

// {"qemu", "tones", "spice": {"latency_ms": [...], "p50", "p95", "max", "missed"}, "webrtc": {...},
//  "error": "..."}
nlohmann::json run_audio_bench(const AudioBenchOptions& options);
void print_audio_table(const nlohmann::json& result);

}  // namespace vdistream::bench
