#include "transport/http_server.hpp"

#include <fmt/format.h>
#include <libsoup/soup.h>
#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <utility>

#include "glib/loop_thread.hpp"

namespace vdistream::transport {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

HttpRequest make_request(SoupServerMessage* msg, const char* path, GHashTable* query) {
  HttpRequest r;
  r.method = soup_server_message_get_method(msg);
  r.path = path ? path : "";
  if (query) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, query);
    while (g_hash_table_iter_next(&it, &k, &v)) r.query[static_cast<const char*>(k)] = v ? static_cast<const char*>(v) : "";
  }
  SoupMessageHeaders* headers = soup_server_message_get_request_headers(msg);
  SoupMessageHeadersIter hit;
  soup_message_headers_iter_init(&hit, headers);
  const char *name, *value;
  while (soup_message_headers_iter_next(&hit, &name, &value)) r.headers[lower(name)] = value;
  SoupMessageBody* body = soup_server_message_get_request_body(msg);
  if (body) {
    GBytes* bytes = soup_message_body_flatten(body);
    gsize size = 0;
    const void* data = g_bytes_get_data(bytes, &size);
    if (data && size) r.body.assign(static_cast<const char*>(data), size);
    g_bytes_unref(bytes);
  }
  if (const char* host = soup_server_message_get_remote_host(msg)) r.remote_address = host;
  return r;
}

void apply_response(SoupServerMessage* msg, const HttpResponse& response) {
  soup_server_message_set_status(msg, guint(response.status), nullptr);
  SoupMessageHeaders* headers = soup_server_message_get_response_headers(msg);
  for (const auto& [name, value] : response.headers) soup_message_headers_replace(headers, name.c_str(), value.c_str());
  soup_message_headers_replace(headers, "Cache-Control", "no-store");
  // One request per connection. libsoup 3.2 (Debian 12's) never closes a kept-alive connection
  // that its client closes while idle between requests: each stays in CLOSE-WAIT with its fd, one
  // per page load or API call from a client that keeps connections alive and then goes (fixed in
  // libsoup 3.3). The soak benchmark found one more fd per Chromium viewer. Our requests are few
  // (a page, API calls, scrapes): a new connection each is cheap.
  soup_message_headers_replace(headers, "Connection", "close");
  soup_server_message_set_response(msg, response.content_type.c_str(), SOUP_MEMORY_COPY, response.body.data(),
                                   response.body.size());
}

std::atomic<uint64_t> g_next_socket_id{1};

}  // namespace

std::string HttpRequest::header(const std::string& lower_case_name) const {
  auto it = headers.find(lower_case_name);
  return it == headers.end() ? std::string() : it->second;
}

HttpResponse HttpResponse::text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

core::Result<HttpServerConfig> parse_http_address(std::string_view text) {
  HttpServerConfig c;
  std::string_view port_text = text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return core::Error{"HTTP address '" + std::string(text) + "': expected [IPv6]:PORT"};
    c.address = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    if (colon > 0) c.address = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
    return core::Error{"HTTP address '" + std::string(text) + "': port '" + std::string(port_text) +
                       "' is not a number from 0 to 65535"};
  c.port = uint16_t(port);
  return c;
}

// A WebSocket as libsoup gives it: touched only on the server thread.
class SoupWebSocket final : public WebSocket {
 public:
  SoupWebSocket(glib::LoopThread* thread, SoupWebsocketConnection* conn)
      : thread_(thread), conn_(SOUP_WEBSOCKET_CONNECTION(g_object_ref(conn))), id_(g_next_socket_id++) {}
  ~SoupWebSocket() override { g_object_unref(conn_); }

  void attach(size_t max_bytes, std::function<void(uint64_t)> forget) {
    forget_ = std::move(forget);
    soup_websocket_connection_set_max_incoming_payload_size(conn_, max_bytes);
    soup_websocket_connection_set_keepalive_interval(conn_, 10);
    message_handler_ = g_signal_connect(conn_, "message", G_CALLBACK(on_message), this);
    closed_handler_ = g_signal_connect(conn_, "closed", G_CALLBACK(on_closed_signal), this);
  }

  void send_text(std::string text) override {
    std::weak_ptr<WebSocket> weak = weak_from_this();
    thread_->post([weak, text = std::move(text)] {
      auto self = std::static_pointer_cast<SoupWebSocket>(weak.lock());
      if (self && !self->closed_ && soup_websocket_connection_get_state(self->conn_) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_send_text(self->conn_, text.c_str());
    });
  }

  void send_reply(std::string text) override {
    std::weak_ptr<WebSocket> weak = weak_from_this();
    thread_->post([weak, text = std::move(text)] {
      auto self = std::static_pointer_cast<SoupWebSocket>(weak.lock());
      if (!self || self->closed_ || soup_websocket_connection_get_state(self->conn_) != SOUP_WEBSOCKET_STATE_OPEN) return;
      static core::LogLimiter limit;
      static core::Logger log("http");
      if (!self->peer_reading()) {
        ++self->replies_dropped_;
        if (!std::exchange(self->behind_, true))
          log.warn_limited(limit, "WebSocket {}: its peer does not read what it is sent; replies to it are dropped until it does",
                           self->id_);
        return;
      }
      if (std::exchange(self->behind_, false))
        log.info("WebSocket {}: its peer reads again ({} replies dropped so far)", self->id_, self->replies_dropped_.load());
      soup_websocket_connection_send_text(self->conn_, text.c_str());
    });
  }

  uint64_t replies_dropped() const override { return replies_dropped_; }

  void close(uint16_t code, std::string reason) override {
    std::weak_ptr<WebSocket> weak = weak_from_this();
    thread_->post([weak, code, reason = std::move(reason)] {
      auto self = std::static_pointer_cast<SoupWebSocket>(weak.lock());
      if (self && soup_websocket_connection_get_state(self->conn_) == SOUP_WEBSOCKET_STATE_OPEN)
        soup_websocket_connection_close(self->conn_, code, reason.c_str());
    });
  }

  uint64_t id() const override { return id_; }

  // Server thread: the end, whether the peer closed or the server goes away.
  void finish() {
    if (closed_) return;
    closed_ = true;
    g_signal_handler_disconnect(conn_, message_handler_);
    g_signal_handler_disconnect(conn_, closed_handler_);
    if (soup_websocket_connection_get_state(conn_) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close(conn_, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, nullptr);
    auto closed = std::move(on_closed);
    on_text = nullptr;
    on_closed = nullptr;
    if (closed) closed();
  }

 private:
  static void on_message(SoupWebsocketConnection* conn, gint type, GBytes* message, gpointer data) {
    auto* self = static_cast<SoupWebSocket*>(data);
    if (type != SOUP_WEBSOCKET_DATA_TEXT) {
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_UNSUPPORTED_DATA, "text messages only");
      return;
    }
    gsize size = 0;
    const char* bytes = static_cast<const char*>(g_bytes_get_data(message, &size));
    if (!self->on_text) return;
    // What the peer sent must never end the service: a handler that throws closes this socket only.
    try {
      self->on_text(std::string(bytes ? bytes : "", size));
    } catch (const std::exception& e) {
      static core::Logger log("http");
      log.error("WebSocket {}: message handler failed, closing it: {}", self->id_, e.what());
      soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "internal error");
    }
  }
  static void on_closed_signal(SoupWebsocketConnection*, gpointer data) {
    auto* self = static_cast<SoupWebSocket*>(data);
    auto keep = self->shared_from_this();
    self->finish();
    if (self->forget_) self->forget_(self->id_);
  }

  // Whether the kernel takes more for this peer: a socket whose send buffer stays full belongs
  // to a peer that does not read, and whatever libsoup is handed then waits in its queue.
  bool peer_reading() const {
    GIOStream* io = soup_websocket_connection_get_io_stream(conn_);
    GOutputStream* out = io ? g_io_stream_get_output_stream(io) : nullptr;
    if (!out || !G_IS_POLLABLE_OUTPUT_STREAM(out) || !g_pollable_output_stream_can_poll(G_POLLABLE_OUTPUT_STREAM(out)))
      return true;
    return g_pollable_output_stream_is_writable(G_POLLABLE_OUTPUT_STREAM(out));
  }

  glib::LoopThread* thread_;
  SoupWebsocketConnection* conn_;
  uint64_t id_;
  std::atomic<uint64_t> replies_dropped_{0};
  bool behind_ = false;  // the last reply was dropped (server thread)
  bool closed_ = false;
  gulong message_handler_ = 0, closed_handler_ = 0;
  std::function<void(uint64_t)> forget_;
};

struct HttpServer::Impl {
  SoupServer* server = nullptr;
  glib::LoopThread* thread = nullptr;
  core::Logger* log = nullptr;
  std::map<uint64_t, std::shared_ptr<SoupWebSocket>> sockets;  // server thread only

  struct Route {
    Impl* impl;
    HttpHandler handler;
    WebSocketOptions ws;
  };

  static void destroy_route(gpointer data) { delete static_cast<Route*>(data); }

  // No route takes a request body (signalling is a WebSocket), yet libsoup reads a body, and
  // keeps it whole, before any handler (the token check included) sees the request. So a body
  // is judged by its headers: over kMaxRequestBodyBytes (413), or chunked, with no length (411),
  // it is read and dropped as it comes, never kept, and no handler runs.
  static void on_request_started(SoupServer*, SoupServerMessage* msg, gpointer) {
    g_signal_connect(msg, "got-headers", G_CALLBACK(on_got_headers), nullptr);
  }
  static void on_got_headers(SoupServerMessage* msg, gpointer) {
    SoupMessageHeaders* headers = soup_server_message_get_request_headers(msg);
    const SoupEncoding encoding = soup_message_headers_get_encoding(headers);
    std::optional<HttpResponse> refused;
    if (encoding == SOUP_ENCODING_CHUNKED)
      refused = HttpResponse::text(411, "a request body needs a Content-Length\n");
    else if (encoding == SOUP_ENCODING_CONTENT_LENGTH &&
             soup_message_headers_get_content_length(headers) > goffset(kMaxRequestBodyBytes))
      refused = HttpResponse::text(413, fmt::format("a request body may hold at most {} bytes\n", kMaxRequestBodyBytes));
    if (!refused) return;
    soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
    refused->headers.emplace_back("Connection", "close");
    apply_response(msg, *refused);
  }

  static void on_request(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query, gpointer data) {
    auto* route = static_cast<Route*>(data);
    HttpRequest request = make_request(msg, path, query);
    if (route->handler) {
      HttpResponse response;
      try {
        response = route->handler(request);
      } catch (const std::exception& e) {
        route->impl->log->error("{} {}: handler failed: {}", request.method, request.path, e.what());
        response = HttpResponse::text(500, "internal error\n");
      }
      apply_response(msg, response);
      return;
    }
    // A WebSocket path: refuse here (before the upgrade) when the check says so.
    if (route->ws.check) {
      if (auto refused = route->ws.check(request)) apply_response(msg, *refused);
    }
  }

  static void on_websocket(SoupServer*, SoupServerMessage* msg, const char* path, SoupWebsocketConnection* conn,
                           gpointer data) {
    auto* route = static_cast<Route*>(data);
    Impl* impl = route->impl;
    auto socket = std::make_shared<SoupWebSocket>(impl->thread, conn);
    impl->sockets[socket->id()] = socket;
    socket->attach(route->ws.max_message_bytes, [impl](uint64_t id) { impl->sockets.erase(id); });
    if (route->ws.on_open) route->ws.on_open(socket, make_request(msg, path, nullptr));
  }
};

HttpServer::HttpServer() : thread_(std::make_unique<glib::LoopThread>()), impl_(std::make_unique<Impl>()) {}

core::Result<std::unique_ptr<HttpServer>> HttpServer::create(const HttpServerConfig& config) {
  if (config.tls_cert_file.empty() != config.tls_key_file.empty())
    return core::Error{"TLS needs both a certificate file and a key file"};
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->config_ = config;
  s->impl_->thread = s->thread_.get();
  s->impl_->log = &s->log_;
  s->thread_->start();
  std::string error = s->thread_->invoke([&]() -> std::string {
    GTlsCertificate* cert = nullptr;
    if (!config.tls_cert_file.empty()) {
      GError* e = nullptr;
      cert = g_tls_certificate_new_from_files(config.tls_cert_file.c_str(), config.tls_key_file.c_str(), &e);
      if (!cert) {
        std::string m = "TLS certificate " + config.tls_cert_file + " / key " + config.tls_key_file + ": " + e->message;
        g_error_free(e);
        return m;
      }
    }
    s->impl_->server = cert ? soup_server_new("server-header", "vdistream", "tls-certificate", cert, nullptr)
                            : soup_server_new("server-header", "vdistream", nullptr);
    if (cert) g_object_unref(cert);
    g_signal_connect(s->impl_->server, "request-started", G_CALLBACK(Impl::on_request_started), nullptr);
    GError* e = nullptr;
    GInetAddress* inet = g_inet_address_new_from_string(config.address.c_str());
    if (!inet) return "HTTP address '" + config.address + "' is not an IP address";
    GSocketAddress* address = g_inet_socket_address_new(inet, config.port);
    g_object_unref(inet);
    gboolean ok = soup_server_listen(s->impl_->server, address, cert ? SOUP_SERVER_LISTEN_HTTPS : SoupServerListenOptions(0), &e);
    g_object_unref(address);
    if (!ok) {
      std::string m = "cannot listen on " + config.address + ":" + std::to_string(config.port) + ": " + e->message;
      g_error_free(e);
      return m;
    }
    s->tls_ = cert != nullptr;
    GSList* uris = soup_server_get_uris(s->impl_->server);
    if (uris) s->port_ = uint16_t(g_uri_get_port(static_cast<GUri*>(uris->data)));
    g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
    return {};
  });
  if (!error.empty()) return core::Error{error};
  s->log_.info("serving on {}", s->base_url());
  return s;
}

HttpServer::~HttpServer() {
  thread_->invoke([this] {
    auto sockets = std::move(impl_->sockets);
    for (auto& [id, socket] : sockets) socket->finish();
    sockets.clear();
    if (impl_->server) {
      soup_server_disconnect(impl_->server);
      g_object_unref(impl_->server);
      impl_->server = nullptr;
    }
  });
  thread_->stop();
}

void HttpServer::add_handler(const std::string& path_prefix, HttpHandler handler) {
  thread_->invoke([&] {
    auto* route = new Impl::Route{impl_.get(), std::move(handler), {}};
    soup_server_add_handler(impl_->server, path_prefix.c_str(), Impl::on_request, route, Impl::destroy_route);
  });
}

void HttpServer::add_websocket_handler(const std::string& path, WebSocketOptions options) {
  thread_->invoke([&] {
    // The normal handler runs first and refuses (sets a status) when the check fails; libsoup
    // then skips the upgrade.
    auto* check_route = new Impl::Route{impl_.get(), nullptr, options};
    soup_server_add_handler(impl_->server, path.c_str(), Impl::on_request, check_route, Impl::destroy_route);
    auto* route = new Impl::Route{impl_.get(), nullptr, std::move(options)};
    soup_server_add_websocket_handler(impl_->server, path.c_str(), nullptr, nullptr, Impl::on_websocket, route,
                                      Impl::destroy_route);
  });
}

void HttpServer::remove_handler(const std::string& path_prefix) {
  thread_->invoke([&] { soup_server_remove_handler(impl_->server, path_prefix.c_str()); });
}

std::string HttpServer::base_url() const {
  const bool v6 = config_.address.find(':') != std::string::npos;
  return std::string(tls_ ? "https://" : "http://") + (v6 ? "[" + config_.address + "]" : config_.address) + ":" +
         std::to_string(port_);
}

void HttpServer::run_on_thread(std::function<void()> fn) { thread_->invoke(std::move(fn)); }

std::optional<std::string> request_token(const HttpRequest& request) {
  std::string auth = request.header("authorization");
  if (auth.size() > 7 && lower(auth.substr(0, 7)) == "bearer ") return auth.substr(7);
  auto it = request.query.find("token");
  if (it != request.query.end()) return it->second;
  return std::nullopt;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Time depends on the length of `a` (the secret) only, never on where the strings differ.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= uint8_t(a[i] ^ (i < b.size() ? b[i] : ~a[i]));
  return diff == 0;
}

std::optional<HttpResponse> check_token(const HttpRequest& request, const std::string& expected) {
  if (expected.empty()) return std::nullopt;
  auto token = request_token(request);
  if (!token) {
    HttpResponse r = HttpResponse::text(401, "a token is needed\n");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }
  if (!constant_time_equal(expected, *token)) return HttpResponse::text(403, "wrong token\n");
  return std::nullopt;
}

std::string generate_token() {
  uint8_t bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += size_t(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace vdistream::transport
