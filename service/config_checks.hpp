// What must hold in vdistreamd's configuration beyond each key's type and range: encoder settings
// as a whole, desktop names, source specs, ports and sockets claimed twice; and the files it names
// (relative to the configuration file, token files). config.cpp reads, this checks.
#pragma once

#include <string>
#include <vector>

#include "service/config.hpp"

namespace vdistream::service {

// Checks that need the whole settings (after [defaults] and the desktop's own keys merged).
void check_encode_settings(const EncodeSettings& s, const std::string& where, int line,
                           std::vector<ConfigError>& errors);
// Two desktops with one name, or two listeners (desktops' SPICE, [http]) on one port or socket.
void check_duplicates(const ServiceConfig& c, std::vector<ConfigError>& errors);
// A desktop name: 1-64 of [A-Za-z0-9._-], not starting with a dot (it names files and URLs).
bool valid_name(const std::string& name);
// Why a source spec is not one ("" when it is).
std::string source_error(const std::string& spec);
// A secret's file (a token, a TURN password or shared secret): its first line, which must not be empty.
core::Result<std::string> read_secret_file(const std::string& path, const std::string& what);
// The TURN password and coturn's shared secret read from the files named (empty: none) into
// `ice`; every problem, one line each.
std::vector<std::string> read_turn_secrets(const std::string& password_file, const std::string& secret_file,
                                           transport::IceSettings& ice);
// What the two below say, for a whole configuration: what is logged at start and at reload.
std::vector<std::string> security_warnings(const ServiceConfig& c);
// A warning for every secret the configuration names (token files, SPICE tickets, TURN
// secrets, TLS private keys) whose file others than its owner may read or write: what and how to fix.
std::vector<std::string> exposed_secret_files(const ServiceConfig& c);
// Warnings for an [http] server that answers without a token, or that is reachable from other
// hosts without TLS (tokens in clear; browsers refuse microphone and clipboard there).
std::vector<std::string> http_exposure_warnings(const HttpSettings& h);
// A file named in the configuration: relative to the configuration file's folder.
std::string resolve(const std::string& file, const std::string& config_path);

}  // namespace vdistream::service
