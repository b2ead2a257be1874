#include "core/audio.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace vdistream::core {

std::string AudioFormat::describe() const {
  const char* kind = is_float ? "f" : is_signed ? "s" : "u";
  return fmt::format("{}{}{} {} Hz {} ch", kind, bits, bits > 8 ? (big_endian ? "be" : "le") : "", rate, channels);
}

Status AudioFormat::check() const {
  if (rate < 8000 || rate > 192000) return Error{fmt::format("{}: rate {} Hz is outside 8000..192000", describe(), rate)};
  if (channels < 1 || channels > 8) return Error{fmt::format("{}: {} channels (1..8)", describe(), channels)};
  if (is_float ? bits != 32 : (bits != 8 && bits != 16 && bits != 32))
    return Error{fmt::format("{}: {}-bit {} samples are not read", describe(), bits, is_float ? "float" : "integer")};
  if (bytes_per_frame != channels * bits / 8)
    return Error{fmt::format("{}: {} bytes per frame, {} channels × {} bits make {}", describe(), bytes_per_frame,
                             channels, bits, channels * bits / 8)};
  return {};
}

double AudioVolume::gain(size_t channel) const {
  if (mute) return 0;
  if (levels.empty()) return 1;
  return levels[std::min(channel, levels.size() - 1)] / 255.0;
}

}  // namespace vdistream::core
