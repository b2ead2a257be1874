// A small blocking HTTP client (libsoup-3) for vdistreamd's control API: GET with a bearer
// token, the body as JSON. Its session runs on a GLib main context of its own, pushed as the
// thread default only during a request, so it never touches the global default context that
// spice-glib runs on (clients/spice_client.hpp). Use it from one thread.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.hpp"

namespace vdistream::bench {

class HttpClient {
 public:
  // `base_url` like "http://127.0.0.1:8080"; `token` goes in "Authorization: Bearer" (empty: none).
  HttpClient(std::string base_url, std::string token, std::chrono::seconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  struct Reply {
    unsigned status = 0;
    std::string body;
  };
  // A reply of any status; an error only when none came (refused, timed out).
  core::Result<Reply> get(const std::string& path);
  // A 200 reply's body parsed as JSON; any other status or unparsable body is an error naming the path.
  core::Result<nlohmann::json> get_json(const std::string& path);

  const std::string& base_url() const { return base_url_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string base_url_, token_;
};

}  // namespace vdistream::bench
