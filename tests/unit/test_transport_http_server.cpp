// The service's HTTP server: handlers by path prefix, token checks, WebSocket upgrade refused
// before it happens, size-capped messages. A real libsoup client talks to it over loopback.
#include <catch2/catch.hpp>
#include <libsoup/soup.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "transport/http_server.hpp"

using namespace vdistream::transport;

namespace {

struct Reply {
  int status = 0;
  std::string body;
};

Reply http_get(const std::string& url, const std::string& bearer = "") {
  SoupSession* session = soup_session_new();
  SoupMessage* msg = soup_message_new("GET", url.c_str());
  if (!bearer.empty())
    soup_message_headers_append(soup_message_get_request_headers(msg), "Authorization", ("Bearer " + bearer).c_str());
  GError* error = nullptr;
  GBytes* bytes = soup_session_send_and_read(session, msg, nullptr, &error);
  Reply r;
  if (bytes) {
    gsize size = 0;
    const char* data = static_cast<const char*>(g_bytes_get_data(bytes, &size));
    r.body.assign(data ? data : "", size);
    g_bytes_unref(bytes);
  }
  if (error) g_error_free(error);
  r.status = int(soup_message_get_status(msg));
  g_object_unref(msg);
  g_object_unref(session);
  return r;
}

// Opens a WebSocket with its own main context, bounded in time; the status is the HTTP
// status of a refused upgrade, 101 when it was accepted.
struct WsClient {
  GMainContext* context = g_main_context_new();
  SoupSession* session = nullptr;
  SoupWebsocketConnection* conn = nullptr;
  int status = 0;
  std::vector<std::string> received;
  bool closed = false;
  uint16_t close_code = 0;

  explicit WsClient(const std::string& url) {
    g_main_context_push_thread_default(context);
    session = soup_session_new();
    SoupMessage* msg = soup_message_new("GET", url.c_str());
    bool done = false;
    struct Ctx {
      WsClient* self;
      bool* done;
    } ctx{this, &done};
    soup_session_websocket_connect_async(
        session, msg, nullptr, nullptr, G_PRIORITY_DEFAULT, nullptr,
        [](GObject* source, GAsyncResult* result, gpointer data) {
          auto* c = static_cast<Ctx*>(data);
          GError* e = nullptr;
          c->self->conn = soup_session_websocket_connect_finish(SOUP_SESSION(source), result, &e);
          if (e) g_error_free(e);
          *c->done = true;
        },
        &ctx);
    pump([&] { return done; });
    status = int(soup_message_get_status(msg));
    g_object_unref(msg);
    if (conn) {
      g_signal_connect(conn, "message", G_CALLBACK(+[](SoupWebsocketConnection*, gint, GBytes* m, gpointer d) {
                         gsize n = 0;
                         const char* p = static_cast<const char*>(g_bytes_get_data(m, &n));
                         static_cast<WsClient*>(d)->received.emplace_back(p, n);
                       }),
                       this);
      g_signal_connect(conn, "closed", G_CALLBACK(+[](SoupWebsocketConnection* c, gpointer d) {
                         auto* self = static_cast<WsClient*>(d);
                         self->closed = true;
                         self->close_code = soup_websocket_connection_get_close_code(c);
                       }),
                       this);
    }
  }
  ~WsClient() {
    if (conn) {
      if (!closed) soup_websocket_connection_close(conn, SOUP_WEBSOCKET_CLOSE_NORMAL, nullptr);
      pump([&] { return closed; }, std::chrono::milliseconds(500));
      g_object_unref(conn);
    }
    g_object_unref(session);
    g_main_context_pop_thread_default(context);
    g_main_context_unref(context);
  }
  template <typename Pred>
  bool pump(Pred done, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
      if (!g_main_context_iteration(context, FALSE)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return done();
  }
};

std::unique_ptr<HttpServer> any_port_server() {
  HttpServerConfig config;
  config.port = 0;
  auto server = HttpServer::create(config);
  REQUIRE(server);
  return std::move(*server);
}

}  // namespace

TEST_CASE("HTTP addresses: host:port and :port (loopback) and IPv6 in brackets are read and bad ports refused") {
  auto a = parse_http_address("0.0.0.0:8443");
  REQUIRE(a);
  CHECK(a->address == "0.0.0.0");
  CHECK(a->port == 8443);
  auto loop = parse_http_address(":8080");
  REQUIRE(loop);
  CHECK(loop->address == "127.0.0.1");
  auto v6 = parse_http_address("[::1]:9000");
  REQUIRE(v6);
  CHECK(v6->address == "::1");
  CHECK(v6->port == 9000);
  CHECK(!parse_http_address("127.0.0.1:http"));
  CHECK(!parse_http_address("127.0.0.1:70000"));
  CHECK(!parse_http_address("[::1]9000"));
}

TEST_CASE("HTTP server answers by the longest path prefix on the bound port with query and headers") {
  auto server = any_port_server();
  REQUIRE(server->port() != 0);
  server->add_handler("/a/", [](const HttpRequest& r) { return HttpResponse::text(200, "a " + r.path); });
  server->add_handler("/a/b/", [](const HttpRequest& r) {
    return HttpResponse::json(201, "{\"q\":\"" + r.query.at("x") + "\",\"m\":\"" + r.method + "\"}");
  });
  auto a = http_get(server->base_url() + "/a/zz");
  CHECK(a.status == 200);
  CHECK(a.body == "a /a/zz");
  auto b = http_get(server->base_url() + "/a/b/c?x=42");
  CHECK(b.status == 201);
  CHECK(b.body == "{\"q\":\"42\",\"m\":\"GET\"}");
  CHECK(http_get(server->base_url() + "/nothing").status == 404);
  server->remove_handler("/a/b/");
  CHECK(http_get(server->base_url() + "/a/b/c?x=1").body == "a /a/b/c");
}

TEST_CASE("Tokens: bearer header or token query parameter - 401 without and 403 when wrong - constant-time compare") {
  CHECK(constant_time_equal("secret", "secret"));
  CHECK(!constant_time_equal("secret", "secreT"));
  CHECK(!constant_time_equal("secret", "secret2"));
  CHECK(!constant_time_equal("secret", ""));
  auto token = generate_token();
  CHECK(token.size() == 64);
  CHECK(token != generate_token());

  auto server = any_port_server();
  server->add_handler("/private/", [token](const HttpRequest& r) {
    if (auto refused = check_token(r, token)) return *refused;
    return HttpResponse::text(200, "in");
  });
  CHECK(http_get(server->base_url() + "/private/").status == 401);
  CHECK(http_get(server->base_url() + "/private/?token=nope").status == 403);
  CHECK(http_get(server->base_url() + "/private/", "nope").status == 403);
  CHECK(http_get(server->base_url() + "/private/?token=" + token).body == "in");
  CHECK(http_get(server->base_url() + "/private/", token).body == "in");
}

TEST_CASE("WebSockets: refused before the upgrade by the check - echo - oversized messages close the socket") {
  auto server = any_port_server();
  std::atomic<int> opened{0}, closed{0};
  WebSocketOptions options;
  options.max_message_bytes = 1024;
  options.check = [](const HttpRequest& r) { return check_token(r, "letmein"); };
  options.on_open = [&](const std::shared_ptr<WebSocket>& ws, const HttpRequest&) {
    ++opened;
    std::weak_ptr<WebSocket> weak = ws;
    ws->on_text = [weak](const std::string& text) {
      if (auto s = weak.lock()) s->send_text("echo:" + text);
    };
    ws->on_closed = [&] { ++closed; };
  };
  server->add_websocket_handler("/ws", options);
  const std::string url = "ws://127.0.0.1:" + std::to_string(server->port()) + "/ws";

  {
    WsClient refused(url + "?token=wrong");
    CHECK(refused.conn == nullptr);
    CHECK(refused.status == 403);
    WsClient missing(url);
    CHECK(missing.conn == nullptr);
    CHECK(missing.status == 401);
  }
  CHECK(opened == 0);

  {
    WsClient client(url + "?token=letmein");
    REQUIRE(client.conn != nullptr);
    soup_websocket_connection_send_text(client.conn, "hello");
    CHECK(client.pump([&] { return !client.received.empty(); }));
    REQUIRE(client.received.size() == 1);
    CHECK(client.received[0] == "echo:hello");

    std::string big(4096, 'x');
    soup_websocket_connection_send_text(client.conn, big.c_str());
    CHECK(client.pump([&] { return client.closed; }));
  }
  CHECK(opened == 1);
  // The server notices the close on its own thread.
  for (int i = 0; i < 200 && closed == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(closed == 1);

  // A socket still open when the server goes away gets its on_closed.
  {
    WsClient client(url + "?token=letmein");
    REQUIRE(client.conn != nullptr);
    server.reset();
    CHECK(closed == 2);
  }
}

// A message handler that throws (it quoted the peer's bytes into JSON that would not dump, once)
// closes that socket with 1011; the server and its other sockets go on.
TEST_CASE("WebSockets: a message handler that throws closes only that socket - the server goes on") {
  auto server = any_port_server();
  WebSocketOptions options;
  options.on_open = [&](const std::shared_ptr<WebSocket>& ws, const HttpRequest&) {
    std::weak_ptr<WebSocket> weak = ws;
    ws->on_text = [weak](const std::string& text) {
      if (text == "throw") throw std::runtime_error("the handler failed");
      if (auto s = weak.lock()) s->send_text("echo:" + text);
    };
  };
  server->add_websocket_handler("/ws", options);
  const std::string url = "ws://127.0.0.1:" + std::to_string(server->port()) + "/ws";
  WsClient bystander(url);
  REQUIRE(bystander.conn != nullptr);
  {
    WsClient client(url);
    REQUIRE(client.conn != nullptr);
    soup_websocket_connection_send_text(client.conn, "throw");
    CHECK(client.pump([&] { return client.closed; }));
    CHECK(soup_websocket_connection_get_close_code(client.conn) == SOUP_WEBSOCKET_CLOSE_SERVER_ERROR);
  }
  soup_websocket_connection_send_text(bystander.conn, "still here");
  CHECK(bystander.pump([&] { return !bystander.received.empty(); }));
  REQUIRE(bystander.received.size() == 1);
  CHECK(bystander.received[0] == "echo:still here");
}

namespace {

// A TCP socket to 127.0.0.1:port whose reads give up after 10 s; -1 when it cannot connect.
int connect_loopback(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  timeval limit{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
  close(fd);
  return -1;
}

// One raw HTTP/1.1 exchange on 127.0.0.1:port (what a client that lies about its body sends); the
// status line's code, 0 when there was no answer within 10 s.
int raw_status(uint16_t port, const std::string& request) {
  const int fd = connect_loopback(port);
  int status = 0;
  if (fd >= 0 && send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size())) {
    char buf[256];
    const ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n > 12) status = std::atoi(std::string(buf + 9, 3).c_str());  // "HTTP/1.1 NNN"
  }
  if (fd >= 0) close(fd);
  return status;
}

// The sockets this process has open.
size_t open_sockets() {
  size_t n = 0;
  char target[64];
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    const ssize_t len = readlink(it->path().c_str(), target, sizeof target - 1);
    if (len > 0 && std::string_view(target, size_t(len)).starts_with("socket:")) ++n;
  }
  return n;
}

}  // namespace

// libsoup 3.2 leaks a kept-alive connection its client closes between requests (CLOSE-WAIT, an fd
// each): every answer says Connection: close, so the server closes each connection itself.
TEST_CASE("HTTP answers close their connection: a client that keeps it alive and goes leaves no socket behind") {
  auto server = any_port_server();
  server->add_handler("/a", [](const HttpRequest&) { return HttpResponse::text(200, "a"); });
  const size_t before = open_sockets();
  for (int i = 0; i < 20; ++i) {
    // As a browser or a scraper asks: keep-alive (HTTP/1.1's default), then it closes.
    const int fd = connect_loopback(server->port());
    REQUIRE(fd >= 0);
    const std::string request = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
    REQUIRE(send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size()));
    std::string answer;
    char buf[512];
    while (!answer.ends_with("\r\n\r\na")) {  // the whole answer (its body is "a"); then the client goes
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      answer.append(buf, size_t(n));
    }
    CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 200") && Catch::Contains("Connection: close"));
    close(fd);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (open_sockets() > before && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(open_sockets() <= before);
  CHECK(http_get(server->base_url() + "/a").body == "a");  // and it still answers
}

// libsoup keeps a request's body whole before any handler (the token check included) runs; no
// route takes one, so a body over the limit, or one without a length, is dropped unread by any
// handler, whoever sends it.
TEST_CASE("HTTP request bodies: over the limit 413, chunked 411, before any handler or token check runs") {
  auto server = any_port_server();
  std::atomic<int> handled{0};
  server->add_handler("/api", [&](const HttpRequest& r) {
    ++handled;
    return HttpResponse::text(200, std::to_string(r.body.size()));
  });
  const auto port = server->port();
  const std::string big(kMaxRequestBodyBytes + 1, 'x');
  CHECK(raw_status(port, "POST /api/x HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" +
                             big) == 413);
  CHECK(raw_status(port, "POST /api/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n") ==
        411);
  CHECK(handled == 0);
  const std::string fits(kMaxRequestBodyBytes, 'y');
  CHECK(raw_status(port, "POST /api/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: " +
                             std::to_string(fits.size()) + "\r\n\r\n" + fits) == 200);
  CHECK(handled == 1);
}

namespace {

// A WebSocket client on a raw socket that reads only when told: a page that sends and never reads.
// Its receive buffer is made small before it connects, so the server's send buffer fills soon.
struct StalledWsClient {
  int fd = -1;
  std::string pending;  // read but not yet parsed

  StalledWsClient(uint16_t port, const std::string& path) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    const int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    timeval limit{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    const std::string upgrade = "GET " + path +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    REQUIRE(send(fd, upgrade.data(), upgrade.size(), MSG_NOSIGNAL) == ssize_t(upgrade.size()));
    while (pending.find("\r\n\r\n") == std::string::npos) REQUIRE(read_some());
    REQUIRE_THAT(pending, Catch::StartsWith("HTTP/1.1 101"));
    pending.erase(0, pending.find("\r\n\r\n") + 4);
  }
  ~StalledWsClient() { close(fd); }

  bool read_some() {
    char buf[65536];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    pending.append(buf, size_t(n));
    return true;
  }
  // One masked text frame (a client's frames are masked), sent whole.
  void send_text(const std::string& text) {
    REQUIRE(text.size() < 65536);
    std::string frame = {char(0x81)};
    if (text.size() < 126) {
      frame += char(0x80 | text.size());
    } else {
      frame += char(0x80 | 126);
      frame += char(text.size() >> 8);
      frame += char(text.size() & 0xff);
    }
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    frame.append(mask, 4);
    for (size_t i = 0; i < text.size(); ++i) frame += char(text[i] ^ mask[i % 4]);
    REQUIRE(send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) == ssize_t(frame.size()));
  }
  // The next text frame's payload (the server's are unmasked; pings and other frames skipped);
  // nothing when no whole frame came within 2 s.
  std::optional<std::string> next_text() {
    timeval limit{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    for (;;) {
      while (pending.size() >= 2) {
        const auto opcode = uint8_t(pending[0]) & 0x0f;
        size_t length = uint8_t(pending[1]) & 0x7f, header = 2;
        if (length == 126) {
          if (pending.size() < 4) break;
          length = size_t(uint8_t(pending[2])) << 8 | uint8_t(pending[3]);
          header = 4;
        } else if (length == 127) {
          if (pending.size() < 10) break;
          length = 0;
          for (int i = 2; i < 10; ++i) length = length << 8 | uint8_t(pending[size_t(i)]);
          header = 10;
        }
        if (pending.size() < header + length) break;
        std::string payload = pending.substr(header, length);
        pending.erase(0, header + length);
        if (opcode == 0x1) return payload;
      }
      if (!read_some()) return std::nullopt;
    }
  }
};

}  // namespace

// A page that sends and never reads: what its messages call for is dropped while its socket is
// full (counted), so the server's queue toward it cannot grow; the server answers others, and
// the page is answered again once it reads.
TEST_CASE("WebSockets: replies to a peer that does not read are dropped while its socket is full, and counted") {
  auto server = any_port_server();
  std::shared_ptr<WebSocket> stalled_socket;  // set on the server thread
  std::atomic<bool> opened{false};
  std::atomic<int> handled{0};
  WebSocketOptions options;
  options.on_open = [&](const std::shared_ptr<WebSocket>& ws, const HttpRequest&) {
    if (!opened) {  // the first is the stalled client's
      stalled_socket = ws;
      opened = true;
    }
    std::weak_ptr<WebSocket> weak = ws;
    ws->on_text = [weak, &handled](const std::string& text) {
      ++handled;
      if (auto s = weak.lock()) s->send_reply("echo:" + text);
    };
  };
  server->add_websocket_handler("/ws", options);

  StalledWsClient stalled(server->port(), "/ws");
  for (int i = 0; i < 500 && !opened; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(opened);
  // 2000 messages of 16 KiB call for 32 MiB of replies; the kernel holds a few MiB of it at most.
  constexpr int kMessages = 2000;
  const std::string text(16 * 1024, 'x');
  for (int i = 0; i < kMessages; ++i) stalled.send_text(text);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (handled < kMessages && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(handled == kMessages);
  server->run_on_thread([] {});  // every reply posted has been sent or dropped
  const uint64_t dropped = stalled_socket->replies_dropped();
  CHECK(dropped >= uint64_t(kMessages / 2));
  CHECK(dropped < uint64_t(kMessages));

  // Another socket is answered meanwhile.
  const std::string url = "ws://127.0.0.1:" + std::to_string(server->port()) + "/ws";
  {
    WsClient bystander(url);
    REQUIRE(bystander.conn != nullptr);
    soup_websocket_connection_send_text(bystander.conn, "still here");
    CHECK(bystander.pump([&] { return !bystander.received.empty(); }));
    REQUIRE(bystander.received.size() == 1);
    CHECK(bystander.received[0] == "echo:still here");
  }

  // The page reads at last: every reply that was not dropped arrives whole, and it is answered again.
  uint64_t arrived = 0;
  while (auto reply = stalled.next_text()) {
    REQUIRE(*reply == "echo:" + text);
    ++arrived;
  }
  CHECK(arrived == uint64_t(kMessages) - dropped);
  stalled.send_text("again");
  auto again = stalled.next_text();
  REQUIRE(again);
  CHECK(*again == "echo:again");
  CHECK(stalled_socket->replies_dropped() == dropped);
}
