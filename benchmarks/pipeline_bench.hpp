// `vdistream-bench pipeline`: synthetic source → DesktopPipeline (latest-wins slot, encode
// thread) → a recording sink, per workload and size, at the source's pace. Host processing
// latency per stage (captured → dequeued → converted → encoded) for every access unit, drops,
// skips, copies and CPU; afterwards every access unit is decoded in-process (libavcodec) and its
// barcode checked against the frame it came from.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "benchmarks/progress.hpp"
#include "benchmarks/report.hpp"

namespace vdistream::bench {

struct PipelineBenchOptions {
  std::vector<std::string> workloads{"idle", "typing", "scrolling", "window-drag", "video", "fullmotion"};
  std::vector<std::string> sizes{"1280x720", "1920x1080"};
  double fps = 60;
  double seconds = 2.5;  // per run, after the warm-up
  double warmup = 0.5;   // seconds at the start of each run left out of the latency figures
  uint32_t bitrate_kbps = 6000;
  std::string preset = "ultrafast";
  int threads = 2;
};

double pipeline_bench_seconds(const PipelineBenchOptions& o);  // for the progress bar
// Runs every workload × size; one Run per configuration.
std::vector<Run> run_pipeline_bench(const PipelineBenchOptions& options, Progress& progress);
void print_pipeline_table(const PipelineBenchOptions& options, const std::vector<Run>& runs);

}  // namespace vdistream::bench
