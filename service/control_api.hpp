// The HTTP control API and /metrics, on the service's one HTTP server (the WebRTC one):
//
//   GET  /api/desktops                     every desktop: state, viewers, encoder and why, rates
//   GET  /api/desktops/NAME                one desktop with per-stage latency and the probe's outcomes
//   POST /api/desktops/NAME/keyframe       an IDR on the next frame
//   POST /api/desktops/NAME/disconnect     drop its viewers (SPICE clients, WebRTC viewers)
//   POST /api/desktops/NAME/reset-latency  forget its latency histograms (a benchmark's window starts)
//   POST /api/reload                       re-read the configuration file, as SIGHUP does
//   GET  /api/service                      version, configuration file, the last reload's outcome
//   GET  /metrics                          Prometheus text
//
// Every route needs the service's token (Authorization: Bearer T, or ?token=T) unless the
// configuration says no_auth.
#pragma once

#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "service/host.hpp"
#include "transport/http_server.hpp"

namespace vdistream::service {

class ControlApi {
 public:
  // `reload` runs on the HTTP thread and must not block for long: it only asks the service's
  // main thread to reload, and returns what to tell the caller.
  ControlApi(Host& host, std::string token, std::function<std::string()> reload = {},
             std::function<nlohmann::json()> service_info = {});

  // Routing without a server (tests call it directly).
  transport::HttpResponse handle(const transport::HttpRequest& request);

  // Registers /api/ and /metrics on the server.
  void mount(transport::HttpServer& server);
  static void unmount(transport::HttpServer& server);

  void set_token(std::string token);

 private:
  transport::HttpResponse desktop_route(const transport::HttpRequest& request, const std::string& rest);

  Host& host_;
  std::function<std::string()> reload_;
  std::function<nlohmann::json()> service_info_;
  mutable std::mutex token_mutex_;
  std::string token_;
};

}  // namespace vdistream::service
