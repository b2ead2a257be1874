// vdistreamd as a user runs it: the demo and --record, checked with FFmpeg's own tools.
#include <catch2/catch.hpp>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "capture/synthetic/barcode.hpp"
#include "fixtures/process.hpp"

using namespace vdistream;
using namespace std::chrono_literals;

namespace {

struct Probe {
  std::string codec;
  int width = 0, height = 0;
  int frames = 0;
};

Probe ffprobe(const std::string& file) {
  auto r = test::run_process({"ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                              "stream=codec_name,width,height,nb_read_frames", "-of", "json", file},
                             120s);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["streams"].size() == 1);
  auto s = j["streams"][0];
  return {s["codec_name"], s["width"], s["height"], std::stoi(s["nb_read_frames"].get<std::string>())};
}

// Decodes the file with ffmpeg and reads the barcode of every frame (only the barcode's strip is
// extracted, so the pipe stays small). Passthrough: ffmpeg must not duplicate frames to fill
// the gaps a loaded machine leaves in the timestamps.
std::vector<std::optional<uint32_t>> barcodes(const std::string& file) {
  const int w = capture::Barcode::kWidth, h = capture::Barcode::kHeight;
  auto r = test::run_process({"ffmpeg", "-v", "error", "-i", file, "-vf", "crop=" + std::to_string(w) + ":" +
                              std::to_string(h) + ":0:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "-"},
                             120s);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.size() % size_t(w * h) == 0);
  std::vector<std::optional<uint32_t>> codes;
  for (size_t off = 0; off < r.out.size(); off += size_t(w * h))
    codes.push_back(capture::Barcode::read_luma(reinterpret_cast<const uint8_t*>(r.out.data() + off), w, w, h));
  return codes;
}

// The pictures the pipeline encoded again without a change (keep-alives, and the trailing repeat
// after the last change that a SPICE stream sink asks for), as the run's report prints them.
int repeats_reported(const std::string& out) {
  std::smatch m;
  const std::regex re(R"((\d+) keep-alives, (\d+) trailing repeats)");
  REQUIRE(std::regex_search(out, m, re));
  return std::stoi(m[1]) + std::stoi(m[2]);
}

// Every frame holds a barcode, none goes backwards, and a picture is only seen twice when the
// pipeline said it encoded it again.
void check_increasing(const std::vector<std::optional<uint32_t>>& codes, int repeats_allowed) {
  int64_t last = -1;
  int repeats = 0;
  for (size_t i = 0; i < codes.size(); ++i) {
    INFO("frame " << i);
    REQUIRE(codes[i].has_value());
    CHECK(int64_t(*codes[i]) >= last);
    repeats += int64_t(*codes[i]) == last ? 1 : 0;
    last = *codes[i];
  }
  CHECK(repeats <= repeats_allowed);
}

}  // namespace

TEST_CASE("vdistreamd --demo serves SPICE with a fresh password, prints the viewer command, and records",
          "[vdistreamd][record]") {
  test::TempDir dir;
  const std::string socket = dir.file("spice.sock"), file = dir.file("demo.mp4");
  const std::string http = "127.0.0.1:" + std::to_string(test::free_tcp_port());
  auto r = test::run_process(
      {VDISTREAMD_PATH, "--demo", "--spice", "unix:" + socket, "--http", http, "--record", file, "--frames", "300"}, 120s);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("remote-viewer 'spice+unix://" + socket + "?password="));
  // The fresh password and token are for the operator who started it: printed, never logged.
  std::smatch password, token;
  REQUIRE(std::regex_search(r.out, password, std::regex(R"(\?password=([^' ]+)')")));
  REQUIRE(std::regex_search(r.out, token, std::regex(R"(\?token=([0-9a-f]+))")));
  CHECK(password[1].length() >= 12);
  CHECK(token[1].length() == 64);
  CHECK_THAT(r.err, !Catch::Contains(password[1].str()) && !Catch::Contains(token[1].str()));
  CHECK_THAT(r.out, Catch::Contains(file));
  CHECK_THAT(r.out, Catch::Contains("full-frame copies: 0"));
  REQUIRE(std::filesystem::exists(file));
  Probe p = ffprobe(file);
  CHECK(p.codec == "h264");
  CHECK(p.width == 1280);
  CHECK(p.height == 720);
  CHECK(p.frames > 100);  // 300 captured; on a loaded machine newer frames replace some (latest wins)
  auto codes = barcodes(file);
  CHECK(int(codes.size()) == p.frames);
  check_increasing(codes, repeats_reported(r.out));
}

TEST_CASE("vdistreamd --record writes a raw H.264 stream that FFmpeg decodes", "[vdistreamd][record]") {
  test::TempDir dir;
  const std::string file = dir.file("typing.h264");
  auto r = test::run_process(
      {VDISTREAMD_PATH, "--source", "synthetic:typing@640x360@60", "--record", file, "--frames", "90"}, 120s);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  Probe p = ffprobe(file);
  CHECK(p.codec == "h264");
  CHECK(p.width == 640);
  CHECK(p.height == 360);
  CHECK(p.frames > 10);
  CHECK(p.frames <= 90);  // typing changes only some frames; unchanged ones are not encoded
  check_increasing(barcodes(file), repeats_reported(r.out));
}

TEST_CASE("vdistreamd refuses bad arguments with a message that says what to do", "[vdistreamd]") {
  test::TempDir dir;
  SECTION("an unknown workload lists the workloads") {
    auto r = test::run_process({VDISTREAMD_PATH, "--source", "synthetic:dancing", "--record", dir.file("x.mp4")}, 30s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("typing"));
  }
  SECTION("a source spec of an unknown kind") {
    auto r = test::run_process({VDISTREAMD_PATH, "--source", "vnc:1", "--record", dir.file("x.mp4")}, 30s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("not a source spec"));
  }
  SECTION("a file that cannot be created") {
    auto r = test::run_process({VDISTREAMD_PATH, "--source", "synthetic:idle", "--record", "/nonexistent/dir/x.mp4"}, 30s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("/nonexistent/dir/x.mp4"));
  }
  SECTION("a source with nowhere to go") {
    auto r = test::run_process({VDISTREAMD_PATH, "--source", "synthetic:idle"}, 30s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--spice") && Catch::Contains("--record"));
  }
  SECTION("SPICE without a password and without --no-auth") {
    auto r = test::run_process({VDISTREAMD_PATH, "--source", "synthetic:idle", "--spice", "unix:" + dir.file("s.sock")}, 30s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("ticket"));
  }
  SECTION("NAT traversal flags without WebRTC") {
    auto r = test::run_process({VDISTREAMD_PATH, "--source", "synthetic:idle", "--record", dir.file("x.mp4"), "--turn",
                                "turn:turn.example.org"},
                               30s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--http"));
  }
  SECTION("a TURN server without credentials, and a relay-only policy without a TURN server") {
    auto r = test::run_process({VDISTREAMD_PATH, "--source", "synthetic:idle", "--http", "127.0.0.1:0", "--no-auth",
                                "--turn", "turn:turn.example.org"},
                               30s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("static-auth-secret"));
    r = test::run_process(
        {VDISTREAMD_PATH, "--source", "synthetic:idle", "--http", "127.0.0.1:0", "--no-auth", "--ice-policy", "relay"},
        30s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("needs a TURN server"));
  }
  SECTION("no source at all") {
    auto r = test::run_process({VDISTREAMD_PATH}, 30s);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--help"));
  }
}

TEST_CASE("vdistreamd --help explains the options and the source specs", "[vdistreamd]") {
  auto r = test::run_process({VDISTREAMD_PATH, "--help"}, 30s);
  CHECK(r.exit_code == 0);
  for (const char* word : {"--demo", "--source", "--record", "--frames", "--probe", "--bitrate", "--spice", "--spice-ticket-file",
                            "--no-auth", "synthetic:", "window-drag", "qemu-dbus:", "--turn",
                            "--turn-secret-file", "--ice-policy", "[webrtc]"})
    CHECK_THAT(r.out, Catch::Contains(word));
}

TEST_CASE("vdistreamd --probe names the usable encoder and why the others were passed over", "[vdistreamd][probe]") {
  auto r = test::run_process({VDISTREAMD_PATH, "--probe"}, 60s);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains("software") && Catch::Contains("usable"));
  CHECK_THAT(r.out, Catch::Contains("Chosen: software"));
}
