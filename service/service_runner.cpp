#include "service/service_runner.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "core/log.hpp"
#include "core/memory.hpp"
#include "encode/probe.hpp"
#include "service/control_api.hpp"
#include "service/host.hpp"
#include "transport/http_server.hpp"

namespace vdistream::service {

namespace {

sigset_t service_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

void apply_logging(const ServiceConfig& c) {
  core::LogLevel level = core::LogLevel::Info;
  if (core::parse_log_level(c.log_level, level)) core::set_log_level(level);
  core::set_log_json(c.log_json);
}

// The outcome of the last (re)load, for GET /api/service.
struct ReloadRecord {
  std::mutex mutex;
  nlohmann::json last = nullptr;
  uint64_t reloads = 0;
  void record(bool ok, const std::vector<std::string>& errors, const std::string& summary) {
    std::lock_guard lock(mutex);
    ++reloads;
    last = {{"ok", ok}, {"errors", errors}, {"summary", summary}, {"at_unix", std::time(nullptr)}};
  }
  nlohmann::json get() {
    std::lock_guard lock(mutex);
    return {{"reloads", reloads}, {"last_reload", last}};
  }
};

core::Result<std::unique_ptr<transport::HttpServer>> start_http(const HttpSettings& h) {
  transport::HttpServerConfig hc;
  hc.address = h.host;
  hc.port = uint16_t(h.port);
  hc.tls_cert_file = h.tls_cert;
  hc.tls_key_file = h.tls_key;
  return transport::HttpServer::create(hc);
}

}  // namespace

void block_service_signals() {
  sigset_t set = service_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int run_service(ServiceConfig config, const std::string& config_path, ServiceHooks hooks) {
  block_service_signals();
  // A peer that went away is an EPIPE for the writer to handle, never the end of the service.
  signal(SIGPIPE, SIG_IGN);
  core::Logger log("service");
  apply_logging(config);
  auto registry = encode::EncoderRegistry::builtin();
  ReloadRecord reloads;

  // The HTTP server first: the host's desktops serve WebRTC on it, and stop before it goes.
  std::unique_ptr<transport::HttpServer> http;
  if (!config.http.listen.empty()) {
    auto server = start_http(config.http);
    if (!server) {
      log.error("HTTP on {}: {}", config.http.listen, server.error());
      return 1;
    }
    http = std::move(*server);
  }
  // Until the desktops and the API are in place, whatever has no handler yet is "starting"
  // (503, which clients retry) rather than "not found".
  auto ready = std::make_shared<std::atomic<bool>>(false);
  if (http)
    http->add_handler("/", [ready](const transport::HttpRequest&) {
      return *ready ? transport::HttpResponse::text(404, "not found\n")
                    : transport::HttpResponse::text(503, "vdistreamd is starting\n");
    });
  Host host(registry, http.get());
  std::unique_ptr<ControlApi> api;
  if (http) {
    auto reload = [config_path]() -> std::string {
      if (config_path.empty()) return "this service runs without a configuration file";
      ::kill(::getpid(), SIGHUP);  // the main thread reloads, as for a SIGHUP from outside
      return "requested: GET /api/service shows the outcome";
    };
    api = std::make_unique<ControlApi>(host, config.http.no_auth ? "" : config.http.token, reload, [&] {
      nlohmann::json j = reloads.get();
      j["version"] = VDISTREAM_VERSION_STRING;
      j["config"] = config_path;
      j["desktops"] = host.sessions().size();
      const core::HeapStats heap = core::heap_stats();
      constexpr double kMiB = 1024.0 * 1024.0;
      j["memory"] = {{"heap_in_use_mib", double(heap.in_use) / kMiB},
                     {"heap_free_held_mib", double(heap.free_held) / kMiB},
                     {"heap_mmapped_mib", double(heap.mmapped) / kMiB}};
      return j;
    });
  }
  const ReloadSummary first = host.apply(config);
  reloads.record(true, {}, first.to_string());
  if (api) {
    api->mount(*http);  // once the first configuration's desktops exist
    log.info("control API on {}/api/desktops, metrics on {}/metrics{}", http->base_url(), http->base_url(),
             config.http.no_auth ? " (no token: no_auth = true)" : " (token required)");
  }
  *ready = true;
  log.info("serving {} desktop{}{}", config.desktops.size(), config.desktops.size() == 1 ? "" : "s",
           config_path.empty() ? "" : " from " + config_path);
  if (hooks.started) hooks.started(host, http.get());

  const sigset_t set = service_signals();
  int exit_code = 0;
  for (;;) {
    if (hooks.should_stop && hooks.should_stop(host)) break;
    timespec wait{0, 20'000'000};
    const int sig = sigtimedwait(&set, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) {
      log.info("{}: stopping every desktop", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    if (sig != SIGHUP) continue;
    if (config_path.empty()) {
      log.warn("SIGHUP: this service runs without a configuration file; nothing to reload");
      continue;
    }
    log.info("SIGHUP: reloading {}", config_path);
    ConfigParse next = load_config(config_path);
    if (!next.ok()) {
      std::vector<std::string> errors;
      for (const auto& e : next.errors) {
        errors.push_back(e.to_string(config_path));
        log.error("{}", errors.back());
      }
      log.error("reload refused: {} error{} in {}; the running configuration stays", errors.size(),
                errors.size() == 1 ? "" : "s", config_path);
      reloads.record(false, errors, "kept the running configuration");
      continue;
    }
    for (const auto& w : next.warnings) log.warn("{}", w);
    if (!(next.config.http.listen == config.http.listen && next.config.http.tls_cert == config.http.tls_cert &&
          next.config.http.tls_key == config.http.tls_key))
      log.warn("[http] listen and TLS changes take effect at the next start; the API stays on {}",
               config.http.listen.empty() ? "(none)" : config.http.listen);
    if (api && next.config.http.token != config.http.token) {
      api->set_token(next.config.http.no_auth ? "" : next.config.http.token);
      log.info("the API token changed");
    }
    apply_logging(next.config);
    next.config.http.listen = config.http.listen;
    next.config.http.host = config.http.host;
    next.config.http.port = config.http.port;
    next.config.http.tls_cert = config.http.tls_cert;
    next.config.http.tls_key = config.http.tls_key;
    const ReloadSummary summary = host.apply(next.config);
    reloads.record(true, {}, summary.to_string());
    config = next.config;
  }
  if (http) ControlApi::unmount(*http);
  host.stop_all();
  http.reset();
  log.info("stopped");
  return exit_code;
}

int check_config_file(const std::string& path) {
  ConfigParse p = load_config(path);
  for (const auto& w : p.warnings) std::fprintf(stderr, "%s: warning: %s\n", path.c_str(), w.c_str());
  if (!p.ok()) {
    std::fputs(p.error_text().c_str(), stderr);
    std::fprintf(stderr, "%s: %zu error%s\n", path.c_str(), p.errors.size(), p.errors.size() == 1 ? "" : "s");
    return 1;
  }
  std::printf("%s: OK, %zu desktop%s\n", path.c_str(), p.config.desktops.size(),
              p.config.desktops.size() == 1 ? "" : "s");
  for (const auto& d : p.config.desktops)
    std::printf("  %-16s %s%s%s%s\n", d.name.c_str(), d.source.c_str(),
                d.spice ? (" → SPICE " + d.spice->listen.to_string()).c_str() : "", d.webrtc ? " → WebRTC" : "",
                d.record.empty() ? "" : (" → " + d.record).c_str());
  if (!p.config.http.listen.empty())
    std::printf("  API and metrics on %s%s\n", p.config.http.listen.c_str(),
                p.config.http.no_auth ? " without a token" : "");
  return 0;
}

int run_config_file(const std::string& path) {
  block_service_signals();
  ConfigParse p = load_config(path);
  if (!p.ok()) {
    std::fputs(p.error_text().c_str(), stderr);
    return 2;
  }
  for (const auto& w : p.warnings) core::Logger("service").warn("{}", w);
  return run_service(p.config, path);
}

}  // namespace vdistream::service
