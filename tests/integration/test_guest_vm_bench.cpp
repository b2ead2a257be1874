// Benchmark (hidden: run with `vdistream_integration_tests "benchmark: the test guest*"`): the test guest under
// QEMU 7.2 and QEMU 10, how long it boots and how long a frame takes from "the guest finished it"
// (its F line on the serial port) to a QemuSource frame showing its barcode. Reports; asserts
// only that it ran. VDISTREAM_GUEST_BENCH="WORKLOAD WIDTHxHEIGHT SECONDS" changes the defaults
// (window-drag 1280x720 10).
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "benchmarks/guest_vm.hpp"
#include "capture/qemu/qemu_source.hpp"
#include "capture/synthetic/barcode.hpp"
#include "core/clock.hpp"
#include "core/mapped_buffer.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

struct Row {
  std::string label;
  double boot_s = 0;
  size_t drawn = 0, seen = 0;
  uint64_t skipped = 0;
  std::vector<double> latency_ms;
  std::string kind;
  double socket_mb_s = 0;
};

Row measure(bench::GuestVmOptions options, int seconds) {
  Row row;
  row.label = fmt::format("{:<9} {}x{}x{}", bench::qemu_name(options.qemu), options.width, options.height, options.bpp);
  const int64_t t0 = core::monotonic_now_ns();
  auto vm = bench::GuestVm::start(options);
  if (!vm) FAIL(vm.error());
  auto ready = (*vm)->wait_ready(0, 120s);
  if (!ready) FAIL(ready.error());
  row.boot_s = double(ready->arrival_ns - t0) / 1e9;

  capture::qemu::QemuSourceConfig config;
  config.target = (*vm)->display_target();
  auto source = capture::qemu::QemuSource::create(config);
  REQUIRE(source.ok());
  std::mutex mutex;
  std::map<uint32_t, int64_t> first_seen;  // barcode -> when a source frame first showed it
  capture::SourceCallbacks callbacks;
  callbacks.on_frame = [&](core::Frame frame) {
    const int64_t now = core::monotonic_now_ns();
    auto map = core::MappedBuffer::map(*frame.buffer);
    if (!map.ok()) return;
    auto value = capture::Barcode::read_xrgb((*map)->data(), (*map)->pitch(), frame.width(), frame.height());
    std::lock_guard lock(mutex);
    if (value) first_seen.emplace(*value, now);
  };
  REQUIRE((*source)->start(callbacks).ok());
  std::this_thread::sleep_for(2s);  // registration and the first full frame
  const int64_t from = core::monotonic_now_ns();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const int64_t to = core::monotonic_now_ns();
  (*source)->stop();

  const auto stats = (*source)->listener_stats();
  row.kind = stats.scanout_kind;
  row.socket_mb_s = double(stats.pixel_bytes_received) / 1e6 / (double(seconds) + 2);
  std::optional<uint64_t> skipped_before;
  std::lock_guard lock(mutex);
  for (const auto& f : (*vm)->frames()) {
    if (f.head != 0 || f.arrival_ns < from || f.arrival_ns > to) continue;
    if (!skipped_before) skipped_before = f.skipped;
    row.skipped = f.skipped - *skipped_before;
    ++row.drawn;
    auto it = first_seen.find(uint32_t(f.value & 0xffffff));
    if (it == first_seen.end()) continue;
    ++row.seen;
    row.latency_ms.push_back(double(it->second - f.arrival_ns) / 1e6);
  }
  return row;
}

}  // namespace

TEST_CASE("benchmark: the test guest's finished frames to a QemuSource under QEMU 7.2 and QEMU 10", "[.][benchmark]") {
  std::string workload = "window-drag";
  int32_t width = 1280, height = 720;
  int seconds = 10;
  if (const char* env = std::getenv("VDISTREAM_GUEST_BENCH")) {
    std::istringstream in(env);
    char x = 0;
    in >> workload >> width >> x >> height >> seconds;
  }
  std::vector<Row> rows;
  for (auto qemu : {bench::Qemu::Host72, bench::Qemu::V10}) {
    if (auto ok = bench::GuestVm::available(qemu); !ok) FAIL(ok.error());
    for (int bpp : {32, 24}) {
      bench::GuestVmOptions options;
      options.qemu = qemu;
      options.width = width;
      options.height = height;
      options.bpp = bpp;
      options.workload = workload;
      rows.push_back(measure(options, seconds));
    }
  }
  fmt::print("\nguest: {} at 30 fps, {} s per run; latency = guest's F line arrived -> a QemuSource frame first showed "
             "its barcode (one clock)\n",
             workload, seconds);
  fmt::print("{:<24} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>9}  {}\n", "qemu / mode", "boot s", "drawn", "skipped",
             "p50 ms", "p95 ms", "max ms", "seen", "pixels (socket MB/s)");
  for (const Row& r : rows)
    fmt::print("{:<24} {:>7.2f} {:>7} {:>8} {:>7.1f} {:>7.1f} {:>7.1f} {:>4}/{:<4}  {} ({:.1f})\n", r.label, r.boot_s, r.drawn,
               r.skipped, percentile(r.latency_ms, 0.5), percentile(r.latency_ms, 0.95), percentile(r.latency_ms, 1.0),
               r.seen, r.drawn, r.kind, r.socket_mb_s);
  for (const Row& r : rows) CHECK(r.drawn > 0);
}
