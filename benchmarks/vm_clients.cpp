#include "benchmarks/vm_clients.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <thread>

#include "benchmarks/clients/chromium.hpp"
#include "benchmarks/report.hpp"
#include "benchmarks/clients/spice_client.hpp"
#include "benchmarks/wall_clock.hpp"
#include "core/clock.hpp"

namespace vdistream::bench {

namespace {

using namespace std::chrono_literals;

int64_t deadline_after(std::chrono::milliseconds limit) {
  return core::monotonic_now_ns() + std::chrono::nanoseconds(limit).count();
}

class GlibClient final : public VmClient {
 public:
  GlibClient(const std::string& unix_path, const std::string& password) : viewer_(SpiceClientOptions{.unix_path = unix_path, .password = password}) {}

  core::Status ready(std::chrono::milliseconds limit) override {
    const int64_t deadline = deadline_after(limit);
    auto left = [&] { return std::chrono::milliseconds(std::max<int64_t>(0, (deadline - core::monotonic_now_ns()) / 1'000'000)); };
    if (!viewer_.wait_opened(left())) return core::Error{"the spice-glib client could not connect (main channel not opened)"};
    if (!viewer_.wait_display(left())) return core::Error{"the spice-glib client got no display surface"};
    if (!viewer_.wait_inputs(left())) return core::Error{"the spice-glib client's inputs channel did not open"};
    while (viewer_.barcodes().empty()) {
      if (core::monotonic_now_ns() > deadline)
        return core::Error{"the spice-glib client's surface showed no barcode (is the guest drawing?)"};
      std::this_thread::sleep_for(20ms);
    }
    return {};
  }
  std::vector<Sighting> sightings() override {
    std::vector<Sighting> out;
    for (const auto& s : viewer_.barcodes()) out.push_back({s.barcode, s.at_ns});
    return out;
  }
  std::optional<uint64_t> wire_bytes() override { return viewer_.display_bytes_read(); }
  bool key_press(uint32_t scancode) override { return viewer_.key_press(scancode); }
  bool key_release(uint32_t scancode) override { return viewer_.key_release(scancode); }
  bool sends_keys() const override { return true; }
  core::Status finish(nlohmann::json&) override { return {}; }

 private:
  SpiceClient viewer_;
};

// Waits for the barcode, then for the picture to advance: a client that shows one frozen
// picture is not ready. The guest's key-echo strip right below the frame's barcode is a barcode
// too, and a still one: when a screenshot caught the frame's barcode mid-draw, the search finds
// the strip instead, so a located barcode that does not advance is searched for again.
class RemoteViewerClient final : public VmClient {
 public:
  RemoteViewerClient(const RemoteViewer::Options& options, std::string screenshot_path)
      : options_(options), screenshot_path_(std::move(screenshot_path)) {}

  core::Status ready(std::chrono::milliseconds limit) override {
    const int64_t deadline = deadline_after(limit);
    auto viewer = RemoteViewer::launch(options_);
    if (!viewer) return core::Error{viewer.error()};
    viewer_ = std::move(*viewer);
    X11Screen& screen = viewer_->screen();
    constexpr size_t kAdvanced = 3;                   // new barcodes on the screen
    constexpr int64_t kAdvanceLimitNs = 2'000'000'000;  // before searching again
    for (;;) {
      const auto left = std::chrono::milliseconds(std::max<int64_t>(1, (deadline - core::monotonic_now_ns()) / 1'000'000));
      if (core::Status s = viewer_->locate(left, nullptr); !s) return failed(s.error());
      const size_t before = screen.barcodes().size();
      if (core::Status s = screen.start_polling(); !s) return failed(s.error());
      const int64_t check_until = std::min(deadline, core::monotonic_now_ns() + kAdvanceLimitNs);
      while (screen.barcodes().size() < before + kAdvanced && core::monotonic_now_ns() < check_until)
        std::this_thread::sleep_for(50ms);
      if (screen.barcodes().size() >= before + kAdvanced) return {};
      screen.stop_polling();
      if (core::monotonic_now_ns() >= deadline)
        return failed(fmt::format("remote-viewer showed a barcode at {},{} but its picture did not advance ({} barcodes seen "
                                  "after {} searches):\n{}",
                                  screen.barcode_x(), screen.barcode_y(), screen.barcodes().size() - before,
                                  searches_ + 1, viewer_->log_tail()));
      ++searches_;
    }
  }
  std::vector<Sighting> sightings() override {
    std::vector<Sighting> out;
    if (viewer_)
      for (const auto& s : viewer_->screen().barcodes()) out.push_back({s.barcode, s.at_ns});
    return out;
  }
  core::Status finish(nlohmann::json& counters) override {
    if (!viewer_) return core::Error{"remote-viewer was not started"};
    const X11Screen::PollStats poll = viewer_->screen().stop_polling();
    counters["polls"] = poll.polls;
    counters["poll_interval_ms"] = {{"p50", poll.interval_ms.p50}, {"p99", poll.interval_ms.p99}, {"max", poll.interval_ms.max}};
    counters["poll_grab_ms"] = {{"p50", poll.grab_ms.p50}, {"p99", poll.grab_ms.p99}, {"max", poll.grab_ms.max}};
    counters["barcode_on_screen"] = {viewer_->screen().barcode_x(), viewer_->screen().barcode_y()};
    counters["viewer_window"] = viewer_->window_size();
    counters["barcode_searches_again"] = searches_;
    if (!poll.error.empty()) return core::Error{"polling remote-viewer's screen stopped: " + poll.error};
    return {};
  }

 private:
  // The error, with a screenshot of what remote-viewer showed when there is a place for one.
  core::Status failed(std::string why) {
    if (viewer_ && !screenshot_path_.empty()) {
      viewer_->screen().stop_polling();  // Xlib calls from one thread at a time
      const core::Status saved = viewer_->screen().save_screenshot(screenshot_path_);
      why += saved ? "\n(screenshot: " + screenshot_path_ + ")" : "\n(no screenshot: " + saved.error() + ")";
    }
    return core::Error{why};
  }

  RemoteViewer::Options options_;
  std::string screenshot_path_;
  std::unique_ptr<RemoteViewer> viewer_;
  int searches_ = 0;
};

// The page reports {barcode, receiveTime, presentationTime} of each frame whose barcode changed;
// vdistreamd keeps them for its control API. Reports from before this client started are skipped.
class ChromiumClient final : public VmClient {
 public:
  ChromiumClient(std::string url, HttpClient& api, std::string desktop)
      : url_(std::move(url)), api_(api), path_(fmt::format("/api/desktops/{}/presented", desktop)) {}

  core::Status ready(std::chrono::milliseconds limit) override {
    if (!Chromium::available())
      return core::Error{fmt::format("{} is not installed (apt-get install chromium)", Chromium::kPath)};
    // Where the reports of this page will start.
    auto before = api_.get_json(path_ + "?after=0");
    if (!before) return core::Error{before.error()};
    next_ = (*before).value("next", uint64_t(0));
    auto browser = Chromium::launch({url_, 1280, 720});
    if (!browser) return core::Error{browser.error()};
    browser_ = std::move(*browser);
    const int64_t deadline = deadline_after(limit);
    for (;;) {
      if (core::Status s = poll(); !s) return s;
      if (!seen_.empty()) return {};
      if (!browser_->running()) return core::Error{"Chromium exited before the page showed a frame:\n" + browser_->log_tail()};
      if (core::monotonic_now_ns() > deadline)
        return core::Error{fmt::format("the page showed no barcode within {} s of Chromium's start; Chromium said:\n{}",
                                       limit.count() / 1000, browser_->log_tail())};
      std::this_thread::sleep_for(200ms);
    }
  }
  std::vector<Sighting> sightings() override {
    if (core::Status s = poll(); !s && poll_error_.empty()) poll_error_ = s.error();
    return seen_;
  }
  core::Status finish(nlohmann::json& counters) override {
    (void)sightings();
    const bool running = browser_ && browser_->running();
    browser_.reset();  // before the desktop: a page left open would reconnect
    const Percentiles r2p = percentiles(receive_to_present_);
    counters["receive_to_present_ms"] = {{"p50", r2p.p50}, {"p99", r2p.p99}, {"max", r2p.max}};
    counters["page_reports"] = reports_;
    counters["viewers"] = viewers_.size();
    if (!poll_error_.empty()) return core::Error{"reading the page's reports failed: " + poll_error_};
    if (!running) return core::Error{"Chromium exited during the leg"};
    return {};
  }

 private:
  core::Status poll() {
    auto reply = api_.get_json(fmt::format("{}?after={}", path_, next_));
    if (!reply) return core::Error{reply.error()};
    const int64_t offset = realtime_minus_monotonic_ns();
    for (const auto& f : (*reply)["frames"]) {
      const auto barcode = f.value("barcode", uint32_t(0));
      const double receive_ms = f.value("receive_ms", 0.0), present_ms = f.value("present_ms", 0.0);
      ++reports_;
      viewers_[f.value("viewer", uint64_t(0))]++;
      receive_to_present_.push_back(present_ms - receive_ms);
      seen_.push_back({barcode, wall_ms_to_monotonic_ns(present_ms, offset)});
    }
    next_ = (*reply).value("next", next_);
    return {};
  }

  std::string url_;
  HttpClient& api_;
  std::string path_;
  std::unique_ptr<Chromium> browser_;
  uint64_t next_ = 0, reports_ = 0;
  std::map<uint64_t, uint64_t> viewers_;
  std::vector<double> receive_to_present_;
  std::vector<Sighting> seen_;
  std::string poll_error_;
};

}  // namespace

std::unique_ptr<VmClient> make_glib_client(const std::string& unix_path, const std::string& password) {
  return std::make_unique<GlibClient>(unix_path, password);
}

std::unique_ptr<VmClient> make_remote_viewer_client(const RemoteViewer::Options& options, const std::string& screenshot_path) {
  return std::make_unique<RemoteViewerClient>(options, screenshot_path);
}

std::unique_ptr<VmClient> make_chromium_client(const std::string& page_url, HttpClient& api, const std::string& desktop) {
  return std::make_unique<ChromiumClient>(page_url, api, desktop);
}

}  // namespace vdistream::bench
