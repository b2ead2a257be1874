#include "service/control_api.hpp"

#include <fmt/format.h>

#include <charconv>

#include <nlohmann/json.hpp>

#include "service/metrics.hpp"

namespace vdistream::service {

namespace {

using transport::HttpRequest;
using transport::HttpResponse;

// Answers quote what the request held (its path, a desktop's name): bytes that are not UTF-8 (a
// percent-encoded %FF in the path) become U+FFFD rather than an exception.
HttpResponse json(int status, const nlohmann::json& j) {
  return HttpResponse::json(status, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

HttpResponse problem(int status, const std::string& message) { return json(status, {{"error", message}}); }

HttpResponse wrong_method(const HttpRequest& r, const char* allowed) {
  HttpResponse out = problem(405, fmt::format("{} {}: use {}", r.method, r.path, allowed));
  out.headers.emplace_back("Allow", allowed);
  return out;
}

}  // namespace

ControlApi::ControlApi(Host& host, std::string token, std::function<std::string()> reload,
                       std::function<nlohmann::json()> service_info)
    : host_(host), reload_(std::move(reload)), service_info_(std::move(service_info)), token_(std::move(token)) {}

void ControlApi::set_token(std::string token) {
  std::lock_guard lock(token_mutex_);
  token_ = std::move(token);
}

HttpResponse ControlApi::handle(const HttpRequest& request) {
  {
    std::lock_guard lock(token_mutex_);
    if (auto refused = transport::check_token(request, token_)) return *refused;
  }
  const std::string& path = request.path;
  if (path == "/metrics") {
    if (request.method != "GET") return wrong_method(request, "GET");
    HttpResponse r = HttpResponse::text(200, prometheus_text(host_.statuses()));
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }
  if (path == "/api/desktops" || path == "/api/desktops/") {
    if (request.method != "GET") return wrong_method(request, "GET");
    auto list = nlohmann::json::array();
    for (const auto& s : host_.statuses()) list.push_back(status_json(s, false));
    return json(200, {{"desktops", list}});
  }
  constexpr std::string_view kDesktop = "/api/desktops/";
  if (path.starts_with(kDesktop)) return desktop_route(request, path.substr(kDesktop.size()));
  if (path == "/api/reload") {
    if (request.method != "POST") return wrong_method(request, "POST");
    if (!reload_) return problem(409, "this service runs without a configuration file: nothing to reload");
    return json(202, {{"reload", reload_()}});
  }
  if (path == "/api/service") {
    if (request.method != "GET") return wrong_method(request, "GET");
    return json(200, service_info_ ? service_info_() : nlohmann::json::object());
  }
  if (path == "/api" || path == "/api/")
    return json(200, {{"routes",
                       {"GET /api/desktops", "GET /api/desktops/NAME", "POST /api/desktops/NAME/keyframe",
                        "POST /api/desktops/NAME/disconnect", "POST /api/desktops/NAME/reset-latency",
                        "GET /api/desktops/NAME/presented?after=N", "POST /api/reload", "GET /api/service", "GET /metrics"}}});
  return problem(404, fmt::format("no such route: {}", path));
}

HttpResponse ControlApi::desktop_route(const HttpRequest& request, const std::string& rest) {
  const size_t slash = rest.find('/');
  const std::string name = rest.substr(0, slash);
  const std::string action = slash == std::string::npos ? "" : rest.substr(slash + 1);
  auto session = host_.find(name);
  if (!session) return problem(404, fmt::format("no desktop named '{}'", name));
  if (action.empty()) {
    if (request.method != "GET") return wrong_method(request, "GET");
    return json(200, status_json(session->status(), true));
  }
  if (action == "keyframe") {
    if (request.method != "POST") return wrong_method(request, "POST");
    if (core::Status s = session->request_keyframe(); !s) return problem(409, s.error());
    return json(202, {{"keyframe", "requested"}});
  }
  if (action == "reset-latency") {
    if (request.method != "POST") return wrong_method(request, "POST");
    if (core::Status s = session->reset_latency(); !s) return problem(409, s.error());
    return json(200, {{"latency", "reset"}});
  }
  if (action == "presented") {
    if (request.method != "GET") return wrong_method(request, "GET");
    uint64_t after = 0;
    if (auto it = request.query.find("after"); it != request.query.end()) {
      auto [end, error] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), after);
      if (error != std::errc() || end != it->second.data() + it->second.size())
        return problem(400, fmt::format("after={} is not a report number", it->second));
    }
    auto list = nlohmann::json::array();
    uint64_t next = after;
    for (const auto& p : session->presented(after)) {
      list.push_back({{"index", p.index}, {"viewer", p.viewer}, {"barcode", p.barcode}, {"receive_ms", p.receive_ms},
                      {"present_ms", p.present_ms}});
      next = p.index + 1;
    }
    return json(200, {{"next", next}, {"frames", list}});
  }
  if (action == "disconnect") {
    if (request.method != "POST") return wrong_method(request, "POST");
    auto reset = session->disconnect_viewers();
    if (!reset) return problem(409, reset.error());
    return json(200, {{"disconnected", *reset}});
  }
  return problem(404,
                 fmt::format("desktop '{}' has no '{}' (keyframe, disconnect, reset-latency, presented)", name, action));
}

void ControlApi::mount(transport::HttpServer& server) {
  auto handler = [this](const HttpRequest& r) { return handle(r); };
  server.add_handler("/api", handler);
  server.add_handler("/metrics", handler);
}

void ControlApi::unmount(transport::HttpServer& server) {
  server.remove_handler("/api");
  server.remove_handler("/metrics");
}

}  // namespace vdistream::service
