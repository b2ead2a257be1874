// Stream mode with a real spice-glib client: our H.264 access units through spice-server's
// stream device, decoded by the client's GStreamer, barcodes read from its surface.
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "capture/synthetic/synthetic_source.hpp"
#include "core/clock.hpp"
#include "core/histogram.hpp"
#include "encode/pipeline.hpp"
#include "fixtures/process.hpp"
#include "fixtures/spice_client.hpp"
#include "spice/spice_desktop.hpp"

using namespace vdistream;
using namespace std::chrono_literals;
using test::SpiceTestClient;

TEST_CASE("stream mode: a spice-glib client decodes our H.264 and shows the frames in order", "[spice][stream]") {
  capture::SyntheticConfig sc;
  sc.workload = capture::Workload::WindowDrag;
  sc.width = 640;
  sc.height = 480;
  auto source = capture::SyntheticSource::create(sc);
  REQUIRE(source);
  encode::PipelineConfig pc;
  pc.name = "spice-stream-test";
  pc.encoder.fps = 30;
  auto pipeline = encode::DesktopPipeline::create(pc, encode::EncoderRegistry::builtin());
  REQUIRE(pipeline);

  spice::SpiceConfig config;
  config.name = "spice-stream-test";
  config.mode = spice::SpiceMode::Stream;
  config.listen.port = test::free_tcp_port();
  config.ticket = spice::Ticket{"stream-ticket", 0};
  auto desktop = spice::SpiceDesktop::create(config, nullptr, pipeline->get());
  REQUIRE(desktop);
  (*pipeline)->add_sink((*desktop)->stream_sink());
  (*pipeline)->start();

  test::SpiceClientOptions o;
  o.port = config.listen.port;
  o.password = "stream-ticket";
  std::optional<SpiceTestClient> client;
  client.emplace(o);
  REQUIRE(client->wait_outcome(10s) == SpiceTestClient::Outcome::Opened);

  // Paced like a 30 fps desktop; the client shows frames about 400 ms late (spice-glib
  // schedules them on the server's multimedia clock), so the deadline is generous.
  const int64_t deadline = core::monotonic_now_ns() + 20'000'000'000;
  uint32_t target = 0;
  bool seen = false;
  std::map<uint32_t, int64_t> submitted_ns;
  while (!seen && core::monotonic_now_ns() < deadline) {
    if (auto frame = (*source)->render_next()) {
      if (target == 0 && frame->sequence >= 60) target = uint32_t(frame->sequence);
      submitted_ns[uint32_t(frame->sequence)] = core::monotonic_now_ns();
      (*pipeline)->submit(std::move(*frame));
    }
    std::this_thread::sleep_for(33ms);
    seen = target && client->wait_barcode(target, 1ms);
  }
  const auto stats = (*desktop)->stream_stats();
  INFO("access units sent " << stats.access_units_sent << ", dropped " << stats.dropped << ", START_STOPs "
                            << stats.start_stops);
  CHECK(stats.start_stops >= 1);
  CHECK(stats.formats_sent >= 1);
  REQUIRE(seen);
  auto barcodes = client->barcodes();
  for (size_t i = 1; i < barcodes.size(); ++i) CHECK(barcodes[i].barcode > barcodes[i - 1].barcode);
  core::LatencyHistogram latency;
  for (const auto& b : barcodes)
    if (submitted_ns.count(b.barcode)) latency.record_ns(b.at_ns - submitted_ns[b.barcode]);
  WARN("stream mode, frame submitted -> shown in spice-glib, 640x480@30 x264: " << latency.count() << " frames, p50 "
       << latency.percentile_ms(50) << " ms, p95 " << latency.percentile_ms(95) << " ms");

  client.reset();
  desktop->reset();  // before the pipeline it asks for keyframes
  (*pipeline)->stop();
}

namespace {

// Renders and submits frames at about 30 fps until `done` or the limit; true if `done`.
template <typename Done>
bool pump_until(capture::SyntheticSource& source, encode::DesktopPipeline& pipeline, std::chrono::milliseconds limit,
                Done done) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto frame = source.render_next()) pipeline.submit(std::move(*frame));
    std::this_thread::sleep_for(33ms);
    if (done()) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("stream mode: the encoder rests without a streaming client, the pointer goes as CURSOR_SET, "
          "and a NOTIFY_ERROR is recovered from", "[spice][stream]") {
  capture::SyntheticConfig sc;
  sc.workload = capture::Workload::Typing;
  sc.width = 640;
  sc.height = 480;
  auto source = capture::SyntheticSource::create(sc);
  REQUIRE(source);
  encode::PipelineConfig pc;
  pc.name = "spice-stream-rest";
  pc.encoder.fps = 30;
  auto pipeline = encode::DesktopPipeline::create(pc, encode::EncoderRegistry::builtin());
  REQUIRE(pipeline);
  spice::SpiceConfig config;
  config.name = "spice-stream-rest";
  config.mode = spice::SpiceMode::Stream;
  config.listen.port = test::free_tcp_port();
  config.no_auth = true;
  auto desktop = spice::SpiceDesktop::create(config, nullptr, pipeline->get());
  REQUIRE(desktop);
  auto& d = **desktop;
  auto& p = **pipeline;
  p.add_sink(d.stream_sink());
  p.start();

  // No client yet: frames are captured, none encoded.
  for (int i = 0; i < 10; ++i)
    if (auto frame = (*source)->render_next()) p.submit(std::move(*frame));
  REQUIRE(p.wait_idle(10s));
  CHECK(p.stats().frames_encoded == 0);
  CHECK(p.stats().frames_unwatched > 0);
  CHECK_FALSE(d.stream_stats().streaming);

  core::CursorShape arrow;
  arrow.width = 12;
  arrow.height = 20;
  arrow.hot_x = 1;
  arrow.hot_y = 2;
  arrow.argb.assign(size_t(arrow.width * arrow.height), 0xff102030);
  d.set_cursor(arrow, {40, 50, true});

  test::SpiceClientOptions o;
  o.port = config.listen.port;
  {
    SpiceTestClient client(o);
    REQUIRE(client.wait_outcome(10s) == SpiceTestClient::Outcome::Opened);
    REQUIRE(pump_until(**source, p, 20s, [&] { return !client.barcodes().empty(); }));
    CHECK(p.stats().frames_encoded > 0);
    auto cursor = client.wait_cursor(12, 20, 10s);
    REQUIRE(cursor);
    CHECK(cursor->hot_x == 1);
    CHECK(cursor->hot_y == 2);
    CHECK(d.stream_stats().cursor_messages >= 2);

    // A message type 0.15.1 refuses (QUALITY_INDICATOR, 9): it answers NOTIFY_ERROR and disables
    // the device; the producer reopens it and the client sees new frames again.
    auto producer = std::dynamic_pointer_cast<spice::StreamProducer>(d.stream_sink());
    REQUIRE(producer);
    producer->inject_for_testing({1, 0, 9, 0, 2, 0, 0, 0, 'x', 0});
    REQUIRE(pump_until(**source, p, 20s, [&] { return d.stream_stats().errors_recovered == 1; }));
    const uint32_t last_before = client.barcodes().back().barcode;
    const bool recovered = pump_until(**source, p, 30s, [&] { return client.barcodes().back().barcode > last_before + 5; });
    INFO("last barcode before the error " << last_before << ", now " << client.barcodes().back().barcode);
    CHECK(recovered);
  }
  // The client is gone: spice-server stops the stream and the encoder rests again.
  REQUIRE(pump_until(**source, p, 10s, [&] { return !d.stream_stats().streaming; }));
  REQUIRE(p.wait_idle(10s));
  const uint64_t encoded = p.stats().frames_encoded;
  for (int i = 0; i < 10; ++i)
    if (auto frame = (*source)->render_next()) p.submit(std::move(*frame));
  REQUIRE(p.wait_idle(10s));
  CHECK(p.stats().frames_encoded == encoded);

  desktop->reset();
  p.stop();
}

TEST_CASE("stream mode: a client that stops reading makes the producer drop, then resume at an IDR",
          "[spice][stream]") {
  capture::SyntheticConfig sc;
  sc.workload = capture::Workload::FullMotion;
  sc.width = 1280;
  sc.height = 720;
  auto source = capture::SyntheticSource::create(sc);
  REQUIRE(source);
  encode::PipelineConfig pc;
  pc.name = "spice-stream-stall";
  pc.encoder.fps = 30;
  pc.encoder.bitrate_bps = 40'000'000;  // full motion at a high rate fills the socket fast
  auto pipeline = encode::DesktopPipeline::create(pc, encode::EncoderRegistry::builtin());
  REQUIRE(pipeline);
  spice::SpiceConfig config;
  config.name = "spice-stream-stall";
  config.mode = spice::SpiceMode::Stream;
  config.listen.port = test::free_tcp_port();
  config.no_auth = true;
  auto desktop = spice::SpiceDesktop::create(config, nullptr, pipeline->get());
  REQUIRE(desktop);
  auto& d = **desktop;
  auto& p = **pipeline;
  p.add_sink(d.stream_sink());
  p.start();

  test::SpiceClientOptions o;
  o.port = config.listen.port;
  SpiceTestClient client(o);
  REQUIRE(client.wait_outcome(10s) == SpiceTestClient::Outcome::Opened);
  REQUIRE(pump_until(**source, p, 20s, [&] { return !client.barcodes().empty(); }));

  auto release = std::make_shared<std::atomic<bool>>(false);
  client.stall(release);
  const bool dropped = pump_until(**source, p, 60s, [&] { return d.stream_stats().dropped > 0; });
  const uint64_t keyframes_before = p.stats().keyframes;
  *release = true;
  INFO("access units sent " << d.stream_stats().access_units_sent << ", dropped " << d.stream_stats().dropped);
  REQUIRE(dropped);
  const uint32_t last_before = client.barcodes().back().barcode;
  CHECK(pump_until(**source, p, 30s, [&] { return client.barcodes().back().barcode > last_before + 5; }));
  CHECK(p.stats().keyframes > keyframes_before);  // the resumption began with an IDR
  desktop->reset();
  p.stop();
}
