// The real service, vdistreamd, as a child of the vm, audio and soak subcommands: one desktop
// ("vm") on a VM's D-Bus display and any more desktops asked for, each served over SPICE on a unix
// socket of its own and over WebRTC, with a generated configuration (TOML), API token and SPICE
// ticket in a private directory; the HTTP server on 127.0.0.1 at a free port. Spoken to through its control API. Runs in its own process group,
// dies with this process and is stopped (SIGTERM, then SIGKILL) and reaped when this goes away.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "benchmarks/child_process.hpp"
#include "benchmarks/http_client.hpp"
#include "benchmarks/private_dir.hpp"
#include "core/status.hpp"

namespace vdistream::bench {

struct DesktopSpec {
  std::string name;    // [a-z0-9-]
  std::string source;  // a source spec: "synthetic:typing@1280x720@30", GuestVm::spec(), ...
};

struct VdistreamdOptions {
  std::string binary;              // vdistreamd's path (VdistreamdChild::default_binary())
  std::string source;              // desktop "vm"'s source spec, e.g. GuestVm::spec(); empty: no "vm"
  std::string spice_mode = "qxl";  // qxl | stream, for every desktop
  std::vector<DesktopSpec> more_desktops;
};

class VdistreamdChild {
 public:
  static constexpr const char* kDesktop = "vm";

  // The vdistreamd of this build (compile definition VDISTREAMD_PATH), else one next to this
  // program (or in ../service/ of a build tree), else one on $PATH; empty when there is none.
  static std::string default_binary();

  // Writes the configuration and starts vdistreamd --config; returns once its API answers.
  static core::Result<std::unique_ptr<VdistreamdChild>> start(const VdistreamdOptions& options,
                                                              std::chrono::milliseconds limit = std::chrono::seconds(30));
  ~VdistreamdChild();
  VdistreamdChild(const VdistreamdChild&) = delete;
  VdistreamdChild& operator=(const VdistreamdChild&) = delete;

  // Until the desktop is connected to its source and has captured a frame (bounded); the error
  // carries its state, reason and the service's log.
  core::Status wait_capturing(std::chrono::milliseconds limit, const std::string& desktop = kDesktop);
  // GET /api/desktops/NAME.
  core::Result<nlohmann::json> desktop_status(const std::string& desktop = kDesktop);
  HttpClient& api() { return *api_; }

  // Rewrites the configuration with these in place of the options' more_desktops and sends SIGHUP
  // (vdistreamd reloads it: desktops come and go).
  core::Status reload(const std::vector<DesktopSpec>& more_desktops);

  std::string spice_socket(const std::string& desktop = kDesktop) const;
  const std::string& spice_ticket() const { return ticket_; }
  const std::string& token() const { return token_; }
  int port() const { return port_; }
  std::string page_url(const std::string& desktop = kDesktop) const;  // the desktop's WebRTC page with the token
  pid_t pid() const { return process_.pid(); }
  bool running() { return process_.running(); }
  // SIGTERM (it stops its desktops cleanly; SIGKILL after 5 s), reaped; the log stays readable.
  void stop() { process_.stop(std::chrono::seconds(5)); }
  std::string exit_description() const { return process_.exit_description(); }
  const std::string& config_text() const { return config_; }
  std::string log_path() const { return dir_.file("vdistreamd.log"); }
  std::string log_tail(size_t max_bytes = 3000) const;

 private:
  static core::Result<std::unique_ptr<VdistreamdChild>> start_once(const VdistreamdOptions& options,
                                                                   std::chrono::milliseconds limit);
  VdistreamdChild() = default;
  std::string configuration(const std::vector<DesktopSpec>& more_desktops) const;

  PrivateDir dir_{"vdistream-bench-service"};
  VdistreamdOptions options_;
  ChildProcess process_;
  std::unique_ptr<HttpClient> api_;
  std::string ticket_, token_, config_;
  int port_ = 0;
};

// A TCP port on 127.0.0.1 that nothing listens on right now (0 when none could be had).
int free_loopback_port();

}  // namespace vdistream::bench
