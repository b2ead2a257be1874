#include "benchmarks/report.hpp"

#include <fmt/format.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

namespace vdistream::bench {

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.count = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) { return v[std::min(v.size() - 1, size_t(std::ceil(q / 100.0 * double(v.size()))) - (q > 0 ? 1 : 0))]; };
  p.p50 = rank(50);
  p.p95 = rank(95);
  p.p99 = rank(99);
  p.max = v.back();
  p.mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  return p;
}

std::vector<double> stage_durations(const Run& run, size_t stage) {
  std::vector<double> out;
  out.reserve(run.frames.size());
  for (const FrameSample& f : run.frames) {
    if (stage >= f.end_ms.size()) continue;
    out.push_back(f.end_ms[stage] - (stage == 0 ? 0.0 : f.end_ms[stage - 1]));
  }
  return out;
}

std::vector<double> totals(const Run& run) {
  std::vector<double> out;
  out.reserve(run.frames.size());
  for (const FrameSample& f : run.frames) out.push_back(f.total_ms());
  return out;
}

uint64_t barcodes_read(const Run& run) {
  uint64_t n = 0;
  for (const FrameSample& f : run.frames)
    if (f.barcode_read && (!f.barcode_sent || *f.barcode_sent == *f.barcode_read)) ++n;
  return n;
}

double bitrate_kbps(const Run& run) {
  if (run.frames.empty() || run.fps <= 0) return 0;
  uint64_t bytes = 0;
  for (const FrameSample& f : run.frames) bytes += f.bytes;
  const double seconds = double(std::max<uint64_t>(run.frames_produced, run.frames.size())) / run.fps;
  return double(bytes) * 8 / seconds / 1000;
}

std::optional<double> mean_psnr(const Run& run) {
  double sum = 0;
  int n = 0;
  for (const FrameSample& f : run.frames)
    if (f.psnr_db) {
      sum += *f.psnr_db;
      ++n;
    }
  if (!n) return std::nullopt;
  return sum / n;
}

namespace {

nlohmann::json percentiles_json(const Percentiles& p) {
  return {{"count", p.count}, {"p50_ms", p.p50}, {"p95_ms", p.p95}, {"p99_ms", p.p99}, {"max_ms", p.max}, {"mean_ms", p.mean}};
}

std::string csv_field(const std::optional<double>& v) { return v ? fmt::format("{:.3f}", *v) : ""; }
std::string csv_field(const std::optional<uint32_t>& v) { return v ? std::to_string(*v) : ""; }

}  // namespace

nlohmann::json summary_json(const Run& run) {
  nlohmann::json latency = nlohmann::json::object();
  for (size_t i = 0; i < run.stages.size(); ++i) latency[run.stages[i]] = percentiles_json(percentiles(stage_durations(run, i)));
  const Percentiles total = percentiles(totals(run));
  latency["total"] = percentiles_json(total);
  auto psnr = mean_psnr(run);
  return {{"implementation", run.implementation},
          {"workload", run.workload},
          {"size", run.size},
          {"fps", run.fps},
          {"stages", run.stages},
          {"frames_produced", run.frames_produced},
          {"frames_out", run.frames.size()},
          {"barcodes_expected", run.barcodes_expected},
          {"barcodes_read", barcodes_read(run)},
          {"throughput_fps", total.mean > 0 ? 1000.0 / total.mean : 0.0},
          {"bitrate_kbps", bitrate_kbps(run)},
          {"psnr_y_db", psnr ? nlohmann::json(*psnr) : nlohmann::json(nullptr)},
          {"latency_ms", latency},
          {"counters", run.counters},
          {"error", run.error}};
}

nlohmann::json run_json(const Run& run, bool with_frames) {
  nlohmann::json j = summary_json(run);
  if (!with_frames) return j;
  nlohmann::json frames = nlohmann::json::array();
  for (const FrameSample& f : run.frames) {
    nlohmann::json fj{{"sequence", f.sequence}, {"t_s", f.t_s}, {"end_ms", f.end_ms}, {"bytes", f.bytes}};
    fj["barcode_sent"] = f.barcode_sent ? nlohmann::json(*f.barcode_sent) : nlohmann::json(nullptr);
    fj["barcode_read"] = f.barcode_read ? nlohmann::json(*f.barcode_read) : nlohmann::json(nullptr);
    fj["psnr_y_db"] = f.psnr_db ? nlohmann::json(*f.psnr_db) : nlohmann::json(nullptr);
    frames.push_back(std::move(fj));
  }
  j["frames"] = std::move(frames);
  return j;
}

std::optional<std::string> write_report(const std::string& out_dir, const std::string& name, const nlohmann::json& header,
                                        const std::vector<Run>& runs, const nlohmann::json& extra, Written& written) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return fmt::format("cannot create {}: {}", out_dir, ec.message());
  written.json = out_dir + "/" + name + ".json";
  written.csv = out_dir + "/" + name + ".csv";

  nlohmann::json report = header;
  report["runs"] = nlohmann::json::array();
  for (const Run& r : runs) report["runs"].push_back(run_json(r, true));
  for (auto& [k, v] : extra.items()) report[k] = v;
  {
    std::ofstream f(written.json);
    if (!f) return fmt::format("cannot write {}", written.json);
    f << report.dump(1) << "\n";
    if (!f) return fmt::format("cannot write {}", written.json);
  }

  std::ofstream csv(written.csv);
  if (!csv) return fmt::format("cannot write {}", written.csv);
  size_t max_stages = 0;
  std::vector<std::string> stage_names;
  for (const Run& r : runs)
    if (r.stages.size() > max_stages) {
      max_stages = r.stages.size();
      stage_names = r.stages;
    }
  csv << "implementation,workload,size,sequence,t_s";
  for (const auto& s : stage_names) csv << "," << s << "_end_ms";
  csv << ",total_ms,bytes,barcode_sent,barcode_read,psnr_y_db\n";
  for (const Run& r : runs)
    for (const FrameSample& f : r.frames) {
      csv << fmt::format("{},{},{},{},{:.6f}", r.implementation, r.workload, r.size, f.sequence, f.t_s);
      for (size_t i = 0; i < max_stages; ++i) csv << "," << (i < f.end_ms.size() ? fmt::format("{:.4f}", f.end_ms[i]) : "");
      csv << fmt::format(",{:.4f},{},{},{},{}\n", f.total_ms(), f.bytes, csv_field(f.barcode_sent),
                         csv_field(f.barcode_read), csv_field(f.psnr_db));
    }
  if (!csv) return fmt::format("cannot write {}", written.csv);
  return std::nullopt;
}

nlohmann::json machine_json() {
  utsname u{};
  uname(&u);
  std::string cpu;
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  double load[3] = {0, 0, 0};
  std::ifstream loadavg("/proc/loadavg");
  loadavg >> load[0] >> load[1] >> load[2];
  return {{"cpu", cpu},
          {"cores", std::thread::hardware_concurrency()},
          {"kernel", u.release},
          {"load_average_at_start", {load[0], load[1], load[2]}}};
}

}  // namespace vdistream::bench
