// vdistreamd --config as a running service for the service tests: started in its own process
// group with its log in a file, spoken to over HTTP, and stopped (SIGTERM, then SIGKILL of its
// group) when the test ends, also when it fails.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixtures/process.hpp"
#include "fixtures/wait.hpp"  // eventually()

namespace vdistream::test {

// The API token the service tests configure.
inline const std::string kToken = "0123456789abcdef0123456789abcdef";

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
};

// One HTTP/1.1 request to 127.0.0.1:port (Connection: close), bounded by `timeout`.
HttpReply http_request(int port, const std::string& method, const std::string& path, const std::string& token,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

class ServiceProcess {
 public:
  ServiceProcess(const std::vector<std::string>& args, const std::string& log_path);
  ~ServiceProcess();
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  void signal(int sig) const;
  // SIGTERM, then waits (bounded); SIGKILL of the group after `limit`. The exit code; -1 when it
  // did not exit in time; -100 - N when signal N ended it.
  int stop(std::chrono::seconds limit = std::chrono::seconds(30));
  bool running();
  int pid() const { return pid_; }
  std::string log() const;

 private:
  int pid_ = -1;
  std::string log_path_;
};

// vdistreamd --config in a TempDir of its own, with the API token in api.token.
struct Service {
  TempDir dir;
  int port = free_tcp_port();
  std::unique_ptr<ServiceProcess> process;

  Service();
  std::string config_path() const { return dir.file("vdistreamd.toml"); }
  void start(const std::string& config);  // writes the configuration and starts vdistreamd
  std::string log() const { return process ? process->log() : ""; }
};

// The [http] table of a configuration: the API on 127.0.0.1:port with kToken.
std::string http_section(int port);
// The desktops as the API lists them, by name (empty when the service does not answer).
std::map<std::string, nlohmann::json> desktops(int port);
// A desktop's frames.captured in such a list (0 when it is not there).
uint64_t captured(const std::map<std::string, nlohmann::json>& desktops, const std::string& name);

// REQUIRE that shows the service's log (as it is then) when it fails.
#define REQUIRE_LOGGED(service, ...)                           \
  do {                                                         \
    const bool ok_ = (__VA_ARGS__);                            \
    if (!ok_) {                                                \
      INFO("vdistreamd log:\n" << (service).log());            \
      REQUIRE(ok_);                                            \
    }                                                          \
  } while (0)

// What of a log explains an exit that was not clean: from a little before the first sanitizer
// report, abort or uncaught exception on (bounded); else the log's last lines. The whole log of a
// long test is thousands of lines, and a CI summary keeps the start and end of a test's output.
std::string exit_report(const std::string& log);

// SIGTERM: vdistreamd exits with 0 (what explains it shown when not).
#define CHECK_STOPS_CLEANLY(service)                                          \
  do {                                                                        \
    const int code_ = (service).process->stop();                              \
    INFO("vdistreamd log, " << vdistream::test::exit_report((service).log())); \
    CHECK(code_ == 0);                                                        \
  } while (0)

// /metrics parsed by Prometheus's own Python parser (prometheus_client, Debian's
// python3-prometheus-client): sample name -> every sample of that name (labels, value).
struct PromSample {
  std::map<std::string, std::string> labels;
  double value = 0;
};
struct PromParse {
  bool ok = false;
  std::string error;
  std::map<std::string, std::string> family_types;          // family name -> type
  std::map<std::string, std::vector<PromSample>> samples;  // sample name -> samples
};
PromParse parse_prometheus(const std::string& text, const std::string& scratch_dir);

}  // namespace vdistream::test
