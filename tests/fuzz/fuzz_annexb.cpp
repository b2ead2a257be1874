// Annex-B walking (core/annexb) on any bytes: an encoder's output is ours, but the same code reads
// access units a recording or a hardware backend hands back. Every NAL unit it finds must lie in
// the input, start after a start code and never end in a zero byte; the stream device's DATA
// message built from the bytes must carry them (its leading delimiter moved to the end).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "core/annexb.hpp"
#include "spice/stream_protocol.hpp"

using namespace vdistream;

namespace {

void require(bool ok) {
  if (!ok) std::abort();  // a broken invariant is a finding, like a crash
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> stream(data, size);
  for (const core::NalUnit& nal : core::split_annexb(stream)) {
    require(!nal.payload.empty());
    require(nal.payload.data() >= data && nal.payload.data() + nal.payload.size() <= data + size);
    require(nal.payload.back() != 0);
    const size_t code = nal.with_start_code.size() - nal.payload.size();
    require(code == 3 || code == 4);
    require(nal.with_start_code.data() + code == nal.payload.data());
    require(nal.with_start_code[code - 1] == 1);
    (void)core::nal_type(core::Codec::H264, nal);
    (void)core::nal_type(core::Codec::H265, nal);
  }
  for (core::Codec codec : {core::Codec::H264, core::Codec::H265}) {
    (void)core::contains_idr(codec, stream);
    const std::vector<uint8_t> sets = core::parameter_sets(codec, stream);
    require(sets.size() <= size + size / 3 + 4);  // at most one added start-code byte per 3 input bytes
  }
  const std::vector<uint8_t> au(data, data + size);
  for (bool trailing : {false, true}) {
    auto message = spice::stream::data_message(au, trailing);
    if (!message) continue;
    require(message->size() >= spice::stream::kHeaderSize);
    const uint32_t body = uint32_t((*message)[4]) | uint32_t((*message)[5]) << 8 | uint32_t((*message)[6]) << 16 |
                          uint32_t((*message)[7]) << 24;
    require(body == message->size() - spice::stream::kHeaderSize);
    if (!trailing) require(std::vector<uint8_t>(message->begin() + spice::stream::kHeaderSize, message->end()) == au);
  }
  return 0;
}
