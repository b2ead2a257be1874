// The control API's routes, called without a server: tokens, listing, per-desktop actions,
// refusals.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "service/control_api.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef";

transport::HttpRequest request(const std::string& method, const std::string& path, const std::string& token = kToken) {
  transport::HttpRequest r;
  r.method = method;
  r.path = path;
  if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
  return r;
}

service::ServiceConfig one_desktop() {
  auto p = service::parse_config("[[desktop]]\nname = \"a\"\nsource = \"synthetic:typing@320x240@30\"\n", "");
  REQUIRE(p.ok());
  return p.config;
}

}  // namespace

TEST_CASE("the control API wants the token on every route", "[service][api]") {
  auto registry = encode::EncoderRegistry::builtin();
  service::Host host(registry);
  service::ControlApi api(host, kToken);
  for (const std::string path : {"/api/desktops", "/metrics", "/api/desktops/a", "/api/service"}) {
    INFO(path);
    CHECK(api.handle(request("GET", path, "")).status == 401);
    CHECK(api.handle(request("GET", path, "not-the-token-at-all")).status == 403);
  }
  auto query = request("GET", "/api/desktops", "");
  query.query["token"] = kToken;
  CHECK(api.handle(query).status == 200);
  api.set_token("");  // no_auth
  CHECK(api.handle(request("GET", "/api/desktops", "")).status == 200);
}

TEST_CASE("the control API lists desktops, details one, and acts on it", "[service][api]") {
  auto registry = encode::EncoderRegistry::builtin();
  service::Host host(registry);
  host.apply(one_desktop());
  service::ControlApi api(host, kToken);

  auto list = api.handle(request("GET", "/api/desktops"));
  REQUIRE(list.status == 200);
  CHECK(list.content_type == "application/json");
  auto j = nlohmann::json::parse(list.body);
  REQUIRE(j["desktops"].size() == 1);
  CHECK(j["desktops"][0]["name"] == "a");

  // Actions need the desktop built (its pipeline exists): wait for it, bounded.
  transport::HttpResponse keyframe;
  for (int i = 0; i < 500; ++i) {
    keyframe = api.handle(request("POST", "/api/desktops/a/keyframe"));
    if (keyframe.status == 202) break;
    std::this_thread::sleep_for(20ms);
  }
  CHECK(keyframe.status == 202);
  CHECK(api.handle(request("POST", "/api/desktops/a/reset-latency")).status == 200);
  auto detail = nlohmann::json::parse(api.handle(request("GET", "/api/desktops/a")).body);
  CHECK(detail["latency"]["total"].contains("p99_ms"));
  auto disconnect = api.handle(request("POST", "/api/desktops/a/disconnect"));
  CHECK(disconnect.status == 200);
  CHECK(nlohmann::json::parse(disconnect.body)["disconnected"] == 0);  // no SPICE, no viewers

  // No browser has reported presenting anything yet; a bad position is refused.
  auto presented = api.handle(request("GET", "/api/desktops/a/presented"));
  REQUIRE(presented.status == 200);
  CHECK(nlohmann::json::parse(presented.body)["frames"].empty());
  CHECK(nlohmann::json::parse(presented.body)["next"] == 0);
  auto bad_after = request("GET", "/api/desktops/a/presented");
  bad_after.query["after"] = "ten";
  CHECK(api.handle(bad_after).status == 400);

  auto metrics = api.handle(request("GET", "/metrics"));
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK_THAT(metrics.body, Catch::Contains("vdistream_frames_captured_total{desktop=\"a\"}"));

  CHECK(api.handle(request("GET", "/api/desktops/b")).status == 404);
  CHECK(api.handle(request("POST", "/api/desktops/a/explode")).status == 404);
  CHECK(api.handle(request("GET", "/api/desktops/a/keyframe")).status == 405);
  CHECK(api.handle(request("DELETE", "/api/desktops")).status == 405);
  CHECK(api.handle(request("POST", "/api/reload")).status == 409);  // no configuration file
  CHECK(api.handle(request("GET", "/api/nothing")).status == 404);
}

TEST_CASE("POST /api/reload asks the service to reload and says so", "[service][api]") {
  auto registry = encode::EncoderRegistry::builtin();
  service::Host host(registry);
  int asked = 0;
  service::ControlApi api(
      host, kToken, [&] { return ++asked, std::string("requested"); }, [] { return nlohmann::json{{"reloads", 3}}; });
  auto r = api.handle(request("POST", "/api/reload"));
  CHECK(r.status == 202);
  CHECK(nlohmann::json::parse(r.body)["reload"] == "requested");
  CHECK(asked == 1);
  CHECK(nlohmann::json::parse(api.handle(request("GET", "/api/service")).body)["reloads"] == 3);
}

// Found by tests/fuzz/fuzz_control_api: the path is percent-decoded by the HTTP server, so
// /api/%FF reaches the routes with a byte that is not UTF-8; quoting it in the 404 threw.
TEST_CASE("the control API answers a path that is not UTF-8 with a JSON 404", "[service][api]") {
  auto registry = encode::EncoderRegistry::builtin();
  service::Host host(registry);
  service::ControlApi api(host, kToken);
  for (const std::string path : {"/api/\xff", "/api/desktops/\xff\xfe", "/api/desktops/a\xc3"}) {
    transport::HttpResponse r;
    REQUIRE_NOTHROW(r = api.handle(request("GET", path)));
    CHECK(r.status == 404);
    CHECK(nlohmann::json::parse(r.body)["error"].is_string());
  }
}
