// spice/agent_protocol: the agent's chunks and messages as spice-server passes them, split any
// way, messages across chunks, one past the limit skipped with the stream going on.
#include <catch2/catch.hpp>
#include <spice/vd_agent.h>

#include <random>

#include "spice/agent_protocol.hpp"

using namespace vdistream;
using namespace vdistream::spice;

namespace {

std::vector<AgentMessage> read_all(AgentReader& reader, const std::vector<uint8_t>& bytes, std::mt19937& rng,
                                   std::vector<std::pair<uint32_t, uint64_t>>* refused = nullptr) {
  std::vector<AgentMessage> out;
  AgentReader::Events events;
  events.on_message = [&](AgentMessage m) { out.push_back(std::move(m)); };
  events.on_refused = [&](uint32_t type, uint64_t size) {
    if (refused) refused->emplace_back(type, size);
  };
  size_t at = 0;
  while (at < bytes.size()) {
    const size_t n = std::min(bytes.size() - at, size_t(std::uniform_int_distribution<>(1, 700)(rng)));
    REQUIRE(reader.feed(bytes.data() + at, n, events));
    at += n;
  }
  return out;
}

}  // namespace

TEST_CASE("agent messages survive chunking and any split of the byte stream") {
  std::mt19937 rng(7);
  std::vector<uint8_t> big(10000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 31);
  std::vector<uint8_t> stream = agent_chunks(VD_AGENT_CLIPBOARD, big);
  // 20 header bytes + 10000 data in 2048-byte chunks: 5 chunks.
  CHECK(stream.size() == 10020 + 5 * 8);
  auto small = agent_chunks(VD_AGENT_CLIPBOARD_RELEASE, {});
  stream.insert(stream.end(), small.begin(), small.end());
  AgentReader reader(1 << 20);
  auto messages = read_all(reader, stream, rng);
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].port == VDP_CLIENT_PORT);
  CHECK(messages[0].type == VD_AGENT_CLIPBOARD);
  CHECK(messages[0].data == big);
  CHECK(messages[1].type == VD_AGENT_CLIPBOARD_RELEASE);
  CHECK(messages[1].data.empty());
}

TEST_CASE("an agent message over the limit is skipped and the next one still arrives") {
  std::mt19937 rng(9);
  std::vector<uint8_t> stream = agent_chunks(VD_AGENT_CLIPBOARD, std::vector<uint8_t>(5000, 'x'));
  auto next = agent_chunks(VD_AGENT_CLIPBOARD_GRAB, {1, 0, 0, 0});
  stream.insert(stream.end(), next.begin(), next.end());
  AgentReader reader(4096);
  std::vector<std::pair<uint32_t, uint64_t>> refused;
  auto messages = read_all(reader, stream, rng, &refused);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0] == std::pair<uint32_t, uint64_t>{VD_AGENT_CLIPBOARD, 5000});
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].type == VD_AGENT_CLIPBOARD_GRAB);
}

TEST_CASE("a chunk for a port the agent does not have stops the reader with the port named") {
  std::vector<uint8_t> bad{9, 0, 0, 0, 0, 0, 0, 0};
  AgentReader reader(100);
  auto s = reader.feed(bad.data(), bad.size(), {});
  REQUIRE(!s);
  CHECK_THAT(s.error(), Catch::Contains("port 9"));
  CHECK(!reader.feed(bad.data(), 1, {}));  // and stays stopped
}

TEST_CASE("clipboard payloads with and without the selection prefix") {
  auto grab = clipboard_payload(true, 0, {VD_AGENT_CLIPBOARD_UTF8_TEXT, VD_AGENT_CLIPBOARD_IMAGE_PNG});
  CHECK(grab.size() == 12);
  auto g = parse_clipboard(VD_AGENT_CLIPBOARD_GRAB, grab, true);
  REQUIRE(g);
  CHECK(g->selection == 0);
  CHECK(g->words == std::vector<uint32_t>{VD_AGENT_CLIPBOARD_UTF8_TEXT, VD_AGENT_CLIPBOARD_IMAGE_PNG});

  auto data = clipboard_payload(false, 0, {VD_AGENT_CLIPBOARD_UTF8_TEXT}, "héllo");
  auto d = parse_clipboard(VD_AGENT_CLIPBOARD, data, false);
  REQUIRE(d);
  CHECK(d->words[0] == VD_AGENT_CLIPBOARD_UTF8_TEXT);
  CHECK(d->data == "héllo");

  auto r = parse_clipboard(VD_AGENT_CLIPBOARD_REQUEST, clipboard_payload(true, 1, {VD_AGENT_CLIPBOARD_UTF8_TEXT}), true);
  REQUIRE(r);
  CHECK(r->selection == 1);

  CHECK(!parse_clipboard(VD_AGENT_CLIPBOARD_REQUEST, {1, 0}, true));           // no selection word
  CHECK(!parse_clipboard(VD_AGENT_CLIPBOARD_GRAB, {1, 0, 0, 0, 1, 0}, true));  // half a type
  CHECK(!parse_clipboard(VD_AGENT_CLIPBOARD, {}, false));                      // no type
}

TEST_CASE("the agent's outbox holds at most its limit: a message that would pass it is refused whole, reads make room") {
  spice::AgentOutbox box(100);
  const std::vector<uint8_t> sixty(60, 0xab), forty(40, 0xcd);
  CHECK(box.push(sixty));
  CHECK_FALSE(box.push(sixty));  // 120 > 100: nothing of it queued
  CHECK(box.waiting() == 60);
  CHECK(box.push(forty));        // exactly 100
  CHECK_FALSE(box.push({1}));
  std::vector<uint8_t> out(70);
  CHECK(box.read(out.data(), out.size()) == 70);
  CHECK(out[59] == 0xab);
  CHECK(out[60] == 0xcd);
  CHECK(box.waiting() == 30);
  CHECK(box.push(sixty));        // 90 waiting; what was read made room
  std::vector<uint8_t> rest(200);
  REQUIRE(box.read(rest.data(), rest.size()) == 90);
  CHECK(rest[29] == 0xcd);
  CHECK(rest[30] == 0xab);
  CHECK(rest[89] == 0xab);
  CHECK(box.waiting() == 0);
  CHECK(box.read(rest.data(), rest.size()) == 0);
}
