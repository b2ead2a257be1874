#include "service/config_checks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include <sys/stat.h>

#include "capture/qemu/qemu_source.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "encode/encoder.hpp"
#include "encode/probe.hpp"

namespace vdistream::service {

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

std::string resolve(const std::string& file, const std::string& config_path) {
  if (file.empty() || file.front() == '/' || config_path.empty()) return file;
  return (std::filesystem::path(config_path).parent_path() / file).lexically_normal().string();
}

core::Result<std::string> read_token_file(const std::string& path) {
  auto token = read_secret_file(path, "token");
  if (!token) return token;
  if (token->size() < 16)
    return core::Error{fmt::format("the token in {} is {} characters; use at least 16 (e.g. openssl rand -hex 16)", path,
                                   token->size())};
  return token;
}

core::Result<std::string> read_secret_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return core::Error{fmt::format("cannot read the {} file {}", what, path)};
  std::string secret;
  std::getline(in, secret);
  while (!secret.empty() && (secret.back() == '\r' || secret.back() == ' ')) secret.pop_back();
  if (secret.empty()) return core::Error{fmt::format("the {} file {} is empty (its first line is the {})", what, path, what)};
  return secret;
}

std::vector<std::string> read_turn_secrets(const std::string& password_file, const std::string& secret_file,
                                           transport::IceSettings& ice) {
  std::vector<std::string> problems;
  for (auto [file, what, into] : {std::tuple{&password_file, "TURN password", &ice.turn_password},
                                  std::tuple{&secret_file, "TURN shared secret", &ice.turn_secret}}) {
    if (file->empty()) continue;
    if (auto secret = read_secret_file(*file, what))
      *into = *secret;
    else
      problems.push_back(secret.error());
  }
  return problems;
}

std::vector<std::string> http_exposure_warnings(const HttpSettings& h) {
  std::vector<std::string> warnings;
  if (h.listen.empty()) return warnings;
  const std::string at = h.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", h.host, h.port)
                                                               : fmt::format("{}:{}", h.host, h.port);
  if (h.no_auth)
    warnings.push_back(fmt::format("[http] no_auth (--no-auth): the control API, /metrics and every WebRTC desktop on "
                                   "{} answer anyone who can reach them, without a token",
                                   at));
  const bool loopback = h.host.rfind("127.", 0) == 0 || h.host == "::1" || h.host == "localhost";
  if (!loopback && h.tls_cert.empty())
    warnings.push_back(fmt::format("[http] {} is reachable from other hosts without TLS: tokens and desktops cross the "
                                   "network unencrypted, and browsers allow microphone and clipboard only over HTTPS; "
                                   "give tls_cert and tls_key (--tls-cert, --tls-key)",
                                   at));
  return warnings;
}

std::vector<std::string> security_warnings(const ServiceConfig& c) {
  std::vector<std::string> warnings = http_exposure_warnings(c.http);
  for (std::string& w : exposed_secret_files(c)) warnings.push_back(std::move(w));
  return warnings;
}

std::vector<std::string> exposed_secret_files(const ServiceConfig& c) {
  std::vector<std::pair<std::string, std::string>> files{{c.http.token_file, "[http] token_file"},
                                                         {c.http.tls_key, "[http] tls_key"},
                                                         {c.turn_password_file, "[webrtc] turn_password_file"},
                                                         {c.turn_secret_file, "[webrtc] turn_secret_file"}};
  for (const DesktopConfig& d : c.desktops) {
    files.push_back({d.spice_ticket_file, "desktop '" + d.name + "': spice_ticket_file"});
    files.push_back({d.webrtc_token_file, "desktop '" + d.name + "': webrtc_token_file"});
    if (d.spice && d.spice->tls) files.push_back({d.spice->tls->server_key, "desktop '" + d.name + "': spice_tls_dir's key"});
  }
  std::vector<std::string> warnings;
  std::set<std::string> seen;
  for (const auto& [file, what] : files) {
    struct stat st{};
    if (file.empty() || !seen.insert(file).second || stat(file.c_str(), &st) != 0) continue;
    if (!(st.st_mode & (S_IRWXG | S_IRWXO))) continue;
    warnings.push_back(fmt::format("{} {} holds a secret but its mode is {:04o}: others on this host can read or "
                                   "change it; chmod 600 {}",
                                   what, file, st.st_mode & 07777, file));
  }
  return warnings;
}

}  // namespace vdistream::service
