#include "spice/listen_config.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <charconv>
#include <fstream>
#include <random>

namespace vdistream::spice {

namespace {

bool parse_port(const std::string& text, int& port) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 || value > 65535) return false;
  port = value;
  return true;
}

}  // namespace

std::string ListenAddress::to_string() const {
  if (is_unix()) return "unix:" + unix_path;
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

core::Result<ListenAddress> parse_listen_address(const std::string& text) {
  ListenAddress out;
  if (text.rfind("unix:", 0) == 0) {
    out.unix_path = text.substr(5);
    if (out.unix_path.empty()) return core::Error{"SPICE address 'unix:' needs a socket path (unix:/run/desktop.sock)"};
    if (out.unix_path.size() >= 108)
      return core::Error{fmt::format("SPICE socket path is {} bytes, longer than the 107 a unix socket allows",
                                     out.unix_path.size())};
    return out;
  }
  std::string port_text = text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find("]:");
    if (close == std::string::npos) return core::Error{fmt::format("SPICE address '{}': expected [IPV6]:PORT", text)};
    out.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else if (const size_t colon = text.rfind(':'); colon != std::string::npos) {
    if (text.find(':') != colon) return core::Error{fmt::format("SPICE address '{}': write IPv6 as [ADDRESS]:PORT", text)};
    if (colon > 0) out.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (!parse_port(port_text, out.port))
    return core::Error{fmt::format("SPICE address '{}': port '{}' is not a number from 0 to 65535", text, port_text)};
  return out;
}

core::Result<Ticket> read_ticket_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return core::Error{fmt::format("cannot read the SPICE ticket file {}", path)};
  Ticket ticket;
  std::getline(in, ticket.password);
  while (!ticket.password.empty() && (ticket.password.back() == '\r' || ticket.password.back() == ' '))
    ticket.password.pop_back();
  if (ticket.password.empty()) return core::Error{fmt::format("the SPICE ticket file {} has no password on its first line", path)};
  if (ticket.password.size() > 60)
    return core::Error{fmt::format("the password in {} is {} characters; SPICE tickets hold at most 60",
                                   path, ticket.password.size())};
  std::string line;
  if (std::getline(in, line) && !line.empty()) {
    constexpr std::string_view kKey = "lifetime=";
    int seconds = 0;
    if (line.rfind(kKey, 0) != 0 || !parse_port(line.substr(kKey.size()), seconds) || seconds == 0) {
      // parse_port bounds it to 65535 s, about 18 hours: enough for a ticket.
      return core::Error{fmt::format("{} line 2: expected lifetime=SECONDS (1..65535)", path)};
    }
    ticket.lifetime_seconds = seconds;
  }
  return ticket;
}

std::string generate_password() {
  static constexpr char kAlphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";
  std::random_device random;  // getrandom(2) on Linux
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string out;
  for (int i = 0; i < 16; ++i) out += kAlphabet[pick(random)];
  return out;
}

core::Result<TlsFiles> tls_files_in(const std::string& dir) {
  TlsFiles files{dir + "/ca-cert.pem", dir + "/server-cert.pem", dir + "/server-key.pem", 0};
  for (const std::string* file : {&files.ca_cert, &files.server_cert, &files.server_key}) {
    struct stat st{};
    if (stat(file->c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      return core::Error{fmt::format("SPICE TLS: {} is missing (the directory needs ca-cert.pem, server-cert.pem, "
                                     "server-key.pem)", *file)};
  }
  return files;
}

}  // namespace vdistream::spice
