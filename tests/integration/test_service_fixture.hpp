// vdistreamd --config as a running service for the service tests: started in its own process
// group with its log in a file, spoken to over HTTP, and stopped (SIGTERM, then SIGKILL of its
// group) when the test ends, also when it fails.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixtures/wait.hpp"  // eventually()

namespace vdistream::test {

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
  std::string log() const;

 private:
  int pid_ = -1;
  std::string log_path_;
};

// Waits (bounded) until `done`.

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
