// vdistreamd --config as an operator runs it: several desktops (synthetic and a real QEMU), the
// control API and /metrics over HTTP, a real SPICE client, SIGHUP reloads and SIGTERM.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "fixtures/browser.hpp"
#include "fixtures/process.hpp"
#include "fixtures/qemu_vm.hpp"
#include "benchmarks/clients/remote_viewer.hpp"
#include "benchmarks/clients/spice_client.hpp"
#include "test_service_fixture.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

using test::kToken;
using test::desktops;
using test::captured;
using test::http_section;
using test::Service;

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string synthetic_desktop(const test::TempDir& dir, const std::string& name, const std::string& workload) {
  return "[[desktop]]\nname = \"" + name + "\"\nsource = \"synthetic:" + workload + "@640x360@30\"\nspice = \"unix:" +
         dir.file(name + ".sock") + "\"\nspice_no_auth = true\n\n";
}

// Until every named desktop's frame counter passed its value in `base` by `more`.
bool all_grow(int port, const std::vector<std::string>& names, const std::map<std::string, nlohmann::json>& base,
              uint64_t more, std::chrono::milliseconds limit = 30s) {
  return test::eventually(
      [&] {
        auto now = desktops(port);
        for (const auto& n : names)
          if (captured(now, n) < captured(base, n) + more) return false;
        return true;
      },
      limit);
}

}  // namespace

TEST_CASE("vdistreamd serves three synthetic desktops and a QEMU VM - a killed QEMU disconnects only its desktop",
          "[service][vdistreamd][qemu]") {
  test::QemuVm vm;  // declared first: destroyed after the service
  Service s;
  s.start(http_section(s.port) + synthetic_desktop(s.dir, "typing", "typing") +
          synthetic_desktop(s.dir, "drag", "window-drag") + synthetic_desktop(s.dir, "video", "video") +
          "spice_mode = \"stream\"\n\n"  // the video desktop
          "[[desktop]]\nname = \"vm\"\nsource = \"" + vm.spec() + "\"\nspice = \"unix:" + s.dir.file("vm.sock") +
          "\"\nspice_no_auth = true\n");
  const std::vector<std::string> synthetic = {"typing", "drag", "video"};

  // All four in the API, connected, and counting frames.
  REQUIRE_LOGGED(s, test::eventually(
      [&] {
        auto d = desktops(s.port);
        if (d.size() != 4) return false;
        for (auto& [name, j] : d)
          if (j["state"] != "connected" || captured(d, name) == 0) return false;
        return true;
      },
      60s));
  auto base = desktops(s.port);
  for (auto& [name, j] : base) {
    INFO(name << ": " << j.dump());
    CHECK(j["connected"] == true);
    CHECK_THAT(j["encoder"]["why"].get<std::string>(), Catch::Contains("software"));
    CHECK(j["spice"]["listen"] == "unix:" + s.dir.file(name + ".sock"));
  }
  CHECK(base["vm"]["source"] == vm.spec());
  REQUIRE_LOGGED(s, all_grow(s.port, synthetic, base, 10));

  // They stream to a real SPICE client: the synthetic desktop's barcodes arrive in order, and
  // the VM's screen (SeaBIOS) is drawn.
  {
    bench::SpiceClient client({.unix_path = s.dir.file("typing.sock")});
    REQUIRE(client.wait_outcome(20s) == bench::SpiceClient::Outcome::Opened);
    REQUIRE(client.wait_display(20s));
    REQUIRE_LOGGED(s, test::eventually([&] { return client.barcodes().size() >= 5; }, 30s));
    auto codes = client.barcodes();
    for (size_t i = 1; i < codes.size(); ++i) CHECK(codes[i].barcode > codes[i - 1].barcode);
  }
  {
    // Stream mode: the desktop's H.264 through spice-server's stream device.
    bench::SpiceClient client({.unix_path = s.dir.file("video.sock")});
    REQUIRE(client.wait_outcome(20s) == bench::SpiceClient::Outcome::Opened);
    REQUIRE_LOGGED(s, test::eventually([&] { return client.barcodes().size() >= 5; }, 30s));
    auto codes = client.barcodes();
    for (size_t i = 1; i < codes.size(); ++i) CHECK(codes[i].barcode > codes[i - 1].barcode);
    const auto video = desktops(s.port)["video"];
    INFO(video.dump());
    CHECK(video["spice"]["mode"] == "stream");
    CHECK(video["spice"]["stream_codec"] == "h264");
    CHECK(video["spice"]["stream_access_units"].get<uint64_t>() > 0);
  }
  {
    bench::SpiceClient client({.unix_path = s.dir.file("vm.sock")});
    REQUIRE(client.wait_outcome(20s) == bench::SpiceClient::Outcome::Opened);
    REQUIRE(client.wait_display(20s));
    auto picture = client.picture();
    REQUIRE(picture);
    CHECK(picture->width >= 640);
  }

  // /metrics, read by Prometheus's own parser: every desktop in every family.
  auto unauthorised = test::http_request(s.port, "GET", "/metrics", "");
  CHECK(unauthorised.status == 401);
  CHECK(test::http_request(s.port, "GET", "/metrics", "wrong-token-wrong-token").status == 403);
  auto metrics = test::http_request(s.port, "GET", "/metrics", kToken);
  REQUIRE(metrics.status == 200);
  auto parsed = test::parse_prometheus(metrics.body, s.dir.path());
  INFO(parsed.error);
  REQUIRE(parsed.ok);
  CHECK(parsed.family_types["vdistream_frames_captured"] == "counter");
  CHECK(parsed.family_types["vdistream_stage_latency_seconds"] == "summary");
  REQUIRE(parsed.samples["vdistream_frames_captured_total"].size() == 4);
  std::map<std::string, double> frames, connected;
  for (const auto& m : parsed.samples["vdistream_frames_captured_total"]) frames[m.labels.at("desktop")] = m.value;
  for (const auto& m : parsed.samples["vdistream_desktop_connected"]) connected[m.labels.at("desktop")] = m.value;
  for (const auto& n : {"typing", "drag", "video", "vm"}) {
    INFO(n);
    CHECK(frames[n] > 0);
    CHECK(connected[n] == 1);
  }
  CHECK(parsed.samples["vdistream_desktops"].at(0).value == 4);

  // The API's actions, and its refusals.
  CHECK(test::http_request(s.port, "POST", "/api/desktops/typing/keyframe", kToken).status == 202);
  auto detail = test::http_request(s.port, "GET", "/api/desktops/typing", kToken);
  REQUIRE(detail.status == 200);
  CHECK(nlohmann::json::parse(detail.body)["latency"].contains("total"));
  CHECK(nlohmann::json::parse(detail.body)["encoder"]["probe"].size() >= 1);
  CHECK(test::http_request(s.port, "GET", "/api/desktops/nobody", kToken).status == 404);
  CHECK(test::http_request(s.port, "GET", "/api/desktops/typing/keyframe", kToken).status == 405);
  auto disconnect = test::http_request(s.port, "POST", "/api/desktops/drag/disconnect", kToken);
  CHECK(disconnect.status == 200);
  {
    // The SPICE server came back on the same socket.
    bench::SpiceClient client({.unix_path = s.dir.file("drag.sock")});
    CHECK(client.wait_outcome(20s) == bench::SpiceClient::Outcome::Opened);
  }

  // QEMU dies: only its desktop disconnects; the other three keep counting frames meanwhile.
  vm.kill_qemu();
  REQUIRE_LOGGED(s, test::eventually([&] { return desktops(s.port)["vm"]["state"] == "disconnected"; }, 30s));
  auto during = desktops(s.port);
  CHECK(during["vm"]["connected"] == false);
  REQUIRE_LOGGED(s, all_grow(s.port, synthetic, during, 15));
  auto later = desktops(s.port);
  CHECK(later["vm"]["state"] == "disconnected");  // still down while the others counted
  for (const auto& n : synthetic) CHECK(later[n]["state"] == "connected");

  // QEMU is back on the same bus: the desktop reconnects and counts again.
  vm.start_qemu();
  REQUIRE_LOGGED(s, test::eventually(
      [&] {
        auto d = desktops(s.port);
        return d["vm"]["state"] == "connected" && d["vm"]["source_connections"] == 2 &&
               captured(d, "vm") > captured(later, "vm");
      },
      60s));
  CHECK_STOPS_CLEANLY(s);
  CHECK_THAT(s.log(), Catch::Contains("SIGTERM: stopping every desktop"));
}

TEST_CASE("SIGHUP adds and removes desktops while the untouched ones keep streaming - a bad file changes nothing",
          "[service][vdistreamd][reload]") {
  Service s;
  const std::string a = synthetic_desktop(s.dir, "a", "typing"), b = synthetic_desktop(s.dir, "b", "window-drag");
  s.start(http_section(s.port) + a + b + synthetic_desktop(s.dir, "gone", "idle"));
  REQUIRE_LOGGED(s, test::eventually([&] { return desktops(s.port).size() == 3 && captured(desktops(s.port), "b") > 5; }, 60s));
  auto before = desktops(s.port);

  write(s.config_path(), http_section(s.port) + a + b + synthetic_desktop(s.dir, "new", "scrolling"));
  s.process->signal(SIGHUP);
  REQUIRE_LOGGED(s, test::eventually(
      [&] {
        auto d = desktops(s.port);
        return d.count("new") && !d.count("gone") && captured(d, "new") > 5;
      },
      60s));
  REQUIRE_LOGGED(s, all_grow(s.port, {"a", "b"}, before, 20));
  auto after = desktops(s.port);
  for (const auto& n : {"a", "b"}) {
    INFO(n);
    // The same session all along: connected once, never restarted, its counters never reset.
    CHECK(after[n]["source_connections"] == 1);
    CHECK(after[n]["uptime_seconds"].get<double>() > before[n]["uptime_seconds"].get<double>());
    CHECK(captured(after, n) > captured(before, n));
    CHECK(s.log().find("[" + std::string(n) + "] stopped") == std::string::npos);
  }
  CHECK_THAT(s.log(), Catch::Contains("added new; removed gone; restarted -; kept a, b"));
  CHECK(s.log().find("[gone] stopped") != std::string::npos);

  // A bad file (an unknown key in desktop a, line 11) is refused as a whole.
  write(s.config_path(), http_section(s.port) + a + "colour = \"blue\"\n" + b);
  s.process->signal(SIGHUP);
  REQUIRE_LOGGED(s, test::eventually(
      [&] {
        auto r = test::http_request(s.port, "GET", "/api/service", kToken);
        return r.status == 200 && nlohmann::json::parse(r.body)["last_reload"]["ok"] == false;
      },
      30s));
  auto info = nlohmann::json::parse(test::http_request(s.port, "GET", "/api/service", kToken).body);
  const std::string error = info["last_reload"]["errors"][0];
  CHECK_THAT(error, Catch::Contains(s.config_path() + ":11:1:"));  // line of the bad key
  CHECK_THAT(error, Catch::Contains("unknown key 'colour'"));
  // What malloc holds (its figures are AddressSanitizer's own in that build: only their presence).
  for (const char* key : {"heap_in_use_mib", "heap_free_held_mib", "heap_mmapped_mib"}) {
    INFO(key);
    CHECK(info["memory"][key].is_number());
  }
  auto kept = desktops(s.port);
  CHECK(kept.size() == 3);
  CHECK(kept.count("new") == 1);  // the running configuration stays
  CHECK(kept["a"]["source_connections"] == 1);
  CHECK_THAT(s.log(), Catch::Contains("reload refused"));

  CHECK_STOPS_CLEANLY(s);
  CHECK_THAT(s.log(), Catch::Contains("[service] stopped"));
}

TEST_CASE("vdistreamd --check-config names the line of every error and accepts a good file",
          "[service][vdistreamd][config]") {
  test::TempDir dir;
  write(dir.file("ok.ticket"), "secret\n");
  auto check = [&](const std::string& text) {
    write(dir.file("c.toml"), text);
    return test::run_process({VDISTREAMD_PATH, "--check-config", dir.file("c.toml")}, 60s);
  };
  const std::string head = "[[desktop]]\nname = \"a\"\nsource = \"synthetic:idle\"\n";
  struct Case {
    std::string text, expected;
  } cases[] = {
      {head + "bitrat_kbps = 1\n", ":4:1: desktop 'a': unknown key 'bitrat_kbps'"},
      {head + "bitrate_kbps = \"high\"\n", ":4:16: desktop 'a': bitrate_kbps must be an integer (kbit/s), not a string"},
      {head + head, ":4: desktop name 'a' is used twice (first on line 1)"},
      {head + "spice = \":5930\"\nspice_ticket_file = \"ok.ticket\"\n[[desktop]]\nname = \"b\"\nsource = "
              "\"synthetic:idle\"\nspice = \"127.0.0.1:5930\"\nspice_ticket_file = \"ok.ticket\"\n",
       ":6: desktop 'b' (line 6) listens on TCP port 5930, which desktop 'a' (line 1) already uses"},
      {head + "spice = \":5930\"\nspice_ticket_file = \"missing.ticket\"\n",
       ":5: desktop 'a': cannot read the SPICE ticket file " + dir.file("missing.ticket")},
  };
  for (const auto& c : cases) {
    auto r = check(c.text);
    INFO(c.text << "\n--- stderr:\n" << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Catch::Contains(dir.file("c.toml") + c.expected));
  }
  auto good = check(head + "spice = \":5930\"\nspice_ticket_file = \"ok.ticket\"\n");
  INFO(good.err);
  CHECK(good.exit_code == 0);
  CHECK_THAT(good.out, Catch::Contains("OK, 1 desktop"));

  // --config refuses to start on a bad file, with the same message.
  write(dir.file("bad.toml"), head + "bitrat_kbps = 1\n");
  auto run = test::run_process({VDISTREAMD_PATH, "--config", dir.file("bad.toml")}, 60s);
  CHECK(run.exit_code == 2);
  CHECK_THAT(run.err, Catch::Contains(dir.file("bad.toml") + ":4:1: desktop 'a': unknown key"));
}

TEST_CASE("a desktop with webrtc = true serves a browser on the service's HTTP server - the API counts the viewer",
          "[service][vdistreamd][webrtc]") {
  REQUIRE(bench::Chromium::available());
  Service s;
  s.start(http_section(s.port) + synthetic_desktop(s.dir, "web", "typing") + "webrtc = true\n" +
          synthetic_desktop(s.dir, "plain", "idle"));
  REQUIRE_LOGGED(s, test::eventually([&] { return desktops(s.port)["web"]["state"] == "connected"; }, 60s));
  const std::string page = "/desktops/web/";
  CHECK(test::http_request(s.port, "GET", page, "").status == 401);
  CHECK(test::http_request(s.port, "GET", page, kToken).status == 200);
  CHECK(test::http_request(s.port, "GET", "/desktops/plain/", kToken).status == 404);  // webrtc is off there
  const uint64_t encoded_before = desktops(s.port)["web"]["frames"]["encoded"].get<uint64_t>();

  const auto browser = test::launch_chromium("http://127.0.0.1:" + std::to_string(s.port) + page + "?token=" + kToken);
  INFO("Chromium log: " << browser->log_path());
  REQUIRE_LOGGED(s, test::eventually(
                        [&] {
                          auto d = desktops(s.port)["web"];
                          return d["viewers"] == 1 && d["streaming"] == true &&
                                 d["frames"]["encoded"].get<uint64_t>() > encoded_before + 10;
                        },
                        90s));
  auto detail = nlohmann::json::parse(test::http_request(s.port, "GET", "/api/desktops/web", kToken).body);
  INFO(detail.dump());
  CHECK(detail["webrtc_viewers"].is_object());  // the transport's per-viewer figures
  auto disconnect = test::http_request(s.port, "POST", "/api/desktops/web/disconnect", kToken);
  REQUIRE(disconnect.status == 200);
  CHECK(nlohmann::json::parse(disconnect.body)["disconnected"].get<int>() >= 1);
  CHECK_THAT(s.log(), Catch::Contains("[web] disconnected viewers through the API"));
  CHECK(test::http_request(s.port, "GET", page, kToken).status == 200);  // the page is served again
  browser->close();

  // A reload that removes the WebRTC desktop while the API is asked continuously: its paths go
  // from the HTTP server, which keeps answering (a stopping desktop needs the HTTP thread).
  write(s.config_path(), http_section(s.port) + synthetic_desktop(s.dir, "plain", "idle"));
  s.process->signal(SIGHUP);
  REQUIRE_LOGGED(s, test::eventually([&] { return desktops(s.port).size() == 1; }, 60s));
  CHECK(test::http_request(s.port, "GET", page, kToken).status == 404);
  CHECK(desktops(s.port)["plain"]["source_connections"] == 1);
  CHECK_STOPS_CLEANLY(s);
}

TEST_CASE("a VM set up the way libvirt's <graphics type='dbus'> does it is served from docs/libvirt.md's table",
          "[service][vdistreamd][qemu][libvirt]") {
  // libvirt (src/qemu/qemu_dbus.c) writes this bus configuration for every VM, runs dbus-daemon
  // with it, and starts QEMU with -display dbus,addr=unix:path=.../ID-NAME-dbus.sock.
  Service s;
  const std::string socket = s.dir.file("1-win10-dbus.sock"), bus_conf = s.dir.file("1-win10-dbus.conf");
  write(bus_conf,
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        "  \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n"
        "  <type>org.libvirt.qemu</type>\n  <listen>unix:path=" + socket + "</listen>\n  <auth>EXTERNAL</auth>\n"
        "  <policy context='default'>\n    <allow send_destination='*' eavesdrop='true'/>\n"
        "    <allow eavesdrop='true'/>\n    <allow own='*'/>\n  </policy>\n</busconfig>\n");
  test::ServiceProcess bus({"/usr/bin/dbus-daemon", "--config-file=" + bus_conf, "--nofork", "--nopidfile"},
                           s.dir.file("dbus.log"));
  REQUIRE(test::eventually([&] { return std::filesystem::exists(socket); }, 10s));
  test::ServiceProcess qemu({"/usr/bin/qemu-system-x86_64", "-name", "guest=win10", "-machine", "pc", "-accel", "tcg",
                             "-m", "64", "-nodefaults", "-device", "VGA", "-display",
                             "dbus,addr=unix:path=" + socket},
                            s.dir.file("qemu.log"));
  write(s.dir.file("win10.ticket"), "a-password\n");
  s.start(http_section(s.port) + "[[desktop]]\nname = \"win10\"\nsource = \"qemu-dbus:unix:path=" + socket +
          "\"\nspice = \"unix:" + s.dir.file("win10.sock") + "\"\nspice_ticket_file = \"win10.ticket\"\nwebrtc = true\n");
  REQUIRE_LOGGED(s, test::eventually(
                        [&] {
                          auto d = desktops(s.port);
                          return d.count("win10") && d["win10"]["state"] == "connected" && captured(d, "win10") > 0;
                        },
                        60s));
  {
    bench::SpiceClient client({.unix_path = s.dir.file("win10.sock"), .password = "a-password"});
    REQUIRE(client.wait_outcome(20s) == bench::SpiceClient::Outcome::Opened);
    REQUIRE(client.wait_display(20s));
  }
  // (The client leaves first: stopping a SPICE server with a client still connected sometimes
  // crashes inside libspice-server's watch dispatch, see the report; not this test's subject.)
  CHECK_STOPS_CLEANLY(s);
}

// spice-server writes to its clients with write(): a client killed mid-stream makes the next write
// EPIPE, and the default SIGPIPE would end vdistreamd with every desktop in it. Without --http
// nothing else (GLib's GSocket) ignores SIGPIPE for the process, which is how it once did.
TEST_CASE("vdistreamd serving SPICE only lives on when remote-viewer is killed mid-stream - the next viewer sees the desktop",
          "[service][spice][remote-viewer]") {
  test::TempDir dir;
  const int port = test::free_tcp_port();
  test::ServiceProcess service({VDISTREAMD_PATH, "--source", "synthetic:window-drag@1280x720@60", "--spice",
                                "127.0.0.1:" + std::to_string(port), "--no-auth"},
                               dir.file("vdistreamd.log"));
  // Whether a write lands in that window is up to the scheduler, so the disposition itself is
  // checked too: SIGPIPE among the ignored signals of vdistreamd's /proc status.
  uint64_t ignored = 0;
  REQUIRE(test::eventually(
      [&] {
        std::ifstream status("/proc/" + std::to_string(service.pid()) + "/status");
        for (std::string line; std::getline(status, line);)
          if (line.rfind("SigIgn:", 0) == 0) ignored = std::stoull(line.substr(7), nullptr, 16);
        return (ignored >> (SIGPIPE - 1)) & 1;
      },
      20s));
  bench::RemoteViewer::Options o;
  o.port = port;
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round << ", vdistreamd log:\n" << service.log());
    auto viewer = bench::RemoteViewer::launch(o);
    INFO(viewer.error());
    REQUIRE(viewer);
    INFO("remote-viewer: " << (*viewer)->log_tail());
    REQUIRE((*viewer)->locate(40s, nullptr));  // frames are flowing to it
    (*viewer)->kill_viewer();
    // vdistreamd's next frames go to a socket whose peer is gone.
    std::this_thread::sleep_for(1s);
    REQUIRE(service.running());
  }
  const int code = service.stop();
  INFO("vdistreamd log:\n" << service.log());
  CHECK(code == 0);
}
