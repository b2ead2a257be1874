// Our encoder configuration as oneVPL parameters: the encoder's mfxVideoParam with its
// extension buffers (low-latency: AsyncDepth 1, GopRefDist 1, one reference, LowDelayBRC,
// display-remoting scenario, CBR with one frame of buffer) and the RGB4 -> NV12 VPP's.
#pragma once

#include <vpl/mfxstructures.h>

#include <array>
#include <memory>

#include "encode/encoder.hpp"

namespace vdistream::encode {

struct OneVplEncodeParams {
  mfxVideoParam video{};
  mfxExtCodingOption co{};
  mfxExtCodingOption2 co2{};
  mfxExtCodingOption3 co3{};
  std::array<mfxExtBuffer*, 3> ext{};  // point into this object: not copyable
  OneVplEncodeParams() = default;
  OneVplEncodeParams(const OneVplEncodeParams&) = delete;
  OneVplEncodeParams& operator=(const OneVplEncodeParams&) = delete;
};

std::unique_ptr<OneVplEncodeParams> onevpl_encode_params(const EncoderConfig& config, int32_t width, int32_t height);
mfxVideoParam onevpl_vpp_params(const EncoderConfig& config, int32_t width, int32_t height, mfxU32 input_fourcc);

// Surfaces are allocated in 16-pixel units (progressive frames).
constexpr mfxU16 onevpl_align16(int32_t v) { return mfxU16((v + 15) & ~15); }

}  // namespace vdistream::encode
