// How one desktop's SPICE server listens and authenticates: parsed from the command line.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.hpp"

namespace vdistream::spice {

struct ListenAddress {
  std::string host = "127.0.0.1";  // loopback unless the operator says otherwise
  int port = 5900;
  std::string unix_path;  // set: listen on this unix socket instead of TCP
  bool is_unix() const { return !unix_path.empty(); }
  std::string to_string() const;  // "127.0.0.1:5900" or "unix:/run/x.sock"
};

// "ADDRESS:PORT", "[IPV6]:PORT", ":PORT" (loopback), "PORT" or "unix:PATH".
core::Result<ListenAddress> parse_listen_address(const std::string& text);

struct Ticket {
  std::string password;
  int lifetime_seconds = 0;  // 0 = does not expire
};

// A ticket file: the password on the first line; optionally "lifetime=SECONDS" on the second.
// The password never appears in an error message.
core::Result<Ticket> read_ticket_file(const std::string& path);

// A fresh random password (for --demo): 16 characters from [a-z2-9] without look-alikes.
std::string generate_password();

struct TlsFiles {
  std::string ca_cert, server_cert, server_key;  // PEM files
  int port = 0;                                  // TLS listener port (0 = plain port + 1)
};

// DIR holding ca-cert.pem, server-cert.pem and server-key.pem (QEMU's layout).
core::Result<TlsFiles> tls_files_in(const std::string& dir);

}  // namespace vdistream::spice
