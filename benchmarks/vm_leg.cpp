#include "benchmarks/vm_leg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "benchmarks/process_cpu.hpp"
#include "core/clock.hpp"

namespace vdistream::bench {

namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr uint32_t kScancodeA = 0x1e;  // PC AT set 1; the guest reports Linux's KEY_A (30)
constexpr std::chrono::milliseconds kKeyHold = 40ms, kKeySpacing = 300ms, kKeyLimit = 3s;
constexpr auto kSettleLimit = 5s;  // for the client to show the window's last frame (or a later one)

std::string guest_mode(const VmBenchOptions& o) { return fmt::format("{}x{}", o.size, o.bpp); }

// What the leg's figures are deltas of, taken at the start and the end of the measured window.
struct Snapshot {
  int64_t at_ns = 0;
  std::optional<double> service_cpu_s, qemu_cpu_s;
  std::optional<uint64_t> wire_bytes;
  json desktop;  // vdistreamd's GET /api/desktops/vm; null when it did not answer
};

Snapshot take_snapshot(VmRig& rig, VmClient& client) {
  Snapshot s;
  s.wire_bytes = client.wire_bytes();
  s.service_cpu_s = process_cpu_seconds(rig.service.pid());
  s.qemu_cpu_s = process_cpu_seconds(rig.vm.qemu_pid());
  s.at_ns = core::monotonic_now_ns();
  if (auto d = rig.service.desktop_status()) s.desktop = *d;
  return s;
}

std::optional<double> api_number(const json& status, const char* block, const char* key) {
  if (!status.is_object() || !status.contains(block) || !status[block].is_object()) return std::nullopt;
  const json& b = status[block];
  if (!b.contains(key) || !b[key].is_number()) return std::nullopt;
  return b[key].get<double>();
}

std::optional<double> api_delta(const Snapshot& a, const Snapshot& b, const char* block, const char* key) {
  auto x = api_number(a.desktop, block, key), y = api_number(b.desktop, block, key);
  if (!x || !y) return std::nullopt;
  return *y - *x;
}

json or_null(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }
json ratio(const std::optional<double>& num, double den) { return num && den > 0 ? json(*num / den) : json(nullptr); }

// CPU % of one core over the window.
json cpu_percent(const std::optional<double>& a, const std::optional<double>& b, double seconds) {
  if (!a || !b || seconds <= 0) return nullptr;
  return (*b - *a) / seconds * 100;
}

// Sleeps until `until_ns`, keeping the progress bar and the client's reports current; an error
// when QEMU or vdistreamd went away meanwhile.
core::Status wait_until(int64_t until_ns, VmRig& rig, VmClient& client, Progress& progress, double done_s, int64_t since_ns,
                        const std::string& what) {
  while (core::monotonic_now_ns() < until_ns) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<int64_t>(100'000'000, until_ns - core::monotonic_now_ns())));
    (void)client.sightings();  // the page's reports are polled from vdistreamd's API
    progress.update(uint64_t((done_s + double(core::monotonic_now_ns() - since_ns) / 1e9) * 1000), what);
    if (!rig.vm.qemu_running()) return core::Error{fmt::format("{} exited during the leg:\n{}", rig.qemu, rig.vm.diagnostics())};
    if (!rig.service.running())
      return core::Error{fmt::format("vdistreamd {} during the leg:\n{}", rig.service.exit_description(), rig.service.log_tail())};
  }
  return {};
}

// Key presses through the client, each timed to the guest's K line for it.
void measure_keys(const VmBenchOptions& o, VmRig& rig, VmClient& client, json& counters, std::string& error) {
  uint32_t count = 0;  // presses the guest has reported in this boot
  for (const auto& k : rig.vm.keys())
    if (k.boot == rig.vm.boot()) count = std::max(count, k.count);
  std::vector<double> latencies;
  int missed = 0;
  for (int i = 0; i < o.keys; ++i) {
    const int64_t pressed = core::monotonic_now_ns();
    if (!client.key_press(kScancodeA)) {
      error = "the client could not send a key (no inputs channel)";
      return;
    }
    std::this_thread::sleep_for(kKeyHold);
    (void)client.key_release(kScancodeA);
    if (auto k = rig.vm.wait_key(count + 1, kKeyLimit)) {
      latencies.push_back(double(k->arrival_ns - pressed) / 1e6);
      count = k->count;
    } else {
      ++missed;
    }
    std::this_thread::sleep_for(kKeySpacing);
  }
  const Percentiles p = percentiles(latencies);
  counters["key_ms"] = latencies;
  counters["keys_pressed"] = o.keys;
  counters["keys_missed"] = missed;
  counters["key_p50_ms"] = latencies.empty() ? json(nullptr) : json(p.p50);
  counters["key_max_ms"] = latencies.empty() ? json(nullptr) : json(p.max);
  if (o.keys > 0 && latencies.empty()) error = fmt::format("none of the {} key presses reached the guest (no K line)", o.keys);
}

// vdistreamd's own figures over the window: what it captured, handed to SPICE and encoded.
void service_counters(const VmBenchOptions& o, const Snapshot& a, const Snapshot& b, double drawn, double window_s,
                      json& counters) {
  json capture = json::object();
  if (b.desktop.is_object() && b.desktop.contains("capture") && b.desktop["capture"].is_object())
    capture["path"] = b.desktop["capture"].value("path", "");
  const auto frames = api_delta(a, b, "capture", "frames");
  const auto messages = api_delta(a, b, "capture", "display_messages");
  const auto pixels = api_delta(a, b, "capture", "pixel_bytes_received");
  const auto cpu_ms = api_delta(a, b, "capture", "cpu_ms");
  capture["frames"] = or_null(frames);
  capture["display_messages"] = or_null(messages);
  capture["pixel_bytes_received"] = or_null(pixels);
  capture["cpu_ms"] = or_null(cpu_ms);
  capture["frames_per_guest_frame"] = ratio(frames, drawn);
  capture["messages_per_frame"] = frames ? ratio(messages, *frames) : json(nullptr);
  capture["cpu_ms_per_frame"] = frames ? ratio(cpu_ms, *frames) : json(nullptr);
  capture["pixel_mb_per_s"] = pixels && window_s > 0 ? json(*pixels / 1e6 / window_s) : json(nullptr);
  counters["capture"] = capture;

  const auto to_spice = api_delta(a, b, "spice", o.spice_mode == "stream" ? "stream_access_units" : "frames");
  counters["spice_frames"] = or_null(to_spice);
  counters["spice_frames_per_guest_frame"] = ratio(to_spice, drawn);
  const auto drawables = api_delta(a, b, "spice", "drawables");
  counters["spice_drawables"] = or_null(drawables);
  counters["spice_drawables_per_frame"] = to_spice ? ratio(drawables, *to_spice) : json(nullptr);
  const auto encoded = api_delta(a, b, "frames", "encoded");
  const auto bytes_out = api_delta(a, b, "frames", "bytes_out");
  counters["frames_encoded"] = or_null(encoded);
  counters["encoded_per_guest_frame"] = ratio(encoded, drawn);
  counters["encoded_bytes"] = or_null(bytes_out);
  counters["encoded_kbps"] = bytes_out && window_s > 0 ? json(*bytes_out * 8 / 1000 / window_s) : json(nullptr);
  if (b.desktop.is_object() && b.desktop.contains("encoder")) counters["encoder"] = b.desktop["encoder"].value("backend", "");
}

}  // namespace

Run failed_vm_leg(const VmBenchOptions& o, const std::string& qemu, const VmLeg& leg, const std::string& why) {
  Run run;
  run.implementation = leg.implementation();
  run.workload = o.workload + "@" + qemu;
  run.size = o.size;
  run.fps = o.fps;
  run.stages = {"shown"};
  run.counters = {{"qemu", qemu}, {"leg", leg.leg}, {"client", leg.client}, {"guest_mode", guest_mode(o)}};
  run.error = why;
  return run;
}

Run run_vm_leg(const VmBenchOptions& o, VmRig& rig, const VmLeg& leg, std::unique_ptr<VmClient> client, Progress& progress,
               double& seconds_done) {
  Run run = failed_vm_leg(o, rig.qemu, leg, "");
  const std::string what = fmt::format("vm {} {}", rig.qemu, leg.implementation());
  const double leg_s = o.warmup + o.seconds;
  auto fail = [&](std::string why) {
    client.reset();
    run.error = std::move(why);
    seconds_done += leg_s;
    progress.finish_step(run.label() + " (failed)");
    return run;
  };

  progress.update(uint64_t(seconds_done * 1000), what + " (connecting)");
  if (core::Status s = client->ready(std::chrono::milliseconds(int64_t(o.connect_timeout * 1000))); !s) return fail(s.error());
  const int64_t leg_t0 = core::monotonic_now_ns();
  if (core::Status s = wait_until(leg_t0 + int64_t(o.warmup * 1e9), rig, *client, progress, seconds_done, leg_t0, what); !s)
    return fail(s.error());
  const Snapshot a = take_snapshot(rig, *client);
  if (core::Status s = wait_until(a.at_ns + int64_t(o.seconds * 1e9), rig, *client, progress, seconds_done, leg_t0, what); !s)
    return fail(s.error());
  const Snapshot b = take_snapshot(rig, *client);
  const double window_s = double(b.at_ns - a.at_ns) / 1e9;

  // The guest's frames in the window, and the client's first sighting of each barcode.
  std::vector<GuestFrame> drawn;
  for (const GuestFrame& f : rig.vm.frames())
    if (f.boot == rig.vm.boot() && f.head == 0 && f.arrival_ns >= a.at_ns && f.arrival_ns < b.at_ns) drawn.push_back(f);
  // Every frame that was drawn reached the client once it shows the last one (or a later one);
  // SPICE and Chromium may skip frames, so "a later one" counts.
  bool last_shown = drawn.empty();
  const int64_t settle_deadline = core::monotonic_now_ns() + std::chrono::nanoseconds(kSettleLimit).count();
  while (!last_shown && core::monotonic_now_ns() < settle_deadline) {
    const uint32_t last = uint32_t(drawn.back().value & 0xffffff);
    for (const Sighting& s : client->sightings()) last_shown = last_shown || s.barcode >= last;
    if (!last_shown) std::this_thread::sleep_for(50ms);
  }

  std::string key_error;
  if (client->sends_keys() && o.keys > 0) measure_keys(o, rig, *client, run.counters, key_error);
  const std::vector<Sighting> seen = client->sightings();
  const core::Status client_status = client->finish(run.counters);
  client.reset();  // remote-viewer, Xvfb, Chromium go now

  std::set<uint32_t> boot_values;  // every barcode the guest reported drawing in this boot
  for (const GuestFrame& f : rig.vm.frames())
    if (f.boot == rig.vm.boot() && f.head == 0) boot_values.insert(uint32_t(f.value & 0xffffff));
  std::map<uint32_t, int64_t> first_seen;
  uint64_t out_of_order = 0, not_drawn = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    first_seen.emplace(seen[i].barcode, seen[i].at_ns);
    if (seen[i].at_ns < a.at_ns || seen[i].at_ns > b.at_ns + std::chrono::nanoseconds(kSettleLimit).count()) continue;
    if (i > 0 && seen[i].barcode < seen[i - 1].barcode) ++out_of_order;
    if (!boot_values.count(seen[i].barcode)) ++not_drawn;  // a misread, or a picture the guest never finished
  }
  uint64_t before_reported = 0;
  json guest_values = json::array();
  for (const GuestFrame& f : drawn) {
    const uint32_t value = uint32_t(f.value & 0xffffff);
    guest_values.push_back(value);
    auto it = first_seen.find(value);
    if (it == first_seen.end()) continue;
    FrameSample sample;
    sample.sequence = value;
    sample.t_s = double(f.arrival_ns - a.at_ns) / 1e9;
    sample.end_ms = {double(it->second - f.arrival_ns) / 1e6};
    if (sample.end_ms[0] < 0) ++before_reported;  // shown before the F line was read: the serial reader was late
    sample.barcode_sent = value;
    sample.barcode_read = value;
    run.frames.push_back(std::move(sample));
  }
  run.frames_produced = drawn.size();
  run.barcodes_expected = drawn.size();

  json& c = run.counters;
  c["window_s"] = window_s;
  c["guest_frames_drawn"] = drawn.size();
  c["guest_frames_skipped"] = drawn.empty() ? 0 : drawn.back().skipped - drawn.front().skipped;
  c["guest_values"] = std::move(guest_values);
  c["frames_shown"] = run.frames.size();
  c["shown_ratio"] = drawn.empty() ? 0.0 : double(run.frames.size()) / double(drawn.size());
  c["last_frame_shown"] = last_shown;
  c["out_of_order"] = out_of_order;
  c["barcodes_not_drawn"] = not_drawn;
  c["shown_before_reported"] = before_reported;
  c["barcodes_shown_total"] = seen.size();
  if (a.wire_bytes && b.wire_bytes) {
    c["wire_bytes"] = *b.wire_bytes - *a.wire_bytes;
    c["wire_kbps"] = window_s > 0 ? double(*b.wire_bytes - *a.wire_bytes) * 8 / 1000 / window_s : 0.0;
  }
  c["vdistreamd_cpu_percent"] = cpu_percent(a.service_cpu_s, b.service_cpu_s, window_s);
  c["qemu_cpu_percent"] = cpu_percent(a.qemu_cpu_s, b.qemu_cpu_s, window_s);
  service_counters(o, a, b, double(drawn.size()), window_s, c);
  c["load_average"] = load_average();

  seconds_done += leg_s;
  if (!client_status) run.error = client_status.error();
  else if (!key_error.empty()) run.error = key_error;
  else if (drawn.empty()) run.error = fmt::format("the guest reported no frame during the {:.1f} s window", window_s);
  else if (run.frames.empty()) run.error = fmt::format("the client showed none of the {} frames the guest drew", drawn.size());
  else if (!last_shown) run.error = "the client never showed the window's last frame (or a later one)";
  progress.finish_step(run.label());
  return run;
}

}  // namespace vdistream::bench
