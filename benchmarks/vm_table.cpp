// `vdistream-bench vm`'s table: per QEMU, one row per leg with its rounds pooled (every frame of
// every round in one distribution, counts and bytes summed, CPU weighted by time), then the
// vdistream / QEMU SPICE ratios per client and how the VM's display reached vdistreamd.
#include <fmt/format.h>

#include <optional>
#include <string>
#include <vector>

#include "benchmarks/vm_bench.hpp"

namespace vdistream::bench {

namespace {

using nlohmann::json;

std::optional<double> number(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<double>();
}

// Sums of a figure over the rounds that have it, with the seconds they cover.
struct Sum {
  double value = 0, seconds = 0, weight = 0;
  bool any = false;
  void add(std::optional<double> v, double window_s, double w = 1) {
    if (!v) return;
    value += *v, seconds += window_s, weight += w, any = true;
  }
};

struct Pooled {
  std::vector<double> latencies, keys, round_p50;
  std::vector<std::string> errors;
  uint64_t shown = 0, drawn = 0;
  Sum wire_bytes, encoded_bytes, service_cpu, qemu_cpu, to_client, capture_cpu_ms, capture_frames;
  std::string capture_path;
  double capture_messages = 0, capture_pixels = 0, capture_seconds = 0;
  bool ran() const { return !latencies.empty(); }
};

Pooled pool(const std::vector<Run>& runs, const std::string& qemu, const std::string& implementation) {
  Pooled p;
  const bool webrtc = implementation.rfind("vdistream-webrtc", 0) == 0;
  for (const Run& r : runs) {
    if (r.counters.value("qemu", "") != qemu || r.implementation != implementation) continue;
    if (!r.error.empty()) p.errors.push_back(fmt::format("round {}: {}", r.counters.value("round", 0), r.error));
    if (r.frames.empty()) continue;
    const json& c = r.counters;
    const double window = number(c, "window_s").value_or(0);
    const std::vector<double> t = totals(r);
    p.latencies.insert(p.latencies.end(), t.begin(), t.end());
    p.round_p50.push_back(percentiles(t).p50);
    if (c.contains("key_ms"))
      for (const auto& k : c["key_ms"]) p.keys.push_back(k.get<double>());
    p.shown += r.frames.size();
    p.drawn += c.value("guest_frames_drawn", uint64_t(0));
    p.wire_bytes.add(number(c, "wire_bytes"), window);
    if (webrtc) p.encoded_bytes.add(number(c, "encoded_bytes"), window);
    if (auto cpu = number(c, "vdistreamd_cpu_percent")) p.service_cpu.add(*cpu * window, window, window);
    if (auto cpu = number(c, "qemu_cpu_percent")) p.qemu_cpu.add(*cpu * window, window, window);
    if (implementation.rfind("vdistream-", 0) == 0)
      p.to_client.add(number(c, webrtc ? "frames_encoded" : "spice_frames"), window, double(c.value("guest_frames_drawn", 0)));
    if (c.contains("capture")) {
      const json& cap = c["capture"];
      p.capture_cpu_ms.add(number(cap, "cpu_ms"), window);
      p.capture_frames.add(number(cap, "frames"), window);
      p.capture_messages += number(cap, "display_messages").value_or(0);
      p.capture_pixels += number(cap, "pixel_bytes_received").value_or(0);
      p.capture_seconds += window;
      p.capture_path = cap.value("path", "");
    }
  }
  return p;
}

std::string fixed(std::optional<double> v, const char* spec) { return v ? fmt::format(fmt::runtime(spec), *v) : "-"; }
std::optional<double> per_second_kbit(const Sum& s) {
  return s.any && s.seconds > 0 ? std::optional<double>(s.value * 8 / 1000 / s.seconds) : std::nullopt;
}
std::optional<double> weighted(const Sum& s) { return s.any && s.weight > 0 ? std::optional<double>(s.value / s.weight) : std::nullopt; }
std::optional<double> quotient(const Sum& a, const Sum& b) {
  return a.any && b.any && b.value > 0 ? std::optional<double>(a.value / b.value) : std::nullopt;
}
std::string times(std::optional<double> ours, std::optional<double> theirs) {
  return ours && theirs && *theirs > 0 ? fmt::format("{:.2f}x", *ours / *theirs) : "-";
}

}  // namespace

void print_vm_table(const VmBenchOptions& o, const VmBenchResult& result) {
  fmt::print("vm: the test guest drawing {} at {}x{} bpp, {} fps (TCG); {:.1f} s per leg after {:.1f} s warm-up{}; vdistreamd's "
             "SPICE in {} mode; glass to glass = the guest's F line for frame N arrived → the client first showed barcode N\n",
             o.workload, o.size, o.bpp, o.fps, o.seconds, o.warmup,
             o.rounds > 1 ? fmt::format(", {} rounds pooled", o.rounds) : std::string(), o.spice_mode);
  const auto legs = vm_legs(o);
  for (const json& vm : result.vms) {
    const std::string qemu = vm.value("qemu", "");
    fmt::print("\n{}", qemu);
    if (vm.contains("error")) {
      fmt::print(": not run: {}\n", vm["error"].get<std::string>());
      continue;
    }
    fmt::print(": boot {:.1f} s, vdistreamd's encoder {}\n", vm.value("boot_s", 0.0), vm.value("encoder", "?"));
    fmt::print("{:<28} {:>7} {:>7} {:>7} {:>7} {:>11} {:>9} {:>8} {:>6} {:>6} {:>6} {:>7} {:>7}{}\n", "leg/client", "p50 ms",
               "p95 ms", "p99 ms", "max ms", "shown/drawn", "wire kb/s", "enc kb/s", "vdsd%", "qemu%", "out/f", "capt ms",
               "key ms", o.rounds > 1 ? "  p50 per round" : "");
    std::vector<std::pair<std::string, Pooled>> pooled;
    for (const VmLeg& leg : legs) {
      Pooled p = pool(result.runs, qemu, leg.implementation());
      if (!p.ran()) {
        fmt::print("{:<28} error: {}\n", leg.implementation(),
                   p.errors.empty() ? std::string("no frames") : p.errors.front().substr(0, p.errors.front().find('\n')));
        continue;
      }
      const Percentiles t = percentiles(p.latencies);
      std::string rounds;
      if (o.rounds > 1)
        for (double v : p.round_p50) rounds += fmt::format(" {:.1f}", v);
      fmt::print("{:<28} {:>7.1f} {:>7.1f} {:>7.1f} {:>7.1f} {:>5}/{:<5} {:>9} {:>8} {:>6} {:>6} {:>6} {:>7} {:>7} {}\n",
                 leg.implementation(), t.p50, t.p95, t.p99, t.max, p.shown, p.drawn,
                 fixed(per_second_kbit(p.wire_bytes), "{:.0f}"), fixed(per_second_kbit(p.encoded_bytes), "{:.0f}"),
                 fixed(weighted(p.service_cpu), "{:.0f}"), fixed(weighted(p.qemu_cpu), "{:.0f}"),
                 fixed(weighted(p.to_client), "{:.2f}"), fixed(quotient(p.capture_cpu_ms, p.capture_frames), "{:.2f}"),
                 p.keys.empty() ? std::string("-") : fmt::format("{:.1f}", percentiles(p.keys).p50), rounds);
      for (const std::string& e : p.errors) fmt::print("  error, {}\n", e.substr(0, e.find('\n')));
      pooled.emplace_back(leg.implementation(), std::move(p));
    }
    auto find = [&](const std::string& implementation) -> const Pooled* {
      for (const auto& [name, p] : pooled)
        if (name == implementation) return &p;
      return nullptr;
    };
    // vdistream against QEMU's own SPICE, client by client.
    bool header = false;
    for (const std::string& client : o.clients) {
      const Pooled* theirs = find("qemu-spice/" + client);
      const Pooled* ours = find("vdistream-" + o.spice_mode + "/" + client);
      if (!theirs || !ours) continue;
      if (!header) fmt::print("{:<28} {:>7} {:>7} {:>7} {:>7}\n", "vdistream / QEMU SPICE", "p50", "p99", "bytes", "key p50");
      header = true;
      const Percentiles a = percentiles(theirs->latencies), b = percentiles(ours->latencies);
      auto key_p50 = [](const Pooled* p) { return p->keys.empty() ? std::nullopt : std::optional<double>(percentiles(p->keys).p50); };
      fmt::print("{:<28} {:>7} {:>7} {:>7} {:>7}\n", client, times(b.p50, a.p50), times(b.p99, a.p99),
                 times(per_second_kbit(ours->wire_bytes), per_second_kbit(theirs->wire_bytes)), times(key_p50(ours), key_p50(theirs)));
    }
    // How the VM's display reached vdistreamd, over all its legs (it captures during QEMU's too).
    Sum cpu, frames, drawn;
    double messages = 0, pixels = 0, seconds = 0;
    std::string path;
    for (const auto& [name, p] : pooled) {
      cpu.add(p.capture_cpu_ms.any ? std::optional<double>(p.capture_cpu_ms.value) : std::nullopt, 0);
      frames.add(p.capture_frames.any ? std::optional<double>(p.capture_frames.value) : std::nullopt, 0);
      drawn.add(double(p.drawn), 0);
      messages += p.capture_messages, pixels += p.capture_pixels, seconds += p.capture_seconds;
      if (!p.capture_path.empty()) path = p.capture_path;
    }
    if (frames.any && frames.value > 0)
      fmt::print("capture: {}, {:.2f} frames per guest frame, {:.1f} display messages per frame, {:.1f} MB/s of pixels on the "
                 "socket, {:.2f} ms CPU per frame\n",
                 path, frames.value / std::max(1.0, drawn.value), messages / frames.value,
                 seconds > 0 ? pixels / 1e6 / seconds : 0.0, cpu.value / frames.value);
  }
  fmt::print("\n(shown/drawn: frames whose barcode the client showed / frames the guest finished in the window; wire kb/s: "
             "what spice-glib's display channel read; enc kb/s: what vdistreamd encoded for WebRTC; vdsd%, qemu%: CPU of "
             "vdistreamd and QEMU in % of one core; out/f: frames vdistreamd handed to SPICE (QXL) or encoded (WebRTC) per "
             "guest frame; capt ms: vdistreamd's capture CPU per captured frame (it captures during every leg); key ms: "
             "spice-glib key press → the guest's K line, p50)\n");
}

}  // namespace vdistream::bench
