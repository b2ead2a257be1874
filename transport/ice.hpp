// NAT traversal for browser viewers: the STUN and TURN servers the page and webrtcbin use, TURN
// credentials (fixed long-term ones, or coturn's time-limited REST credentials derived per viewer
// from a shared secret that never leaves the host), the page's candidate policy and the UDP
// ports webrtcbin may bind. With nothing configured, only host candidates are gathered.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.hpp"

namespace vdistream::transport {

// One ICE server address as browsers write it (RFC 7064/7065):
// "stun:HOST[:PORT]", "turn:HOST[:PORT][?transport=udp|tcp]", "turns:HOST[:PORT][?transport=tcp]".
struct IceUrl {
  std::string scheme;     // "stun", "turn" or "turns"
  std::string host;       // a name, an IPv4 address or an IPv6 address (without brackets)
  uint16_t port = 0;      // 3478, or 5349 for turns, when the URL gives none
  std::string transport;  // "udp", "tcp" or "" (the default: udp for turn, tcp for turns)
  std::string text;       // the URL as given, for the page
};
core::Result<IceUrl> parse_ice_url(std::string_view url);

struct IceSettings {
  std::vector<std::string> stun;  // stun: URLs
  std::vector<std::string> turn;  // turn:/turns: URLs; all share the credentials below
  // Long-term credentials (coturn's lt-cred-mech) ...
  std::string turn_username, turn_password;
  // ... or coturn's use-auth-secret: each viewer gets "EXPIRY:USER" and its HMAC-SHA1.
  std::string turn_secret;
  uint32_t turn_ttl_seconds = 86400;
  bool relay_only = false;  // the page's iceTransportPolicy: "relay" instead of "all"
  // The UDP ports webrtcbin binds for host candidates; 0/0: any the kernel gives.
  uint16_t min_port = 0, max_port = 0;

  bool empty() const { return stun.empty() && turn.empty() && !relay_only && min_port == 0; }
  bool operator==(const IceSettings&) const = default;
};

// Every problem with the settings, one line each (empty: usable).
std::vector<std::string> check_ice_settings(const IceSettings& settings);

// "MIN-MAX" (1024..65535, MIN ≤ MAX) into the settings' port range, or why not.
core::Status parse_port_range(std::string_view text, IceSettings& settings);

struct TurnCredentials {
  std::string username, password;
  int64_t expires_unix = 0;  // 0: they do not expire (long-term credentials)
};
// coturn's REST credentials: username "EXPIRY:USER", password base64(HMAC-SHA1(secret, username)).
TurnCredentials turn_rest_credentials(std::string_view secret, std::string_view user, int64_t now_unix,
                                      uint32_t ttl_seconds);
// The credentials a viewer gets: derived from the secret when there is one, else the long-term ones.
TurnCredentials viewer_turn_credentials(const IceSettings& settings, std::string_view user, int64_t now_unix);

// The page's RTCConfiguration, sent before the offer:
// {"type":"config","iceServers":[{"urls":[...]},{"urls":[...],"username":..,"credential":..}],
//  "iceTransportPolicy":"all"|"relay"}.
std::string ice_config_message(const IceSettings& settings, const TurnCredentials& credentials);

// webrtcbin's forms: "stun://HOST:PORT" and "turn(s)://USER:PASS@HOST:PORT[?transport=tcp]",
// the user and password percent-encoded (a REST username holds a ':').
std::string webrtcbin_stun_uri(const IceUrl& url);
std::string webrtcbin_turn_uri(const IceUrl& url, const TurnCredentials& credentials);

}  // namespace vdistream::transport
