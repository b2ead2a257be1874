// `vdistream-bench webrtc`: glass to glass through WebRTC. A paced synthetic desktop is encoded
// by vdistream's DesktopPipeline and served by its WebRtcDesktop (webrtcbin per viewer, the
// service's HttpServer on 127.0.0.1); Debian's headless Chromium opens the desktop's page, which
// reads the barcode from its canvas on every requestVideoFrameCallback and reports
// {frame, receiveTime, presentationTime}. Per frame: drawn → encoded → received → presented.
#pragma once

#include <string>
#include <vector>

#include "benchmarks/progress.hpp"
#include "benchmarks/report.hpp"

namespace vdistream::bench {

struct WebRtcBenchOptions {
  std::vector<std::string> workloads{"typing", "window-drag"};
  std::vector<std::string> sizes{"1280x720"};
  double fps = 30;
  double seconds = 10;
  double warmup = 1;
  uint32_t bitrate_kbps = 6000;
  double connect_timeout = 30;  // s for Chromium to start, connect and show a first frame
};

double webrtc_bench_seconds(const WebRtcBenchOptions& o);
std::vector<Run> run_webrtc_bench(const WebRtcBenchOptions& o, Progress& progress);
void print_webrtc_table(const WebRtcBenchOptions& o, const std::vector<Run>& runs);

}  // namespace vdistream::bench
