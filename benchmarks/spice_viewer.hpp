// The benchmark's SPICE client: spice-gtk's libspice-client-glib-2.0, connected over a unix
// socket (or TCP) with a password, reading the synthetic desktop's barcode from its decoded
// primary surface after every display update and noting when each new one first showed. Its
// inputs channel sends keys (PC AT scancodes), for measuring a key's way to a VM.
// (tests/fixtures/spice_client is the tests' fuller client; benchmarks do not link test fixtures.)
//
// spice-glib runs on GLib's global default main context: this client runs that context on a
// thread of its own, so only one SpiceViewer may exist at a time in a process.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace vdistream::bench {

struct SpiceViewerOptions {
  std::string unix_path;  // or host/port
  std::string host = "127.0.0.1";
  int port = 0;
  std::string password;
};

class SpiceViewer {
 public:
  explicit SpiceViewer(const SpiceViewerOptions& options);  // starts connecting
  ~SpiceViewer();                                           // disconnects, bounded
  SpiceViewer(const SpiceViewer&) = delete;
  SpiceViewer& operator=(const SpiceViewer&) = delete;

  bool wait_opened(std::chrono::milliseconds limit);  // authenticated, main channel open
  bool wait_display(std::chrono::milliseconds limit);  // a display channel with a primary surface
  bool wait_barcode(uint32_t value, std::chrono::milliseconds limit);
  bool wait_inputs(std::chrono::milliseconds limit);  // the inputs channel is open

  // A key down / up on the inputs channel: a PC AT (set 1) scancode, 0xe0-prefixed ones as
  // 0xe0XX (spice-glib's convention). False when the inputs channel is not open.
  bool key_press(uint32_t scancode);
  bool key_release(uint32_t scancode);

  struct Seen {
    uint32_t barcode;
    int64_t at_ns;  // core::monotonic_now_ns() when the surface first showed it
  };
  std::vector<Seen> barcodes() const;
  // Bytes the display channel has read from the server so far (what the mode costs on the wire).
  uint64_t display_bytes_read();
  void clear_barcodes();

  struct State;

 private:
  void run_on_loop(std::function<void()> fn);
  template <typename Pred>
  bool wait_for(std::chrono::milliseconds limit, Pred pred);

  std::unique_ptr<State> state_;
  std::thread thread_;
};

}  // namespace vdistream::bench
