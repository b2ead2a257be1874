// Desktop status as the control API's JSON and as Prometheus text. (The integration test parses
// a live service's /metrics with Prometheus's own Python parser.)
#include <catch2/catch.hpp>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "service/metrics.hpp"

using namespace vdistream;

namespace {

service::DesktopStatus sample(const std::string& name) {
  service::DesktopStatus s;
  s.name = name;
  s.source = "synthetic:typing@1920x1080@60";
  s.state = service::SessionState::Connected;
  s.connected = true;
  s.streaming = true;
  s.encoder = "software (x264 ultrafast)";
  s.encoder_why = "software: the only usable backend";
  s.encoder_outcomes = {{"nvenc", false, "not built"}, {"software", true, "IDR 1234 bytes"}};
  s.fps_in = 60;
  s.fps_out = 18.5;
  s.bitrate_bps = 940000;
  s.pipeline.frames_captured = 600;
  s.pipeline.frames_encoded = 180;
  s.pipeline.keyframes = 2;
  s.pipeline.bytes_out = 123456;
  for (int i = 1; i <= 100; ++i) s.pipeline.total.record_ns(int64_t(i) * 100'000);  // 0.1 .. 10 ms
  s.spice_listen = "127.0.0.1:5901";
  s.spice_mode = "qxl";
  s.spice_qxl.frames = 77;
  return s;
}

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// A strict reading of the text format: comments are HELP/TYPE, every sample line is
// name{label="value",...} number, and a family's samples follow its TYPE line.
std::vector<Sample> parse(const std::string& text, std::map<std::string, std::string>& types) {
  static const std::regex sample_re(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$)");
  static const std::regex label_re(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)")re");
  std::vector<Sample> out;
  std::istringstream in(text);
  std::string line, family;
  while (std::getline(in, line)) {
    INFO(line);
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string type;
      words >> family >> type;
      REQUIRE(types.count(family) == 0);  // one TYPE per family
      types[family] = type;
      continue;
    }
    std::smatch m;
    REQUIRE(std::regex_match(line, m, sample_re));
    Sample s;
    s.name = m[1];
    CHECK(s.name.rfind(family, 0) == 0);  // under its family's TYPE
    std::string labels = m[3];
    for (auto it = std::sregex_iterator(labels.begin(), labels.end(), label_re); it != std::sregex_iterator(); ++it)
      s.labels[(*it)[1]] = (*it)[2];
    s.value = std::stod(m[4]);
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEST_CASE("Prometheus text has one TYPE per family and a labelled sample per desktop", "[service][metrics]") {
  auto a = sample("a"), b = sample("b");
  b.connected = false;
  b.state = service::SessionState::Disconnected;
  std::map<std::string, std::string> types;
  auto samples = parse(service::prometheus_text({a, b}), types);
  CHECK(types["vdistream_frames_captured_total"] == "counter");
  CHECK(types["vdistream_desktop_connected"] == "gauge");
  CHECK(types["vdistream_stage_latency_seconds"] == "summary");
  std::map<std::string, double> by_key;
  for (const auto& s : samples) {
    std::string key = s.name;
    for (const auto& [k, v] : s.labels) key += "," + k + "=" + v;
    CHECK(by_key.count(key) == 0);  // no duplicate series
    by_key[key] = s.value;
  }
  CHECK(by_key["vdistream_desktops"] == 2);
  CHECK(by_key["vdistream_frames_captured_total,desktop=a"] == 600);
  CHECK(by_key["vdistream_desktop_connected,desktop=a"] == 1);
  CHECK(by_key["vdistream_desktop_connected,desktop=b"] == 0);
  CHECK(by_key["vdistream_spice_frames_total,desktop=b"] == 77);
  CHECK(by_key["vdistream_stage_latency_seconds_count,desktop=a,stage=total"] == 100);
  const double p99 = by_key["vdistream_stage_latency_seconds,desktop=a,quantile=0.99,stage=total"];
  CHECK(p99 == Approx(0.0099).epsilon(0.03));
  CHECK(by_key["vdistream_stage_latency_seconds_sum,desktop=a,stage=total"] == Approx(0.505).epsilon(0.001));
  CHECK(by_key.count("vdistream_desktop_info,desktop=b,encoder=software (x264 ultrafast),source=synthetic:typing@"
                     "1920x1080@60,state=disconnected") == 1);
}

TEST_CASE("label values escape backslashes, quotes and newlines", "[service][metrics]") {
  CHECK(service::escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  auto s = sample("x");
  s.source = "qemu-dbus:unix:path=/run/\"odd\".sock";
  std::map<std::string, std::string> types;
  auto samples = parse(service::prometheus_text({s}), types);
  bool found = false;
  for (const auto& m : samples)
    if (m.name == "vdistream_desktop_info") found = m.labels.at("source") == "qemu-dbus:unix:path=/run/\\\"odd\\\".sock";
  CHECK(found);
}

TEST_CASE("the status JSON carries state, encoder and why, rates and counters", "[service][metrics]") {
  auto j = service::status_json(sample("a"), false);
  CHECK(j["name"] == "a");
  CHECK(j["state"] == "connected");
  CHECK(j["encoder"]["backend"] == "software (x264 ultrafast)");
  CHECK(j["encoder"]["why"] == "software: the only usable backend");
  CHECK(j["frames"]["captured"] == 600);
  CHECK(j["spice"]["listen"] == "127.0.0.1:5901");
  CHECK_FALSE(j.contains("latency"));
  auto d = service::status_json(sample("a"), true);
  CHECK(d["latency"]["total"]["count"] == 100);
  CHECK(d["latency"]["total"]["p50_ms"].get<double>() == Approx(5.0).epsilon(0.03));
  REQUIRE(d["encoder"]["probe"].size() == 2);
  CHECK(d["encoder"]["probe"][0]["reason"] == "not built");
  auto no_spice = sample("b");
  no_spice.spice_listen.clear();
  CHECK(service::status_json(no_spice, false)["spice"].is_null());
}
