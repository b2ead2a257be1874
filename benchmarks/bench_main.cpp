// vdistream-bench: the latency benchmark tool. Prints figures and writes JSON; asserts nothing.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "benchmarks/pipeline_bench.hpp"
#include "core/log.hpp"

using namespace vdistream;

namespace {

nlohmann::json machine() {
  utsname u{};
  uname(&u);
  std::string cpu;
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  return {{"cpu", cpu}, {"cores", std::thread::hardware_concurrency()}, {"kernel", u.release}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vdistream-bench — measures every stage of vdistream's path and writes JSON.\n"};
  app.require_subcommand(1);
  std::string json_path = "bench-out/pipeline.json";
  bench::PipelineBenchOptions po;
  auto* pipeline = app.add_subcommand(
      "pipeline",
      "Synthetic desktop → latest-wins slot → encoder → sink, paced like a real source: host processing latency "
      "per stage (captured → dequeued → converted → encoded), fps, bitrate, drops, CPU, copies.");
  pipeline->add_option("--workloads", po.workloads, "Workloads to run")->delimiter(',')->capture_default_str();
  pipeline->add_option("--sizes", po.sizes, "Desktop sizes WIDTHxHEIGHT")->delimiter(',')->capture_default_str();
  pipeline->add_option("--fps", po.fps, "Frames per second the source produces")->capture_default_str()->check(CLI::Range(1.0, 240.0));
  pipeline->add_option("--seconds", po.seconds, "Length of each run")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  pipeline->add_option("--warmup", po.warmup, "Seconds at the start of each run (encoder start, first IDR) left out of the latency figures")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  pipeline->add_option("--bitrate", po.bitrate_kbps, "Encoder bitrate in kbit/s")->capture_default_str();
  pipeline->add_option("--preset", po.preset, "x264 preset")->capture_default_str();
  pipeline->add_option("--threads", po.threads, "x264 slice threads")->capture_default_str();
  pipeline->add_option("--json", json_path, "Where to write the JSON report")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  core::set_log_level(core::LogLevel::Warn);

  nlohmann::json report{{"tool", "vdistream-bench"}, {"machine", machine()}};
  if (*pipeline) {
    fmt::print("pipeline: {} fps, {:.1f} s per run, x264 {} with {} threads, {} kbit/s\n", po.fps, po.seconds, po.preset,
               po.threads, po.bitrate_kbps);
    report["subcommand"] = "pipeline";
    report["runs"] = bench::run_pipeline_bench(po);
  }
  std::error_code ec;
  std::filesystem::path out(json_path);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path(), ec);
  std::ofstream f(json_path);
  if (!f) {
    fmt::print(stderr, "cannot write {}\n", json_path);
    return 1;
  }
  f << report.dump(2) << "\n";
  fmt::print("JSON: {}\n", json_path);
  return 0;
}
