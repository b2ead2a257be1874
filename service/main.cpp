// vdistreamd: streams virtual desktops. Every desktop runs in the service's Host, whether it comes
// from a configuration file (--config) or from the command line (--source, --demo: a service of
// one desktop named "default"), with the same supervision, control API and metrics.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/memory.hpp"
#include "encode/probe.hpp"
#include "service/config.hpp"
#include "service/config_checks.hpp"
#include "service/host.hpp"
#include "service/service_runner.hpp"
#include "service/source_factory.hpp"
#include "service/stats_report.hpp"
#include "spice/spice_desktop.hpp"
#include "transport/http_server.hpp"
#include "transport/ice.hpp"

using namespace vdistream;

namespace {


constexpr const char* kDemoSource = "synthetic:window-drag@1280x720@30";
constexpr uint64_t kDemoFrames = 300;
constexpr const char* kDemoSpice = "127.0.0.1:5900";
constexpr const char* kDemoHttp = "127.0.0.1:8080";

// --http, --token-file, --tls-cert, --tls-key: the desktop for browsers over WebRTC.
struct WebRtcOptions {
  std::string http;
  std::string token_file;
  std::string tls_cert, tls_key;
  uint32_t max_viewers = 16;
  // --stun, --turn, --turn-user, --turn-password-file, --turn-secret-file, --turn-ttl,
  // --ice-policy, --udp-ports: NAT traversal (the [webrtc] table of a configuration file).
  transport::IceSettings ice;
  std::string turn_password_file, turn_secret_file, ice_policy = "all", udp_ports;
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
  bool no_audio = false;
  bool audio_in = false;
  bool no_clipboard = false;
  uint32_t clipboard_max_bytes = 16u << 20;
  std::string log_level = "info";
  std::string config_file;        // --config: every desktop of a configuration file
  std::string check_config_file;  // --check-config: validate and exit
  bool log_json = false;
  spice::SpiceOptions spice;  // --spice, --spice-mode, --spice-ticket-file, --no-auth, --spice-tls-dir
  WebRtcOptions webrtc;
};

int run_probe(const Options& o, const encode::EncoderConfig& config) {
  auto registry = encode::EncoderRegistry::builtin();
  auto outcomes = registry.probe(config, o.encoders);
  std::printf("Encoder backends, in preference order (a real test encode each):\n");
  for (const auto& out : outcomes) std::printf("  %-9s %s\n", out.backend.c_str(), out.reason.c_str());
  auto choice = registry.choose(config, o.encoders);
  std::printf("%s\n", choice ? ("Chosen: " + choice->why).c_str() : choice.error().c_str());
  return choice ? 0 : 1;
}

// The desktop of --source (or --demo) as a one-desktop service configuration, run by the same
// Host as --config: the same supervision, control API and metrics. `spice_password` is the one
// made up for --demo (to print), or empty.
core::Result<service::ServiceConfig> command_line_config(const Options& o, std::string& spice_password) {
  if (auto source = service::make_source(o.source); !source) return core::Error{source.error()};
  if (o.record.empty() && o.spice.address.empty() && o.webrtc.http.empty())
    return core::Error{"nothing to do: give --record FILE, --spice ADDRESS:PORT and/or --http ADDRESS:PORT"};
  if (!o.record.empty()) {
    const std::filesystem::path dir = std::filesystem::absolute(o.record).parent_path();
    if (access(dir.c_str(), W_OK) != 0)
      return core::Error{fmt::format("cannot create {}: {} ({})", o.record, dir.string(), std::strerror(errno))};
  }
  service::ServiceConfig c;
  c.log_level = o.log_level;
  c.log_json = o.log_json;
  service::DesktopConfig d;
  d.name = "default";
  d.source = o.source;
  d.encode.encoders = o.encoders;
  d.encode.profile = o.profile;
  d.encode.bitrate_kbps = o.bitrate_kbps;
  // The encoder follows the slowest WebRTC viewer, between an eighth of --bitrate and --bitrate.
  d.encode.max_bitrate_kbps = o.bitrate_kbps;
  d.encode.min_bitrate_kbps = std::min(o.bitrate_kbps, std::max<uint32_t>(300, o.bitrate_kbps / 8));
  d.encode.intra_refresh = o.intra_refresh;
  d.record = o.record;
  d.max_frames = o.frames;
  d.audio = !o.no_audio;
  d.audio_in = o.audio_in;
  d.clipboard = !o.no_clipboard;
  d.clipboard_max_bytes = o.clipboard_max_bytes;
  if (!o.spice.address.empty()) {
    spice::SpiceOptions options = o.spice;
    // --demo without a ticket file makes up a password and prints the command that connects.
    if (o.demo && options.ticket_file.empty() && !options.no_auth) {
      spice_password = spice::generate_password();
      options.no_auth = true;  // replaced by the made-up ticket below
    }
    auto spice = spice::spice_config_from_options(options, d.name);
    if (!spice) return core::Error{spice.error()};
    if (!spice_password.empty()) {
      spice->no_auth = false;
      spice->ticket = spice::Ticket{spice_password, 0};
    }
    d.spice = *spice;
    d.spice->audio = d.audio;
    d.spice_listen = o.spice.address;
    d.spice_mode = o.spice.mode;
    d.spice_no_auth = o.spice.no_auth;
    d.spice_ticket_file = o.spice.ticket_file;
  }
  if (!o.webrtc.http.empty()) {
    auto listen = spice::parse_listen_address(o.webrtc.http);
    if (!listen || listen->is_unix())
      return core::Error{fmt::format("--http {} must be ADDRESS:PORT (or :PORT for loopback)", o.webrtc.http)};
    service::HttpSettings& h = c.http;
    h.listen = o.webrtc.http;
    h.host = listen->host;
    h.port = listen->port;
    h.tls_cert = o.webrtc.tls_cert;
    h.tls_key = o.webrtc.tls_key;
    h.no_auth = o.spice.no_auth;
    if (!h.no_auth) {
      if (o.webrtc.token_file.empty()) {
        h.token = transport::generate_token();  // printed with the URL
      } else {
        auto read = service::read_token_file(o.webrtc.token_file);
        if (!read) return core::Error{read.error()};
        h.token = *read;
      }
      h.token_file = o.webrtc.token_file;
    }
    d.webrtc = true;
    d.webrtc_max_viewers = o.webrtc.max_viewers;
    d.webrtc_token = h.token;
    transport::IceSettings ice = o.webrtc.ice;
    ice.relay_only = o.webrtc.ice_policy == "relay";
    if (!o.webrtc.udp_ports.empty())
      if (core::Status s = transport::parse_port_range(o.webrtc.udp_ports, ice); !s) return core::Error{"--udp-ports: " + s.error()};
    if (auto problems = service::read_turn_secrets(o.webrtc.turn_password_file, o.webrtc.turn_secret_file, ice);
        !problems.empty())
      return core::Error{problems.front()};
    if (auto problems = transport::check_ice_settings(ice); !problems.empty()) return core::Error{problems.front()};
    c.ice = ice;
    c.turn_password_file = o.webrtc.turn_password_file;
    c.turn_secret_file = o.webrtc.turn_secret_file;
    d.ice = ice;
  } else if (!o.webrtc.ice.stun.empty() || !o.webrtc.ice.turn.empty() || !o.webrtc.udp_ports.empty() ||
             o.webrtc.ice_policy != "all") {
    return core::Error{"--stun, --turn, --ice-policy and --udp-ports are for WebRTC: give --http ADDRESS:PORT too"};
  }
  c.desktops.push_back(std::move(d));
  return c;
}

// How to connect, once the desktop's servers listen.
void print_connect(const service::ServiceConfig& c, const std::string& spice_password, transport::HttpServer* http) {
  const service::DesktopConfig& d = c.desktops.front();
  if (d.spice) {
    if (!spice_password.empty())
      std::printf("Connect with:\n  %s\n", spice::viewer_command(d.spice->listen, spice_password).c_str());
    else
      std::printf("Connect with:\n  %s   (%s%s)\n", spice::viewer_command(d.spice->listen, "").c_str(),
                  d.spice_no_auth ? "no password: --no-auth" : "the password is in ", d.spice_ticket_file.c_str());
  }
  if (http) {
    const std::string query = c.http.no_auth ? "" : "?token=" + c.http.token;
    std::printf("Open in a browser:\n  %s/desktops/%s/%s%s\n", http->base_url().c_str(), d.name.c_str(), query.c_str(),
                c.http.no_auth ? "   (no token: --no-auth)" : "");
    std::printf("Control API: %s/api/desktops and %s/metrics (%s)\n", http->base_url().c_str(),
                http->base_url().c_str(), c.http.no_auth ? "no token" : "the same token, as a Bearer header or ?token=");
  }
  std::fflush(stdout);
}

// vdistreamd --source/--demo: one desktop, run as a service of one. With --record, the figures
// and where the recording went once it stops.
int run_command_line(const Options& o) {
  std::string spice_password;
  auto config = command_line_config(o, spice_password);
  if (!config) {
    std::fprintf(stderr, "vdistreamd: %s\n", config.error().c_str());
    return 2;
  }
  for (const std::string& w : service::security_warnings(*config)) core::Logger("service").warn("{}", w);
  const int64_t t0 = core::monotonic_now_ns(), cpu0 = core::process_cpu_ns();
  std::shared_ptr<service::DesktopSession> session;  // kept past the service: its final figures
  service::ServiceHooks hooks;
  hooks.started = [&](service::Host& host, transport::HttpServer* http) {
    session = host.find("default");
    print_connect(*config, spice_password, http);
  };
  hooks.should_stop = [&](service::Host&) {
    return o.frames && session && session->status().pipeline.frames_captured >= o.frames;
  };
  const int code = service::run_service(*config, "", hooks);
  if (code != 0 || o.record.empty() || !session) return code;

  const service::DesktopStatus s = session->status();
  const double seconds = double(core::monotonic_now_ns() - t0) / 1e9;
  const double cpu_seconds = double(core::process_cpu_ns() - cpu0) / 1e9;
  std::printf("%s: %s\n%s", s.source.c_str(), s.encoder.c_str(),
              service::format_stats(s.pipeline, seconds, cpu_seconds).c_str());
  if (s.capture) std::printf("%s", service::format_capture(*s.capture, seconds).c_str());
  if (!s.record_error.empty()) return 1;  // logged when the recording closed
  std::error_code ec;
  const auto abs = std::filesystem::absolute(o.record, ec);
  std::printf("Recorded %llu frames (%.1f s) to %s\nPlay it with: ffplay %s   (or mpv, vlc)\n",
              (unsigned long long)s.recorded_frames, seconds, abs.c_str(), abs.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  core::limit_malloc_arenas();  // before the first thread
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
      "  vdistreamd --source qemu-dbus:... --http 0.0.0.0:8443 --tls-cert c.pem --tls-key k.pem \\\n"
      "             --turn turn:turn.example.org:3478 --turn-secret-file /etc/vdistream/turn.secret\n"
      "                                         browsers behind NAT through coturn (README: WebRTC beyond the LAN)\n"
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
  app.add_flag("--no-audio", o.no_audio,
               "Do not take the VM's sound. By default the sound of a QEMU started with -audiodev dbus,id=snd0, "
               "-display dbus,...,audiodev=snd0 and a sound device on it (-device intel-hda -device "
               "hda-duplex,audiodev=snd0) plays to SPICE clients and browsers");
  app.add_flag("--audio-in", o.audio_in,
               "Let the VM hear its viewers while its guest records: SPICE clients' record channel and, once "
               "its user allows it on the page, the browser's microphone go to QEMU's D-Bus audio input "
               "(-audiodev dbus,id=snd0 with a recording device on it, such as -device intel-hda -device "
               "hda-duplex,audiodev=snd0). Off by default");
  app.add_flag("--no-clipboard", o.no_clipboard,
               "Do not share the VM's clipboard. By default text copied in a SPICE client (remote-viewer) or in "
               "the browser page can be pasted in the VM and the other way round, through QEMU's D-Bus clipboard "
               "(QEMU 7.1 or later; the guest needs its own clipboard peer, such as spice-vdagent on a "
               "-chardev qemu-vdagent port)");
  app.add_option("--clipboard-max-bytes", o.clipboard_max_bytes,
                 "Largest text copied either way; a larger copy is refused and counted (default 16 MiB)")
      ->check(CLI::Range(1u, 1u << 30));
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
  app.add_option("--max-viewers", o.webrtc.max_viewers,
                 "Browsers watching at once (1-256); the next one is told 'too many viewers' and its WebSocket "
                 "closed (1008, policy), the others unharmed")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  auto* tls_cert = app.add_option("--tls-cert", o.webrtc.tls_cert, "Serve HTTPS with this PEM certificate")
                       ->type_name("FILE")
                       ->check(CLI::ExistingFile);
  auto* tls_key = app.add_option("--tls-key", o.webrtc.tls_key, "... and this PEM private key")
                      ->type_name("FILE")
                      ->check(CLI::ExistingFile);
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  app.add_option("--stun", o.webrtc.ice.stun,
                 "A STUN server for browsers and the host, stun:HOST[:PORT] (repeatable; none by default: host "
                 "candidates only)")
      ->type_name("URL");
  app.add_option("--turn", o.webrtc.ice.turn,
                 "A TURN relay for browsers that cannot reach this host directly, turn:HOST[:PORT][?transport=tcp] or "
                 "turns:HOST[:PORT] (repeatable); needs --turn-secret-file, or --turn-user and --turn-password-file")
      ->type_name("URL");
  auto* turn_user = app.add_option("--turn-user", o.webrtc.ice.turn_username, "TURN long-term credentials: the user ...")
                        ->type_name("NAME");
  auto* turn_password = app.add_option("--turn-password-file", o.webrtc.turn_password_file,
                                       "... and the password on the first line of FILE")
                            ->type_name("FILE")
                            ->check(CLI::ExistingFile);
  turn_user->needs(turn_password);
  turn_password->needs(turn_user);
  app.add_option("--turn-secret-file", o.webrtc.turn_secret_file,
                 "coturn's static-auth-secret (use-auth-secret) on the first line of FILE: each viewer gets its own "
                 "time-limited credentials; the secret never leaves the host")
      ->type_name("FILE")
      ->check(CLI::ExistingFile)
      ->excludes(turn_user);
  app.add_option("--turn-ttl", o.webrtc.ice.turn_ttl_seconds, "Lifetime of those credentials, in seconds")
      ->capture_default_str()
      ->check(CLI::Range(60u, 7u * 86400u));
  app.add_option("--ice-policy", o.webrtc.ice_policy,
                 "all: browsers use any path; relay: only through the TURN relay (hides the browser's address)")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "relay"}));
  app.add_option("--udp-ports", o.webrtc.udp_ports,
                 "The UDP ports the host's WebRTC may use, MIN-MAX (for a firewall; default: any)")
      ->type_name("MIN-MAX");
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
  return run_command_line(o);
}
