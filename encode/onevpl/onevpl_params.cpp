#include "encode/onevpl/onevpl_params.hpp"

#include <algorithm>
#include <cmath>

namespace vdistream::encode {

namespace {

void fill_frame_info(mfxFrameInfo& info, const EncoderConfig& config, int32_t width, int32_t height, mfxU32 fourcc) {
  info.FourCC = fourcc;
  info.ChromaFormat = fourcc == MFX_FOURCC_NV12 ? MFX_CHROMAFORMAT_YUV420 : MFX_CHROMAFORMAT_YUV444;
  info.PicStruct = MFX_PICSTRUCT_PROGRESSIVE;
  info.Width = onevpl_align16(width);
  info.Height = onevpl_align16(height);
  info.CropX = 0;
  info.CropY = 0;
  info.CropW = mfxU16(width);
  info.CropH = mfxU16(height);
  info.FrameRateExtN = mfxU32(std::lround((config.fps > 0 ? config.fps : 30.0) * 1000));
  info.FrameRateExtD = 1000;
}

}  // namespace

std::unique_ptr<OneVplEncodeParams> onevpl_encode_params(const EncoderConfig& config, int32_t width, int32_t height) {
  auto p = std::make_unique<OneVplEncodeParams>();
  mfxVideoParam& v = p->video;
  mfxInfoMFX& m = v.mfx;
  const bool hevc = config.codec == core::Codec::H265;
  v.AsyncDepth = 1;  // one frame in flight: output as soon as it is encoded
  v.IOPattern = MFX_IOPATTERN_IN_VIDEO_MEMORY;
  m.CodecId = hevc ? MFX_CODEC_HEVC : MFX_CODEC_AVC;
  if (hevc)
    m.CodecProfile = MFX_PROFILE_HEVC_MAIN;
  else
    m.CodecProfile = config.profile == H264Profile::Main ? MFX_PROFILE_AVC_MAIN : MFX_PROFILE_AVC_CONSTRAINED_BASELINE;
  m.TargetUsage = MFX_TARGETUSAGE_BEST_SPEED;
  m.LowPower = MFX_CODINGOPTION_ON;
  m.GopRefDist = 1;  // no B-frames
  m.GopPicSize = 0xffff;
  m.IdrInterval = 0;  // every I is an IDR; they come on request
  m.NumRefFrame = 1;
  m.GopOptFlag = MFX_GOP_STRICT;
  m.RateControlMethod = MFX_RATECONTROL_CBR;
  // Kbps and KB fields are 16-bit: scale them with BRCParamMultiplier when the bitrate is large.
  const double fps = config.fps > 0 ? config.fps : 30.0;
  const uint32_t kbps = std::max<uint32_t>(1, config.bitrate_bps / 1000);
  const uint32_t buffer_kb = std::max<uint32_t>(1, uint32_t(std::ceil(double(config.bitrate_bps) / fps / 8.0 / 1000.0)));
  const uint32_t multiplier = std::max<uint32_t>(1, (std::max(kbps, buffer_kb) + 0xfffe) / 0xffff);
  m.BRCParamMultiplier = mfxU16(multiplier);
  m.TargetKbps = mfxU16(kbps / multiplier);
  m.MaxKbps = mfxU16(kbps / multiplier);
  m.BufferSizeInKB = mfxU16(std::max<uint32_t>(1, buffer_kb / multiplier));
  m.InitialDelayInKB = mfxU16(std::max<uint32_t>(1, buffer_kb / multiplier / 2));
  fill_frame_info(m.FrameInfo, config, width, height, MFX_FOURCC_NV12);

  p->co.Header = {MFX_EXTBUFF_CODING_OPTION, sizeof(mfxExtCodingOption)};
  p->co.AUDelimiter = config.access_unit_delimiters ? MFX_CODINGOPTION_ON : MFX_CODINGOPTION_OFF;
  p->co.NalHrdConformance = MFX_CODINGOPTION_OFF;

  p->co2.Header = {MFX_EXTBUFF_CODING_OPTION2, sizeof(mfxExtCodingOption2)};
  p->co2.RepeatPPS = MFX_CODINGOPTION_OFF;
  p->co2.LookAheadDepth = 0;
  if (config.intra_refresh) {
    p->co2.IntRefType = MFX_REFRESH_VERTICAL;
    p->co2.IntRefCycleSize = mfxU16(std::max(2, int(std::lround(fps))));  // about a second per sweep
  }

  p->co3.Header = {MFX_EXTBUFF_CODING_OPTION3, sizeof(mfxExtCodingOption3)};
  p->co3.LowDelayBRC = MFX_CODINGOPTION_ON;
  p->co3.ScenarioInfo = MFX_SCENARIO_DISPLAY_REMOTING;

  p->ext = {&p->co.Header, &p->co2.Header, &p->co3.Header};
  v.ExtParam = p->ext.data();
  v.NumExtParam = mfxU16(p->ext.size());
  return p;
}

mfxVideoParam onevpl_vpp_params(const EncoderConfig& config, int32_t width, int32_t height, mfxU32 input_fourcc) {
  mfxVideoParam v{};
  v.AsyncDepth = 1;
  v.IOPattern = MFX_IOPATTERN_IN_VIDEO_MEMORY | MFX_IOPATTERN_OUT_VIDEO_MEMORY;
  fill_frame_info(v.vpp.In, config, width, height, input_fourcc);
  fill_frame_info(v.vpp.Out, config, width, height, MFX_FOURCC_NV12);
  return v;
}

}  // namespace vdistream::encode
