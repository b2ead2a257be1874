// `vdistream-bench pipeline`: synthetic source → DesktopPipeline → a counting sink, per workload
// and size, at the source's pace. Reports host processing latency per stage, fps, bitrate and CPU.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vdistream::bench {

struct PipelineBenchOptions {
  std::vector<std::string> workloads{"idle", "typing", "scrolling", "window-drag", "video", "fullmotion"};
  std::vector<std::string> sizes{"1280x720", "1920x1080"};
  double fps = 60;
  double seconds = 2.5;  // per run
  double warmup = 0.5;   // seconds at the start of each run left out of the latency figures
  uint32_t bitrate_kbps = 6000;
  std::string preset = "ultrafast";
  int threads = 2;
};

// Runs every workload × size; prints a table row per run; returns the JSON report.
nlohmann::json run_pipeline_bench(const PipelineBenchOptions& options);

}  // namespace vdistream::bench
