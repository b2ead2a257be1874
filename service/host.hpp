// Every desktop of the service, and configuration changes applied to them: added desktops start,
// removed ones stop, changed ones restart, the others keep streaming untouched.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "encode/probe.hpp"
#include "service/config.hpp"
#include "service/desktop_session.hpp"

namespace vdistream::service {

struct ReloadSummary {
  std::vector<std::string> added, removed, restarted, kept;
  std::string to_string() const;  // "added a, b; removed c; restarted -; kept d"
};

class Host {
 public:
  // `http`: the service's HTTP server for desktops with webrtc = true (must outlive the host).
  explicit Host(const encode::EncoderRegistry& registry, transport::HttpServer* http = nullptr)
      : registry_(registry), http_(http) {}
  ~Host();  // stop_all()
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Makes the running desktops match `config` (which must be valid). The first call starts them
  // all. Sessions stop in parallel; a restarted desktop's new session starts after its old one
  // stopped (its ports are free again).
  ReloadSummary apply(const ServiceConfig& config);
  void stop_all();

  std::vector<DesktopStatus> statuses() const;
  // The session named so (shared: it stays valid for the caller across a reload), or nullptr.
  std::shared_ptr<DesktopSession> find(const std::string& name) const;
  std::vector<std::shared_ptr<DesktopSession>> sessions() const;
  const ServiceConfig& config() const { return config_; }  // the caller of apply() only

 private:
  const encode::EncoderRegistry& registry_;
  transport::HttpServer* const http_;
  std::mutex apply_mutex_;    // one apply()/stop_all() at a time; config_
  mutable std::mutex mutex_;  // sessions_, held only briefly (never while sessions stop or start)
  std::vector<std::shared_ptr<DesktopSession>> sessions_;  // in configuration order
  ServiceConfig config_;
};

}  // namespace vdistream::service
