#include "core/annexb.hpp"

namespace vdistream::core {

std::vector<NalUnit> split_annexb(std::span<const uint8_t> s) {
  std::vector<NalUnit> out;
  const size_t n = s.size();
  size_t i = 0;
  // Find the first start code.
  auto find_start = [&](size_t from, size_t& code_len) -> size_t {
    for (size_t k = from; k + 2 < n; ++k) {
      if (s[k] == 0 && s[k + 1] == 0) {
        if (s[k + 2] == 1) {
          code_len = 3;
          return k;
        }
        if (k + 3 < n && s[k + 2] == 0 && s[k + 3] == 1) {
          code_len = 4;
          return k;
        }
      }
    }
    code_len = 0;
    return n;
  };
  size_t len = 0;
  size_t start = find_start(i, len);
  while (start < n) {
    size_t payload_begin = start + len;
    size_t next_len = 0;
    size_t next = find_start(payload_begin, next_len);
    size_t end = next;
    // Trailing zero bytes belong to the next start code (zero_byte) or, after the last NAL, are
    // trailing_zero_8bits padding: never to this NAL, whose last byte is never 0x00 (H.264 7.4.1).
    while (end > payload_begin && s[end - 1] == 0) --end;
    if (end > payload_begin) out.push_back({s.subspan(payload_begin, end - payload_begin), s.subspan(start, end - start)});
    start = next;
    len = next_len;
  }
  return out;
}

int nal_type(Codec codec, const NalUnit& nal) {
  if (nal.payload.empty()) return -1;
  if (codec == Codec::H264) return nal.payload[0] & 0x1f;
  return (nal.payload[0] >> 1) & 0x3f;
}

bool contains_idr(Codec codec, std::span<const uint8_t> au) {
  for (const NalUnit& nal : split_annexb(au)) {
    int t = nal_type(codec, nal);
    if (codec == Codec::H264 && t == 5) return true;
    if (codec == Codec::H265 && (t == 19 || t == 20)) return true;
  }
  return false;
}

std::vector<uint8_t> parameter_sets(Codec codec, std::span<const uint8_t> au) {
  std::vector<uint8_t> out;
  for (const NalUnit& nal : split_annexb(au)) {
    int t = nal_type(codec, nal);
    bool ps = codec == Codec::H264 ? (t == 7 || t == 8) : (t == 32 || t == 33 || t == 34);
    if (!ps) continue;
    static constexpr uint8_t kStart[] = {0, 0, 0, 1};
    out.insert(out.end(), std::begin(kStart), std::end(kStart));
    out.insert(out.end(), nal.payload.begin(), nal.payload.end());
  }
  return out;
}

}  // namespace vdistream::core
