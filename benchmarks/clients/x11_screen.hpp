// An X server's screen watched for the synthetic desktop's barcode (remote-viewer's picture in
// its own Xvfb, remote_viewer.hpp): this process opens the display with libX11, finds the
// barcode near the screen's top-left, and then, on a thread of its own, reads the barcode's
// pixels with MIT-SHM XShmGetImage about every `poll_interval`, noting when each new value first
// shows. A latency is therefore late by up to one poll interval plus one XShmGetImage round trip,
// both reported. Also: the largest top-level window, and the whole screen as a PPM file.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/report.hpp"
#include "core/status.hpp"

namespace vdistream::bench {

class X11Screen {
 public:
  struct Seen {
    uint32_t barcode;
    int64_t at_ns;  // core::monotonic_now_ns() when a poll of the screen first read it
  };
  struct PollStats {
    uint64_t polls = 0;
    Percentiles interval_ms;  // from one poll's result to the next's: the measurement's resolution
    Percentiles grab_ms;      // one XShmGetImage round trip
    std::string error;        // why polling stopped early (the X server went away, a request failed)
  };
  struct Size {
    int width = 0, height = 0;
  };

  // Connects to `display_name` (":N"), which must offer MIT-SHM.
  static core::Result<std::unique_ptr<X11Screen>> open(const std::string& display_name,
                                                        std::chrono::microseconds poll_interval);
  ~X11Screen();  // stops polling, closes the display
  X11Screen(const X11Screen&) = delete;
  X11Screen& operator=(const X11Screen&) = delete;

  Size size() const;
  // The connection to the X server broke (it went away).
  bool broken() const;
  // One search of the screen's top-left `search` area for a barcode; true when it read one (its
  // place is then barcode_x(), barcode_y()).
  bool find_barcode(Size search);
  // The largest mapped top-level window (no window manager: the viewer's).
  Size largest_window() const;
  // After find_barcode(): polls the barcode's area on a thread until stop_polling() or
  // destruction.
  core::Status start_polling();
  PollStats stop_polling();

  bool wait_barcode(uint32_t value, std::chrono::milliseconds limit);
  std::vector<Seen> barcodes() const;
  int barcode_x() const { return barcode_x_; }
  int barcode_y() const { return barcode_y_; }

  // The whole screen as a binary PPM (P6) file. Not while polling: Xlib from one thread at a time.
  core::Status save_screenshot(const std::string& path);

  struct Impl;

 private:
  explicit X11Screen(std::unique_ptr<Impl> impl);
  void poll_loop();

  std::unique_ptr<Impl> impl_;
  int barcode_x_ = -1, barcode_y_ = -1;
};

}  // namespace vdistream::bench
