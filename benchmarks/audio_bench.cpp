#include "benchmarks/audio_bench.hpp"

#include <fmt/format.h>

#include <cmath>
#include <thread>

#include "benchmarks/clients/chromium.hpp"
#include "benchmarks/clients/spice_client.hpp"
#include "benchmarks/guest_vm.hpp"
#include "benchmarks/report.hpp"
#include "benchmarks/vdistreamd_child.hpp"
#include "benchmarks/wall_clock.hpp"
#include "core/clock.hpp"

namespace vdistream::bench {

namespace {

using namespace std::chrono_literals;
constexpr double kHeardLevel = 0.05;  // RMS of full scale: −26 dBFS

double rms(const std::vector<int16_t>& samples) {
  double sum = 0;
  for (int16_t s : samples) sum += double(s) * s;
  return samples.empty() ? 0 : std::sqrt(sum / double(samples.size())) / 32768.0;
}

nlohmann::json summary(const std::vector<double>& latencies, int missed) {
  const Percentiles p = percentiles(latencies);
  return {{"latency_ms", latencies}, {"p50", p.p50}, {"p95", p.p95}, {"max", p.max}, {"missed", missed}};
}

}  // namespace

nlohmann::json run_audio_bench(const AudioBenchOptions& o) {
  nlohmann::json result{{"qemu", o.qemu}, {"tones", o.tones}, {"tone_ms", o.tone_ms}};
  auto fail = [&](const std::string& why) {
    result["error"] = why;
    return result;
  };
  GuestVmOptions vo;
  if (o.qemu == "7.2") vo.qemu = Qemu::Host72;
  else if (o.qemu == "10") vo.qemu = Qemu::V10;
  else return fail(fmt::format("--qemu {}: 7.2 or 10", o.qemu));
  vo.workload = "idle";
  vo.audio = true;
  vo.tone = fmt::format("1000,{},{}", o.tone_ms, o.tone_ms);
  auto vm = GuestVm::start(vo);
  if (!vm) return fail(vm.error());
  if (auto ready = (*vm)->wait_ready(0, 90s); !ready) return fail(ready.error());
  auto service = VdistreamdChild::start({VdistreamdChild::default_binary(), (*vm)->spec()});
  if (!service) return fail(service.error());
  if (auto ok = (*service)->wait_capturing(60s); !ok) return fail(ok.error());
  SpiceClient spice({.unix_path = (*service)->spice_socket(), .password = (*service)->spice_ticket()});
  if (spice.wait_outcome(30s) != SpiceClient::Outcome::Opened) return fail("the SPICE client did not connect");
  auto browser = Chromium::launch({(*service)->page_url(), 1280, 720, {}});
  if (!browser) return fail(browser.error());
  auto viewer = [&]() -> nlohmann::json {
    auto status = (*service)->desktop_status();
    if (!status || !status->contains("webrtc_viewers")) return nullptr;
    const auto& viewers = (*status)["webrtc_viewers"]["per_viewer"];
    return viewers.is_array() && !viewers.empty() ? viewers[0] : nlohmann::json();
  };
  // The page plays once its first sound arrived.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    auto v = viewer();
    if (v.is_object() && v["page_audio_onset_ms"].get<double>() > 0) break;
    if (std::chrono::steady_clock::now() > deadline)
      return fail("the page never heard the guest's tone: " + (*browser)->log_tail() + "\n" + (*service)->log_tail());
    std::this_thread::sleep_for(100ms);
  }

  const int64_t wall_offset = realtime_minus_monotonic_ns();
  std::vector<double> spice_ms, webrtc_ms;
  int spice_missed = 0, webrtc_missed = 0;
  int64_t after = core::monotonic_now_ns();
  for (int i = 0; i < o.tones; ++i) {
    const auto start = (*vm)->wait_tone(true, after, 10s);
    if (!start) return fail("the guest stopped playing tones");
    const auto stop = (*vm)->wait_tone(false, start->arrival_ns, 10s);
    if (!stop) return fail("the guest's tone did not stop");
    after = stop->arrival_ns;
    std::optional<double> heard;
    for (const auto& p : spice.sound().packets)
      if (p.at_ns > start->arrival_ns && rms(p.samples) > kHeardLevel) {
        heard = double(p.at_ns - start->arrival_ns) / 1e6;
        break;
      }
    heard ? spice_ms.push_back(*heard) : void(++spice_missed);
    const auto v = viewer();
    const double onset_ms = v.is_object() ? v["page_audio_onset_ms"].get<double>() : 0;
    const double started_wall_ms = double(start->arrival_ns + wall_offset) / 1e6;
    if (onset_ms > started_wall_ms && onset_ms < started_wall_ms + o.tone_ms)
      webrtc_ms.push_back(onset_ms - started_wall_ms);
    else
      ++webrtc_missed;
  }
  result["spice"] = summary(spice_ms, spice_missed);
  result["webrtc"] = summary(webrtc_ms, webrtc_missed);
  if (auto status = (*service)->desktop_status(); status && status->contains("audio")) result["vdistreamd_audio"] = (*status)["audio"];
  return result;
}

void print_audio_table(const nlohmann::json& r) {
  if (r.contains("error")) {
    fmt::print("vdistream-bench audio: {}\n", r["error"].get<std::string>());
    return;
  }
  fmt::print("\nQEMU {}: {} tones of 1000 Hz, guest started the tone → heard (ms)\n", r["qemu"].get<std::string>(),
             r["tones"].get<int>());
  fmt::print("{:<28} {:>8} {:>8} {:>8} {:>7}\n", "client", "p50", "p95", "max", "missed");
  for (const auto& [name, label] : {std::pair{"spice", "spice-glib (playback data)"}, {"webrtc", "Chromium (page analyser)"}}) {
    const auto& s = r[name];
    fmt::print("{:<28} {:>8.1f} {:>8.1f} {:>8.1f} {:>7}\n", label, s["p50"].get<double>(), s["p95"].get<double>(),
               s["max"].get<double>(), s["missed"].get<int>());
  }
}

}  // namespace vdistream::bench
