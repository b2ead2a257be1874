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
#include "benchmarks/clients/spice_client.hpp"
#include "fixtures/stream_desktop.hpp"
#include "spice/spice_desktop.hpp"

using namespace vdistream;
using namespace std::chrono_literals;
using bench::SpiceClient;
using test::StreamDesktop;

TEST_CASE("stream mode: a spice-glib client decodes our H.264 and shows the frames in order", "[spice][stream]") {
  StreamDesktop d("spice-stream-test", {.ticket = "stream-ticket"});
  bench::SpiceClient client(d.client("stream-ticket"));
  REQUIRE(client.wait_outcome(10s) == bench::SpiceClient::Outcome::Opened);

  // Paced like a 30 fps desktop; the client shows frames about 400 ms late (spice-glib
  // schedules them on the server's multimedia clock), so the deadline is generous.
  uint32_t target = 0;
  const bool seen = d.pump_until(20s, [&] {
    const auto sequence = uint32_t(d.source->next_sequence() - 1);
    if (target == 0 && sequence >= 60) target = sequence;
    // At or after the target: under load spice-glib skips frames that are already late.
    auto shown = client.barcodes();
    return target && !shown.empty() && shown.back().barcode >= target;
  });
  const auto stats = d.desktop->stream_stats();
  INFO("access units sent " << stats.access_units_sent << ", dropped " << stats.dropped << ", START_STOPs "
                            << stats.start_stops);
  CHECK(stats.start_stops >= 1);
  CHECK(stats.formats_sent >= 1);
  REQUIRE(seen);
  auto barcodes = client.barcodes();
  for (size_t i = 1; i < barcodes.size(); ++i) CHECK(barcodes[i].barcode > barcodes[i - 1].barcode);
  core::LatencyHistogram latency;
  for (const auto& b : barcodes)
    if (d.submitted_ns.count(b.barcode)) latency.record_ns(b.at_ns - d.submitted_ns[b.barcode]);
  WARN("stream mode, frame submitted -> shown in spice-glib, 640x480@30 x264: " << latency.count() << " frames, p50 "
       << latency.percentile_ms(50) << " ms, p95 " << latency.percentile_ms(95) << " ms");
}

TEST_CASE("stream mode: the encoder rests without a streaming client, the pointer goes as CURSOR_SET, "
          "and a NOTIFY_ERROR is recovered from", "[spice][stream]") {
  StreamDesktop d("spice-stream-rest", {.workload = capture::Workload::Typing});
  auto& p = *d.pipeline;

  // No client yet: frames are captured, none encoded.
  for (int i = 0; i < 10; ++i) d.submit();
  REQUIRE(p.wait_idle(10s));
  CHECK(p.stats().frames_encoded == 0);
  CHECK(p.stats().frames_unwatched > 0);
  CHECK_FALSE(d.desktop->stream_stats().streaming);

  core::CursorShape arrow;
  arrow.width = 12;
  arrow.height = 20;
  arrow.hot_x = 1;
  arrow.hot_y = 2;
  arrow.argb.assign(size_t(arrow.width * arrow.height), 0xff102030);
  d.desktop->set_cursor(arrow, {40, 50, true});
  {
    bench::SpiceClient client(d.client());
    REQUIRE(client.wait_outcome(10s) == bench::SpiceClient::Outcome::Opened);
    REQUIRE(d.pump_until(20s, [&] { return !client.barcodes().empty(); }));
    CHECK(p.stats().frames_encoded > 0);
    auto cursor = client.wait_cursor(12, 20, 10s);
    REQUIRE(cursor);
    CHECK(cursor->hot_x == 1);
    CHECK(cursor->hot_y == 2);
    CHECK(d.desktop->stream_stats().cursor_messages >= 2);

    // A message type 0.15.1 refuses (QUALITY_INDICATOR, 9): it answers NOTIFY_ERROR and disables
    // the device; the producer reopens it and the client sees new frames again.
    auto producer = std::dynamic_pointer_cast<spice::StreamProducer>(d.desktop->stream_sink());
    REQUIRE(producer);
    producer->inject_for_testing({1, 0, 9, 0, 2, 0, 0, 0, 'x', 0});
    REQUIRE(d.pump_until(20s, [&] { return d.desktop->stream_stats().errors_recovered == 1; }));
    const uint32_t last_before = client.barcodes().back().barcode;
    const bool recovered = d.pump_until(30s, [&] { return client.barcodes().back().barcode > last_before + 5; });
    INFO("last barcode before the error " << last_before << ", now " << client.barcodes().back().barcode);
    CHECK(recovered);
  }
  // The client is gone: spice-server stops the stream and the encoder rests again.
  REQUIRE(d.pump_until(10s, [&] { return !d.desktop->stream_stats().streaming; }));
  REQUIRE(p.wait_idle(10s));
  const uint64_t encoded = p.stats().frames_encoded;
  for (int i = 0; i < 10; ++i) d.submit();
  REQUIRE(p.wait_idle(10s));
  CHECK(p.stats().frames_encoded == encoded);
}

TEST_CASE("stream mode: a client that stops reading makes the producer drop, then resume at an IDR",
          "[spice][stream]") {
  // Full motion at a high rate fills the socket fast.
  StreamDesktop d("spice-stream-stall",
                  {.workload = capture::Workload::FullMotion, .width = 1280, .height = 720, .bitrate_bps = 40'000'000});
  auto& p = *d.pipeline;
  bench::SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(10s) == bench::SpiceClient::Outcome::Opened);
  REQUIRE(d.pump_until(20s, [&] { return !client.barcodes().empty(); }));

  auto release = std::make_shared<std::atomic<bool>>(false);
  client.stall(release);
  const bool dropped = d.pump_until(60s, [&] { return d.desktop->stream_stats().dropped > 0; });
  const uint64_t keyframes_before = p.stats().keyframes;
  *release = true;
  INFO("access units sent " << d.desktop->stream_stats().access_units_sent << ", dropped "
                            << d.desktop->stream_stats().dropped);
  REQUIRE(dropped);
  const uint32_t last_before = client.barcodes().back().barcode;
  CHECK(d.pump_until(30s, [&] { return client.barcodes().back().barcode > last_before + 5; }));
  CHECK(p.stats().keyframes > keyframes_before);  // the resumption began with an IDR
}

TEST_CASE("stream mode: the last change shows in spice-glib without waiting for a keep-alive", "[spice][stream]") {
  // spice-gtk's decoder holds one picture back; the pipeline's trailing frame releases it.
  StreamDesktop d("spice-stream-last", {.keepalive_ns = int64_t(3600) * 1'000'000'000});
  bench::SpiceClient client(d.client());
  REQUIRE(client.wait_outcome(10s) == bench::SpiceClient::Outcome::Opened);
  REQUIRE(d.pump_until(20s, [&] { return !client.barcodes().empty(); }));
  uint32_t last = 0;
  for (int i = 0; i < 5; ++i) {
    last = d.submit();
    std::this_thread::sleep_for(33ms);
  }
  INFO("last frame " << last << ", last shown " << client.barcodes().back().barcode);
  CHECK(client.wait_barcode(last, 10s));
  CHECK(d.pipeline->stats().keepalives == 0);
  CHECK(d.pipeline->stats().trailing_frames >= 1);
}
