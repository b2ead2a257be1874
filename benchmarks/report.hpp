// What every subcommand measures, as plain values: one Run per configuration (implementation ×
// workload × size), one FrameSample per frame that came out. The summaries, the JSON and CSV
// files and the terminal tables are all computed from these samples.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace vdistream::bench {

struct FrameSample {
  uint64_t sequence = 0;        // the source's frame number
  double t_s = 0;               // when the source made it, seconds since the run started
  std::vector<double> end_ms;   // when each stage ended, ms after the frame was made (one per Run::stages)
  uint64_t bytes = 0;           // encoded size (0 where nothing is encoded, e.g. SPICE QXL mode)
  std::optional<uint32_t> barcode_sent;  // the barcode the source drew (when known)
  std::optional<uint32_t> barcode_read;  // what the decoder / client showed
  std::optional<double> psnr_db;         // luma PSNR of the decoded picture against the source

  double total_ms() const { return end_ms.empty() ? 0.0 : end_ms.back(); }
};

struct Run {
  std::string implementation;   // "vdistream-software", "gstreamer", "ffmpeg", "spice-qxl", ...
  std::string workload;
  std::string size;             // WIDTHxHEIGHT
  double fps = 0;               // the source's frame rate (bitrate is per second of source time)
  std::vector<std::string> stages;  // e.g. {"convert", "encode"}: the end of each, in order
  std::vector<FrameSample> frames;
  uint64_t frames_produced = 0;  // by the source for this run
  uint64_t barcodes_expected = 0;
  nlohmann::json counters = nlohmann::json::object();  // subcommand-specific (drops, skips, copies, ...)
  std::string error;             // non-empty: the run failed, with why

  std::string label() const { return implementation + " " + workload + " " + size; }
};

struct Percentiles {
  double p50 = 0, p95 = 0, p99 = 0, max = 0, mean = 0;
  uint64_t count = 0;
};
Percentiles percentiles(std::vector<double> values);  // exact (nearest rank)

// Per stage (duration of that stage alone) and "total", for a run.
std::vector<double> stage_durations(const Run& run, size_t stage);  // ms, one per frame
std::vector<double> totals(const Run& run);
uint64_t barcodes_read(const Run& run);  // frames whose barcode was read and matched what was sent
double bitrate_kbps(const Run& run);     // bytes over source time (frames / fps)
std::optional<double> mean_psnr(const Run& run);

nlohmann::json summary_json(const Run& run);
nlohmann::json run_json(const Run& run, bool with_frames);

// `<out>/<name>.json` (summaries, ratios and every frame) and `<out>/<name>.csv` (one row per frame).
// Returns the paths written, or an error naming the file.
struct Written {
  std::string json, csv;
};
std::optional<std::string> write_report(const std::string& out_dir, const std::string& name,
                                        const nlohmann::json& header, const std::vector<Run>& runs,
                                        const nlohmann::json& extra, Written& written);

nlohmann::json machine_json();

}  // namespace vdistream::bench
