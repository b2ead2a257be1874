// One leg of `vdistream-bench vm`: one client watching one server (QEMU's SPICE, vdistreamd's
// SPICE or its WebRTC page) while the test guest draws, turned into a Run: one FrameSample per
// guest frame the client showed (t_s = when the guest finished it, one stage "shown"), and the
// leg's counters (shown/drawn, bytes, CPU, vdistreamd's API deltas, key latency).
#pragma once

#include <memory>
#include <string>

#include "benchmarks/guest_vm.hpp"
#include "benchmarks/progress.hpp"
#include "benchmarks/report.hpp"
#include "benchmarks/vdistreamd_child.hpp"
#include "benchmarks/vm_bench.hpp"
#include "benchmarks/vm_clients.hpp"

namespace vdistream::bench {

struct VmRig {
  GuestVm& vm;
  VdistreamdChild& service;  // runs through every leg of its QEMU (it captures during QEMU's legs too)
  std::string qemu;          // "qemu-7.2", "qemu-10"
};

// Runs the leg with `client` (destroyed before it returns) and measures it.
Run run_vm_leg(const VmBenchOptions& o, VmRig& rig, const VmLeg& leg, std::unique_ptr<VmClient> client, Progress& progress,
               double& seconds_done);

// A Run for a leg that could not run, with why.
Run failed_vm_leg(const VmBenchOptions& o, const std::string& qemu, const VmLeg& leg, const std::string& why);

}  // namespace vdistream::bench
