// `vdistream-bench spice`: glass to glass through SPICE. A paced synthetic desktop is served by
// vdistream's SpiceDesktop (QXL mode, or stream mode behind the encode pipeline) on a unix
// socket, to one of two clients: a spice-glib client in this process, which reads the barcode
// from its decoded surface after every update, or remote-viewer in an Xvfb of its own, whose
// screen is polled for the barcode (clients/remote_viewer.hpp, clients/x11_screen.hpp). Per
// frame: drawn → handed to spice-server (QXL) or encoded (stream) → shown.
#pragma once

#include <string>
#include <vector>

#include "benchmarks/progress.hpp"
#include "benchmarks/report.hpp"

namespace vdistream::bench {

struct SpiceBenchOptions {
  std::vector<std::string> clients{"glib"};  // glib, remote-viewer
  std::vector<std::string> modes{"qxl", "stream"};
  std::vector<std::string> workloads{"typing", "window-drag", "video"};
  std::vector<std::string> sizes{"1280x720"};
  double fps = 30;
  double seconds = 3;
  double warmup = 0.5;
  uint32_t bitrate_kbps = 6000;
  bool trailing_delimiter = false;  // stream mode: SpiceConfig::stream_trailing_delimiter
};

double spice_bench_seconds(const SpiceBenchOptions& o);
std::vector<Run> run_spice_bench(const SpiceBenchOptions& o, Progress& progress);
void print_spice_table(const SpiceBenchOptions& o, const std::vector<Run>& runs);

}  // namespace vdistream::bench
