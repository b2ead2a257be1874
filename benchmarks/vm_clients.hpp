// The clients of the vm subcommand, as a leg sees them: something that connects to a server
// showing the test guest and reports when it first showed each barcode, on the monotonic clock.
// - glib: spice-glib in this process (clients/spice_client.hpp), the barcode read off its decoded
//   surface; it also sends keys and says how many bytes its display channel read.
// - remote-viewer: in an Xvfb of its own (clients/remote_viewer.hpp), its screen polled for the barcode.
// - chromium: headless Chromium on vdistreamd's WebRTC page; the page reads the barcode on each
//   presented frame and reports it to vdistreamd, whose control API
//   (GET /api/desktops/NAME/presented) this reads, mapping the page's wall-clock times to the
//   monotonic clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "benchmarks/http_client.hpp"
#include "benchmarks/clients/remote_viewer.hpp"
#include "core/status.hpp"

namespace vdistream::bench {

struct Sighting {
  uint32_t barcode;  // as read: the guest's frame number modulo 2^24
  int64_t at_ns;     // core::monotonic_now_ns() when the client first showed it
};

class VmClient {
 public:
  virtual ~VmClient() = default;
  // Connected and showing the guest's picture (its barcode read), within `limit`.
  virtual core::Status ready(std::chrono::milliseconds limit) = 0;
  // Every change of barcode the client showed so far, in the order shown.
  virtual std::vector<Sighting> sightings() = 0;
  // What the client has read from the server so far (SPICE display channel), when it can tell.
  virtual std::optional<uint64_t> wire_bytes() { return std::nullopt; }
  // Keys: PC AT scancodes. Clients that cannot send them return false.
  virtual bool key_press(uint32_t) { return false; }
  virtual bool key_release(uint32_t) { return false; }
  virtual bool sends_keys() const { return false; }
  // After the leg: the client's own figures (poll resolution, the page's receive → present)
  // into `counters`; an error when its measurement broke.
  virtual core::Status finish(nlohmann::json& counters) = 0;
};

std::unique_ptr<VmClient> make_glib_client(const std::string& unix_path, const std::string& password);
// `screenshot_path`: where the screen goes (PPM) when remote-viewer does not show the guest; empty: nowhere.
std::unique_ptr<VmClient> make_remote_viewer_client(const RemoteViewer::Options& options, const std::string& screenshot_path);
// `api` is vdistreamd's control API (used from the calling thread only), `desktop` the desktop's name.
std::unique_ptr<VmClient> make_chromium_client(const std::string& page_url, HttpClient& api, const std::string& desktop);

}  // namespace vdistream::bench
