// vdistreamd: streams virtual desktops. This version runs one desktop from the command line and
// records it; SPICE and WebRTC serving, QEMU sources and the configuration file come next.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "capture/source.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "encode/file_sink.hpp"
#include "encode/pipeline.hpp"
#include "encode/probe.hpp"
#include "service/config.hpp"
#include "service/service_runner.hpp"
#include "service/source_factory.hpp"
#include "service/spice_wiring.hpp"
#include "service/stats_report.hpp"
#include "spice/spice_desktop.hpp"
#include "transport/http_server.hpp"
#include "transport/webrtc_desktop.hpp"

using namespace vdistream;

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

constexpr const char* kDemoSource = "synthetic:window-drag@1280x720@30";
constexpr uint64_t kDemoFrames = 300;
constexpr const char* kDemoSpice = "127.0.0.1:5900";
constexpr const char* kDemoHttp = "127.0.0.1:8080";

// --http, --token-file, --tls-cert, --tls-key: the desktop for browsers over WebRTC.
struct WebRtcOptions {
  std::string http;
  std::string token_file;
  std::string tls_cert, tls_key;
};

struct Options {
  std::string source;
  std::string record;
  uint64_t frames = 0;
  bool demo = false;
  bool probe = false;
  uint32_t bitrate_kbps = 6000;
  std::string profile = "constrained-baseline";
  std::vector<std::string> encoders = encode::EncoderRegistry::default_preference();
  bool intra_refresh = false;
  std::string log_level = "info";
  std::string config_file;        // --config: every desktop of a configuration file
  std::string check_config_file;  // --check-config: validate and exit
  bool log_json = false;
  spice::SpiceOptions spice;  // --spice, --spice-mode, --spice-ticket-file, --no-auth, --spice-tls-dir
  WebRtcOptions webrtc;
};

// The SPICE server of the desktop, when --spice (or --demo) asks for one. --demo without a
// ticket file makes up a password and prints the command that connects with it.
core::Result<std::unique_ptr<spice::SpiceDesktop>> make_spice(const Options& o, core::InputSink* input,
                                                             core::KeyframeRequester* keyframes) {
  spice::SpiceOptions options = o.spice;
  std::string demo_password;
  if (o.demo && options.ticket_file.empty() && !options.no_auth) {
    demo_password = spice::generate_password();
    options.no_auth = true;  // replaced by the made-up ticket below
  }
  auto config = spice::spice_config_from_options(options, "default");
  if (!config) return core::Error{config.error()};
  if (!demo_password.empty()) {
    config->no_auth = false;
    config->ticket = spice::Ticket{demo_password, 0};
  }
  auto desktop = spice::SpiceDesktop::create(*config, input, keyframes);
  if (!desktop) return core::Error{desktop.error()};
  if (!demo_password.empty())
    std::printf("Connect with:\n  %s\n", (*desktop)->viewer_command(demo_password).c_str());
  else
    std::printf("Connect with:\n  %s   (%s%s)\n", (*desktop)->viewer_command("").c_str(),
                o.spice.no_auth ? "no password: --no-auth" : "the password is in ", o.spice.ticket_file.c_str());
  std::fflush(stdout);
  return desktop;
}

// The HTTP server and the desktop's WebRTC endpoint, when --http (or --demo) asks for them. The
// token comes from --token-file, or is made up and printed with the URL; --no-auth drops it.
struct WebRtcServing {
  std::unique_ptr<transport::HttpServer> server;  // declared first: outlives the desktop
  std::shared_ptr<transport::WebRtcDesktop> desktop;
};

core::Result<WebRtcServing> make_webrtc(const Options& o, const encode::EncoderConfig& encoder,
                                        encode::DesktopPipeline& pipeline, core::InputSink* input) {
  auto http = transport::parse_http_address(o.webrtc.http);
  if (!http) return core::Error{http.error()};
  http->tls_cert_file = o.webrtc.tls_cert;
  http->tls_key_file = o.webrtc.tls_key;
  transport::WebRtcDesktopConfig config;
  if (!o.spice.no_auth) {
    if (o.webrtc.token_file.empty()) {
      config.token = transport::generate_token();
    } else {
      std::ifstream file(o.webrtc.token_file);
      std::getline(file, config.token);
      while (!config.token.empty() && std::isspace(static_cast<unsigned char>(config.token.back()))) config.token.pop_back();
      if (config.token.size() < 16)
        return core::Error{"token file " + o.webrtc.token_file + ": the first line must hold a token of 16 characters or more"};
    }
  }
  // The encoder follows the slowest viewer, between an eighth of --bitrate and --bitrate.
  config.rate.max_bps = config.rate.start_bps = encoder.bitrate_bps;
  config.rate.min_bps = std::max<uint32_t>(300'000, encoder.bitrate_bps / 8);
  config.barcode_is_sequence = o.source.starts_with("synthetic:");
  WebRtcServing serving;
  auto server = transport::HttpServer::create(*http);
  if (!server) return core::Error{server.error()};
  serving.server = std::move(*server);
  transport::WebRtcDesktopHooks hooks;
  hooks.keyframes = &pipeline;
  hooks.input = input;
  hooks.set_bitrate = [&pipeline](uint32_t bps) { pipeline.set_bitrate(bps); };
  auto weak = std::make_shared<std::weak_ptr<transport::WebRtcDesktop>>();
  hooks.set_active = [&pipeline, weak](bool active) {  // the encoder runs only while someone watches
    if (auto desktop = weak->lock()) active ? pipeline.add_sink(desktop) : pipeline.remove_sink(desktop);
  };
  auto desktop = transport::WebRtcDesktop::create(*serving.server, config, std::move(hooks));
  if (!desktop) return core::Error{desktop.error()};
  serving.desktop = *desktop;
  *weak = serving.desktop;
  std::printf("Open in a browser:\n  %s%s\n", serving.desktop->url(serving.server->base_url()).c_str(),
              o.spice.no_auth ? "   (no token: --no-auth)" : "");
  std::fflush(stdout);
  return serving;
}

void add_webrtc_cursor(capture::SourceCallbacks& callbacks, transport::WebRtcDesktop& desktop) {
  callbacks.on_cursor_shape = [&desktop, next = callbacks.on_cursor_shape](const core::CursorShape& shape) {
    if (next) next(shape);
    desktop.set_cursor(shape);
  };
  callbacks.on_cursor_position = [&desktop, next = callbacks.on_cursor_position](const core::CursorPosition& at) {
    if (next) next(at);
    desktop.move_cursor(at);
  };
}

int run_probe(const Options& o, const encode::EncoderConfig& config) {
  auto registry = encode::EncoderRegistry::builtin();
  auto outcomes = registry.probe(config, o.encoders);
  std::printf("Encoder backends, in preference order (a real test encode each):\n");
  for (const auto& out : outcomes) std::printf("  %-9s %s\n", out.backend.c_str(), out.reason.c_str());
  auto choice = registry.choose(config, o.encoders);
  std::printf("%s\n", choice ? ("Chosen: " + choice->why).c_str() : choice.error().c_str());
  return choice ? 0 : 1;
}

// QXL mode takes frames before encoding; a refused frame is logged once, not per frame.
void spice_on_frame(spice::SpiceDesktop& desktop, const core::Frame& frame) {
  static std::atomic<bool> warned{false};
  if (core::Status s = desktop.on_frame(frame); !s && !warned.exchange(true))
    core::Logger("default").warn("SPICE: {}", s.error());
}

void add_spice_cursor(capture::SourceCallbacks& callbacks, spice::SpiceDesktop& desktop) {
  auto position = std::make_shared<core::CursorPosition>();  // source thread only
  callbacks.on_cursor_shape = [&desktop, position](const core::CursorShape& shape) { desktop.set_cursor(shape, *position); };
  callbacks.on_cursor_position = [&desktop, position](const core::CursorPosition& at) {
    *position = at;
    desktop.move_cursor(at);
  };
}

// One desktop from the command line: the source's frames go to SPICE's QXL mode as they are
// (no encoder) and, for --record or SPICE stream mode, through the encode pipeline.
int run_desktop(const Options& o, encode::EncoderConfig encoder_config) {
  core::Logger log("default");
  auto source = service::make_source(o.source);
  if (!source) {
    log.error("{}", source.error());
    return 2;
  }
  if ((*source)->frame_rate() > 0) encoder_config.fps = (*source)->frame_rate();
  if (o.record.empty() && o.spice.address.empty() && o.webrtc.http.empty()) {
    log.error("nothing to do: give --record FILE, --spice ADDRESS:PORT and/or --http ADDRESS:PORT");
    return 2;
  }
  const bool spice_stream = !o.spice.address.empty() && o.spice.mode == "stream";

  std::shared_ptr<encode::FileSink> recorder;
  if (!o.record.empty()) {
    auto opened = encode::FileSink::open(o.record, "default");
    if (!opened) {
      log.error("{}", opened.error());
      return 2;
    }
    recorder = *opened;
  }
  std::unique_ptr<encode::DesktopPipeline> pipeline;
  if (recorder || spice_stream || !o.webrtc.http.empty()) {
    encode::PipelineConfig pc;
    pc.encoder = encoder_config;
    pc.encoder_preference = o.encoders;
    auto created = encode::DesktopPipeline::create(pc, encode::EncoderRegistry::builtin());
    if (!created) {
      log.error("{}", created.error());
      return 1;
    }
    pipeline = std::move(*created);
  }
  std::unique_ptr<spice::SpiceDesktop> spice_desktop;
  if (!o.spice.address.empty()) {
    auto created = make_spice(o, (*source)->input(), pipeline.get());
    if (!created) {
      log.error("{}", created.error());
      return 2;
    }
    spice_desktop = std::move(*created);
    if (spice_stream)
      if (core::Status s = service::attach_spice_stream(*pipeline, *spice_desktop); !s) {
        log.error("{}", s.error());
        return 2;
      }
  }
  WebRtcServing webrtc;
  if (!o.webrtc.http.empty()) {
    auto created = make_webrtc(o, encoder_config, *pipeline, (*source)->input());
    if (!created) {
      log.error("{}", created.error());
      return 2;
    }
    webrtc = std::move(*created);
  }
  if (recorder) pipeline->add_sink(recorder);
  if (pipeline) pipeline->start();

  std::atomic<uint64_t> frames_seen{0};
  capture::SourceCallbacks callbacks;
  callbacks.on_frame = [&](core::Frame frame) {
    if (o.frames && frames_seen >= o.frames) return;
    ++frames_seen;
    if (spice_desktop && !spice_stream) spice_on_frame(*spice_desktop, frame);
    if (pipeline) pipeline->submit(std::move(frame));
  };
  if (spice_desktop) add_spice_cursor(callbacks, *spice_desktop);
  if (webrtc.desktop) add_webrtc_cursor(callbacks, *webrtc.desktop);
  callbacks.on_state = [&](bool connected, const std::string& why) {
    log.info("source {}: {}", connected ? "connected" : "disconnected", why);
  };
  log.info("capturing {}{}{}{}", (*source)->describe(), spice_desktop ? " → SPICE" : "",
           recorder ? " → " + o.record : "",
           o.frames ? fmt::format(" ({} frames)", o.frames) : std::string(" (Ctrl-C to stop)"));
  const int64_t t0 = core::monotonic_now_ns(), cpu0 = core::process_cpu_ns();
  if (core::Status s = (*source)->start(callbacks); !s) {
    log.error("cannot start {}: {}", (*source)->describe(), s.error());
    return 1;
  }
  while (!g_stop && !(o.frames && frames_seen >= o.frames)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  (*source)->stop();
  if (pipeline && !pipeline->wait_idle(std::chrono::seconds(10))) log.warn("the encoder did not catch up within 10 s");
  spice_desktop.reset();  // before the pipeline it asks for keyframes
  if (webrtc.desktop) pipeline->remove_sink(webrtc.desktop);
  webrtc.desktop.reset();  // the desktop, then its HTTP server
  webrtc.server.reset();
  if (!recorder) return 0;

  pipeline->stop();
  const double seconds = double(core::monotonic_now_ns() - t0) / 1e9;
  const double cpu_seconds = double(core::process_cpu_ns() - cpu0) / 1e9;
  core::Status closed = recorder->close();
  std::printf("%s: %s\n%s", (*source)->describe().c_str(), pipeline->encoder_name().c_str(),
              service::format_stats(pipeline->stats(), seconds, cpu_seconds).c_str());
  if (auto capture = (*source)->capture_stats()) std::printf("%s", service::format_capture(*capture, seconds).c_str());
  if (!closed) {
    log.error("{}", closed.error());
    return 1;
  }
  std::error_code ec;
  auto abs = std::filesystem::absolute(o.record, ec);
  std::printf("Recorded %llu frames (%.1f s) to %s\nPlay it with: ffplay %s   (or mpv, vlc)\n",
              (unsigned long long)recorder->frames_written(), seconds, abs.c_str(), abs.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "vdistreamd — streams virtual desktops (QEMU VMs, or a synthetic desktop) with low latency.\n"
      "It serves one desktop from the command line to SPICE clients and to browsers (WebRTC), and/or\n"
      "records its H.264 stream to a file; or, with --config, every desktop of a host.\n\n"
      "Examples:\n"
      "  vdistreamd --demo                      a synthetic desktop on SPICE 127.0.0.1:5900 and WebRTC\n"
      "                                         http://127.0.0.1:8080; prints the remote-viewer command\n"
      "                                         and the browser URL with a fresh password and token\n"
      "  vdistreamd --source synthetic:typing@1920x1080@60 --http 127.0.0.1:8080 --token-file desk.token\n"
      "  vdistreamd --source qemu-dbus:unix:path=/run/libvirt/qemu/dbus/1-vm.sock \\\n"
      "             --spice 127.0.0.1:5901 --spice-ticket-file /etc/vdistream/vm.ticket\n"
      "  vdistreamd --source synthetic:typing@1920x1080@60 --record typing.mp4 --frames 600\n"
      "  vdistreamd --probe                     which encoders this host can use\n"
      "  vdistreamd --config /etc/vdistream/vdistreamd.toml   every desktop of the file; SIGHUP reloads it\n"};
  app.get_formatter()->column_width(40);
  app.add_flag("--demo", o.demo,
               fmt::format("Serve {} over SPICE on {} and WebRTC on {} with a fresh password and token, and print "
                           "the remote-viewer command and the browser URL (with --record FILE: also record {} frames)",
                           kDemoSource, kDemoSpice, kDemoHttp, kDemoFrames));
  app.add_option("--source", o.source, "The desktop to capture.\n" + service::source_spec_help())
      ->type_name("SPEC");
  app.add_option("--record", o.record, "Write the encoded stream to FILE: .h264 (Annex-B) or .mp4/.mkv")
      ->type_name("FILE");
  app.add_option("--frames", o.frames, "Stop after N captured frames (default: run until Ctrl-C)")->type_name("N");
  app.add_flag("--probe", o.probe, "Test-encode with every encoder backend, say which is usable and why, and exit");
  auto* config_option =
      app.add_option("--config", o.config_file,
                     "Serve every desktop of a TOML configuration file (SIGHUP reloads it, SIGTERM stops)")
          ->type_name("FILE");
  app.add_option("--check-config", o.check_config_file, "Check a configuration file, explain every error with its line, and exit")
      ->type_name("FILE")
      ->excludes(config_option);
  app.add_option("--bitrate", o.bitrate_kbps, "Target bitrate in kbit/s (CBR, one-frame VBV)")
      ->capture_default_str()
      ->check(CLI::Range(100u, 500000u));
  app.add_option("--profile", o.profile, "H.264 profile: constrained-baseline or main")
      ->capture_default_str()
      ->check(CLI::IsMember({"constrained-baseline", "baseline", "main"}));
  app.add_option("--encoder", o.encoders,
                 "Encoder backends in order of preference (comma-separated: nvenc, onevpl, vaapi, software); "
                 "a backend that fails hands over to the next")
      ->delimiter(',')
      ->capture_default_str()
      ->type_name("LIST");
  app.add_flag("--intra-refresh", o.intra_refresh, "Refresh with moving intra columns instead of IDR frames");
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_flag("--log-json", o.log_json, "Log one JSON object per line");
  app.add_option("--spice", o.spice.address,
                 "Serve the desktop to SPICE clients (remote-viewer) on ADDRESS:PORT (127.0.0.1 if only :PORT) "
                 "or unix:PATH")
      ->type_name("ADDRESS:PORT|unix:PATH");
  app.add_option("--spice-mode", o.spice.mode,
                 "qxl: damaged rectangles as images, lowest latency; stream: the desktop's H.264 through the stream "
                 "device, least bandwidth (MJPEG instead while a client has no H.264 decoder)")
      ->capture_default_str()
      ->check(CLI::IsMember({"qxl", "stream"}));
  app.add_flag("--spice-lossy", o.spice.lossy,
               "QXL mode: let spice-server send photographic areas as JPEG (for slow links; lossless otherwise)");
  auto* ticket = app.add_option("--spice-ticket-file", o.spice.ticket_file,
                                "SPICE password on the first line, optional 'lifetime=SECONDS' on the second")
                     ->type_name("FILE")
                     ->check(CLI::ExistingFile);
  app.add_option("--http", o.webrtc.http,
                 "Serve the desktop to browsers over WebRTC: HTTP on ADDRESS:PORT (127.0.0.1 if only :PORT), the "
                 "page at /desktops/default/")
      ->type_name("ADDRESS:PORT");
  auto* token_file = app.add_option("--token-file", o.webrtc.token_file,
                                    "WebRTC access token on the first line (default: a fresh one, printed with the URL)")
                         ->type_name("FILE")
                         ->check(CLI::ExistingFile);
  auto* tls_cert = app.add_option("--tls-cert", o.webrtc.tls_cert, "Serve HTTPS with this PEM certificate")
                       ->type_name("FILE")
                       ->check(CLI::ExistingFile);
  auto* tls_key = app.add_option("--tls-key", o.webrtc.tls_key, "... and this PEM private key")
                      ->type_name("FILE")
                      ->check(CLI::ExistingFile);
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  app.add_flag("--no-auth", o.spice.no_auth,
               "Serve SPICE without a password and WebRTC without a token: anyone who can connect gets the desktop")
      ->excludes(ticket)
      ->excludes(token_file);
  app.add_option("--spice-tls-dir", o.spice.tls_dir,
                 "Also serve SPICE over TLS on PORT+1 with DIR/ca-cert.pem, server-cert.pem, server-key.pem")
      ->type_name("DIR")
      ->check(CLI::ExistingDirectory);
  app.footer("\n" + service::config_help());
  app.set_version_flag("--version", std::string("vdistreamd ") + VDISTREAM_VERSION);
  CLI11_PARSE(app, argc, argv);

  core::LogLevel level = core::LogLevel::Info;
  core::parse_log_level(o.log_level, level);
  core::set_log_level(level);
  core::set_log_json(o.log_json);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  encode::EncoderConfig config;
  config.bitrate_bps = o.bitrate_kbps * 1000;
  encode::parse_profile(o.profile, config.profile);
  config.intra_refresh = o.intra_refresh;

  if (o.probe) return run_probe(o, config);
  if (!o.check_config_file.empty()) return service::check_config_file(o.check_config_file);
  if (!o.config_file.empty()) return service::run_config_file(o.config_file);
  if (o.demo) {
    if (o.source.empty()) o.source = kDemoSource;
    if (o.spice.address.empty()) o.spice.address = kDemoSpice;
    if (o.webrtc.http.empty()) o.webrtc.http = kDemoHttp;
    if (!o.record.empty() && o.frames == 0) o.frames = kDemoFrames;
  }
  if (o.source.empty()) {
    std::fprintf(stderr, "vdistreamd: give --source SPEC (or --demo, or --probe); see --help\n");
    return 2;
  }
  return run_desktop(o, config);
}
