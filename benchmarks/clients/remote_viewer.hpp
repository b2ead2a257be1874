// remote-viewer (virt-viewer 11, spice-gtk 0.42's widget) in an X server of its own, its screen
// watched for the synthetic desktop's barcode (x11_screen.hpp): the glass-to-glass client for
// what people actually run. On X11, stream mode goes through GStreamer's GstVideoOverlay
// (ximagesink), QXL mode through GTK drawing; either way the picture ends in Xvfb's framebuffer,
// which is what a monitor would show.
//
// Xvfb picks a free display itself (-displayfd), listens on no TCP port, and its screen is
// larger than the desktop plus remote-viewer's header bar, so the desktop is shown 1:1.
// remote-viewer gets the server's address and password from a .vv file in a private directory
// (virt-viewer takes no password in a spice+unix:// URI: the query would become part of the
// socket path).
//
// Both processes are ChildProcesses: their own process groups, killed and reaped when this goes
// away, and with this process if it dies (PR_SET_PDEATHSIG).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "benchmarks/child_process.hpp"
#include "benchmarks/clients/x11_screen.hpp"
#include "benchmarks/private_dir.hpp"
#include "core/status.hpp"

namespace vdistream::bench {

class RemoteViewer {
 public:
  struct Options {
    std::string unix_path;  // the SPICE server's socket; empty: host and port
    std::string host = "127.0.0.1";
    int port = 0;
    std::string password;   // empty: a server without a ticket
    int desktop_width = 1280, desktop_height = 720;
    std::chrono::microseconds poll_interval{1000};
    // remote-viewer without any GStreamer plugin: it then has no H.264 decoder, announces only
    // MJPEG (spice-gtk's built-in decoder), and SPICE stream mode sends it JPEGs.
    bool without_gstreamer = false;
  };

  // Starts Xvfb and remote-viewer and opens Xvfb's screen. Fails with a readable reason when
  // either is not installed or does not start (with the tail of its output).
  static core::Result<std::unique_ptr<RemoteViewer>> launch(const Options& options);
  ~RemoteViewer();  // closes the screen, kills and reaps remote-viewer and Xvfb
  RemoteViewer(const RemoteViewer&) = delete;
  RemoteViewer& operator=(const RemoteViewer&) = delete;

  // Searches the top-left of the screen for the barcode until it reads one, or `limit` passes
  // (the connection, the first picture), calling `between_attempts` every ~100 ms so the caller
  // can show frames meanwhile. Also checks that remote-viewer's window is wide enough for the
  // desktop at 1:1 (a scaled picture reads badly, or not at all). Then screen().start_polling().
  core::Status locate(std::chrono::milliseconds limit, const std::function<void()>& between_attempts);

  // Kills remote-viewer at once (SIGKILL), as a crash or a lost machine would: no goodbye on its
  // sockets, the kernel resets them. Xvfb stays.
  void kill_viewer() { viewer_.stop(std::chrono::milliseconds(0)); }

  // Xvfb's screen: the barcode's place, polling it, the barcodes seen, screenshots.
  X11Screen& screen() { return *screen_; }
  // Xvfb's display (":N"), e.g. for another X client such as xclip beside remote-viewer.
  const std::string& display() const { return display_; }
  // remote-viewer's window after locate() ("WIDTHxHEIGHT").
  const std::string& window_size() const { return window_size_; }
  // The last lines remote-viewer and Xvfb wrote, for an error message.
  std::string log_tail(size_t max_bytes = 1500) const;

 private:
  explicit RemoteViewer(const Options& options) : options_(options) {}
  core::Status start_xvfb(std::string& display_name);
  core::Status start_viewer(const std::string& display_name);

  Options options_;
  PrivateDir dir_{"vdistream-bench-x11"};  // the .vv file with the password, the logs
  // Destroyed in reverse order: the screen (its poller, its connection) goes first, then
  // remote-viewer, then Xvfb.
  ChildProcess xvfb_;
  ChildProcess viewer_;
  std::unique_ptr<X11Screen> screen_;
  std::string window_size_;
  std::string display_;
};

}  // namespace vdistream::bench
