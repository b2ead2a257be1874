#include "capture/synthetic/barcode.hpp"

#include <array>
#include <cstring>

namespace vdistream::capture {

namespace {

constexpr int kSyncWhite = 0, kSyncBlack = 1, kFirstDataBlock = 2;
constexpr int kFirstCheckBlock = kFirstDataBlock + Barcode::kDataBits;
constexpr int kEndBlack = kFirstCheckBlock + Barcode::kCheckBits, kEndWhite = kEndBlack + 1;
constexpr uint32_t kDataMask = (1u << Barcode::kDataBits) - 1;
// Compression softens the contrast, but a picture where white and black sync blocks differ by
// less than this is not our code.
constexpr int kMinContrast = 32;

// CRC-8, polynomial 0x07, initial value 0, over the data bytes most significant first.
uint8_t crc8(uint32_t data) {
  uint8_t crc = 0;
  for (int shift = 16; shift >= 0; shift -= 8) {
    crc ^= uint8_t(data >> shift);
    for (int bit = 0; bit < 8; ++bit) crc = uint8_t((crc & 0x80) ? (crc << 1) ^ 0x07 : crc << 1);
  }
  return crc;
}

// The colour of every block, left to right: true = white.
std::array<bool, Barcode::kBlocks> encode_blocks(uint32_t value) {
  std::array<bool, Barcode::kBlocks> white{};
  value &= kDataMask;
  uint8_t check = crc8(value);
  white[kSyncWhite] = true;
  white[kSyncBlack] = false;
  for (int i = 0; i < Barcode::kDataBits; ++i) white[kFirstDataBlock + i] = (value >> (Barcode::kDataBits - 1 - i)) & 1;
  for (int i = 0; i < Barcode::kCheckBits; ++i) white[kFirstCheckBlock + i] = (check >> (Barcode::kCheckBits - 1 - i)) & 1;
  white[kEndBlack] = false;
  white[kEndWhite] = true;
  return white;
}

// Average brightness of the central 8x8 of each block: away from the block edges, which lossy
// compression and scaling blur.
template <typename LumaAt>
std::array<int, Barcode::kBlocks> sample_blocks(LumaAt luma_at) {
  constexpr int kMargin = Barcode::kBlock / 4, kSide = Barcode::kBlock / 2;
  std::array<int, Barcode::kBlocks> levels{};
  for (int block = 0; block < Barcode::kBlocks; ++block) {
    int sum = 0;
    for (int y = kMargin; y < kMargin + kSide; ++y)
      for (int x = block * Barcode::kBlock + kMargin; x < block * Barcode::kBlock + kMargin + kSide; ++x) sum += luma_at(x, y);
    levels[size_t(block)] = sum / (kSide * kSide);
  }
  return levels;
}

std::optional<uint32_t> decode_blocks(const std::array<int, Barcode::kBlocks>& levels) {
  int white = levels[kSyncWhite], black = levels[kSyncBlack];
  if (white - black < kMinContrast) return std::nullopt;
  int threshold = (white + black) / 2;
  auto is_white = [&](int block) { return levels[size_t(block)] > threshold; };
  if (is_white(kEndBlack) || !is_white(kEndWhite)) return std::nullopt;
  uint32_t value = 0;
  for (int i = 0; i < Barcode::kDataBits; ++i) value = (value << 1) | uint32_t(is_white(kFirstDataBlock + i));
  uint32_t check = 0;
  for (int i = 0; i < Barcode::kCheckBits; ++i) check = (check << 1) | uint32_t(is_white(kFirstCheckBlock + i));
  if (check != crc8(value)) return std::nullopt;
  return value;
}

bool fits(int32_t width, int32_t height) { return width >= Barcode::kWidth && height >= Barcode::kHeight; }

}  // namespace

core::Rect Barcode::area(int32_t width, int32_t height) {
  if (!fits(width, height)) return {};
  return {0, 0, kWidth, kHeight};
}

void Barcode::stamp_xrgb(uint8_t* pixels, uint32_t pitch, int32_t width, int32_t height, uint32_t value) {
  if (!fits(width, height)) return;
  constexpr uint32_t kWhite = 0xffffffffu, kBlack = 0xff000000u;
  std::array<bool, kBlocks> white = encode_blocks(value);
  std::array<uint32_t, kWidth> row{};
  for (int x = 0; x < kWidth; ++x) row[size_t(x)] = white[size_t(x / kBlock)] ? kWhite : kBlack;
  for (int y = 0; y < kHeight; ++y) std::memcpy(pixels + size_t(y) * pitch, row.data(), sizeof(row));
}

std::optional<uint32_t> Barcode::read_luma(const uint8_t* y, uint32_t pitch, int32_t width, int32_t height) {
  if (!fits(width, height)) return std::nullopt;
  return decode_blocks(sample_blocks([&](int px, int py) { return int(y[size_t(py) * pitch + size_t(px)]); }));
}

std::optional<uint32_t> Barcode::read_xrgb(const uint8_t* pixels, uint32_t pitch, int32_t width, int32_t height) {
  if (!fits(width, height)) return std::nullopt;
  return decode_blocks(sample_blocks([&](int px, int py) {
    const uint8_t* p = pixels + size_t(py) * pitch + size_t(px) * 4;  // B, G, R, X
    return (p[2] * 77 + p[1] * 150 + p[0] * 29) >> 8;
  }));
}

}  // namespace vdistream::capture
