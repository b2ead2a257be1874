#include "service/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "capture/qemu/qemu_source.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "encode/encoder.hpp"
#include "encode/probe.hpp"
#include "service/config_checks.hpp"
#include "service/toml_table.hpp"

namespace vdistream::service {

namespace {

void read_encode_settings(TableReader& r, EncodeSettings& s) {
  r.read("encoders", s.encoders);
  r.read("codec", s.codec);
  r.read("profile", s.profile);
  r.read("bitrate_kbps", s.bitrate_kbps, 100, 500000, "kbit/s");
  r.read("min_bitrate_kbps", s.min_bitrate_kbps, 100, 500000, "kbit/s");
  r.read("max_bitrate_kbps", s.max_bitrate_kbps, 100, 500000, "kbit/s");
  r.read("max_fps", s.max_fps, 1, 240, "frames per second");
  r.read("intra_refresh", s.intra_refresh);
}

void read_http(const toml::table& t, const std::string& path, ServiceConfig& c, std::vector<ConfigError>& errors) {
  TableReader r(t, "[http] ", errors);
  HttpSettings& h = c.http;
  const toml::node* listen = r.get("listen");
  r.read("listen", h.listen);
  r.read("token_file", h.token_file);
  r.read("no_auth", h.no_auth);
  r.read("tls_cert", h.tls_cert);
  r.read("tls_key", h.tls_key);
  r.refuse_unknown_keys();
  const int line = listen ? int(listen->source().begin.line) : int(t.source().begin.line);
  if (!h.listen.empty()) {
    auto addr = spice::parse_listen_address(h.listen);
    if (!addr || addr->is_unix()) {
      errors.push_back({line, 0, fmt::format("[http] listen '{}' must be ADDRESS:PORT (or :PORT for loopback)", h.listen)});
    } else {
      h.host = addr->host;
      h.port = addr->port;
    }
  }
  if (h.no_auth && !h.token_file.empty())
    errors.push_back({line, 0, "[http] no_auth = true and token_file contradict each other: give one"});
  if (!h.listen.empty() && !h.no_auth) {
    if (h.token_file.empty()) {
      errors.push_back({line, 0, "[http] needs token_file (the API's bearer token), or no_auth = true"});
    } else {
      h.token_file = resolve(h.token_file, path);
      auto token = read_token_file(h.token_file);
      if (!token)
        errors.push_back({line, 0, "[http] " + token.error()});
      else
        h.token = *token;
    }
  }
  if (h.tls_cert.empty() != h.tls_key.empty())
    errors.push_back({line, 0, "[http] TLS needs both tls_cert and tls_key"});
  for (std::string* f : {&h.tls_cert, &h.tls_key}) {
    if (f->empty()) continue;
    *f = resolve(*f, path);
    if (!std::filesystem::exists(*f)) errors.push_back({line, 0, fmt::format("[http] {} does not exist", *f)});
  }
}

void read_webrtc(const toml::table& t, const std::string& path, ServiceConfig& c, std::vector<ConfigError>& errors) {
  TableReader r(t, "[webrtc] ", errors);
  transport::IceSettings& ice = c.ice;
  const int line = int(t.source().begin.line);
  const size_t errors_before = errors.size();
  r.read("stun", ice.stun);
  r.read("turn", ice.turn);
  r.read("turn_username", ice.turn_username);
  r.read("turn_password_file", c.turn_password_file);
  r.read("turn_secret_file", c.turn_secret_file);
  r.read("turn_credential_ttl", ice.turn_ttl_seconds, 60, 7 * 86400, "seconds");
  std::string policy = "all", ports;
  const toml::node* policy_node = r.get("ice_policy");
  r.read("ice_policy", policy);
  const toml::node* ports_node = r.get("udp_ports");
  r.read("udp_ports", ports);
  r.refuse_unknown_keys();
  if (errors.size() != errors_before) return;
  if (policy != "all" && policy != "relay")
    errors.push_back({int(policy_node->source().begin.line), 0,
                      fmt::format("[webrtc] ice_policy '{}': expected \"all\" or \"relay\"", policy)});
  ice.relay_only = policy == "relay";
  if (!ports.empty())
    if (core::Status s = transport::parse_port_range(ports, ice); !s)
      errors.push_back({int(ports_node->source().begin.line), 0, "[webrtc] " + s.error()});
  if (!c.turn_password_file.empty()) c.turn_password_file = resolve(c.turn_password_file, path);
  if (!c.turn_secret_file.empty()) c.turn_secret_file = resolve(c.turn_secret_file, path);
  for (const auto& problem : read_turn_secrets(c.turn_password_file, c.turn_secret_file, ice))
    errors.push_back({line, 0, "[webrtc] " + problem});
  if (errors.size() != errors_before) return;
  for (const auto& problem : transport::check_ice_settings(ice)) errors.push_back({line, 0, "[webrtc] " + problem});
}

DesktopConfig read_desktop(const toml::table& t, size_t index, const std::string& path, const ServiceConfig& c,
                           std::vector<ConfigError>& errors) {
  DesktopConfig d;
  d.line = int(t.source().begin.line);
  d.encode = c.defaults;
  std::string name;
  if (const toml::node* n = t.get("name"); n && n->is_string()) name = *n->value<std::string>();
  const std::string where = name.empty() ? fmt::format("desktop #{}: ", index + 1) : fmt::format("desktop '{}': ", name);
  TableReader r(t, where, errors);
  const size_t errors_before = errors.size();

  if (!r.read("name", d.name) && !r.get("name")) errors.push_back({d.line, 0, where + "needs a name = \"...\""});
  if (!d.name.empty() && !valid_name(d.name))
    errors.push_back({int(r.get("name")->source().begin.line), 0,
                      fmt::format("{}name must be 1-64 letters, digits, '-', '_' or '.'", where)});
  const toml::node* source = r.get("source");
  if (!r.read("source", d.source) && !source) errors.push_back({d.line, 0, where + "needs source = \"...\""});
  if (!d.source.empty())
    if (std::string e = source_error(d.source); !e.empty())
      errors.push_back({int(source->source().begin.line), int(source->source().begin.column), where + e});
  read_encode_settings(r, d.encode);
  const toml::node* spice_node = r.get("spice");
  r.read("spice", d.spice_listen);
  r.read("spice_mode", d.spice_mode);
  const toml::node* ticket_node = r.get("spice_ticket_file");
  r.read("spice_ticket_file", d.spice_ticket_file);
  r.read("spice_no_auth", d.spice_no_auth);
  r.read("spice_tls_dir", d.spice_tls_dir);
  r.read("spice_lossy", d.spice_lossy);
  const toml::node* webrtc_node = r.get("webrtc");
  r.read("webrtc", d.webrtc);
  r.read("webrtc_token_file", d.webrtc_token_file);
  r.read("webrtc_max_viewers", d.webrtc_max_viewers, 1, 256, "viewers");
  r.read("record", d.record);
  r.read("audio", d.audio);
  r.read("audio_in", d.audio_in);
  r.read("clipboard", d.clipboard);
  r.read("clipboard_max_bytes", d.clipboard_max_bytes, 1, int64_t(1) << 30, "bytes");
  r.refuse_unknown_keys();
  check_encode_settings(d.encode, where, d.line, errors);
  if (errors.size() != errors_before) return d;  // the checks below assume well-typed keys

  if (!d.spice_listen.empty()) {
    const int line = int(spice_node->source().begin.line);
    spice::SpiceOptions o;
    o.address = d.spice_listen;
    o.mode = d.spice_mode;
    o.no_auth = d.spice_no_auth;
    o.ticket_file = resolve(d.spice_ticket_file, path);
    o.tls_dir = resolve(d.spice_tls_dir, path);
    o.lossy = d.spice_lossy;
    if (o.ticket_file.empty() && !o.no_auth) {
      errors.push_back({line, 0, where + "SPICE needs spice_ticket_file (its password), or spice_no_auth = true"});
    } else if (!o.ticket_file.empty() && o.no_auth) {
      errors.push_back({line, 0, where + "spice_no_auth = true and spice_ticket_file contradict each other: give one"});
    } else {
      auto resolved = spice::spice_config_from_options(o, d.name);
      if (!resolved) {
        const int at = ticket_node && resolved.error().find("ticket") != std::string::npos
                           ? int(ticket_node->source().begin.line)
                           : line;
        errors.push_back({at, 0, where + resolved.error()});
      } else {
        d.spice = *resolved;
        d.spice->audio = d.audio;
        d.spice_ticket_file = o.ticket_file;
        d.spice_tls_dir = o.tls_dir;
      }
    }
  } else if (!d.spice_ticket_file.empty() || d.spice_no_auth || !d.spice_tls_dir.empty() || d.spice_lossy) {
    errors.push_back({d.line, 0, where + "spice_* keys without spice = \"ADDRESS:PORT\""});
  }
  if (d.webrtc) {
    const int line = int(webrtc_node->source().begin.line);
    if (c.http.listen.empty())
      errors.push_back({line, 0, where + "webrtc = true needs [http] listen = \"ADDRESS:PORT\""});
    if (!d.webrtc_token_file.empty()) {
      d.webrtc_token_file = resolve(d.webrtc_token_file, path);
      auto token = read_token_file(d.webrtc_token_file);
      if (!token)
        errors.push_back({line, 0, where + token.error()});
      else
        d.webrtc_token = *token;
    } else if (!c.http.no_auth) {
      d.webrtc_token = c.http.token;  // viewers use the service's token unless the desktop has its own
    }
    d.ice = c.ice;
  }
  if (!d.record.empty()) d.record = resolve(d.record, path);
  return d;
}

}  // namespace

std::string DesktopConfig::fingerprint() const {
  std::ostringstream s;
  s << name << '\n' << source << '\n';
  for (const auto& e : encode.encoders) s << e << ',';
  s << '\n'
    << encode.codec << ' ' << encode.profile << ' ' << encode.bitrate_kbps << ' ' << encode.min_bitrate_kbps << ' '
    << encode.max_bitrate_kbps << ' ' << encode.max_fps << ' ' << encode.intra_refresh << '\n'
    << spice_listen << ' ' << spice_mode << ' ' << spice_ticket_file << ' ' << spice_no_auth << ' ' << spice_tls_dir
    << ' ' << spice_lossy << '\n';
  if (spice && spice->ticket) s << std::hash<std::string>{}(spice->ticket->password) << ' ' << spice->ticket->lifetime_seconds;
  s << '\n' << webrtc << ' ' << webrtc_token_file << ' ' << std::hash<std::string>{}(webrtc_token) << ' '
    << webrtc_max_viewers << '\n';
  for (const auto& url : ice.stun) s << url << ',';
  for (const auto& url : ice.turn) s << url << ',';
  s << ' ' << ice.turn_username << ' ' << std::hash<std::string>{}(ice.turn_password + '\n' + ice.turn_secret) << ' '
    << ice.turn_ttl_seconds << ' ' << ice.relay_only << ' ' << ice.min_port << '-' << ice.max_port << '\n' << record
    << ' ' << audio << ' ' << audio_in << ' ' << clipboard << ' ' << clipboard_max_bytes << ' ' << max_frames;
  return s.str();
}

const DesktopConfig* ServiceConfig::find(const std::string& name) const {
  for (const auto& d : desktops)
    if (d.name == name) return &d;
  return nullptr;
}

std::string ConfigError::to_string(const std::string& path) const {
  const std::string where = path.empty() ? "config" : path;
  if (line <= 0) return fmt::format("{}: {}", where, message);
  if (column <= 0) return fmt::format("{}:{}: {}", where, line, message);
  return fmt::format("{}:{}:{}: {}", where, line, column, message);
}

std::string ConfigParse::error_text() const {
  std::string out;
  for (const auto& e : errors) out += e.to_string(config.path) + "\n";
  return out;
}

ConfigParse parse_config(const std::string& text, const std::string& path) {
  ConfigParse out;
  out.config.path = path;
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    out.errors.push_back({int(e.source().begin.line), int(e.source().begin.column), std::string(e.description())});
    return out;
  }
  ServiceConfig& c = out.config;
  auto& errors = out.errors;
  TableReader top(root, "", errors);
  auto table_at = [&](const std::string& key) -> const toml::table* {
    const toml::node* n = top.get(key);
    if (!n) return nullptr;
    if (const toml::table* t = n->as_table()) return t;
    top.wrong_type(key, *n, "a table ([" + key + "])");
    return nullptr;
  };
  if (const toml::table* t = table_at("service")) {
    TableReader r(*t, "[service] ", errors);
    const toml::node* level = r.get("log_level");
    r.read("log_level", c.log_level);
    r.read("log_json", c.log_json);
    r.read("max_desktops", c.max_desktops, 1, 1024, "desktops");
    r.refuse_unknown_keys();
    core::LogLevel parsed;
    if (!core::parse_log_level(c.log_level, parsed))
      errors.push_back({int(level->source().begin.line), 0,
                        fmt::format("[service] log_level '{}': expected trace, debug, info, warn, error or off",
                                    c.log_level)});
  }
  if (const toml::table* t = table_at("http")) read_http(*t, path, c, errors);
  if (const toml::table* t = table_at("webrtc")) read_webrtc(*t, path, c, errors);
  if (const toml::table* t = table_at("defaults")) {
    TableReader r(*t, "[defaults] ", errors);
    read_encode_settings(r, c.defaults);
    r.refuse_unknown_keys();
    check_encode_settings(c.defaults, "[defaults] ", int(t->source().begin.line), errors);
  }
  if (const toml::node* n = top.get("desktop")) {
    const toml::array* a = n->as_array();
    if (!a) {
      top.wrong_type("desktop", *n, "an array of tables ([[desktop]])");
    } else {
      for (size_t i = 0; i < a->size(); ++i) {
        const toml::table* t = (*a)[i].as_table();
        if (!t) {
          errors.push_back({int((*a)[i].source().begin.line), 0, "desktop entries must be [[desktop]] tables"});
          continue;
        }
        c.desktops.push_back(read_desktop(*t, i, path, c, errors));
      }
      if (c.desktops.size() > c.max_desktops)
        errors.push_back({c.desktops[c.max_desktops].line, 0,
                          fmt::format("{} desktops: this service runs at most {} ([service] max_desktops, 1-1024)",
                                      c.desktops.size(), c.max_desktops)});
    }
  }
  top.refuse_unknown_keys();
  check_duplicates(c, errors);
  if (c.desktops.empty()) out.warnings.push_back("no [[desktop]] tables: the service serves nothing until a reload adds one");
  for (std::string& w : security_warnings(c)) out.warnings.push_back(std::move(w));
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
  return out;
}

ConfigParse load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ConfigParse out;
    out.config.path = path;
    out.errors.push_back({0, 0, "cannot read the configuration file"});
    return out;
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), path);
}

std::string config_help() {
  return R"(Configuration file (TOML), e.g. contrib/vdistreamd.example.toml:
  [service]   log_level = "info", log_json = false, max_desktops = 64
  [http]      listen = "127.0.0.1:8080", token_file = "api.token" (or no_auth = true),
              tls_cert = "...", tls_key = "..."      the control API, /metrics and WebRTC
  [webrtc]    stun = ["stun:stun.example.org:3478"], turn = ["turn:turn.example.org:3478"],
              turn_username = "..." and turn_password_file = "...", or turn_secret_file = "..."
              (coturn's static-auth-secret: time-limited credentials per viewer),
              turn_credential_ttl = 86400, ice_policy = "all" (or "relay"), udp_ports = "50000-50999"
  [defaults]  encoders = ["nvenc", "onevpl", "vaapi", "software"], codec = "h264",
              profile = "constrained-baseline", bitrate_kbps = 6000, min_bitrate_kbps = 300,
              max_bitrate_kbps = 20000, max_fps = 60, intra_refresh = false
  [[desktop]] name = "win10", source = "qemu-dbus:unix:path=/run/libvirt/qemu/dbus/1-win10-dbus.sock",
              spice = "127.0.0.1:5901", spice_mode = "qxl", spice_ticket_file = "win10.ticket"
              (or spice_no_auth = true), spice_tls_dir = "...", spice_lossy = false, webrtc = true,
              webrtc_token_file = "...", webrtc_max_viewers = 16 (browsers at once), record = "file.mp4", audio = true (the VM's sound to
              SPICE and browsers), audio_in = false (the viewers' microphone to the VM, SPICE
              record channel and the browser's microphone once its user allows it), clipboard = true (copy and paste of text with SPICE and
              browsers), clipboard_max_bytes = 16777216, and any [defaults] key
Relative file names are relative to the configuration file's directory.)";
}

}  // namespace vdistream::service
