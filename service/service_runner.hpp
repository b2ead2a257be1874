// vdistreamd as a service: every desktop of a configuration, the HTTP server with the control
// API and /metrics, SIGHUP reloads (a bad file keeps the running configuration), SIGTERM/SIGINT
// stop cleanly.
#pragma once

#include <functional>
#include <string>

#include "service/config.hpp"

namespace vdistream::transport {
class HttpServer;
}

namespace vdistream::service {

class Host;

struct ServiceHooks {
  // After the desktops started and the HTTP server listens (e.g. to print how to connect).
  std::function<void(Host&, transport::HttpServer*)> started;
  // Polled about every 20 ms on the main thread: true ends the service as SIGTERM does.
  std::function<bool(Host&)> should_stop;
};

// Blocks SIGHUP, SIGTERM and SIGINT in the calling thread so that every thread started later
// inherits the mask and the main thread takes them with sigtimedwait. Call before any thread.
void block_service_signals();

// Runs until SIGTERM/SIGINT. `config_path` is re-read on SIGHUP or POST /api/reload (empty: the
// configuration is fixed). Returns the process's exit code.
int run_service(ServiceConfig config, const std::string& config_path, ServiceHooks hooks = {});

// vdistreamd --check-config FILE: every error with its line on stderr; a summary on stdout.
int check_config_file(const std::string& path);

// vdistreamd --config FILE.
int run_config_file(const std::string& path);

}  // namespace vdistream::service
