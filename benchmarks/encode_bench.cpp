#include "benchmarks/encode_bench.hpp"

#include <fmt/format.h>

#include <map>

#include "benchmarks/contender.hpp"
#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "core/clock.hpp"
#include "core/mapped_buffer.hpp"
#include "encode/decoder.hpp"
#include "encode/probe.hpp"

namespace vdistream::bench {

namespace {

// BT.601 limited-range luma of an XRGB picture, the way libyuv (vdistream) computes it.
std::vector<uint8_t> source_luma(const uint8_t* pixels, uint32_t pitch, int32_t width, int32_t height) {
  std::vector<uint8_t> y(size_t(width) * size_t(height));
  for (int32_t r = 0; r < height; ++r) {
    const uint8_t* p = pixels + size_t(r) * pitch;
    uint8_t* out = &y[size_t(r) * size_t(width)];
    for (int32_t x = 0; x < width; ++x, p += 4) out[x] = uint8_t((66 * p[2] + 129 * p[1] + 25 * p[0] + 0x1080) >> 8);
  }
  return y;
}

struct Lane {  // one contender on one workload × size
  std::unique_ptr<Contender> contender;
  std::unique_ptr<encode::Decoder> decoder;
  Run run;
  // CPU time of the whole process (every thread: x264's, GStreamer's) while this contender
  // encoded a frame: less disturbed than wall time when the machine is shared.
  std::vector<double> cpu_ms;
};

std::vector<const encode::Backend*> vdistream_backends(const EncodeBenchOptions& o, const encode::EncoderRegistry& registry,
                                                       EncodeBenchResult& result, std::string& error) {
  encode::EncoderConfig probe_config;
  probe_config.fps = o.fps;
  probe_config.bitrate_bps = o.bitrate_kbps * 1000;
  probe_config.software_preset = o.preset;
  probe_config.threads = o.threads;
  std::vector<std::string> preference =
      o.backend == "all" ? encode::EncoderRegistry::default_preference() : std::vector<std::string>{o.backend};
  std::vector<const encode::Backend*> out;
  for (const encode::ProbeOutcome& p : registry.probe(probe_config, preference)) {
    result.probe.push_back({{"backend", p.backend}, {"usable", p.usable}, {"reason", p.reason}});
    if (p.usable)
      if (const encode::Backend* b = registry.find(p.backend)) out.push_back(b);
  }
  if (out.empty()) error = o.backend == "all" ? "no vdistream encoder backend passed the probe"
                                              : fmt::format("the {} backend did not pass the probe", o.backend);
  return out;
}

void run_one(const EncodeBenchOptions& o, const std::vector<const encode::Backend*>& backends, const std::string& workload,
             const std::string& size, EncodeBenchResult& result, Progress& progress, uint64_t& units_done) {
  auto config = capture::parse_synthetic_spec(fmt::format("synthetic:{}@{}@{}", workload, size, o.fps));
  std::vector<Lane> lanes;
  auto fail_all = [&](const std::string& why) {
    Run r;
    r.implementation = "all";
    r.workload = workload;
    r.size = size;
    r.error = why;
    result.runs.push_back(r);
  };
  if (!config) return fail_all(config.error());
  config->pool_size = 4;
  auto source = capture::SyntheticSource::create(*config);
  if (!source) return fail_all(source.error());

  ContenderConfig cc{config->width, config->height, o.fps, o.bitrate_kbps, o.preset, o.threads};
  std::vector<core::Result<std::unique_ptr<Contender>>> made;
  for (const encode::Backend* b : backends) made.push_back(make_vdistream_contender(*b, cc));
  std::vector<std::string> names;
  for (const encode::Backend* b : backends) names.push_back("vdistream-" + b->name);
  for (const std::string& baseline : o.baselines) {
    if (baseline.empty() || baseline == "none") continue;
    names.push_back(baseline);
    if (baseline == "gstreamer") made.push_back(make_gstreamer_baseline(cc));
    else if (baseline == "ffmpeg") made.push_back(make_ffmpeg_baseline(cc));
    else made.push_back(core::Error{fmt::format("unknown baseline '{}' (gstreamer, ffmpeg)", baseline)});
  }
  for (size_t i = 0; i < made.size(); ++i) {
    Lane lane;
    lane.run.implementation = names[i];
    lane.run.workload = workload;
    lane.run.size = size;
    lane.run.fps = o.fps;
    lane.run.stages = {"convert", "encode"};
    if (!made[i]) {
      lane.run.error = made[i].error();
    } else {
      lane.contender = std::move(*made[i]);
      result.contenders[lane.contender->name()] = lane.contender->description();
      auto decoder = encode::Decoder::create(core::Codec::H264);
      if (!decoder) lane.run.error = decoder.error();
      else lane.decoder = std::move(*decoder);
    }
    lanes.push_back(std::move(lane));
  }

  core::MappingCache mappings;
  uint64_t measured_frames = 0, barcodes_drawn = 0;  // by the source, whatever the contenders did
  const int32_t w = config->width, h = config->height;
  for (uint32_t i = 0; i < o.warmup + o.frames; ++i) {
    auto frame = (*source)->render_next();
    if (!frame) {
      for (Lane& l : lanes) l.run.error = l.run.error.empty() ? frame.error() : l.run.error;
      break;
    }
    auto mapping = mappings.get(*frame->buffer);
    if (!mapping) {
      for (Lane& l : lanes) l.run.error = l.run.error.empty() ? mapping.error() : l.run.error;
      break;
    }
    const uint8_t* pixels = (*mapping)->data();
    if (i >= o.warmup) ++measured_frames;
    const uint32_t pitch = (*mapping)->pitch();
    const bool measured = i >= o.warmup;
    const uint32_t index = i - (measured ? o.warmup : 0);
    const auto sent = capture::Barcode::read_xrgb(pixels, pitch, w, h);
    if (i >= o.warmup && sent) ++barcodes_drawn;
    std::vector<uint8_t> luma;
    const bool want_psnr = measured && o.psnr_every > 0 && index % o.psnr_every == 0;
    if (want_psnr) luma = source_luma(pixels, pitch, w, h);

    // Who goes first changes every frame, so no contender always finds the frame warm in cache.
    for (size_t k = 0; k < lanes.size(); ++k) {
      Lane& l = lanes[(i + k) % lanes.size()];
      if (!l.contender || !l.run.error.empty()) continue;
      const int64_t cpu0 = core::process_cpu_ns();
      auto e = l.contender->encode(*frame, pixels, pitch);
      const int64_t cpu1 = core::process_cpu_ns();
      if (!e) {
        l.run.error = e.error();
        continue;
      }
      auto pictures = l.decoder->decode(e->data, int64_t(frame->sequence));
      if (!measured) continue;
      l.cpu_ms.push_back(double(cpu1 - cpu0) / 1e6);
      FrameSample s;
      s.sequence = frame->sequence;
      s.t_s = double(index) / o.fps;
      const double convert_ms = double(e->convert_ns) / 1e6;
      s.end_ms = {convert_ms, convert_ms + double(e->encode_ns) / 1e6};
      s.bytes = e->data.size();
      s.barcode_sent = sent;
      if (pictures && !pictures->empty()) {
        const encode::DecodedPicture& p = pictures->back();
        s.barcode_read = capture::Barcode::read_luma(p.y.data(), uint32_t(p.width), p.width, p.height);
        if (want_psnr && p.width == w && p.height == h) s.psnr_db = encode::psnr(p.y, luma);
      }
      l.run.frames.push_back(std::move(s));
    }
    ++units_done;
    progress.update(units_done, fmt::format("encode {} {} frame {}/{}", workload, size, i + 1, o.warmup + o.frames));
  }
  for (Lane& l : lanes) {
    l.run.frames_produced = measured_frames;
    l.run.barcodes_expected = barcodes_drawn;
    if (l.decoder) l.run.counters["decoder_errors"] = l.decoder->errors();
    const Percentiles cpu = percentiles(l.cpu_ms);
    l.run.counters["cpu_ms_per_frame"] = {{"p50", cpu.p50}, {"p99", cpu.p99}, {"mean", cpu.mean}};
    progress.finish_step(l.run.label());
    result.runs.push_back(std::move(l.run));
  }
}

double p50_of(const Run& r, int stage /* -1 = total */) {
  return percentiles(stage < 0 ? totals(r) : stage_durations(r, size_t(stage))).p50;
}

void add_ratios(EncodeBenchResult& result) {
  for (const Run& ours : result.runs) {
    if (ours.implementation.rfind("vdistream-", 0) != 0 || ours.frames.empty()) continue;
    for (const Run& base : result.runs) {
      if (base.workload != ours.workload || base.size != ours.size || base.frames.empty()) continue;
      if (base.implementation.rfind("vdistream-", 0) == 0) continue;
      auto ratio = [&](int stage) {
        const double a = p50_of(ours, stage), b = p50_of(base, stage);
        return a > 0 ? nlohmann::json(b / a) : nlohmann::json(nullptr);
      };
      const double our_p99 = percentiles(totals(ours)).p99, base_p99 = percentiles(totals(base)).p99;
      const double our_cpu = ours.counters.value("cpu_ms_per_frame", nlohmann::json::object()).value("mean", 0.0);
      const double base_cpu = base.counters.value("cpu_ms_per_frame", nlohmann::json::object()).value("mean", 0.0);
      result.ratios.push_back({{"workload", ours.workload},
                               {"size", ours.size},
                               {"vdistream", ours.implementation},
                               {"baseline", base.implementation},
                               {"convert_p50", ratio(0)},
                               {"encode_p50", ratio(1)},
                               {"total_p50", ratio(-1)},
                               {"total_p99", our_p99 > 0 ? nlohmann::json(base_p99 / our_p99) : nlohmann::json(nullptr)},
                               {"cpu_mean", our_cpu > 0 ? nlohmann::json(base_cpu / our_cpu) : nlohmann::json(nullptr)},
                               {"bitrate", bitrate_kbps(ours) > 0 ? nlohmann::json(bitrate_kbps(base) / bitrate_kbps(ours))
                                                                   : nlohmann::json(nullptr)}});
    }
  }
}

}  // namespace

uint64_t encode_bench_units(const EncodeBenchOptions& o) {
  return uint64_t(o.workloads.size()) * o.sizes.size() * (o.warmup + o.frames);
}

EncodeBenchResult run_encode_bench(const EncodeBenchOptions& o, Progress& progress) {
  EncodeBenchResult result;
  const encode::EncoderRegistry registry = encode::EncoderRegistry::builtin();
  std::string error;
  auto backends = vdistream_backends(o, registry, result, error);
  if (!error.empty()) {
    Run r;
    r.implementation = "vdistream-" + o.backend;
    r.error = error;
    result.runs.push_back(r);
  }
  uint64_t done = 0;
  for (const std::string& size : o.sizes)
    for (const std::string& workload : o.workloads) run_one(o, backends, workload, size, result, progress, done);
  add_ratios(result);
  return result;
}

void print_encode_table(const EncodeBenchOptions& o, const EncodeBenchResult& result) {
  fmt::print("encode: {} measured frames per configuration (after {} warm-up), source {} fps, {} kbit/s, x264 {} with {} threads\n",
             o.frames, o.warmup, o.fps, o.bitrate_kbps, o.preset, o.threads);
  fmt::print("{:<20} {:<12} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8} {:>6} {:>9}\n", "implementation", "workload", "size",
             "conv p50", "enc p50", "p50 ms", "p95 ms", "p99 ms", "max ms", "cpu ms", "fps", "kbit/s", "PSNR", "barcodes");
  for (const Run& r : result.runs) {
    if (!r.error.empty() && r.frames.empty()) {
      fmt::print("{:<20} {:<12} {:>9} error: {}\n", r.implementation, r.workload, r.size, r.error);
      continue;
    }
    const Percentiles t = percentiles(totals(r));
    auto psnr = mean_psnr(r);
    const double cpu = r.counters.value("cpu_ms_per_frame", nlohmann::json::object()).value("mean", 0.0);
    fmt::print("{:<20} {:<12} {:>9} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.2f} {:>8.2f} {:>7.2f} {:>7.0f} {:>8.0f} {:>6} {:>4}/{:<4}\n",
               r.implementation, r.workload, r.size, percentiles(stage_durations(r, 0)).p50,
               percentiles(stage_durations(r, 1)).p50, t.p50, t.p95, t.p99, t.max, cpu, t.mean > 0 ? 1000 / t.mean : 0.0,
               bitrate_kbps(r), psnr ? fmt::format("{:.1f}", *psnr) : "-", barcodes_read(r), r.barcodes_expected);
    if (!r.error.empty()) fmt::print("  (stopped early: {})\n", r.error);
  }
  if (result.ratios.empty()) return;
  fmt::print("\nvdistream against the baselines, p50 per stage (baseline time / vdistream time: above 1 = vdistream faster)\n");
  fmt::print("{:<12} {:>9} {:<20} {:<10} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8}\n", "workload", "size", "vdistream", "baseline", "convert",
             "encode", "total", "total p99", "cpu", "bitrate");
  auto x = [](const nlohmann::json& v) { return v.is_null() ? std::string("-") : fmt::format("{:.2f}x", v.get<double>()); };
  for (const auto& r : result.ratios)
    fmt::print("{:<12} {:>9} {:<20} {:<10} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8}\n", r["workload"].get<std::string>(),
               r["size"].get<std::string>(), r["vdistream"].get<std::string>(), r["baseline"].get<std::string>(),
               x(r["convert_p50"]), x(r["encode_p50"]), x(r["total_p50"]), x(r["total_p99"]), x(r["cpu_mean"]), x(r["bitrate"]));
  fmt::print("(cpu: mean CPU time of the whole process per frame, all threads; bitrate: baseline's / vdistream's)\n");
}

}  // namespace vdistream::bench
