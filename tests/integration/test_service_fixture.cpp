// The service tests' fixture (see test_service_fixture.hpp): no test cases here.
#include "test_service_fixture.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "fixtures/process.hpp"

namespace vdistream::test {

namespace {

std::string dechunk(const std::string& body) {
  std::string out;
  size_t at = 0;
  while (at < body.size()) {
    const size_t eol = body.find("\r\n", at);
    if (eol == std::string::npos) break;
    const size_t n = std::stoul(body.substr(at, eol - at), nullptr, 16);
    if (n == 0) break;
    out += body.substr(eol + 2, n);
    at = eol + 2 + n + 2;
  }
  return out;
}

}  // namespace

HttpReply http_request(int port, const std::string& method, const std::string& path, const std::string& token,
                       std::chrono::milliseconds timeout) {
  HttpReply reply;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return reply;
  timeval tv{timeout.count() / 1000, long(timeout.count() % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return reply;
  }
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
  request += "Content-Length: 0\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) {
    close(fd);
    return reply;
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, size_t(n));
  }
  close(fd);
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) return reply;
  reply.status = std::stoi(raw.substr(9, 3));
  std::string head = raw.substr(0, head_end);
  for (auto& c : head) c = char(std::tolower(static_cast<unsigned char>(c)));
  reply.body = raw.substr(head_end + 4);
  if (head.find("transfer-encoding: chunked") != std::string::npos) reply.body = dechunk(reply.body);
  return reply;
}

ServiceProcess::ServiceProcess(const std::vector<std::string>& args, const std::string& log_path)
    : log_path_(log_path) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    const int devnull = open("/dev/null", O_RDONLY);
    if (log < 0 || devnull < 0) _exit(126);
    dup2(devnull, 0);
    dup2(log, 1);
    dup2(log, 2);
    // The test process may block signals (Catch2 does not, but be sure the child starts clean).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  setpgid(pid, pid);
  pid_ = pid;
}

ServiceProcess::~ServiceProcess() { stop(std::chrono::seconds(10)); }

void ServiceProcess::signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

bool ServiceProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  return waitpid(pid_, &status, WNOHANG) == 0;
}

int ServiceProcess::stop(std::chrono::seconds limit) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid_, SIGKILL);
  if (!exited) waitpid(pid_, &status, 0);
  pid_ = -1;
  if (exited && WIFSIGNALED(status)) return -100 - WTERMSIG(status);
  return exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ServiceProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string exit_report(const std::string& log) {
  std::vector<std::string_view> lines;
  for (size_t at = 0; at < log.size();) {
    size_t end = log.find('\n', at);
    if (end == std::string::npos) end = log.size();
    lines.emplace_back(log.data() + at, end - at);
    at = end + 1;
  }
  size_t first = lines.size();
  for (size_t i = 0; i < lines.size() && first == lines.size(); ++i)
    for (const char* marker : {"==ERROR:", "LeakSanitizer", "runtime error:", "terminate called", "Assertion `",
                               "assertion failed", "ERROR **"})  // the last two: GLib's and spice-server's
      if (lines[i].find(marker) != std::string_view::npos) first = i;
  constexpr size_t kBefore = 30, kAfter = 250, kTail = 60;
  const size_t tail = lines.size() - std::min(lines.size(), kTail);
  const bool found = first < lines.size();
  std::string out;
  auto add = [&](size_t from, size_t to) {
    out += fmt::format("lines {}-{} of {}:\n", from + 1, to, lines.size());
    for (size_t i = from; i < to; ++i) out.append(lines[i]).push_back('\n');
  };
  const size_t to = found ? std::min(lines.size(), first + kAfter) : 0;
  if (found) add(first - std::min(first, kBefore), to);
  if (to < lines.size()) add(std::max(to, tail), lines.size());  // and how it ended
  return out;
}

PromParse parse_prometheus(const std::string& text, const std::string& scratch_dir) {
  PromParse out;
  const std::string metrics = scratch_dir + "/metrics.txt", script = scratch_dir + "/parse_metrics.py";
  std::ofstream(metrics) << text;
  std::ofstream(script) << R"(import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = {}
for f in text_string_to_metric_families(open(sys.argv[1]).read()):
    families[f.name] = {"type": f.type, "samples": [
        {"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
print(json.dumps(families))
)";
  // Debian's interpreter (where python3-prometheus-client is installed), not one from PATH.
  auto r = run_process({"/usr/bin/python3", script, metrics}, std::chrono::seconds(60));
  if (r.exit_code != 0) {
    out.error = r.err;
    return out;
  }
  auto j = nlohmann::json::parse(r.out);
  for (auto& [family, f] : j.items()) {
    out.family_types[family] = f["type"];
    for (auto& s : f["samples"]) {
      PromSample sample;
      for (auto& [k, v] : s["labels"].items()) sample.labels[k] = v;
      sample.value = s["value"];
      out.samples[s["name"]].push_back(sample);
    }
  }
  out.ok = true;
  return out;
}

Service::Service() { std::ofstream(dir.file("api.token")) << kToken << "\n"; }

void Service::start(const std::string& config) {
  std::ofstream(config_path()) << config;
  process = std::make_unique<ServiceProcess>(std::vector<std::string>{VDISTREAMD_PATH, "--config", config_path()},
                                             dir.file("vdistreamd.log"));
}

std::string http_section(int port) {
  return "[http]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\ntoken_file = \"api.token\"\n\n";
}

std::map<std::string, nlohmann::json> desktops(int port) {
  std::map<std::string, nlohmann::json> out;
  auto r = http_request(port, "GET", "/api/desktops", kToken);
  if (r.status != 200) return out;
  const auto body = nlohmann::json::parse(r.body);
  for (const auto& d : body["desktops"]) out[d["name"].get<std::string>()] = d;
  return out;
}

uint64_t captured(const std::map<std::string, nlohmann::json>& d, const std::string& name) {
  auto it = d.find(name);
  return it == d.end() ? 0 : it->second["frames"]["captured"].get<uint64_t>();
}

}  // namespace vdistream::test
