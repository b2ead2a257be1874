#include <catch2/catch.hpp>

#include <filesystem>

#include "core/annexb.hpp"
#include "encode/probe.hpp"

using namespace vdistream;

TEST_CASE("every backend is built in, in the order NVENC, oneVPL, VAAPI, software", "[encode][probe]") {
  auto registry = encode::EncoderRegistry::builtin();
  std::vector<std::string> names;
  for (const auto& b : registry.backends()) names.push_back(b.name);
  CHECK(names == std::vector<std::string>{"nvenc", "onevpl", "vaapi", "software"});
  CHECK(encode::EncoderRegistry::default_preference() == names);
  CHECK(registry.find("vaapi")->imports_dmabuf);
  CHECK_FALSE(registry.find("software")->imports_dmabuf);
}

TEST_CASE("on a host without a GPU each hardware probe says why it is unavailable and software is chosen", "[encode][probe]") {
  if (std::filesystem::exists("/dev/dri") || std::filesystem::exists("/dev/nvidiactl")) {
    SUCCEED("this host has a GPU device: the outcome depends on it");
    return;
  }
  auto registry = encode::EncoderRegistry::builtin();
  auto outcomes = registry.probe(encode::EncoderConfig{}, encode::EncoderRegistry::default_preference());
  REQUIRE(outcomes.size() == 4);
  for (size_t i = 0; i < 3; ++i) {
    INFO(outcomes[i].backend << ": " << outcomes[i].reason);
    CHECK_FALSE(outcomes[i].usable);
    CHECK_THAT(outcomes[i].reason, Catch::StartsWith("unavailable: "));
    CHECK_THAT(outcomes[i].reason, !Catch::Contains("not built into"));
  }
  CHECK_THAT(outcomes[0].reason, Catch::Contains("libcuda.so.1") || Catch::Contains("libnvidia-encode.so.1"));
  CHECK_THAT(outcomes[1].reason, Catch::Contains("oneVPL runtime") || Catch::Contains("/dev/dri"));
  CHECK_THAT(outcomes[2].reason, Catch::Contains("no render node") && Catch::Contains("/dev/dri"));
  CHECK(outcomes[3].usable);

  auto choice = registry.choose(encode::EncoderConfig{}, encode::EncoderRegistry::default_preference());
  REQUIRE(choice.ok());
  CHECK(choice->backend == "software");
  CHECK_THAT(choice->why, Catch::Contains("passed over nvenc") && Catch::Contains("vaapi (unavailable: no render node"));
}

TEST_CASE("a preference that names only unusable backends is refused with every reason", "[encode][probe]") {
  if (std::filesystem::exists("/dev/dri")) return;
  auto registry = encode::EncoderRegistry::builtin();
  auto choice = registry.choose(encode::EncoderConfig{}, {"vaapi", "quicksync"});
  REQUIRE_FALSE(choice.ok());
  CHECK_THAT(choice.error(), Catch::Contains("vaapi (unavailable: no render node"));
  CHECK_THAT(choice.error(), Catch::Contains("quicksync (unavailable: not built into this version"));
}

TEST_CASE("the chosen backend comes wrapped with the later usable ones to fall back on", "[encode][probe]") {
  auto registry = encode::EncoderRegistry::builtin();
  auto choice = registry.choose(encode::EncoderConfig{}, {"software"});
  REQUIRE(choice.ok());
  encode::Backend wrapped = registry.with_fallback(*choice, "probe-test");
  CHECK(wrapped.name == "software");
  encode::EncoderConfig c;
  c.width = 320;
  c.height = 180;
  auto e = wrapped.create(c);
  REQUIRE(e.ok());
  CHECK(encode::test_encode(**e).ok());
  CHECK_THAT((*e)->name(), Catch::Contains("x264"));
}

TEST_CASE("the probe's dma-buf is a real udmabuf where the host allows it, else a clear reason", "[encode][probe]") {
  auto buffer = encode::make_udmabuf(256, 144);
  if (!buffer) {
    CHECK_THAT(buffer.error(), Catch::Contains("udmabuf") || Catch::Contains("UDMABUF_CREATE"));
    return;
  }
  CHECK((*buffer)->backing() == core::BackingKind::DmaBuf);
  CHECK((*buffer)->width() == 256);
}
