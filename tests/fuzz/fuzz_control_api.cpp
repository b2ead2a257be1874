// The HTTP control API's routing and token handling (service/control_api, transport::check_token)
// behind the service's HTTP server: a request of any method, path, query and Authorization header.
// A request without the service's token is refused (401 or 403) whatever else it holds; one with
// it gets an answer from the route table, never a server error.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/log.hpp"
#include "encode/probe.hpp"
#include "service/config.hpp"
#include "service/control_api.hpp"
#include "service/host.hpp"

using namespace vdistream;

namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef";
encode::EncoderRegistry* registry = nullptr;
service::Host* host = nullptr;
service::ControlApi* api = nullptr;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_control_api: %s\n", what);
  std::abort();
}

std::string piece(FuzzedDataProvider& in, const char* const* usual, size_t n) {
  if (in.ConsumeBool()) return usual[in.ConsumeIntegralInRange<size_t>(0, n - 1)];
  return in.ConsumeRandomLengthString(256);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  core::set_log_level(core::LogLevel::Off);
  registry = new encode::EncoderRegistry(encode::EncoderRegistry::builtin());
  host = new service::Host(*registry);
  // One small desktop, so the per-desktop routes have something to act on.
  auto parsed = service::parse_config("[[desktop]]\nname = \"a\"\nsource = \"synthetic:typing@64x64@5\"\n", "");
  require(parsed.ok(), "the desktop's configuration");
  host->apply(parsed.config);
  api = new service::ControlApi(*host, kToken, [] { return std::string("reload requested"); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  static const char* const kMethods[] = {"GET", "POST", "PUT", "DELETE", "HEAD"};
  static const char* const kPaths[] = {"/api",          "/api/desktops",          "/api/desktops/a",
                                       "/api/desktops/a/presented", "/api/desktops/a/keyframe", "/api/desktops/a/reset-latency",
                                       "/api/desktops/a/disconnect", "/api/reload", "/api/service", "/metrics"};
  static const char* const kTokens[] = {"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdeF",
                                        "0123456789abcdef0123456789abcde", "", "0123456789abcdef0123456789abcdef0"};
  transport::HttpRequest request;
  request.method = piece(in, kMethods, std::size(kMethods));
  request.path = piece(in, kPaths, std::size(kPaths));
  const int carries = in.ConsumeIntegralInRange<int>(0, 3);  // 0: none, 1: header, 2: query, 3: both
  std::string header_token, query_token;
  if (carries & 1) {
    header_token = piece(in, kTokens, std::size(kTokens));
    static const char* const kSchemes[] = {"Bearer ", "bearer ", "Basic ", "Bearer  ", ""};
    request.headers["authorization"] = piece(in, kSchemes, std::size(kSchemes)) + header_token;
  }
  if (carries & 2) {
    query_token = piece(in, kTokens, std::size(kTokens));
    request.query["token"] = query_token;
  }
  if (in.ConsumeBool()) request.query["after"] = in.ConsumeRandomLengthString(32);
  request.body = in.ConsumeRemainingBytesAsString();

  const std::string authorization = request.header("authorization");
  // Anywhere in the header (whatever its scheme and spacing) or as ?token=: more than the service
  // accepts, so this can only let a wrong refusal through, never miss a wrong admission.
  const bool has_token = authorization.find(kToken) != std::string::npos || query_token == kToken;
  const transport::HttpResponse response = api->handle(request);
  if (!has_token && response.status != 401 && response.status != 403) {
    // The only other way in is a scheme we did not think of: say which.
    std::fprintf(stderr, "status %d for authorization '%s', token= '%s'\n", response.status, authorization.c_str(),
                 query_token.c_str());
    require(false, "a request without the token was not refused");
  }
  require(response.status < 500, "a server error");
  require(response.status >= 200, "no status");
  return 0;
}
