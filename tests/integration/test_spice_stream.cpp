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
