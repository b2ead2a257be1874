// vdistreamd's configuration file (TOML): the HTTP listener, defaults, and one [[desktop]] table
// per desktop. Parsing checks everything it can before anything starts (types, unknown keys,
// duplicate names and ports, sources, ticket and token files) and names the line of each error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.hpp"
#include "spice/spice_desktop.hpp"
#include "transport/ice.hpp"

namespace vdistream::service {

// Encoder settings: [defaults] and the same keys in a [[desktop]] table, which win.
struct EncodeSettings {
  std::vector<std::string> encoders;  // preference order; empty = the registry's default
  std::string codec = "h264";
  std::string profile = "constrained-baseline";
  uint32_t bitrate_kbps = 6000;
  uint32_t min_bitrate_kbps = 300;    // bounds for congestion control
  uint32_t max_bitrate_kbps = 20000;
  double max_fps = 60;                // the encoder never runs faster than this
  bool intra_refresh = false;
  bool operator==(const EncodeSettings&) const = default;
};

struct HttpSettings {
  std::string listen;  // "ADDRESS:PORT" (loopback when only ":PORT"); empty: no HTTP server
  std::string host = "127.0.0.1";
  int port = 0;
  std::string token_file;  // the API's bearer token; required unless no_auth
  std::string token;       // read from token_file
  bool no_auth = false;
  std::string tls_cert, tls_key;
  bool operator==(const HttpSettings&) const = default;
};

struct DesktopConfig {
  std::string name;
  int line = 0;  // of its [[desktop]] header, for messages
  std::string source;  // a source spec (see source_factory.hpp)
  EncodeSettings encode;
  // SPICE: off when spice_listen is empty.
  std::string spice_listen;
  std::string spice_mode = "qxl";
  std::string spice_ticket_file;
  bool spice_no_auth = false;
  std::string spice_tls_dir;
  bool spice_lossy = false;
  std::optional<spice::SpiceConfig> spice;  // resolved (ticket read) when spice_listen is set
  // WebRTC on the service's HTTP server under /desktops/NAME/.
  bool webrtc = false;
  std::string webrtc_token_file;
  std::string webrtc_token;
  uint32_t webrtc_max_viewers = 16;  // browsers at once; the next is refused (WebSocket closed, 1008)
  transport::IceSettings ice;  // the service's [webrtc] table (secrets read), for a WebRTC desktop
  // The VM's sound to its SPICE clients (playback channel) and browsers (an Opus track). A
  // source without sound (the synthetic desktop, a VM without -audiodev dbus) is just silent.
  bool audio = true;
  // The viewers' microphone to the VM (QEMU's AudioInListener) while its guest records: SPICE
  // clients' record channel and the browser's microphone once its user allows it. Off unless
  // asked for: it is a privacy matter.
  bool audio_in = false;
  // Copy and paste between the VM (QEMU's D-Bus clipboard) and its SPICE clients and browsers,
  // text only; each transfer at most clipboard_max_bytes.
  bool clipboard = true;
  uint32_t clipboard_max_bytes = 16u << 20;
  // Record the encoded stream to a file (.h264/.mp4/.mkv).
  std::string record;
  // The command line's --frames: the desktop takes no frames after this many (0: no limit).
  uint64_t max_frames = 0;

  // Everything that, when it changes, needs the desktop restarted: the keys, and the contents of
  // the files they name (a new ticket restarts the desktop's SPICE server).
  std::string fingerprint() const;
};

struct ServiceConfig {
  std::string path;  // where it was read from ("" for a built-in configuration)
  std::string log_level = "info";
  bool log_json = false;
  // Desktops one service runs; a configuration with more is refused (at start and at reload).
  // With webrtc_max_viewers per desktop (and SPICE's one client per server) it bounds viewers too.
  uint32_t max_desktops = 64;
  HttpSettings http;
  EncodeSettings defaults;
  // [webrtc]: NAT traversal for every WebRTC desktop (STUN/TURN, candidate policy, UDP ports).
  transport::IceSettings ice;
  std::string turn_password_file, turn_secret_file;
  std::vector<DesktopConfig> desktops;

  const DesktopConfig* find(const std::string& name) const;
};

struct ConfigError {
  int line = 0;  // 0 when the error has no single place (e.g. an unreadable file)
  int column = 0;
  std::string message;
  std::string to_string(const std::string& path) const;  // "PATH:LINE:COL: message"
};

struct ConfigParse {
  ServiceConfig config;
  std::vector<ConfigError> errors;  // empty: config is valid
  std::vector<std::string> warnings;
  bool ok() const { return errors.empty(); }
  // Every error on its own line, "PATH:LINE:COL: message".
  std::string error_text() const;
};

// `path` names the text in messages and resolves relative file names (ticket, token files).
ConfigParse parse_config(const std::string& text, const std::string& path);
ConfigParse load_config(const std::string& path);

// A token file: the token on its first line, at least 16 characters.
core::Result<std::string> read_token_file(const std::string& path);

// What the config file's keys are, for --help and the docs.
std::string config_help();

}  // namespace vdistream::service
