#include "benchmarks/vm_bench.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "benchmarks/chromium_viewer.hpp"
#include "benchmarks/child_process.hpp"
#include "benchmarks/guest_vm.hpp"
#include "benchmarks/vdistreamd_child.hpp"
#include "benchmarks/vm_clients.hpp"
#include "benchmarks/vm_leg.hpp"
#include "core/clock.hpp"

namespace vdistream::bench {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kCaptureLimit = 30s;  // vdistreamd connecting to the VM's display and capturing a frame

std::optional<Qemu> parse_qemu(const std::string& name) {
  if (name == "7.2") return Qemu::Host72;
  if (name == "10") return Qemu::V10;
  return std::nullopt;
}

// Why this client cannot run here, or empty.
std::string client_missing(const std::string& client) {
  if (client == "chromium" && !ChromiumViewer::available())
    return fmt::format("{} is not installed (apt-get install chromium)", ChromiumViewer::kPath);
  if (client == "remote-viewer") {
    if (find_program("remote-viewer").empty()) return "remote-viewer is not installed (apt-get install virt-viewer)";
    if (find_program("Xvfb").empty()) return "Xvfb is not installed (apt-get install xvfb): remote-viewer runs in an X server of its own";
  }
  return {};
}

std::unique_ptr<VmClient> make_client(const VmBenchOptions& o, const VmLeg& leg, GuestVm& vm, VdistreamdChild& service) {
  const bool qemu_spice = leg.leg == "qemu-spice";
  // QEMU's SPICE runs without a ticket (GuestVm: disable-ticketing=on); vdistreamd's with one.
  const std::string socket = qemu_spice ? vm.spice_socket() : service.spice_socket();
  const std::string password = qemu_spice ? std::string() : service.spice_ticket();
  if (leg.client == "glib") return make_glib_client(socket, password);
  if (leg.client == "remote-viewer") {
    X11Viewer::Options xo;
    xo.unix_path = socket;
    xo.password = password;
    xo.desktop_width = vm.options().width;
    xo.desktop_height = vm.options().height;
    return make_remote_viewer_client(xo);
  }
  (void)o;
  return make_chromium_client(service.page_url(), service.api(), VdistreamdChild::kDesktop);
}

// Every leg of one QEMU: boot the guest, start vdistreamd on it, run the legs one client at a time.
void run_qemu(const VmBenchOptions& o, const std::string& qemu_version, Progress& progress, double& seconds_done,
              VmBenchResult& result) {
  const auto legs = vm_legs(o);
  const auto qemu = parse_qemu(qemu_version);
  const std::string name = qemu ? qemu_name(*qemu) : "qemu-" + qemu_version;
  json info = {{"qemu", name}};
  auto fail_all = [&](const std::string& why) {
    fmt::print(stderr, "vm: {} skipped: {}\n", name, why);
    for (const VmLeg& leg : legs) result.runs.push_back(failed_vm_leg(o, name, leg, why));
    seconds_done += double(legs.size()) * (o.warmup + o.seconds);
    info["error"] = why;
    result.vms.push_back(info);
  };
  if (!qemu) return fail_all(fmt::format("unknown QEMU '{}' (7.2: the host's, 10: the one install-test-vm.sh unpacks)", qemu_version));
  if (auto ok = GuestVm::available(*qemu); !ok) return fail_all(ok.error());
  if (auto ok = GuestVm::guest_available(); !ok) return fail_all(ok.error());

  GuestVmOptions go;
  go.qemu = *qemu;
  if (std::sscanf(o.size.c_str(), "%dx%d", &go.width, &go.height) != 2)
    return fail_all(fmt::format("size '{}' is not WIDTHxHEIGHT", o.size));
  go.bpp = o.bpp;
  go.workload = o.workload;
  go.fps = o.fps;
  go.qemu_spice = true;
  progress.update(uint64_t(seconds_done * 1000), fmt::format("vm {} (booting the guest)", name));
  const int64_t t0 = core::monotonic_now_ns();
  auto vm = GuestVm::start(go);
  if (!vm) return fail_all(vm.error());
  auto ready = (*vm)->wait_ready(0, std::chrono::milliseconds(int64_t(o.boot_timeout * 1000)));
  if (!ready) return fail_all(ready.error());
  info["boot_s"] = double(ready->arrival_ns - t0) / 1e9;
  info["guest"] = {{"width", ready->width}, {"height", ready->height}, {"bpp", ready->bpp}};

  const std::string binary = o.vdistreamd.empty() ? VdistreamdChild::default_binary() : o.vdistreamd;
  auto service = VdistreamdChild::start({binary, (*vm)->spec(), o.spice_mode});
  if (!service) return fail_all(service.error());
  if (auto ok = (*service)->wait_capturing(kCaptureLimit); !ok) return fail_all(ok.error());
  info["vdistreamd"] = binary;
  info["vdistreamd_config"] = (*service)->config_text();

  VmRig rig{**vm, **service, name};
  for (size_t i = 0; i < legs.size(); ++i) {
    const VmLeg& leg = legs[i];
    if (const std::string why = client_missing(leg.client); !why.empty()) {
      fmt::print(stderr, "vm: {} {} skipped: {}\n", name, leg.implementation(), why);
      result.runs.push_back(failed_vm_leg(o, name, leg, why));
      seconds_done += o.warmup + o.seconds;
      continue;
    }
    if (!(*vm)->qemu_running() || !(*service)->running()) {
      const std::string why = !(*vm)->qemu_running() ? name + " is no longer running" : "vdistreamd is no longer running";
      for (size_t k = i; k < legs.size(); ++k) result.runs.push_back(failed_vm_leg(o, name, legs[k], why));
      seconds_done += double(legs.size() - i) * (o.warmup + o.seconds);
      break;
    }
    result.runs.push_back(run_vm_leg(o, rig, leg, make_client(o, leg, **vm, **service), progress, seconds_done));
  }
  if (auto status = (*service)->desktop_status()) {
    const json& s = *status;
    info["encoder"] = s.contains("encoder") ? s["encoder"].value("backend", "") : "";
    if (s.contains("capture") && s["capture"].is_object()) info["capture"] = s["capture"];
  }
  result.vms.push_back(info);
}

// Formatting: a JSON number with `spec`, "-" when it is missing or null.
std::string num(const json& counters, const char* key, const char* spec = "{:.1f}") {
  if (!counters.contains(key) || !counters[key].is_number()) return "-";
  return fmt::format(fmt::runtime(spec), counters[key].get<double>());
}

const Run* find_run(const std::vector<Run>& runs, const std::string& qemu, const std::string& implementation) {
  for (const Run& r : runs)
    if (r.counters.value("qemu", "") == qemu && r.implementation == implementation && !r.frames.empty()) return &r;
  return nullptr;
}

}  // namespace

std::vector<VmLeg> vm_legs(const VmBenchOptions& o) {
  std::vector<VmLeg> legs;
  for (const std::string& client : o.clients) {
    if (client == "chromium") {
      legs.push_back({"vdistream-webrtc", client});  // QEMU has no WebRTC
    } else {
      legs.push_back({"qemu-spice", client});
      legs.push_back({"vdistream-" + o.spice_mode, client});
    }
  }
  return legs;
}

double vm_bench_seconds(const VmBenchOptions& o) {
  return double(o.qemu.size() * vm_legs(o).size()) * (o.warmup + o.seconds);
}

VmBenchResult run_vm_bench(const VmBenchOptions& o, Progress& progress) {
  VmBenchResult result;
  double done = 0;
  for (const std::string& q : o.qemu) run_qemu(o, q, progress, done, result);
  return result;
}

void print_vm_table(const VmBenchOptions& o, const VmBenchResult& result) {
  fmt::print("vm: the test guest drawing {} at {}x{} bpp, {} fps (TCG); {:.1f} s per leg after {:.1f} s warm-up; vdistreamd's "
             "SPICE in {} mode; glass to glass = the guest's F line for frame N arrived → the client first showed barcode N\n",
             o.workload, o.size, o.bpp, o.fps, o.seconds, o.warmup, o.spice_mode);
  for (const json& vm : result.vms) {
    const std::string qemu = vm.value("qemu", "");
    fmt::print("\n{}", qemu);
    if (vm.contains("error")) {
      fmt::print(": not run: {}\n", vm["error"].get<std::string>());
      continue;
    }
    fmt::print(": boot {:.1f} s, vdistreamd's encoder {}\n", vm.value("boot_s", 0.0), vm.value("encoder", "?"));
    fmt::print("{:<28} {:>7} {:>7} {:>7} {:>7} {:>11} {:>9} {:>8} {:>6} {:>6} {:>6} {:>7} {:>7}\n", "leg/client", "p50 ms",
               "p95 ms", "p99 ms", "max ms", "shown/drawn", "wire kb/s", "enc kb/s", "vdsd%", "qemu%", "out/f", "capt ms", "key ms");
    for (const Run& r : result.runs) {
      if (r.counters.value("qemu", "") != qemu) continue;
      const json& c = r.counters;
      if (r.frames.empty()) {
        fmt::print("{:<28} error: {}\n", r.implementation, r.error.substr(0, r.error.find('\n')));
        continue;
      }
      const Percentiles t = percentiles(totals(r));
      const bool to_client = r.implementation.rfind("vdistream-", 0) == 0;
      const bool webrtc = r.implementation.rfind("vdistream-webrtc", 0) == 0;
      const std::string out_per_frame =
          !to_client ? "-" : num(c, webrtc ? "encoded_per_guest_frame" : "spice_frames_per_guest_frame", "{:.2f}");
      const std::string capture_ms = c.contains("capture") ? num(c["capture"], "cpu_ms_per_frame", "{:.2f}") : "-";
      fmt::print("{:<28} {:>7.1f} {:>7.1f} {:>7.1f} {:>7.1f} {:>5}/{:<5} {:>9} {:>8} {:>6} {:>6} {:>6} {:>7} {:>7}\n",
                 r.implementation, t.p50, t.p95, t.p99, t.max, r.frames.size(), c.value("guest_frames_drawn", uint64_t(0)),
                 num(c, "wire_kbps", "{:.0f}"), webrtc ? num(c, "encoded_kbps", "{:.0f}") : "-",
                 num(c, "vdistreamd_cpu_percent", "{:.0f}"), num(c, "qemu_cpu_percent", "{:.0f}"), out_per_frame, capture_ms,
                 num(c, "key_p50_ms", "{:.1f}"));
      if (!r.error.empty()) fmt::print("  error: {}\n", r.error.substr(0, r.error.find('\n')));
    }
    // vdistream against QEMU's own SPICE, client by client.
    bool header = false;
    for (const std::string& client : o.clients) {
      const Run* theirs = find_run(result.runs, qemu, "qemu-spice/" + client);
      const Run* ours = find_run(result.runs, qemu, "vdistream-" + o.spice_mode + "/" + client);
      if (!theirs || !ours) continue;
      if (!header) fmt::print("{:<28} {:>7} {:>7} {:>7} {:>7}\n", "vdistream / QEMU SPICE", "p50", "p99", "bytes", "key");
      header = true;
      const Percentiles a = percentiles(totals(*theirs)), b = percentiles(totals(*ours));
      auto x = [](double num_, double den) { return den > 0 ? fmt::format("{:.2f}x", num_ / den) : std::string("-"); };
      auto counter_ratio = [&](const char* key) {
        const json &ta = theirs->counters, &tb = ours->counters;
        if (!ta.contains(key) || !tb.contains(key) || !ta[key].is_number() || !tb[key].is_number()) return std::string("-");
        return x(tb[key].get<double>(), ta[key].get<double>());
      };
      fmt::print("{:<28} {:>7} {:>7} {:>7} {:>7}\n", client, x(b.p50, a.p50), x(b.p99, a.p99), counter_ratio("wire_bytes"),
                 counter_ratio("key_p50_ms"));
    }
    // How the VM's display reached vdistreamd, over its vdistream legs.
    for (const Run& r : result.runs) {
      if (r.counters.value("qemu", "") != qemu || r.implementation.rfind("vdistream-", 0) != 0 ||
          !r.counters.contains("capture") || r.frames.empty())
        continue;
      const json& cap = r.counters["capture"];
      fmt::print("capture (during {}): {}, {} frames per guest frame, {} display messages per frame, {} MB/s of pixels on the "
                 "socket, {} ms CPU per frame\n",
                 r.implementation, cap.value("path", "?"), num(cap, "frames_per_guest_frame", "{:.2f}"),
                 num(cap, "messages_per_frame", "{:.1f}"), num(cap, "pixel_mb_per_s", "{:.1f}"), num(cap, "cpu_ms_per_frame", "{:.2f}"));
      break;
    }
  }
  fmt::print("\n(shown/drawn: frames whose barcode the client showed / frames the guest finished in the window; wire kb/s: "
             "what spice-glib's display channel read; enc kb/s: what vdistreamd encoded for WebRTC; vdsd%, qemu%: CPU of "
             "vdistreamd and QEMU in % of one core; out/f: frames vdistreamd handed to SPICE (QXL) or encoded (WebRTC) per "
             "guest frame; capt ms: vdistreamd's capture CPU per captured frame; key ms: spice-glib key press → the guest's "
             "K line, p50)\n");
}

}  // namespace vdistream::bench
