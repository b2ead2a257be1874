// `vdistream-bench vm`: glass to glass on a real guest, beside QEMU's own SPICE. The project's
// test guest (guest_vm.hpp) runs under each QEMU asked for, with QEMU's SPICE server on a unix
// socket; the real vdistreamd (vdistreamd_child.hpp) serves the same guest over SPICE (QXL or
// stream mode) and WebRTC. One client at a time (vm_clients.hpp) watches one server for a leg:
// glass to glass = the guest's F line for frame N arrived → the client first showed barcode N,
// one monotonic clock. Per leg also: frames shown / drawn, bytes on the wire (spice-glib) or
// encoded (WebRTC), vdistreamd's and QEMU's CPU, what vdistreamd's API counted (capture, frames
// to SPICE, frames encoded) per guest frame, and, for spice-glib, a key press → the guest's K line.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "benchmarks/progress.hpp"
#include "benchmarks/report.hpp"

namespace vdistream::bench {

struct VmBenchOptions {
  std::vector<std::string> qemu{"7.2", "10"};
  std::vector<std::string> clients{"glib", "remote-viewer", "chromium"};
  std::string size = "1920x1080";
  int bpp = 24;
  std::string workload = "window-drag";
  double fps = 30;
  double seconds = 10;
  double warmup = 2;
  std::string spice_mode = "qxl";  // vdistreamd's SPICE mode
  std::string vdistreamd;          // its path; empty: VdistreamdChild::default_binary()
  int keys = 5;                    // key presses per spice-glib leg
  int rounds = 1;                  // every leg this many times, one round after the other; pooled in the table
  double connect_timeout = 30;     // s for a client to show the guest
  double boot_timeout = 120;       // s for the guest to report READY
  std::string screenshot_dir;      // a failing remote-viewer leg's screen goes here (PPM); empty: nowhere
};

// The legs of one client: (leg name, server) in the order they run.
struct VmLeg {
  std::string leg;     // "qemu-spice", "vdistream-qxl", "vdistream-webrtc"
  std::string client;  // "glib", "remote-viewer", "chromium"
  std::string implementation() const { return leg + "/" + client; }
};
std::vector<VmLeg> vm_legs(const VmBenchOptions& o);

struct VmBenchResult {
  std::vector<Run> runs;                        // one per leg, round and QEMU (an error run for what did not run)
  nlohmann::json vms = nlohmann::json::array();  // per QEMU: boot time, vdistreamd's encoder and capture path, ...
};

double vm_bench_seconds(const VmBenchOptions& o);
VmBenchResult run_vm_bench(const VmBenchOptions& o, Progress& progress);
// A table per QEMU, each leg's rounds pooled, with vdistream / QEMU SPICE ratios per client (vm_table.cpp).
void print_vm_table(const VmBenchOptions& o, const VmBenchResult& result);

}  // namespace vdistream::bench
