// vdistream-bench soak: does a long-running vdistreamd leak? This build's vdistreamd (a child,
// generated configuration) serves synthetic desktops and one real QEMU running the project's test
// guest (sound on); in cycles, a spice-glib client joins every desktop and a headless Chromium
// page one desktop (the next one each cycle), and they leave again; every few minutes the VM is
// killed and started again, and the configuration is reloaded (SIGHUP) with an extra desktop added
// or removed. vdistreamd's RSS, open fds and threads are sampled all along and, at the end of every
// cycle with no viewer connected, as a "quiet" sample: those are compared over time. Also counted:
// frames the service reports lost (encode errors, SPICE stream drops, WebRTC frames discarded,
// capture refusals), viewers that never showed a picture, VM restarts the desktop did not recover
// from, reloads refused, and any sanitizer report in its log (run an ASan build with --vdistreamd).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace vdistream::bench {

struct SoakOptions {
  double minutes = 30;
  int synthetic = 2;            // synthetic desktops, "synthetic:typing@1280x720@30"
  std::string qemu = "10";      // the VM desktop's QEMU: 7.2 | 10 | none
  double cycle_seconds = 60;    // viewers join at a cycle's start and leave at 3/4 of it
  double vm_restart_minutes = 5;
  double reload_minutes = 3;
  double sample_seconds = 10;
  double warmup_minutes = 3;    // quiet samples before this are not judged
  bool chromium = true;
  std::string vdistreamd;       // empty: this build's
  std::string out = "bench-out";
};

// Runs the soak; writes soak.json and (unless !plots) soak.png (gnuplot) into options.out. The JSON:
// {"samples": [...], "events": [...], "verdict": {...}, "lost": {...}, "error": "..."}
nlohmann::json run_soak(const SoakOptions& options, bool plots);
void print_soak_summary(const nlohmann::json& result);

}  // namespace vdistream::bench
