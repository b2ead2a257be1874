#include "benchmarks/vm_bench.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <memory>

#include "benchmarks/clients/chromium.hpp"
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
  if (client == "chromium" && !Chromium::available())
    return fmt::format("{} is not installed (apt-get install chromium)", Chromium::kPath);
  if (client == "remote-viewer") {
    if (find_program("remote-viewer").empty()) return "remote-viewer is not installed (apt-get install virt-viewer)";
    if (find_program("Xvfb").empty()) return "Xvfb is not installed (apt-get install xvfb): remote-viewer runs in an X server of its own";
  }
  return {};
}

std::unique_ptr<VmClient> make_client(const VmBenchOptions& o, const std::string& qemu, const VmLeg& leg, GuestVm& vm,
                                      VdistreamdChild& service) {
  const bool qemu_spice = leg.leg == "qemu-spice";
  // QEMU's SPICE runs without a ticket (GuestVm: disable-ticketing=on); vdistreamd's with one.
  const std::string socket = qemu_spice ? vm.spice_socket() : service.spice_socket();
  const std::string password = qemu_spice ? std::string() : service.spice_ticket();
  if (leg.client == "glib") return make_glib_client(socket, password);
  if (leg.client == "remote-viewer") {
    RemoteViewer::Options xo;
    xo.unix_path = socket;
    xo.password = password;
    xo.desktop_width = vm.options().width;
    xo.desktop_height = vm.options().height;
    const std::string screenshot =
        o.screenshot_dir.empty() ? std::string() : fmt::format("{}/vm-{}-{}-remote-viewer.ppm", o.screenshot_dir, qemu, leg.leg);
    return make_remote_viewer_client(xo, screenshot);
  }
  return make_chromium_client(service.page_url(), service.api(), VdistreamdChild::kDesktop);
}

// Every leg of one QEMU: boot the guest, start vdistreamd on it, run the legs one client at a time.
void run_qemu(const VmBenchOptions& o, const std::string& qemu_version, Progress& progress, double& seconds_done,
              VmBenchResult& result) {
  // Every leg once per round, the rounds one after the other (qemu-spice, vdistream, qemu-spice, ...
  // for a client): a phase of the guest's frames against QEMU's refresh that lasts a few seconds,
  // or a burst of load from elsewhere, then reaches both servers' legs alike.
  struct Scheduled {
    int round;
    VmLeg leg;
  };
  std::vector<Scheduled> schedule;
  for (int round = 0; round < o.rounds; ++round)
    for (const VmLeg& leg : vm_legs(o)) schedule.push_back({round, leg});
  auto failed = [&](const Scheduled& s, const std::string& name, const std::string& why) {
    Run run = failed_vm_leg(o, name, s.leg, why);
    run.counters["round"] = s.round;
    return run;
  };
  const auto qemu = parse_qemu(qemu_version);
  const std::string name = qemu ? qemu_name(*qemu) : "qemu-" + qemu_version;
  json info = {{"qemu", name}};
  auto fail_all = [&](const std::string& why) {
    fmt::print(stderr, "vm: {} skipped: {}\n", name, why);
    for (const Scheduled& s : schedule) result.runs.push_back(failed(s, name, why));
    seconds_done += double(schedule.size()) * (o.warmup + o.seconds);
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
  for (size_t i = 0; i < schedule.size(); ++i) {
    const VmLeg& leg = schedule[i].leg;
    if (const std::string why = client_missing(leg.client); !why.empty()) {
      if (schedule[i].round == 0) fmt::print(stderr, "vm: {} {} skipped: {}\n", name, leg.implementation(), why);
      result.runs.push_back(failed(schedule[i], name, why));
      seconds_done += o.warmup + o.seconds;
      continue;
    }
    if (!(*vm)->qemu_running() || !(*service)->running()) {
      const std::string why = !(*vm)->qemu_running() ? name + " is no longer running" : "vdistreamd is no longer running";
      for (size_t k = i; k < schedule.size(); ++k) result.runs.push_back(failed(schedule[k], name, why));
      seconds_done += double(schedule.size() - i) * (o.warmup + o.seconds);
      break;
    }
    Run run = run_vm_leg(o, rig, leg, make_client(o, name, leg, **vm, **service), progress, seconds_done);
    run.counters["round"] = schedule[i].round;
    result.runs.push_back(std::move(run));
  }
  if (auto status = (*service)->desktop_status()) {
    const json& s = *status;
    info["encoder"] = s.contains("encoder") ? s["encoder"].value("backend", "") : "";
    if (s.contains("capture") && s["capture"].is_object()) info["capture"] = s["capture"];
  }
  result.vms.push_back(info);
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
  return double(o.qemu.size() * vm_legs(o).size() * size_t(o.rounds)) * (o.warmup + o.seconds);
}

VmBenchResult run_vm_bench(const VmBenchOptions& o, Progress& progress) {
  VmBenchResult result;
  double done = 0;
  for (const std::string& q : o.qemu) run_qemu(o, q, progress, done, result);
  return result;
}

}  // namespace vdistream::bench
