// The service's one HTTP server (libsoup 3): the web client, each desktop's WebSocket signalling,
// and whatever else the service serves (control API, /metrics). It runs on its own GLib main
// context thread; handlers run there and must not block for long.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.hpp"
#include "core/status.hpp"

namespace vdistream::glib {
class LoopThread;
}

namespace vdistream::transport {

// The largest request body the server reads (no route takes one; see HttpServer).
constexpr size_t kMaxRequestBodyBytes = 64 * 1024;

struct HttpServerConfig {
  std::string address = "127.0.0.1";  // loopback unless the operator says otherwise
  uint16_t port = 8080;               // 0: any free port (see HttpServer::port())
  std::string tls_cert_file;          // both set: HTTPS with the operator's PEM files
  std::string tls_key_file;
};

// "ADDRESS:PORT", ":PORT" (loopback), "[v6]:PORT" or "PORT".
core::Result<HttpServerConfig> parse_http_address(std::string_view text);

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded path, e.g. "/desktops/default/"
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string remote_address;

  std::string header(const std::string& lower_case_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse text(int status, std::string body);
  static HttpResponse json(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// One accepted WebSocket. send_text() and close() may be called from any thread (they hop to
// the server thread); the callbacks run on the server thread.
class WebSocket : public std::enable_shared_from_this<WebSocket> {
 public:
  virtual ~WebSocket() = default;
  virtual void send_text(std::string text) = 0;
  // What the peer's own messages call for (answers to refused messages, figures it reported):
  // dropped, and counted, while the socket's send buffer is full (a peer that sends without
  // reading), so such a peer cannot grow the server's queue. send_text() is for what the
  // server itself starts, bounded by the caller.
  virtual void send_reply(std::string text) = 0;
  virtual uint64_t replies_dropped() const = 0;
  virtual void close(uint16_t code, std::string reason) = 0;
  virtual uint64_t id() const = 0;
  // Set these in the open callback. on_closed runs once; after it nothing else is called.
  std::function<void(const std::string& text)> on_text;
  std::function<void()> on_closed;
};

struct WebSocketOptions {
  size_t max_message_bytes = 64 * 1024;  // larger messages close the socket (1009)
  // Runs before the upgrade: a response here refuses it (e.g. 401/403) and no socket is made.
  std::function<std::optional<HttpResponse>(const HttpRequest&)> check;
  std::function<void(const std::shared_ptr<WebSocket>&, const HttpRequest&)> on_open;
};

class HttpServer {
 public:
  static core::Result<std::unique_ptr<HttpServer>> create(const HttpServerConfig& config);
  ~HttpServer();  // stops listening, closes every socket, joins the thread
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Requests whose path starts with `path_prefix` (the longest registered prefix wins). Any
  // thread; replaces a handler of the same prefix.
  void add_handler(const std::string& path_prefix, HttpHandler handler);
  void add_websocket_handler(const std::string& path, WebSocketOptions options);
  void remove_handler(const std::string& path_prefix);  // normal or WebSocket

  uint16_t port() const { return port_; }  // the bound port
  bool tls() const { return tls_; }
  std::string base_url() const;  // "http://127.0.0.1:8080"

  // Runs `fn` on the server thread and waits.
  void run_on_thread(std::function<void()> fn);
  glib::LoopThread& thread() { return *thread_; }

  struct Impl;

 private:
  HttpServer();
  std::unique_ptr<glib::LoopThread> thread_;
  std::unique_ptr<Impl> impl_;
  HttpServerConfig config_;
  uint16_t port_ = 0;
  bool tls_ = false;
  core::Logger log_{"http"};
};

// The token the request carries: "Authorization: Bearer T", or "?token=T".
std::optional<std::string> request_token(const HttpRequest& request);
// Nothing when the request carries `expected` (constant-time compare); else 401 (no token) or
// 403 (wrong token) with nothing else in the body. An empty `expected` means no auth.
std::optional<HttpResponse> check_token(const HttpRequest& request, const std::string& expected);
bool constant_time_equal(std::string_view a, std::string_view b);
// 32 random bytes from the kernel, as 64 hex digits.
std::string generate_token();

}  // namespace vdistream::transport
