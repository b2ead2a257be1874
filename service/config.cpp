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

namespace vdistream::service {

namespace {

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "true/false";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

// Reads one TOML table: every key must be one the caller asks for; each error names its line.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string where, std::vector<ConfigError>& errors)
      : table_(table), where_(std::move(where)), errors_(errors) {}

  void error_at(const toml::source_region& at, std::string message) {
    errors_.push_back({int(at.begin.line), int(at.begin.column), std::move(message)});
  }

  const toml::node* get(const std::string& key) {
    known_.insert(key);
    return table_.get(key);
  }

  bool read(const std::string& key, std::string& out) {
    const toml::node* n = get(key);
    if (!n) return false;
    if (auto v = n->value<std::string>(); v && n->is_string()) {
      out = *v;
      return true;
    }
    wrong_type(key, *n, "a string");
    return false;
  }
  bool read(const std::string& key, bool& out) {
    const toml::node* n = get(key);
    if (!n) return false;
    if (n->is_boolean()) {
      out = *n->value<bool>();
      return true;
    }
    wrong_type(key, *n, "true or false");
    return false;
  }
  bool read(const std::string& key, uint32_t& out, int64_t min, int64_t max, const char* unit) {
    const toml::node* n = get(key);
    if (!n) return false;
    if (!n->is_integer()) {
      wrong_type(key, *n, fmt::format("an integer ({})", unit));
      return false;
    }
    const int64_t v = *n->value<int64_t>();
    if (v < min || v > max) {
      error_at(n->source(), fmt::format("{}{} = {} is out of range: {}..{} {}", where_, key, v, min, max, unit));
      return false;
    }
    out = uint32_t(v);
    return true;
  }
  bool read(const std::string& key, double& out, double min, double max, const char* unit) {
    const toml::node* n = get(key);
    if (!n) return false;
    if (!n->is_integer() && !n->is_floating_point()) {
      wrong_type(key, *n, fmt::format("a number ({})", unit));
      return false;
    }
    const double v = *n->value<double>();
    if (!(v >= min && v <= max)) {
      error_at(n->source(), fmt::format("{}{} = {} is out of range: {}..{} {}", where_, key, v, min, max, unit));
      return false;
    }
    out = v;
    return true;
  }
  bool read(const std::string& key, std::vector<std::string>& out) {
    const toml::node* n = get(key);
    if (!n) return false;
    const toml::array* a = n->as_array();
    if (!a) {
      wrong_type(key, *n, "an array of strings");
      return false;
    }
    std::vector<std::string> values;
    for (const toml::node& e : *a) {
      if (!e.is_string()) {
        error_at(e.source(), fmt::format("{}{}: every entry must be a string, not {}", where_, key, type_name(e.type())));
        return false;
      }
      values.push_back(*e.value<std::string>());
    }
    out = std::move(values);
    return true;
  }

  // After reading: every key the caller did not ask for is an error.
  void refuse_unknown_keys() {
    for (auto&& [key, node] : table_) {
      if (known_.count(std::string(key.str()))) continue;
      std::string list;
      for (const auto& k : known_) list += (list.empty() ? "" : ", ") + k;
      error_at(key.source(), fmt::format("{}unknown key '{}' (known here: {})", where_, key.str(), list));
    }
  }

  void wrong_type(const std::string& key, const toml::node& n, const std::string& expected) {
    error_at(n.source(), fmt::format("{}{} must be {}, not {}", where_, key, expected, type_name(n.type())));
  }

 private:
  const toml::table& table_;
  std::string where_;
  std::vector<ConfigError>& errors_;
  std::set<std::string> known_;
};

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

// Checks that need the whole settings (after [defaults] and the desktop's own keys merged).
void check_encode_settings(const EncodeSettings& s, const std::string& where, int line,
                           std::vector<ConfigError>& errors) {
  if (s.codec != "h264")
    errors.push_back({line, 0, fmt::format("{}codec '{}' is not supported by this version (h264)", where, s.codec)});
  encode::H264Profile profile;
  if (!encode::parse_profile(s.profile, profile))
    errors.push_back({line, 0, fmt::format("{}profile '{}': expected constrained-baseline or main", where, s.profile)});
  if (!(s.min_bitrate_kbps <= s.bitrate_kbps && s.bitrate_kbps <= s.max_bitrate_kbps))
    errors.push_back({line, 0, fmt::format("{}bitrate bounds do not hold: min_bitrate_kbps {} <= bitrate_kbps {} <= "
                                           "max_bitrate_kbps {}",
                                           where, s.min_bitrate_kbps, s.bitrate_kbps, s.max_bitrate_kbps)});
  const auto& known = encode::EncoderRegistry::default_preference();
  for (const auto& e : s.encoders)
    if (std::find(known.begin(), known.end(), e) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      errors.push_back({line, 0, fmt::format("{}encoder '{}' is unknown (known: {})", where, e, list)});
    }
}

std::string resolve(const std::string& file, const std::string& config_path) {
  if (file.empty() || file.front() == '/' || config_path.empty()) return file;
  return (std::filesystem::path(config_path).parent_path() / file).lexically_normal().string();
}


bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return name.front() != '.';
}

std::string source_error(const std::string& spec) {
  if (spec.rfind("synthetic:", 0) == 0) {
    auto c = capture::parse_synthetic_spec(spec);
    return c ? "" : c.error();
  }
  if (capture::qemu::is_qemu_spec(spec)) {
    auto c = capture::qemu::parse_qemu_spec(spec);
    return c ? "" : c.error();
  }
  return fmt::format("'{}' is not a source: expected synthetic:WORKLOAD[@WxH][@FPS], qemu-dbus:ADDRESS or "
                     "qemu-qmp:SOCKET",
                     spec);
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
  r.read("record", d.record);
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
  }
  if (!d.record.empty()) d.record = resolve(d.record, path);
  return d;
}

// Two desktops, or a desktop and the HTTP server, on one port or socket.
void check_duplicates(const ServiceConfig& c, std::vector<ConfigError>& errors) {
  std::map<std::string, const DesktopConfig*> names;
  std::map<std::string, std::string> endpoints;  // "host:port" / "unix:path" -> who
  auto claim = [&](const std::string& endpoint, const std::string& who, int line) {
    auto [it, inserted] = endpoints.emplace(endpoint, who);
    if (!inserted)
      errors.push_back({line, 0, fmt::format("{} listens on {}, which {} already uses", who, endpoint, it->second)});
  };
  // Ports by number: 0.0.0.0:5900 and 127.0.0.1:5900 collide as surely as equal addresses.
  auto port_key = [](int port) { return fmt::format("TCP port {}", port); };
  if (c.http.port > 0) claim(port_key(c.http.port), "[http]", 0);
  for (const auto& d : c.desktops) {
    auto [it, inserted] = names.emplace(d.name, &d);
    if (!inserted)
      errors.push_back({d.line, 0, fmt::format("desktop name '{}' is used twice (first on line {})", d.name,
                                               it->second->line)});
    if (!d.spice) continue;
    const std::string who = fmt::format("desktop '{}' (line {})", d.name, d.line);
    const auto& l = d.spice->listen;
    if (l.is_unix()) {
      claim("unix:" + l.unix_path, who, d.line);
      continue;
    }
    if (l.port != 0) claim(port_key(l.port), who, d.line);
    if (d.spice->tls) claim(port_key(d.spice->tls->port ? d.spice->tls->port : l.port + 1), who + " TLS", d.line);
  }
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
  s << '\n' << webrtc << ' ' << webrtc_token_file << ' ' << std::hash<std::string>{}(webrtc_token) << '\n' << record
    << ' ' << max_frames;
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
    r.refuse_unknown_keys();
    core::LogLevel parsed;
    if (!core::parse_log_level(c.log_level, parsed))
      errors.push_back({int(level->source().begin.line), 0,
                        fmt::format("[service] log_level '{}': expected trace, debug, info, warn, error or off",
                                    c.log_level)});
  }
  if (const toml::table* t = table_at("http")) read_http(*t, path, c, errors);
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
    }
  }
  top.refuse_unknown_keys();
  check_duplicates(c, errors);
  if (c.desktops.empty()) out.warnings.push_back("no [[desktop]] tables: the service serves nothing until a reload adds one");
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
  [service]   log_level = "info", log_json = false
  [http]      listen = "127.0.0.1:8080", token_file = "api.token" (or no_auth = true),
              tls_cert = "...", tls_key = "..."      the control API, /metrics and WebRTC
  [defaults]  encoders = ["nvenc", "onevpl", "vaapi", "software"], codec = "h264",
              profile = "constrained-baseline", bitrate_kbps = 6000, min_bitrate_kbps = 300,
              max_bitrate_kbps = 20000, max_fps = 60, intra_refresh = false
  [[desktop]] name = "win10", source = "qemu-dbus:unix:path=/run/libvirt/qemu/dbus/1-win10-dbus.sock",
              spice = "127.0.0.1:5901", spice_mode = "qxl", spice_ticket_file = "win10.ticket"
              (or spice_no_auth = true), spice_tls_dir = "...", spice_lossy = false, webrtc = true,
              webrtc_token_file = "...", record = "file.mp4", and any [defaults] key
Relative file names are relative to the configuration file's directory.)";
}

core::Result<std::string> read_token_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return core::Error{fmt::format("cannot read the token file {}", path)};
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.size() < 16)
    return core::Error{fmt::format("the token in {} is {} characters; use at least 16 (e.g. openssl rand -hex 16)", path,
                                   token.size())};
  return token;
}

}  // namespace vdistream::service
