#include <catch2/catch.hpp>

#include <filesystem>

#include "encode/onevpl/onevpl_encoder.hpp"
#include "encode/onevpl/onevpl_params.hpp"

using namespace vdistream;

namespace {

template <typename T>
const T* find_ext(const mfxVideoParam& v, mfxU32 id) {
  for (mfxU16 i = 0; i < v.NumExtParam; ++i)
    if (v.ExtParam[i]->BufferId == id) return reinterpret_cast<const T*>(v.ExtParam[i]);
  return nullptr;
}

}  // namespace

TEST_CASE("the oneVPL encoder parameters are the low-latency set", "[encode][onevpl]") {
  encode::EncoderConfig c;
  c.bitrate_bps = 8'000'000;
  c.fps = 60;
  auto p = encode::onevpl_encode_params(c, 1920, 1080);
  const mfxVideoParam& v = p->video;
  CHECK(v.AsyncDepth == 1);
  CHECK(v.IOPattern == MFX_IOPATTERN_IN_VIDEO_MEMORY);
  CHECK(v.mfx.CodecId == MFX_CODEC_AVC);
  CHECK(v.mfx.CodecProfile == MFX_PROFILE_AVC_CONSTRAINED_BASELINE);
  CHECK(v.mfx.GopRefDist == 1);
  CHECK(v.mfx.NumRefFrame == 1);
  CHECK(v.mfx.IdrInterval == 0);
  CHECK(v.mfx.TargetUsage == MFX_TARGETUSAGE_BEST_SPEED);
  CHECK(v.mfx.LowPower == MFX_CODINGOPTION_ON);
  CHECK(v.mfx.RateControlMethod == MFX_RATECONTROL_CBR);
  CHECK(v.mfx.BRCParamMultiplier == 1);
  CHECK(v.mfx.TargetKbps == 8000);
  CHECK(v.mfx.MaxKbps == 8000);
  CHECK(v.mfx.BufferSizeInKB == 17);  // 8 Mbit/s / 60 fps = 16.7 kB: one frame, rounded up
  // Surfaces in 16-pixel units, the picture cropped to its real size.
  CHECK(v.mfx.FrameInfo.FourCC == MFX_FOURCC_NV12);
  CHECK(v.mfx.FrameInfo.Width == 1920);
  CHECK(v.mfx.FrameInfo.Height == 1088);
  CHECK(v.mfx.FrameInfo.CropW == 1920);
  CHECK(v.mfx.FrameInfo.CropH == 1080);
  CHECK(v.mfx.FrameInfo.FrameRateExtN == 60000);
  CHECK(v.mfx.FrameInfo.FrameRateExtD == 1000);

  REQUIRE(v.NumExtParam == 3);
  auto* co3 = find_ext<mfxExtCodingOption3>(v, MFX_EXTBUFF_CODING_OPTION3);
  REQUIRE(co3 != nullptr);
  CHECK(co3->Header.BufferSz == sizeof(mfxExtCodingOption3));
  CHECK(co3->LowDelayBRC == MFX_CODINGOPTION_ON);
  CHECK(co3->ScenarioInfo == MFX_SCENARIO_DISPLAY_REMOTING);
  auto* co2 = find_ext<mfxExtCodingOption2>(v, MFX_EXTBUFF_CODING_OPTION2);
  REQUIRE(co2 != nullptr);
  CHECK(co2->IntRefType == 0);  // no intra refresh unless asked
  CHECK(co2->LookAheadDepth == 0);
  auto* co = find_ext<mfxExtCodingOption>(v, MFX_EXTBUFF_CODING_OPTION);
  REQUIRE(co != nullptr);
  CHECK(co->AUDelimiter == MFX_CODINGOPTION_OFF);
}

TEST_CASE("large bitrates scale with BRCParamMultiplier, and intra refresh and HEVC map through", "[encode][onevpl]") {
  encode::EncoderConfig c;
  c.bitrate_bps = 100'000'000;
  c.fps = 30;
  c.intra_refresh = true;
  c.codec = core::Codec::H265;
  c.access_unit_delimiters = true;
  auto p = encode::onevpl_encode_params(c, 1280, 720);
  const mfxInfoMFX& m = p->video.mfx;
  CHECK(m.CodecId == MFX_CODEC_HEVC);
  CHECK(m.CodecProfile == MFX_PROFILE_HEVC_MAIN);
  REQUIRE(m.BRCParamMultiplier == 2);
  CHECK(uint32_t(m.TargetKbps) * m.BRCParamMultiplier == 100'000);
  CHECK(uint32_t(m.BufferSizeInKB) * m.BRCParamMultiplier == 416);  // 417 kB per frame, scaled
  auto* co2 = find_ext<mfxExtCodingOption2>(p->video, MFX_EXTBUFF_CODING_OPTION2);
  REQUIRE(co2 != nullptr);
  CHECK(co2->IntRefType == MFX_REFRESH_VERTICAL);
  CHECK(co2->IntRefCycleSize == 30);
  CHECK(find_ext<mfxExtCodingOption>(p->video, MFX_EXTBUFF_CODING_OPTION)->AUDelimiter == MFX_CODINGOPTION_ON);
}

TEST_CASE("the oneVPL VPP converts RGB4 video surfaces to NV12 video surfaces", "[encode][onevpl]") {
  auto v = encode::onevpl_vpp_params(encode::EncoderConfig{}, 1366, 768, MFX_FOURCC_RGB4);
  CHECK(v.AsyncDepth == 1);
  CHECK(v.IOPattern == (MFX_IOPATTERN_IN_VIDEO_MEMORY | MFX_IOPATTERN_OUT_VIDEO_MEMORY));
  CHECK(v.vpp.In.FourCC == MFX_FOURCC_RGB4);
  CHECK(v.vpp.In.ChromaFormat == MFX_CHROMAFORMAT_YUV444);
  CHECK(v.vpp.Out.FourCC == MFX_FOURCC_NV12);
  CHECK(v.vpp.Out.ChromaFormat == MFX_CHROMAFORMAT_YUV420);
  CHECK(v.vpp.In.Width == 1376);
  CHECK(v.vpp.In.CropW == 1366);
  CHECK(v.vpp.Out.Height == 768);
}

TEST_CASE("on a host without an Intel GPU the oneVPL backend refuses to open and says why", "[encode][onevpl]") {
  auto e = encode::OneVplEncoder::create(encode::EncoderConfig{}, encode::HardwareOptions{});
  if (std::filesystem::exists("/dev/dri")) {
    SUCCEED("this host has /dev/dri: the outcome depends on its GPU");
    return;
  }
  REQUIRE_FALSE(e.ok());
  CHECK_THAT(e.error(), Catch::Contains("oneVPL runtime") || Catch::Contains("/dev/dri"));
}
