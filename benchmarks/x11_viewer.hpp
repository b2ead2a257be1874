// remote-viewer (virt-viewer 11, spice-gtk 0.42's widget) in an X server of its own, watched for
// the synthetic desktop's barcode: the spice subcommand's glass-to-glass client for what people
// actually run. On X11, stream mode goes through GStreamer's GstVideoOverlay (ximagesink), QXL
// mode through GTK drawing; either way the picture ends in Xvfb's framebuffer, which is what a
// monitor would show.
//
// Xvfb picks a free display itself (-displayfd), listens on no TCP port, and its screen is
// larger than the desktop plus remote-viewer's header bar, so the desktop is shown 1:1.
// remote-viewer gets the server's unix socket and password from a .vv file in a private
// directory (virt-viewer takes no password in a spice+unix:// URI: the query would become part
// of the socket path). This process opens the same display with libX11 and, on a thread of its
// own, reads the barcode's pixels with MIT-SHM XShmGetImage about every `poll_interval`, noting
// when each new value first shows: a latency is therefore late by up to one poll interval plus
// one XShmGetImage round trip, both reported.
//
// Both processes run in their own process groups and are killed and reaped when this goes away,
// and with this process if it dies (PR_SET_PDEATHSIG).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/report.hpp"
#include "core/status.hpp"

namespace vdistream::bench {

class X11Viewer {
 public:
  struct Options {
    std::string unix_path;  // the SPICE server's socket
    std::string password;   // empty: a server without a ticket
    int desktop_width = 1280, desktop_height = 720;
    std::chrono::microseconds poll_interval{1000};
    // remote-viewer without any GStreamer plugin: it then has no H.264 decoder, announces only
    // MJPEG (spice-gtk's built-in decoder), and SPICE stream mode sends it JPEGs.
    bool without_gstreamer = false;
  };
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

  // Starts Xvfb and remote-viewer. Fails with a readable reason when either is not installed or
  // does not start (with the tail of its output).
  static core::Result<std::unique_ptr<X11Viewer>> launch(const Options& options);
  ~X11Viewer();  // stops polling, closes the display, kills and reaps remote-viewer and Xvfb
  X11Viewer(const X11Viewer&) = delete;
  X11Viewer& operator=(const X11Viewer&) = delete;

  // Searches the top-left of the screen for the barcode until it reads one, or `limit` passes
  // (the connection, the first picture), calling `between_attempts` every ~100 ms so the caller
  // can show frames meanwhile. Also checks that remote-viewer's window is wide enough for the
  // desktop at 1:1 (a scaled picture reads badly, or not at all).
  core::Status locate(std::chrono::milliseconds limit, const std::function<void()>& between_attempts);
  // After locate(): polls the barcode's area on a thread until stop_polling() or destruction.
  void start_polling();
  PollStats stop_polling();

  bool wait_barcode(uint32_t value, std::chrono::milliseconds limit);
  std::vector<Seen> barcodes() const;

  // Where the barcode was found on the screen, and remote-viewer's window ("WIDTHxHEIGHT").
  int barcode_x() const { return barcode_x_; }
  int barcode_y() const { return barcode_y_; }
  const std::string& window_size() const { return window_size_; }
  // The last lines remote-viewer and Xvfb wrote, for an error message.
  std::string log_tail(size_t max_bytes = 1500) const;
  // The whole screen as a binary PPM (P6) file, to see what remote-viewer showed.
  core::Status save_screenshot(const std::string& path);

  struct Impl;

 private:
  explicit X11Viewer(std::unique_ptr<Impl> impl);
  void poll_loop();

  std::unique_ptr<Impl> impl_;
  int barcode_x_ = -1, barcode_y_ = -1;
  std::string window_size_;
};

}  // namespace vdistream::bench
