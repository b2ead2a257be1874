#include "transport/ice.hpp"

#include <fmt/format.h>
#include <glib.h>

#include <charconv>
#include <memory>
#include <nlohmann/json.hpp>

#include "glib/ptr.hpp"

namespace vdistream::transport {

namespace {

bool parse_number(std::string_view text, uint32_t& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host)
    if (!(g_ascii_isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':')) return false;
  return true;
}

std::string escape(std::string_view text) {
  g_autofree char* escaped = g_uri_escape_string(std::string(text).c_str(), nullptr, FALSE);
  return escaped;
}

std::string host_for_uri(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

core::Result<IceUrl> parse_ice_url(std::string_view url) {
  IceUrl u;
  u.text = std::string(url);
  const size_t colon = url.find(':');
  if (colon == std::string_view::npos)
    return core::Error{fmt::format("'{}': expected stun:HOST[:PORT], turn:HOST[:PORT][?transport=udp|tcp] or turns:...", url)};
  u.scheme = std::string(url.substr(0, colon));
  if (u.scheme != "stun" && u.scheme != "turn" && u.scheme != "turns")
    return core::Error{fmt::format("'{}': the scheme must be stun, turn or turns, not '{}'", url, u.scheme)};
  std::string_view rest = url.substr(colon + 1);
  if (rest.substr(0, 2) == "//")
    return core::Error{fmt::format("'{}': write {}:HOST:PORT, without '//' (RFC 7064/7065)", url, u.scheme)};
  if (const size_t q = rest.find('?'); q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    if (u.scheme == "stun") return core::Error{fmt::format("'{}': a stun: URL takes no query", url)};
    if (query.substr(0, 10) != "transport=")
      return core::Error{fmt::format("'{}': the only query is ?transport=udp or ?transport=tcp", url)};
    u.transport = std::string(query.substr(10));
    if (u.transport != "udp" && u.transport != "tcp")
      return core::Error{fmt::format("'{}': transport must be udp or tcp, not '{}'", url, u.transport)};
    if (u.scheme == "turns" && u.transport == "udp")
      return core::Error{fmt::format("'{}': turns: (TLS) runs over tcp", url)};
  }
  u.port = u.scheme == "turns" ? 5349 : 3478;
  std::string_view host = rest, port;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:PORT
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return core::Error{fmt::format("'{}': unclosed '[' around an IPv6 address", url)};
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return core::Error{fmt::format("'{}': expected ':PORT' after ']'", url)};
      port = after.substr(1);
      if (port.empty()) return core::Error{fmt::format("'{}': empty port", url)};
    }
  } else if (const size_t c = rest.rfind(':'); c != std::string_view::npos) {
    host = rest.substr(0, c);
    port = rest.substr(c + 1);
    if (host.find(':') != std::string_view::npos)
      return core::Error{fmt::format("'{}': put an IPv6 address in brackets: {}:[ADDRESS]:PORT", url, u.scheme)};
    if (port.empty()) return core::Error{fmt::format("'{}': empty port", url)};
  }
  if (!port.empty()) {
    uint32_t p = 0;
    if (!parse_number(port, p) || p == 0 || p > 65535)
      return core::Error{fmt::format("'{}': port '{}' is not 1-65535", url, port)};
    u.port = uint16_t(p);
  }
  if (!valid_host(host)) return core::Error{fmt::format("'{}': '{}' is not a host name or address", url, host)};
  u.host = std::string(host);
  return u;
}

core::Status parse_port_range(std::string_view text, IceSettings& settings) {
  const size_t dash = text.find('-');
  uint32_t lo = 0, hi = 0;
  if (dash == std::string_view::npos || !parse_number(text.substr(0, dash), lo) ||
      !parse_number(text.substr(dash + 1), hi))
    return core::Error{fmt::format("UDP ports '{}': expected MIN-MAX, e.g. 50000-50999", text)};
  if (lo < 1024 || hi > 65535 || lo > hi)
    return core::Error{fmt::format("UDP ports '{}': need 1024 <= MIN <= MAX <= 65535", text)};
  settings.min_port = uint16_t(lo);
  settings.max_port = uint16_t(hi);
  return core::Status::success();
}

std::vector<std::string> check_ice_settings(const IceSettings& s) {
  std::vector<std::string> problems;
  for (const auto& url : s.stun) {
    auto u = parse_ice_url(url);
    if (!u)
      problems.push_back("STUN server " + u.error());
    else if (u->scheme != "stun")
      problems.push_back(fmt::format("STUN server '{}': a STUN server's URL starts with stun:", url));
  }
  for (const auto& url : s.turn) {
    auto u = parse_ice_url(url);
    if (!u)
      problems.push_back("TURN server " + u.error());
    else if (u->scheme == "stun")
      problems.push_back(fmt::format("TURN server '{}': a TURN server's URL starts with turn: or turns:", url));
  }
  const bool long_term = !s.turn_username.empty() || !s.turn_password.empty();
  if (!s.turn.empty()) {
    if (long_term && !s.turn_secret.empty())
      problems.push_back("TURN: give either a username and password or a shared secret, not both");
    else if (!s.turn_secret.empty())
      ;  // REST credentials per viewer
    else if (s.turn_username.empty() || s.turn_password.empty())
      problems.push_back("TURN servers need credentials: a username and a password, or coturn's shared secret "
                         "(static-auth-secret)");
  } else if (long_term || !s.turn_secret.empty()) {
    problems.push_back("TURN credentials without a TURN server");
  }
  if (s.turn_ttl_seconds < 60 || s.turn_ttl_seconds > 7 * 86400)
    problems.push_back(fmt::format("TURN credential lifetime {} s: need 60 s to 7 days", s.turn_ttl_seconds));
  if (s.relay_only && s.turn.empty())
    problems.push_back("the relay-only candidate policy needs a TURN server (browsers would find no candidate)");
  if ((s.min_port == 0) != (s.max_port == 0) || s.min_port > s.max_port)
    problems.push_back(fmt::format("UDP ports {}-{}: need MIN <= MAX", s.min_port, s.max_port));
  return problems;
}

TurnCredentials turn_rest_credentials(std::string_view secret, std::string_view user, int64_t now_unix,
                                      uint32_t ttl_seconds) {
  TurnCredentials c;
  c.expires_unix = now_unix + ttl_seconds;
  c.username = fmt::format("{}:{}", c.expires_unix, user);
  std::unique_ptr<GHmac, glib::Unref<g_hmac_unref>> hmac(
      g_hmac_new(G_CHECKSUM_SHA1, reinterpret_cast<const guchar*>(secret.data()), secret.size()));
  g_hmac_update(hmac.get(), reinterpret_cast<const guchar*>(c.username.data()), gssize(c.username.size()));
  guint8 digest[20];
  gsize length = sizeof digest;
  g_hmac_get_digest(hmac.get(), digest, &length);
  g_autofree char* b64 = g_base64_encode(digest, length);
  c.password = b64;
  return c;
}

TurnCredentials viewer_turn_credentials(const IceSettings& s, std::string_view user, int64_t now_unix) {
  if (s.turn.empty()) return {};
  if (!s.turn_secret.empty()) return turn_rest_credentials(s.turn_secret, user, now_unix, s.turn_ttl_seconds);
  return {s.turn_username, s.turn_password, 0};
}

std::string ice_config_message(const IceSettings& s, const TurnCredentials& credentials) {
  nlohmann::json servers = nlohmann::json::array();
  if (!s.stun.empty()) servers.push_back({{"urls", s.stun}});
  if (!s.turn.empty())
    servers.push_back({{"urls", s.turn}, {"username", credentials.username}, {"credential", credentials.password}});
  nlohmann::json m = {{"type", "config"},
                      {"iceServers", servers},
                      {"iceTransportPolicy", s.relay_only ? "relay" : "all"}};
  return m.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // a secret file of other bytes: U+FFFD, not a throw
}

std::string webrtcbin_stun_uri(const IceUrl& url) {
  return fmt::format("stun://{}:{}", host_for_uri(url.host), url.port);
}

std::string webrtcbin_turn_uri(const IceUrl& url, const TurnCredentials& credentials) {
  std::string uri = fmt::format("{}://{}:{}@{}:{}", url.scheme, escape(credentials.username),
                                escape(credentials.password), host_for_uri(url.host), url.port);
  if (!url.transport.empty()) uri += "?transport=" + url.transport;
  return uri;
}

}  // namespace vdistream::transport
