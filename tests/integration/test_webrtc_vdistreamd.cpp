// vdistreamd's WebRTC command line: --http with a token file, --tls-cert/--tls-key, --no-auth.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <libsoup/soup.h>

#include <fstream>
#include <future>
#include <thread>

#include "fixtures/process.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

// The server must outlive the test's polling even when a sanitizer build starts slowly on a
// loaded machine: 20 s of a 30 fps source (the test waits for it to finish).
constexpr const char* kFrames = "600";

// GET `url`; 0 when nothing answered. Accepts the self-signed certificate of the test.
int get_status(const std::string& url) {
  SoupSession* session = soup_session_new_with_options("timeout", 5u, nullptr);
  SoupMessage* msg = soup_message_new("GET", url.c_str());
  g_signal_connect(msg, "accept-certificate", G_CALLBACK(+[](SoupMessage*, GTlsCertificate*, GTlsCertificateFlags) {
                     return TRUE;
                   }),
                   nullptr);
  GError* error = nullptr;
  GBytes* body = soup_session_send_and_read(session, msg, nullptr, &error);
  int status = error ? 0 : int(soup_message_get_status(msg));
  if (body) g_bytes_unref(body);
  if (error) g_error_free(error);
  g_object_unref(msg);
  g_object_unref(session);
  return status;
}

int wait_status(const std::string& url, int want) {
  int status = 0;
  for (int i = 0; i < 100 && (status = get_status(url)) != want; ++i) std::this_thread::sleep_for(100ms);
  return status;
}

}  // namespace

TEST_CASE("vdistreamd --http with --token-file serves the page to the token only and prints the URL") {
  test::TempDir dir;
  std::ofstream(dir.file("desk.token")) << "0123456789abcdef-test-token\n";
  ::chmod(dir.file("desk.token").c_str(), 0644);  // as many editors leave a new file
  const int port = test::free_tcp_port();
  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/desktops/default/";
  auto run = std::async(std::launch::async, [&] {
    return test::run_process({VDISTREAMD_PATH, "--source", "synthetic:typing@640x360@30", "--frames", kFrames, "--http",
                              "127.0.0.1:" + std::to_string(port), "--token-file", dir.file("desk.token")},
                             60s);
  });
  CHECK(wait_status(base + "?token=0123456789abcdef-test-token", 200) == 200);
  CHECK(get_status(base) == 401);
  CHECK(get_status(base + "?token=0123456789abcdef-test-tokeN") == 403);
  // The command-line desktop runs in the service's Host: its control API and metrics are on the
  // same server, behind the same token.
  const std::string server = "http://127.0.0.1:" + std::to_string(port);
  CHECK(get_status(server + "/api/desktops/default?token=0123456789abcdef-test-token") == 200);
  CHECK(get_status(server + "/metrics?token=0123456789abcdef-test-token") == 200);
  CHECK(get_status(server + "/api/desktops") == 401);
  auto result = run.get();
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find(base + "?token=0123456789abcdef-test-token") != std::string::npos);
  CHECK(result.out.find(server + "/api/desktops") != std::string::npos);
  // The log warns of a token file others can read, and never holds the token (even the wrong one
  // a request brought).
  CHECK_THAT(result.err, Catch::Contains("mode is 0644") && Catch::Contains("chmod 600 " + dir.file("desk.token")));
  CHECK_THAT(result.err, !Catch::Contains("0123456789abcdef-test-tok"));
  CHECK_THAT(result.err, !Catch::Contains("answer anyone"));
}

TEST_CASE("vdistreamd --tls-cert/--tls-key serve HTTPS and --no-auth serves without a token") {
  test::TempDir dir;
  auto cert = test::run_process({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                                 "/CN=127.0.0.1", "-keyout", dir.file("key.pem"), "-out", dir.file("cert.pem")},
                                60s);
  REQUIRE(cert.exit_code == 0);
  const int port = test::free_tcp_port();
  const std::string page = "https://127.0.0.1:" + std::to_string(port) + "/desktops/default/";
  auto run = std::async(std::launch::async, [&] {
    return test::run_process({VDISTREAMD_PATH, "--source", "synthetic:typing@640x360@30", "--frames", kFrames, "--http",
                              "127.0.0.1:" + std::to_string(port), "--no-auth", "--tls-cert", dir.file("cert.pem"),
                              "--tls-key", dir.file("key.pem")},
                             60s);
  });
  CHECK(wait_status(page, 200) == 200);  // no token needed
  auto result = run.get();
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find(page + "   (no token: --no-auth)") != std::string::npos);
  CHECK_THAT(result.err, Catch::Contains("warn") && Catch::Contains("answer anyone who can reach them"));
  CHECK_THAT(result.err, !Catch::Contains("without TLS"));  // loopback

  // A key without its certificate, or a token file with --no-auth, is refused at the command line.
  auto half = test::run_process({VDISTREAMD_PATH, "--source", "synthetic:typing", "--http", ":0", "--tls-key",
                                 dir.file("key.pem")},
                                20s);
  CHECK(half.exit_code != 0);
}
