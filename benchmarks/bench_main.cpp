// vdistream-bench: the latency benchmark tool. Prints a table, writes JSON, CSV and PNG plots;
// asserts nothing.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "benchmarks/clients/chromium.hpp"
#include "benchmarks/encode_bench.hpp"
#include "benchmarks/pipeline_bench.hpp"
#include "benchmarks/plots.hpp"
#include "benchmarks/report.hpp"
#include "benchmarks/process_cpu.hpp"
#include "benchmarks/soak_bench.hpp"
#include "benchmarks/spice_bench.hpp"
#include "benchmarks/audio_bench.hpp"
#include "benchmarks/vm_bench.hpp"
#include "benchmarks/webrtc_bench.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "core/log.hpp"

using namespace vdistream;

namespace {

struct CommonOptions {
  std::string out = "bench-out";
  bool plots = true;
};

void add_common(CLI::App* sub, CommonOptions& c) {
  sub->add_option("--out", c.out, "Directory for NAME.json (summaries, baseline ratios, every frame), NAME.csv (one row per "
                                  "frame) and the plots NAME-cdf.png, NAME-timeline.png, NAME-bitrate.png")
      ->capture_default_str();
  sub->add_flag("!--no-plots", c.plots, "Do not run gnuplot (JSON and CSV only)");
}

std::string timestamp() {
  char buf[32];
  std::time_t now = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

// Writes the files and draws the plots; prints where they went. 0 on success.
int finish(const CommonOptions& c, const std::string& name, const std::string& title, nlohmann::json header,
           const std::vector<bench::Run>& runs, const nlohmann::json& extra) {
  bench::Written written;
  if (auto err = bench::write_report(c.out, name, header, runs, extra, written)) {
    fmt::print(stderr, "{}\n", *err);
    return 1;
  }
  fmt::print("\nJSON: {}\nCSV:  {}\n", written.json, written.csv);
  if (c.plots) {
    bench::PlotFiles plots;
    if (auto err = bench::draw_plots(c.out, name, title, runs, plots)) {
      fmt::print(stderr, "plots: {}\n", *err);
      return 1;
    }
    for (const auto& png : plots.pngs) fmt::print("plot: {}\n", png);
  }
  for (const auto& r : runs)
    if (!r.error.empty()) return 2;  // figures written, but something did not run
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "vdistream-bench — measures every stage of vdistream's path on synthetic desktops whose frames carry a frame-number "
      "barcode, read back after decoding, so every latency is on one clock for the same frame. Writes a table to stdout, "
      "a progress bar to stderr (on a terminal), and JSON, CSV and PNG plots (gnuplot) to --out.\n"
      "Exit status: 0 all ran, 1 cannot write the results (or, for webrtc, Chromium is not installed), 2 some configuration failed "
      "or could not run (see its error in the JSON; vm: a QEMU, the test guest, a client missing).\n"};
  app.require_subcommand(1);
  CommonOptions common;

  bench::EncodeBenchOptions eo;
  auto* enc = app.add_subcommand(
      "encode",
      "The same frames through vdistream's encoder (damaged tiles converted, unchanged macroblocks skipped) and two baselines "
      "doing the same job the usual way: GStreamer (appsrc ! videoconvert ! x264enc tune=zerolatency ! appsink) and FFmpeg "
      "(libswscale + libx264 via libavcodec), same bitrate, preset and threads. One frame at a time, as fast as each goes: "
      "conversion and encode time per frame, p50/p95/p99/max, throughput fps, bitrate, luma PSNR; every output decoded "
      "and its barcode checked. Ratios baseline/vdistream per stage.");
  enc->add_option("--backend", eo.backend, "vdistream encoder backend (software, vaapi, onevpl, nvenc) or 'all' that pass the probe")
      ->capture_default_str();
  enc->add_option("--baselines", eo.baselines, "Baselines to run beside vdistream: gstreamer, ffmpeg, or none")
      ->delimiter(',')
      ->capture_default_str();
  enc->add_option("--workloads", eo.workloads, fmt::format("Workloads ({})", capture::workload_list()))
      ->delimiter(',')
      ->capture_default_str();
  enc->add_option("--sizes", eo.sizes, "Desktop sizes WIDTHxHEIGHT (at least 576 wide, for the barcode)")->delimiter(',')->capture_default_str();
  enc->add_option("--fps", eo.fps, "Source frame rate: what the workloads' motion and the bitrate figures are per second of")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 240.0));
  enc->add_option("--frames", eo.frames, "Measured frames per workload × size")->capture_default_str()->check(CLI::Range(1, 100000));
  enc->add_option("--warmup", eo.warmup, "Frames encoded first and left out of the figures (encoder start, first IDR)")
      ->capture_default_str();
  enc->add_option("--bitrate", eo.bitrate_kbps, "Bitrate in kbit/s, for every encoder (one-frame VBV)")->capture_default_str();
  enc->add_option("--preset", eo.preset, "x264 preset, for every encoder")->capture_default_str();
  enc->add_option("--threads", eo.threads, "x264 threads (sliced), for every encoder")->capture_default_str();
  enc->add_option("--psnr-every", eo.psnr_every, "Luma PSNR against the source on every Nth frame (0: never)")->capture_default_str();
  add_common(enc, common);

  bench::PipelineBenchOptions po;
  auto* pipeline = app.add_subcommand(
      "pipeline",
      "Synthetic desktop → latest-wins slot → encode thread → sink, paced like a real source: host processing latency per "
      "stage (captured → dequeued → converted → encoded) for every access unit, fps, bitrate, drops (frames replaced in "
      "the slot), skips (nothing changed), full-frame copies, CPU; every access unit decoded afterwards and its barcode checked.");
  pipeline->add_option("--workloads", po.workloads, fmt::format("Workloads ({})", capture::workload_list()))
      ->delimiter(',')
      ->capture_default_str();
  pipeline->add_option("--sizes", po.sizes, "Desktop sizes WIDTHxHEIGHT")->delimiter(',')->capture_default_str();
  pipeline->add_option("--fps", po.fps, "Frames per second the source produces")->capture_default_str()->check(CLI::Range(1.0, 240.0));
  pipeline->add_option("--seconds", po.seconds, "Measured seconds per run, after the warm-up")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  pipeline->add_option("--warmup", po.warmup, "Seconds at the start of each run (encoder start, first IDR) left out of the figures")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  pipeline->add_option("--bitrate", po.bitrate_kbps, "Encoder bitrate in kbit/s")->capture_default_str();
  pipeline->add_option("--preset", po.preset, "x264 preset")->capture_default_str();
  pipeline->add_option("--threads", po.threads, "x264 slice threads")->capture_default_str();
  add_common(pipeline, common);

  bench::SpiceBenchOptions so;
  auto* spice = app.add_subcommand(
      "spice",
      "Glass to glass through SPICE: the synthetic desktop → an embedded spice-server (vdistream's SpiceDesktop, over a unix "
      "socket) → a client: spice-glib in this process (libspice-client-glib), whose decoded surface is read for the barcode "
      "after every update, and/or remote-viewer (virt-viewer) in an Xvfb of its own, whose window is read from the screen "
      "with MIT-SHM about every millisecond. Per frame: drawn → shown in the client (QXL), drawn → encoded → shown (stream). "
      "QXL mode (spice-server compresses the damaged rectangles) and/or stream mode (vdistream's H.264 through "
      "spice-server's stream device).");
  spice->add_option("--clients", so.clients,
                    "SPICE clients: glib (in this process), remote-viewer (needs Xvfb and virt-viewer; each run also starts "
                    "them, a few seconds more), remote-viewer-mjpeg (remote-viewer without GStreamer plugins, so without an "
                    "H.264 decoder: stream mode sends it MJPEG)")
      ->delimiter(',')
      ->check(CLI::IsMember({"glib", "remote-viewer", "remote-viewer-mjpeg"}))
      ->capture_default_str();
  spice->add_option("--modes", so.modes, "SPICE modes: qxl, stream")->delimiter(',')->capture_default_str();
  spice->add_option("--workloads", so.workloads, fmt::format("Workloads ({})", capture::workload_list()))
      ->delimiter(',')
      ->capture_default_str();
  spice->add_option("--sizes", so.sizes, "Desktop sizes WIDTHxHEIGHT (at least 576 wide)")->delimiter(',')->capture_default_str();
  spice->add_option("--fps", so.fps, "Frames per second the source produces")->capture_default_str()->check(CLI::Range(1.0, 120.0));
  spice->add_option("--seconds", so.seconds, "Measured seconds per run, after the warm-up")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  spice->add_option("--warmup", so.warmup, "Seconds at the start of each run (client start, first IDR; stream mode also spice-glib settling its clock) left out of the figures")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  spice->add_option("--bitrate", so.bitrate_kbps, "Encoder bitrate in kbit/s (stream mode)")->capture_default_str();
  spice->add_flag("--trailing-delimiter", so.trailing_delimiter,
                  "Stream mode: end each DATA message with the next access unit's delimiter, as vdistream did before "
                  "(to measure it; runs are labelled spice-stream-delimiter): the client's parser then knows the access "
                  "unit is complete at once, but remote-viewer drops most frames");
  add_common(spice, common);

  bench::WebRtcBenchOptions wo;
  auto* webrtc = app.add_subcommand(
      "webrtc",
      "Glass to glass through WebRTC: the synthetic desktop → vdistream's encode pipeline → its WebRTC desktop (webrtcbin, "
      "the service's HTTP server and signalling on 127.0.0.1) → Debian's headless Chromium (/usr/bin/chromium, a throw-away "
      "profile, killed afterwards), whose page reads the barcode from a canvas on every requestVideoFrameCallback and "
      "reports receiveTime and presentationTime on the machine's wall clock. Per frame: drawn → encoded (host) → received "
      "→ presented in the browser (glass to glass); frames shown vs drawn. Measuring starts once the page shows its first "
      "frame, after --warmup.");
  webrtc->add_option("--workloads", wo.workloads, fmt::format("Workloads ({})", capture::workload_list()))
      ->delimiter(',')
      ->capture_default_str();
  webrtc->add_option("--sizes", wo.sizes, "Desktop sizes WIDTHxHEIGHT (at least 576 wide, for the barcode)")
      ->delimiter(',')
      ->capture_default_str();
  webrtc->add_option("--fps", wo.fps, "Frames per second the source produces")->capture_default_str()->check(CLI::Range(1.0, 120.0));
  webrtc->add_option("--seconds", wo.seconds, "Measured seconds per run, after the warm-up")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  webrtc->add_option("--warmup", wo.warmup, "Seconds after the page showed its first frame (first IDR, decoder and playout settling) left out of the figures")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  webrtc->add_option("--bitrate", wo.bitrate_kbps, "Encoder bitrate in kbit/s (the rate controller's start and ceiling)")->capture_default_str();
  webrtc->add_option("--connect-timeout", wo.connect_timeout, "Seconds Chromium may take to start, connect and show a first frame")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 600.0));
  add_common(webrtc, common);

  bench::VmBenchOptions vo;
  bench::AudioBenchOptions ao;
  CommonOptions audio_common;
  auto* audio = app.add_subcommand(
      "audio",
      "How long a VM's sound takes to be heard: the project's test guest plays a 1000 Hz tone on the PC speaker "
      "(QEMU's -audiodev dbus) again and again and reports when each starts; this build's vdistreamd serves it (as for "
      "vm); a spice-glib client's playback channel and headless Chromium's page (its Web Audio analyser, read from "
      "vdistreamd's API) listen. Per client: the guest started the tone → first heard (p50/p95/max, ms), tones missed.");
  audio->add_option("--qemu", ao.qemu, "7.2 (the host's /usr/bin) or 10 (unpacked by scripts/install-test-vm.sh)")
      ->capture_default_str();
  audio->add_option("--tones", ao.tones, "Tones to measure")->capture_default_str()->check(CLI::Range(1, 1000));
  audio->add_option("--tone-ms", ao.tone_ms, "Each tone's length, and the silence after it")
      ->capture_default_str()->check(CLI::Range(100, 5000));
  audio->add_option("--out", audio_common.out, "Directory for audio.json")->capture_default_str();

  auto* vm = app.add_subcommand(
      "vm",
      "Glass to glass on a real guest, beside QEMU's own SPICE: the project's test guest (tests/guest, docs/test-guest.md) "
      "draws a workload with a frame-number barcode under each QEMU asked for (TCG), and reports each finished frame on a "
      "serial port, stamped on arrival. QEMU's own SPICE server serves it on a unix socket; at the same time this build's "
      "vdistreamd (a child process with a generated configuration: one desktop 'vm' on the VM's D-Bus display, SPICE on a "
      "unix socket with a ticket, WebRTC, the HTTP API on 127.0.0.1) serves it too. One client at a time watches one "
      "server for a leg: spice-glib in this process and remote-viewer in an Xvfb of its own, each on QEMU's SPICE "
      "(leg qemu-spice) and on vdistreamd's (vdistream-qxl), and headless Chromium on vdistreamd's WebRTC page "
      "(vdistream-webrtc; its reports read from vdistreamd's API). Per leg: the guest finished frame N → the client "
      "first showed barcode N (p50/p95/p99), frames shown / drawn, bytes on the wire (spice-glib) or encoded (WebRTC), "
      "vdistreamd's and QEMU's CPU, vdistreamd's capture (path, messages and CPU per frame) and frames to SPICE or "
      "encoded per guest frame from its API, and for spice-glib a key press → the guest read it. A table per QEMU "
      "with vdistream / QEMU SPICE ratios per client.");
  vm->add_option("--qemu", vo.qemu, "QEMU versions: 7.2 (the host's /usr/bin), 10 (unpacked by scripts/install-test-vm.sh); a "
                                    "missing one is skipped with the reason")
      ->delimiter(',')
      ->check(CLI::IsMember({"7.2", "10"}))
      ->capture_default_str();
  vm->add_option("--clients", vo.clients,
                 "Clients: glib (spice-glib in this process), remote-viewer (virt-viewer in its own Xvfb), chromium "
                 "(headless /usr/bin/chromium, WebRTC only); a missing one is skipped with the reason")
      ->delimiter(',')
      ->check(CLI::IsMember({"glib", "remote-viewer", "chromium"}))
      ->capture_default_str();
  vm->add_option("--size", vo.size, "The guest's screen (modes its VGA BIOS offers)")
      ->check(CLI::IsMember({"1280x720", "1920x1080"}))
      ->capture_default_str();
  vm->add_option("--bpp", vo.bpp, "The guest's colour depth: 24 (QEMU 10 shares its converted surface as memory, QEMU 7.2 "
                                  "sends pixels by value: both capture paths are measured) or 32 (pixels by value in both)")
      ->check(CLI::IsMember({24, 32}))
      ->capture_default_str();
  vm->add_option("--workload", vo.workload, fmt::format("What the guest draws ({})", capture::workload_list()))->capture_default_str();
  vm->add_option("--fps", vo.fps, "Frames per second the guest draws")->capture_default_str()->check(CLI::Range(1.0, 60.0));
  vm->add_option("--seconds", vo.seconds, "Measured seconds per leg, after the warm-up")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 3600.0));
  vm->add_option("--warmup", vo.warmup, "Seconds after a client showed the guest (first full picture, decoder start) left out")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  vm->add_option("--spice-mode", vo.spice_mode, "vdistreamd's SPICE mode: qxl (spice-server compresses the damaged rectangles, "
                                                "as QEMU's SPICE does) or stream (vdistream's H.264 through the stream device)")
      ->check(CLI::IsMember({"qxl", "stream"}))
      ->capture_default_str();
  vm->add_option("--vdistreamd", vo.vdistreamd, "The vdistreamd to run (default: this build's, else one next to vdistream-bench, "
                                                "else one on $PATH)")
      ->type_name("PATH");
  vm->add_option("--keys", vo.keys, "Key presses (A) per spice-glib leg, 300 ms apart, each timed to the guest's K line")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  vm->add_option("--rounds", vo.rounds,
                 "Run every leg this many times, round after round (qemu-spice, vdistream, qemu-spice, ... per client), "
                 "each a Run in the JSON, pooled in the table: the phase of the guest's frames against QEMU's ~30 ms "
                 "refresh drifts over seconds and moves a single leg's p50 by up to a refresh")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  vm->add_option("--connect-timeout", vo.connect_timeout, "Seconds a client may take to connect and show the guest")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 600.0));
  vm->add_option("--boot-timeout", vo.boot_timeout, "Seconds the guest may take to boot (TCG)")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 1200.0));
  add_common(vm, common);

  bench::SoakOptions sk;
  bool soak_plots = true;
  auto* soak = app.add_subcommand(
      "soak",
      "Does a long-running vdistreamd leak? This build's vdistreamd serves synthetic desktops and one real QEMU running "
      "the test guest (sound on). In cycles a spice-glib client joins every desktop and a headless Chromium page one of "
      "them (the next each cycle), and they leave at 3/4 of the cycle; every few minutes QEMU is killed and started again "
      "and the configuration is reloaded (SIGHUP) with an extra desktop added or removed. vdistreamd's RSS, open fds and "
      "threads are sampled, and at each cycle's end with no viewer (quiet samples: compared over time, after the warm-up, "
      "with the base desktops). Also: frames the service reports lost, viewers that showed nothing, VM restarts not "
      "recovered, reloads refused, and sanitizer reports in vdistreamd's log (give an ASan build with --vdistreamd). "
      "Writes soak.json and soak.png to --out. Not a test: it prints figures and asserts nothing.");
  soak->add_option("--minutes", sk.minutes, "How long")->capture_default_str()->check(CLI::Range(1.0, 24 * 60.0));
  soak->add_option("--synthetic", sk.synthetic, "Synthetic desktops (typing, 1280x720, 30 fps)")
      ->capture_default_str()->check(CLI::Range(0, 16));
  soak->add_option("--qemu", sk.qemu, "The VM desktop's QEMU: 7.2 (the host's), 10 (scripts/install-test-vm.sh) or none")
      ->check(CLI::IsMember({"7.2", "10", "none"}))->capture_default_str();
  soak->add_option("--cycle", sk.cycle_seconds, "Seconds per viewer cycle")->capture_default_str()->check(CLI::Range(20.0, 3600.0));
  soak->add_option("--vm-restart", sk.vm_restart_minutes, "Minutes between VM kills")->capture_default_str()->check(CLI::Range(0.25, 1440.0));
  soak->add_option("--reload", sk.reload_minutes, "Minutes between SIGHUP reloads")->capture_default_str()->check(CLI::Range(0.25, 1440.0));
  soak->add_option("--sample", sk.sample_seconds, "Seconds between samples")->capture_default_str()->check(CLI::Range(1.0, 600.0));
  soak->add_option("--warmup", sk.warmup_minutes, "Minutes whose quiet samples are not judged")->capture_default_str()->check(CLI::Range(0.0, 1440.0));
  soak->add_flag("!--no-chromium", sk.chromium, "No Chromium page (SPICE viewers only)");
  soak->add_option("--vdistreamd", sk.vdistreamd, "The vdistreamd to run (default: this build's; an ASan build's to look for "
                                                  "sanitizer reports)")->type_name("PATH");
  soak->add_option("--out", sk.out, "Directory for soak.json, soak.png and the plot's data and script")->capture_default_str();
  soak->add_flag("!--no-plots", soak_plots, "Do not run gnuplot");

  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  CLI11_PARSE(app, argc, argv);
  core::set_log_level(core::LogLevel::Warn);

  nlohmann::json header{{"tool", "vdistream-bench"}, {"started", timestamp()}, {"machine", bench::machine_json()}};
  if (*enc) {
    bench::Progress progress(bench::encode_bench_units(eo));
    auto result = bench::run_encode_bench(eo, progress);
    progress.clear();
    bench::print_encode_table(eo, result);
    header["subcommand"] = "encode";
    header["options"] = {{"backend", eo.backend}, {"baselines", eo.baselines}, {"fps", eo.fps}, {"frames", eo.frames},
                         {"warmup_frames", eo.warmup}, {"bitrate_kbps", eo.bitrate_kbps}, {"preset", eo.preset},
                         {"threads", eo.threads}, {"psnr_every", eo.psnr_every}};
    return finish(common, "encode", "vdistream-bench encode", header, result.runs,
                  {{"ratios", result.ratios}, {"contenders", result.contenders}, {"probe", result.probe}});
  }
  if (*pipeline) {
    bench::Progress progress(uint64_t(bench::pipeline_bench_seconds(po) * 1000));
    auto runs = bench::run_pipeline_bench(po, progress);
    progress.clear();
    bench::print_pipeline_table(po, runs);
    header["subcommand"] = "pipeline";
    header["options"] = {{"fps", po.fps}, {"seconds", po.seconds}, {"warmup_seconds", po.warmup},
                         {"bitrate_kbps", po.bitrate_kbps}, {"preset", po.preset}, {"threads", po.threads}};
    return finish(common, "pipeline", "vdistream-bench pipeline", header, runs, nlohmann::json::object());
  }
  if (*spice) {
    bench::Progress progress(uint64_t(bench::spice_bench_seconds(so) * 1000));
    auto runs = bench::run_spice_bench(so, progress);
    progress.clear();
    bench::print_spice_table(so, runs);
    header["subcommand"] = "spice";
    header["options"] = {{"clients", so.clients},           {"modes", so.modes},
                         {"fps", so.fps},                   {"seconds", so.seconds},
                         {"warmup_seconds", so.warmup},     {"bitrate_kbps", so.bitrate_kbps},
                         {"trailing_delimiter", so.trailing_delimiter}};
    return finish(common, "spice", "vdistream-bench spice", header, runs, nlohmann::json::object());
  }
  if (*webrtc) {
    if (!bench::Chromium::available()) {
      fmt::print(stderr, "vdistream-bench webrtc: {} is not installed (or not executable); it measures with Debian's Chromium: "
                         "apt-get install chromium\n", bench::Chromium::kPath);
      return 1;
    }
    bench::Progress progress(uint64_t(bench::webrtc_bench_seconds(wo) * 1000));
    auto runs = bench::run_webrtc_bench(wo, progress);
    progress.clear();
    bench::print_webrtc_table(wo, runs);
    header["subcommand"] = "webrtc";
    header["options"] = {{"fps", wo.fps}, {"seconds", wo.seconds}, {"warmup_seconds", wo.warmup},
                         {"bitrate_kbps", wo.bitrate_kbps}, {"connect_timeout_s", wo.connect_timeout}};
    return finish(common, "webrtc", "vdistream-bench webrtc", header, runs, nlohmann::json::object());
  }
  if (*audio) {
    if (!bench::Chromium::available()) {
      fmt::print(stderr, "vdistream-bench audio: {} is not installed: apt-get install chromium\n", bench::Chromium::kPath);
      return 1;
    }
    auto result = bench::run_audio_bench(ao);
    bench::print_audio_table(result);
    result["command"] = command;
    result["load_average_end"] = bench::load_average();
    std::error_code ec;
    std::filesystem::create_directories(audio_common.out, ec);
    const std::string path = audio_common.out + "/audio.json";
    std::ofstream(path) << result.dump(2) << "\n";
    fmt::print("\nJSON: {}\n", path);
    return result.contains("error") ? 2 : 0;
  }
  if (*soak) {
    auto result = bench::run_soak(sk, soak_plots);
    bench::print_soak_summary(result);
    fmt::print("\nJSON: {}/soak.json\n", sk.out);
    if (soak_plots && !result.contains("plot_error") && !result.contains("error")) fmt::print("plot: {}/soak.png\n", sk.out);
    if (result.contains("plot_error")) fmt::print(stderr, "plot: {}\n", result["plot_error"].get<std::string>());
    return result.contains("error") ? 2 : 0;
  }
  if (*vm) {
    if (!capture::parse_workload(vo.workload)) {
      fmt::print(stderr, "vdistream-bench vm: unknown workload '{}' (known: {})\n", vo.workload, capture::workload_list());
      return 1;
    }
    vo.screenshot_dir = common.out;
    if (std::error_code ec; !std::filesystem::create_directories(vo.screenshot_dir, ec) && ec) vo.screenshot_dir.clear();
    bench::Progress progress(uint64_t(bench::vm_bench_seconds(vo) * 1000));
    auto result = bench::run_vm_bench(vo, progress);
    progress.clear();
    bench::print_vm_table(vo, result);
    header["subcommand"] = "vm";
    header["command"] = command;
    header["load_average_end"] = bench::load_average();
    header["options"] = {{"qemu", vo.qemu},       {"clients", vo.clients},       {"size", vo.size},
                         {"bpp", vo.bpp},         {"workload", vo.workload},     {"fps", vo.fps},
                         {"seconds", vo.seconds}, {"warmup_seconds", vo.warmup}, {"spice_mode", vo.spice_mode},
                         {"keys", vo.keys},       {"rounds", vo.rounds}};
    CommonOptions c = common;
    c.plots = common.plots && std::any_of(result.runs.begin(), result.runs.end(), [](const auto& r) { return !r.frames.empty(); });
    return finish(c, "vm", "vdistream-bench vm", header, result.runs, {{"vms", result.vms}});
  }
  return 0;
}
