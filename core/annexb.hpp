// Walking an H.264/H.265 Annex-B byte stream: NAL units between start codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/frame.hpp"

namespace vdistream::core {

struct NalUnit {
  std::span<const uint8_t> payload;  // without the start code, first byte = NAL header
  std::span<const uint8_t> with_start_code;
};

std::vector<NalUnit> split_annexb(std::span<const uint8_t> stream);

// NAL unit type from its header byte(s).
int nal_type(Codec codec, const NalUnit& nal);
bool contains_idr(Codec codec, std::span<const uint8_t> access_unit);
// The parameter sets (H.264 SPS+PPS; H.265 VPS+SPS+PPS) of an access unit, with start codes.
std::vector<uint8_t> parameter_sets(Codec codec, std::span<const uint8_t> access_unit);

}  // namespace vdistream::core
