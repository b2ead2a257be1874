#include "benchmarks/soak_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "benchmarks/clients/chromium.hpp"
#include "benchmarks/clients/spice_client.hpp"
#include "benchmarks/guest_vm.hpp"
#include "benchmarks/plots.hpp"
#include "benchmarks/report.hpp"
#include "benchmarks/vdistreamd_child.hpp"

namespace vdistream::bench {

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Ctrl-C (SIGINT) or SIGTERM ends the soak early, with its figures so far written.
std::atomic<bool> g_stop{false};
extern "C" void request_stop(int) { g_stop = true; }

struct ProcessSample {
  double rss_mb = 0;
  double rss_anon_mb = 0;  // of it, anonymous memory (heap, stacks): what a leak grows
  double rss_file_mb = 0;  // of it, mapped files (libraries' pages as they are first used)
  // Of it, the frame buffers' memfds (counted once per mapping of a page: the source's and each
  // reader's), and how many mappings of memfds there are.
  double memfd_rss_mb = 0;
  int memfd_maps = 0;
  int fds = 0;
  int threads = 0;
};

std::optional<ProcessSample> sample_process(pid_t pid) {
  ProcessSample s;
  std::ifstream status(fmt::format("/proc/{}/status", pid));
  std::string key;
  bool rss = false, threads = false;
  while (status >> key) {
    if (key == "VmRSS:") {
      double kb = 0;
      status >> kb;
      s.rss_mb = kb / 1024;
      rss = true;
    } else if (key == "RssAnon:" || key == "RssFile:") {
      double kb = 0;
      status >> kb;
      (key == "RssAnon:" ? s.rss_anon_mb : s.rss_file_mb) = kb / 1024;
    } else if (key == "Threads:") {
      status >> s.threads;
      threads = true;
    }
    status.ignore(1 << 16, '\n');
  }
  std::ifstream smaps(fmt::format("/proc/{}/smaps", pid));
  bool memfd = false;
  for (std::string line; std::getline(smaps, line);) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < line.find(' ')) {
      memfd = line.find("/memfd:") != std::string::npos;  // a mapping's first line
      s.memfd_maps += memfd;
    } else if (memfd && line.rfind("Rss:", 0) == 0) {
      s.memfd_rss_mb += std::strtod(line.c_str() + 4, nullptr) / 1024;
    }
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++s.fds;
  if (!rss || !threads || ec) return std::nullopt;
  return s;
}

// Least-squares slope of y over x (0 with fewer than two points).
double slope(const std::vector<std::pair<double, double>>& points) {
  if (points.size() < 2) return 0;
  double sx = 0, sy = 0;
  for (const auto& [x, y] : points) sx += x, sy += y;
  const double n = double(points.size()), mx = sx / n, my = sy / n;
  double num = 0, den = 0;
  for (const auto& [x, y] : points) num += (x - mx) * (y - my), den += (x - mx) * (x - mx);
  return den > 0 ? num / den : 0;
}

uint64_t count(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* at = &j;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return 0;
    at = &(*at)[key];
  }
  return at->is_number_unsigned() ? at->get<uint64_t>() : at->is_number_integer() ? uint64_t(std::max<int64_t>(0, at->get<int64_t>())) : 0;
}

// Sanitizer reports and the log's warnings and errors, by their text after the level.
nlohmann::json read_log(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  uint64_t sanitizer = 0, warnings = 0, errors = 0;
  std::vector<std::string> sanitizer_lines;
  std::map<std::string, uint64_t> kinds;  // "warn [desktop] text" without numbers' noise
  while (std::getline(in, line)) {
    if (line.find("Sanitizer") != std::string::npos || line.find("runtime error:") != std::string::npos) {
      ++sanitizer;
      if (sanitizer_lines.size() < 20) sanitizer_lines.push_back(line);
    }
    // "2026-12-07 02:41:50.247 warn  [name] text"
    const bool warn = line.find(" warn  [") != std::string::npos, error = line.find(" error [") != std::string::npos;
    if (!warn && !error) continue;
    (warn ? warnings : errors) += 1;
    const size_t at = line.find(warn ? " warn  [" : " error [");
    std::string kind = line.substr(at + 1, 120);
    for (char& c : kind)
      if (c >= '0' && c <= '9') c = '#';
    ++kinds[kind];
  }
  nlohmann::json top = nlohmann::json::array();
  std::vector<std::pair<uint64_t, std::string>> sorted;
  for (const auto& [k, n] : kinds) sorted.emplace_back(n, k);
  std::sort(sorted.rbegin(), sorted.rend());
  for (size_t i = 0; i < sorted.size() && i < 15; ++i) top.push_back({{"count", sorted[i].first}, {"line", sorted[i].second}});
  return {{"sanitizer_lines", sanitizer}, {"sanitizer_report", sanitizer_lines}, {"warnings", warnings},
          {"errors", errors}, {"most_frequent", top}};
}

class Soak {
 public:
  Soak(const SoakOptions& o) : o_(o), t0_(SteadyClock::now()) {}

  nlohmann::json run(bool plots);

 private:
  double minutes() const { return std::chrono::duration<double>(SteadyClock::now() - t0_).count() / 60; }
  void event(const std::string& what, bool ok, const std::string& detail = {});
  std::vector<std::string> desktops() const;
  void sample(bool quiet);
  void poll_status();
  void join(int cycle);
  void check_viewers(const std::string& only = {});  // those of one desktop, or all
  void leave();
  void restart_vm();
  void reload();
  // Until `pred` holds or `limit` passes, polling every 200 ms.
  template <typename Pred>
  bool eventually(std::chrono::milliseconds limit, Pred pred);
  nlohmann::json verdict() const;
  std::optional<std::string> plot() const;

  SoakOptions o_;
  SteadyClock::time_point t0_;
  std::unique_ptr<GuestVm> vm_;
  std::unique_ptr<VdistreamdChild> service_;
  std::vector<DesktopSpec> synthetic_;
  const DesktopSpec extra_{"soak-extra", "synthetic:window-drag@1280x720@30"};
  bool extra_on_ = false;

  std::vector<std::pair<std::string, std::unique_ptr<SpiceClient>>> spice_;
  std::unique_ptr<Chromium> page_;
  std::string page_desktop_;

  nlohmann::json samples_ = nlohmann::json::array(), events_ = nlohmann::json::array();
  std::map<std::string, nlohmann::json> last_status_;  // desktop → its last status (removed ones keep theirs)
  // "desktop viewer" → WebRTC frames {discarded, dropped} (see transport::PeerCounters)
  std::map<std::string, std::pair<uint64_t, uint64_t>> discarded_;
  uint64_t spice_stays_ = 0, spice_blank_ = 0, page_stays_ = 0, page_blank_ = 0;
  uint64_t restarts_ = 0, restarts_failed_ = 0, reloads_ = 0, reloads_failed_ = 0, leaves_slow_ = 0;
};

void Soak::event(const std::string& what, bool ok, const std::string& detail) {
  events_.push_back({{"t_min", minutes()}, {"what", what}, {"ok", ok}, {"detail", detail}});
  fmt::print("[{:6.2f} min] {}{}{}\n", minutes(), ok ? "" : "FAILED: ", what, detail.empty() ? "" : ": " + detail);
  std::fflush(stdout);
}

std::vector<std::string> Soak::desktops() const {
  std::vector<std::string> names;
  if (vm_) names.push_back(VdistreamdChild::kDesktop);
  for (const auto& d : synthetic_) names.push_back(d.name);
  if (extra_on_) names.push_back(extra_.name);
  return names;
}

template <typename Pred>
bool Soak::eventually(std::chrono::milliseconds limit, Pred pred) {
  const auto deadline = SteadyClock::now() + limit;
  for (;;) {
    if (pred()) return true;
    if (SteadyClock::now() > deadline) return false;
    std::this_thread::sleep_for(200ms);
  }
}

void Soak::poll_status() {
  for (const auto& name : desktops()) {
    auto s = service_->desktop_status(name);
    if (!s) continue;
    last_status_[name] = *s;
    const auto& viewers = (*s)["webrtc_viewers"];
    if (!viewers.is_object() || !viewers["per_viewer"].is_array()) continue;
    for (const auto& v : viewers["per_viewer"]) {
      auto& [discarded, dropped] = discarded_[name + " " + v["id"].dump()];
      discarded = std::max(discarded, count(v, {"frames_discarded"}));
      dropped = std::max(dropped, count(v, {"frames_dropped"}));
    }
  }
}

void Soak::sample(bool quiet) {
  poll_status();
  auto p = sample_process(service_->pid());
  if (!p) return;
  size_t spice_viewers = 0, webrtc_viewers = 0;
  for (const auto& name : desktops()) {
    const auto& s = last_status_[name];
    spice_viewers += size_t(count(s, {"viewers"}));
    webrtc_viewers += size_t(count(s, {"webrtc_viewers", "viewers"}));
  }
  // What malloc holds in use (GET /api/service): a leak grows it; RSS that grows beside a flat
  // heap is memory malloc keeps for reuse.
  double heap_mb = -1, heap_free_mb = -1;
  if (auto info = service_->api().get_json("/api/service"); info && (*info)["memory"]["heap_in_use_mib"].is_number()) {
    heap_mb = (*info)["memory"]["heap_in_use_mib"].get<double>();
    heap_free_mb = (*info)["memory"].value("heap_free_held_mib", -1.0);
  }
  samples_.push_back({{"t_min", minutes()}, {"rss_mb", p->rss_mb}, {"rss_anon_mb", p->rss_anon_mb},
                      {"rss_file_mb", p->rss_file_mb}, {"memfd_rss_mb", p->memfd_rss_mb}, {"memfd_maps", p->memfd_maps},
                      {"heap_mb", heap_mb}, {"heap_free_mb", heap_free_mb}, {"fds", p->fds},
                      {"threads", p->threads}, {"quiet", quiet}, {"desktops", desktops().size()},
                      {"viewers", spice_viewers}, {"webrtc_viewers", webrtc_viewers}});
}

void Soak::join(int cycle) {
  for (const auto& name : desktops())
    spice_.emplace_back(name, std::make_unique<SpiceClient>(SpiceClientOptions{
                                  .unix_path = service_->spice_socket(name), .password = service_->spice_ticket()}));
  if (!o_.chromium) return;
  const auto names = desktops();
  page_desktop_ = names[size_t(cycle) % names.size()];
  auto page = Chromium::launch({service_->page_url(page_desktop_), 1280, 720, {}});
  if (!page) {
    event("Chromium", false, page.error());
    return;
  }
  page_ = std::move(*page);
}

// Every viewer that joined shows a picture: spice-glib decoded a barcode; the page reports the
// frames per second it shows.
// One that joined moments ago (its desktop is going) is given kViewerGrace to.
constexpr auto kViewerGrace = 15s;

void Soak::check_viewers(const std::string& only) {
  for (auto& [name, client] : spice_) {
    if (!only.empty() && name != only) continue;
    ++spice_stays_;
    const bool shown = client->wait_outcome(kViewerGrace) == SpiceClient::Outcome::Opened &&
                       eventually(kViewerGrace, [&] { return !client->barcodes().empty(); });
    if (!shown) {
      ++spice_blank_;
      event("a SPICE viewer showed nothing", false, name);
    }
  }
  if (!page_ || (!only.empty() && page_desktop_ != only)) return;
  ++page_stays_;
  const bool shown = eventually(kViewerGrace, [&] {
    poll_status();
    const auto& viewers = last_status_[page_desktop_]["webrtc_viewers"];
    if (viewers.is_object() && viewers["per_viewer"].is_array())
      for (const auto& v : viewers["per_viewer"])
        if (v.value("page_fps", 0.0) > 0) return true;  // the page decodes and shows frames
    return false;
  });
  if (!shown) {
    ++page_blank_;
    event("the Chromium page showed nothing", false, page_desktop_ + "\n" + page_->log_tail());
  }
}

void Soak::leave() {
  poll_status();  // the page's last counts
  spice_.clear();
  page_.reset();
  // The service notices every viewer gone (WebRTC: the page's WebSocket closed).
  const bool gone = eventually(15s, [&] {
    poll_status();
    for (const auto& name : desktops())
      if (count(last_status_[name], {"viewers"}) || count(last_status_[name], {"webrtc_viewers", "viewers"})) return false;
    return true;
  });
  if (!gone) {
    ++leaves_slow_;
    event("viewers still counted 15 s after they left", false);
  }
}

void Soak::restart_vm() {
  ++restarts_;
  const uint64_t before = count(last_status_[VdistreamdChild::kDesktop], {"source_connections"});
  vm_->kill_qemu();
  if (auto ok = vm_->restart_qemu(); !ok) {
    ++restarts_failed_;
    event("VM restart", false, ok.error());
    return;
  }
  const auto started = SteadyClock::now();
  const bool back = eventually(120s, [&] {
    auto s = service_->desktop_status(VdistreamdChild::kDesktop);
    return s && s->value("state", "") == "connected" && count(*s, {"source_connections"}) > before;
  });
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - started).count();
  if (!back) ++restarts_failed_;
  event("VM killed and started again", back,
        back ? fmt::format("the desktop reconnected to it {:.1f} s after QEMU started", seconds)
             : "the desktop did not reconnect within 120 s\n" + service_->log_tail());
}

void Soak::reload() {
  ++reloads_;
  if (extra_on_) {
    // Its viewers lose their desktop with it: judged now, then gone.
    check_viewers(extra_.name);
    std::erase_if(spice_, [&](const auto& v) { return v.first == extra_.name; });
    if (page_desktop_ == extra_.name) {
      poll_status();
      page_.reset();
    }
  }
  auto service_info = service_->api().get_json("/api/service");
  const uint64_t before = service_info ? count(*service_info, {"reloads"}) : 0;
  extra_on_ = !extra_on_;
  std::vector<DesktopSpec> more = synthetic_;
  if (extra_on_) more.push_back(extra_);
  bool ok = bool(service_->reload(more));
  nlohmann::json last;
  ok = ok && eventually(30s, [&] {
         auto s = service_->api().get_json("/api/service");
         if (!s || count(*s, {"reloads"}) <= before) return false;
         last = (*s)["last_reload"];
         return true;
       });
  ok = ok && last.is_object() && last.value("ok", false);
  if (ok && extra_on_) ok = bool(service_->wait_capturing(60s, extra_.name));
  if (ok && !extra_on_)
    ok = eventually(30s, [&] {
      auto s = service_->api().get(fmt::format("/api/desktops/{}", extra_.name));
      return s && s->status == 404;
    });
  if (!ok) ++reloads_failed_;
  event(fmt::format("SIGHUP reload, desktop {} {}", extra_.name, extra_on_ ? "added" : "removed"), ok,
        ok ? last.value("summary", "") : last.dump() + "\n" + service_->log_tail());
}

nlohmann::json Soak::verdict() const {
  // Quiet samples after the warm-up, with the base set of desktops (the extra one absent).
  std::vector<std::pair<double, double>> rss, anon, file, memfd, memfd_maps, heap, heap_free, fds, threads;
  for (const auto& s : samples_)
    if (s["quiet"].get<bool>() && s["t_min"].get<double>() >= o_.warmup_minutes &&
        s["desktops"].get<size_t>() == synthetic_.size() + (vm_ ? 1 : 0)) {
      const double t = s["t_min"].get<double>();
      rss.emplace_back(t, s["rss_mb"].get<double>());
      anon.emplace_back(t, s["rss_anon_mb"].get<double>());
      file.emplace_back(t, s["rss_file_mb"].get<double>());
      memfd.emplace_back(t, s["memfd_rss_mb"].get<double>());
      memfd_maps.emplace_back(t, s["memfd_maps"].get<double>());
      if (s["heap_mb"].get<double>() >= 0) heap.emplace_back(t, s["heap_mb"].get<double>());
      if (s["heap_free_mb"].get<double>() >= 0) heap_free.emplace_back(t, s["heap_free_mb"].get<double>());
      fds.emplace_back(t, s["fds"].get<double>());
      threads.emplace_back(t, s["threads"].get<double>());
    }
  auto describe = [](const std::vector<std::pair<double, double>>& v) -> nlohmann::json {
    if (v.empty()) return nullptr;
    double lo = v[0].second, hi = v[0].second;
    for (const auto& [t, y] : v) lo = std::min(lo, y), hi = std::max(hi, y);
    return {{"samples", v.size()}, {"first", v.front().second}, {"last", v.back().second}, {"min", lo}, {"max", hi},
            {"slope_per_hour", slope(v) * 60}};
  };
  return {{"quiet_samples_judged", rss.size()}, {"rss_mb", describe(rss)},        {"rss_anon_mb", describe(anon)},
          {"rss_file_mb", describe(file)},       {"rss_memfd_mb", describe(memfd)},  {"memfd_mappings", describe(memfd_maps)},
          {"heap_in_use_mb", describe(heap)},    {"heap_free_held_mb", describe(heap_free)},
          {"fds", describe(fds)},                {"threads", describe(threads)}};
}

std::optional<std::string> Soak::plot() const {
  const std::string data = o_.out + "/soak-data.tsv", script = o_.out + "/soak.gp";
  {
    std::ofstream d(data);
    d << "# minutes\trss_mb\tfds\tthreads\tquiet\theap_mb\theap_free_mb (both -1: not read)\trss_anon_mb\trss_file_mb\n";
    for (const auto& s : samples_)
      d << s["t_min"].get<double>() << '\t' << s["rss_mb"].get<double>() << '\t' << s["fds"].get<int>() << '\t'
        << s["threads"].get<int>() << '\t' << (s["quiet"].get<bool>() ? 1 : 0) << '\t' << s["heap_mb"].get<double>() << '\t'
        << s["heap_free_mb"].get<double>() << '\t' << s["rss_anon_mb"].get<double>() << '\t' << s["rss_file_mb"].get<double>() << '\n';
    std::ofstream gp(script);
    gp << "# Written by vdistream-bench soak; run `gnuplot soak.gp` in this directory to redraw.\n"
       << "set terminal pngcairo size 1200,900\nset output '" << o_.out << "/soak.png'\n"
       << "set multiplot layout 3,1 title 'vdistream-bench soak: vdistreamd over time (points: quiet samples, no viewer)'\n"
       << "set xlabel 'minutes'\nset grid\nunset key\n";
    for (const auto& [column, label] : {std::pair{2, "MiB"}, {3, "open fds"}, {4, "threads"}})
      gp << (column == 2 ? "set title 'RSS (grey), of it anonymous (green); malloc heap in use (blue)'\n" : "unset title\n")
         << "set ylabel '" << label << "'\nset yrange [0:*]\nplot '" << data << "' using 1:" << column
         << " with lines lc rgb '#888888', '' using 1:($5 == 1 ? $" << column << " : 1/0) with points pt 7 lc rgb '#c00000'"
         << (column == 2 ? ", '' using 1:8 with lines lc rgb '#2e8b57', '' using 1:($6 >= 0 ? $6 : 1/0) with lines lc rgb '#1f5fbf'"
                         : "")
         << "\n";
    gp << "unset multiplot\n";
  }
  return run_gnuplot(script, o_.out + "/soak-plot.log");
}

nlohmann::json Soak::run(bool plots) {
  nlohmann::json result{{"options",
                         {{"minutes", o_.minutes}, {"synthetic", o_.synthetic}, {"qemu", o_.qemu},
                          {"cycle_seconds", o_.cycle_seconds}, {"vm_restart_minutes", o_.vm_restart_minutes},
                          {"reload_minutes", o_.reload_minutes}, {"sample_seconds", o_.sample_seconds},
                          {"warmup_minutes", o_.warmup_minutes}, {"chromium", o_.chromium}}}};
  auto fail = [&](const std::string& why) {
    event("soak", false, why);
    result["error"] = why;
    result["events"] = events_;
    return result;
  };
  if (o_.qemu != "none") {
    GuestVmOptions vo;
    if (o_.qemu == "7.2") vo.qemu = Qemu::Host72;
    else if (o_.qemu == "10") vo.qemu = Qemu::V10;
    else return fail(fmt::format("--qemu {}: 7.2, 10 or none", o_.qemu));
    if (auto ok = GuestVm::available(vo.qemu, vo.paths); !ok) return fail(ok.error());
    vo.workload = "typing";
    vo.fps = 15;
    vo.audio = true;
    vo.tone = "440,500,1500";
    auto vm = GuestVm::start(vo);
    if (!vm) return fail(vm.error());
    vm_ = std::move(*vm);
    if (auto ready = vm_->wait_ready(0, 180s); !ready) return fail(ready.error());
  }
  if (o_.chromium && !Chromium::available()) return fail("Chromium is not installed (/usr/bin/chromium); or give --no-chromium");
  for (int i = 0; i < o_.synthetic; ++i) synthetic_.push_back({fmt::format("synth-{}", i), "synthetic:typing@1280x720@30"});
  if (desktops().empty()) return fail("no desktop: give --synthetic N or --qemu");
  auto service = VdistreamdChild::start(
      {o_.vdistreamd.empty() ? VdistreamdChild::default_binary() : o_.vdistreamd, vm_ ? vm_->spec() : "", "qxl", synthetic_});
  if (!service) return fail(service.error());
  service_ = std::move(*service);
  for (const auto& name : desktops())
    if (auto ok = service_->wait_capturing(120s, name); !ok) return fail(ok.error());
  t0_ = SteadyClock::now();
  event(fmt::format("vdistreamd serves {} desktops (pid {})", desktops().size(), service_->pid()), true);

  const auto end = t0_ + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(o_.minutes * 60));
  auto every = [](double minutes) { return std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(minutes * 60)); };
  auto next_reload = t0_ + every(o_.reload_minutes), next_restart = t0_ + every(o_.vm_restart_minutes);
  const auto cycle = every(o_.cycle_seconds / 60), sample_every = every(o_.sample_seconds / 60);
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  for (int k = 0; SteadyClock::now() < end && !g_stop; ++k) {
    const auto start = SteadyClock::now();
    join(k);
    auto next_sample = start;
    while (SteadyClock::now() < start + cycle * 3 / 4 && !g_stop) {
      if (!service_->running()) return fail(fmt::format("vdistreamd {}:\n{}", service_->exit_description(), service_->log_tail()));
      if (SteadyClock::now() >= next_sample) {
        sample(false);
        next_sample += sample_every;
      }
      if (SteadyClock::now() >= next_reload) {
        reload();
        next_reload += every(o_.reload_minutes);
      }
      if (vm_ && SteadyClock::now() >= next_restart) {
        restart_vm();
        next_restart += every(o_.vm_restart_minutes);
      }
      std::this_thread::sleep_for(200ms);
    }
    check_viewers();
    leave();
    while (SteadyClock::now() < start + cycle - 1s && !g_stop) std::this_thread::sleep_for(200ms);
    sample(true);
    const auto& s = samples_.back();
    fmt::print("[{:6.2f} min] cycle {} done: {:.1f} MiB RSS, {} fds, {} threads, {} desktops\n", minutes(), k,
               s["rss_mb"].get<double>(), s["fds"].get<int>(), s["threads"].get<int>(), s["desktops"].get<size_t>());
    std::fflush(stdout);
  }

  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (g_stop) event("stopped early (a signal)", true);
  result["minutes_run"] = minutes();

  // Frames lost, from the service's own counters (each desktop's last status).
  uint64_t encode_errors = 0, stream_dropped = 0, capture_refused = 0, skipped = 0, captured = 0, encoded = 0;
  uint64_t webrtc_dropped = 0, webrtc_before_picture = 0;
  for (const auto& [name, s] : last_status_) {
    encode_errors += count(s, {"frames", "encode_errors"});
    skipped += count(s, {"frames", "skipped"});
    captured += count(s, {"frames", "captured"});
    encoded += count(s, {"frames", "encoded"});
    stream_dropped += count(s, {"spice", "stream_dropped"});
    capture_refused += count(s, {"capture", "refused"});
  }
  for (const auto& [viewer, n] : discarded_) {
    webrtc_dropped += n.second;
    webrtc_before_picture += n.first - std::min(n.first, n.second);
  }
  result["lost"] = {{"encode_errors", encode_errors}, {"spice_stream_dropped", stream_dropped},
                    {"webrtc_frames_dropped", webrtc_dropped}, {"capture_refused", capture_refused},
                    {"total", encode_errors + stream_dropped + webrtc_dropped + capture_refused}};
  // Not lost: the encoder's latest-wins slot kept a newer frame; a page still waiting for its
  // first picture (the IDR it waits for carries the whole screen).
  result["frames"] = {{"captured", captured}, {"encoded", encoded}, {"skipped_newer_kept", skipped},
                      {"webrtc_before_first_picture", webrtc_before_picture}};
  result["viewers"] = {{"spice_stays", spice_stays_}, {"spice_showed_nothing", spice_blank_}, {"page_stays", page_stays_},
                       {"page_showed_nothing", page_blank_}, {"still_counted_after_leaving", leaves_slow_}};
  result["vm_restarts"] = {{"done", restarts_}, {"failed", restarts_failed_}};
  result["reloads"] = {{"done", reloads_}, {"failed", reloads_failed_}};
  result["verdict"] = verdict();
  result["desktops"] = last_status_;
  result["samples"] = samples_;

  // Stopped here so that a leak report (LeakSanitizer runs at exit) is in the log.
  const pid_t pid = service_->pid();
  service_->stop();
  result["vdistreamd"] = {{"pid", pid}, {"exit", service_->exit_description()}, {"log", read_log(service_->log_path())}};
  result["events"] = events_;
  if (plots)
    if (auto err = plot()) result["plot_error"] = *err;
  return result;
}

}  // namespace

nlohmann::json run_soak(const SoakOptions& o, bool plots) {
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  Soak soak(o);
  auto result = soak.run(plots);
  result["machine"] = machine_json();
  std::ofstream(o.out + "/soak.json") << result.dump(2) << "\n";
  return result;
}

void print_soak_summary(const nlohmann::json& r) {
  if (r.contains("error")) fmt::print("\nvdistream-bench soak stopped: {}\n", r["error"].get<std::string>());
  if (!r.contains("verdict")) return;
  const auto& v = r["verdict"];
  fmt::print("\nvdistreamd over {} min ({} quiet samples judged, after {} min of warm-up):\n", r["options"]["minutes"].get<double>(),
             v["quiet_samples_judged"].get<size_t>(), r["options"]["warmup_minutes"].get<double>());
  fmt::print("{:<10} {:>9} {:>9} {:>9} {:>9} {:>12}\n", "", "first", "last", "min", "max", "slope/hour");
  for (const auto& [key, label] :
       {std::pair{"rss_mb", "RSS MiB"}, {"rss_anon_mb", " anon"}, {"rss_file_mb", " files"}, {"rss_memfd_mb", " memfds"},
        {"memfd_mappings", "memfd maps"}, {"heap_in_use_mb", "heap MiB"},
        {"heap_free_held_mb", " free"}, {"fds", "fds"}, {"threads", "threads"}}) {
    const auto& m = v[key];
    if (m.is_null()) continue;
    fmt::print("{:<10} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>12.2f}\n", label, m["first"].get<double>(), m["last"].get<double>(),
               m["min"].get<double>(), m["max"].get<double>(), m["slope_per_hour"].get<double>());
  }
  const auto& lost = r["lost"];
  fmt::print("frames lost: {} (encode errors {}, SPICE stream drops {}, WebRTC drops {}, capture refusals {}); "
             "{} captured, {} encoded, {} skipped for a newer frame, {} before a page's first picture\n",
             lost["total"].get<uint64_t>(), lost["encode_errors"].get<uint64_t>(), lost["spice_stream_dropped"].get<uint64_t>(),
             lost["webrtc_frames_dropped"].get<uint64_t>(), lost["capture_refused"].get<uint64_t>(),
             r["frames"]["captured"].get<uint64_t>(), r["frames"]["encoded"].get<uint64_t>(),
             r["frames"]["skipped_newer_kept"].get<uint64_t>(), r["frames"]["webrtc_before_first_picture"].get<uint64_t>());
  const auto& vw = r["viewers"];
  fmt::print("viewers: {} SPICE stays ({} showed nothing), {} Chromium stays ({} showed nothing), {} times still counted after leaving\n",
             vw["spice_stays"].get<uint64_t>(), vw["spice_showed_nothing"].get<uint64_t>(), vw["page_stays"].get<uint64_t>(),
             vw["page_showed_nothing"].get<uint64_t>(), vw["still_counted_after_leaving"].get<uint64_t>());
  fmt::print("VM restarts: {} ({} not recovered); reloads: {} ({} failed)\n", r["vm_restarts"]["done"].get<uint64_t>(),
             r["vm_restarts"]["failed"].get<uint64_t>(), r["reloads"]["done"].get<uint64_t>(), r["reloads"]["failed"].get<uint64_t>());
  if (r.contains("vdistreamd")) {
    const auto& log = r["vdistreamd"]["log"];
    fmt::print("vdistreamd {}; its log: {} sanitizer lines, {} warnings, {} errors\n", r["vdistreamd"]["exit"].get<std::string>(),
               log["sanitizer_lines"].get<uint64_t>(), log["warnings"].get<uint64_t>(), log["errors"].get<uint64_t>());
  }
}

}  // namespace vdistream::bench
