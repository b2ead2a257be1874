#include "encode/software/x264_encoder.hpp"

#include <fmt/format.h>
#include <x264.h>

#include <algorithm>
#include <cstdarg>
#include <cstdlib>
#include <cstring>

#include "core/annexb.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"

namespace vdistream::encode {

namespace {

int32_t even(int32_t v) { return (v + 1) & ~1; }
int32_t align(int32_t v, int32_t a) { return (v + a - 1) / a * a; }

void x264_log(void*, int level, const char* fmt, va_list args) {
  // Warnings are expected noise on our settings (every one-frame-VBV underflow); errors also
  // come back as failed calls.
  core::LogLevel ours = level <= X264_LOG_ERROR ? core::LogLevel::Warn : core::LogLevel::Debug;
  if (!core::log_enabled(ours)) return;
  char line[512];
  vsnprintf(line, sizeof line, fmt, args);
  std::string text(line);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  core::log_write(ours, "x264", text);
}

}  // namespace

X264Encoder::X264Encoder(const EncoderConfig& config)
    : config_(config), bitrate_(config.bitrate_bps), param_(std::make_unique<x264_param_t>()) {}

X264Encoder::~X264Encoder() { close(); }

core::Result<std::unique_ptr<Encoder>> X264Encoder::create(const EncoderConfig& config) {
  if (config.codec != core::Codec::H264) return core::Error{"the software backend encodes H.264 only"};
  std::unique_ptr<X264Encoder> enc(new X264Encoder(config));
  if (config.width > 0 && config.height > 0)
    if (core::Status s = enc->open(config.width, config.height); !s) return core::Error{s.error()};
  return std::unique_ptr<Encoder>(std::move(enc));
}

std::string X264Encoder::name() const {
  return fmt::format("software (libx264 {}, {}, {} slice threads{})", config_.software_preset,
                     profile_name(config_.profile), config_.threads, config_.intra_refresh ? ", intra refresh" : "");
}

void X264Encoder::close() {
  if (x264_) x264_encoder_close(x264_);
  x264_ = nullptr;
  planes_.reset();
}

void X264Encoder::set_rate_control(x264_param_t& p, uint32_t bps) const {
  const int kbps = int(std::max<uint32_t>(bps / 1000, 16));
  p.rc.i_rc_method = X264_RC_ABR;
  p.rc.i_bitrate = kbps;
  p.rc.i_vbv_max_bitrate = kbps;
  // One frame of VBV: a big frame is paid for by the next ones instead of by queueing delay.
  p.rc.i_vbv_buffer_size = std::max(16, int(kbps / std::max(1.0, config_.fps)));
}

core::Status X264Encoder::open(int32_t width, int32_t height) {
  close();
  x264_param_t& p = *param_;
  if (x264_param_default_preset(&p, config_.software_preset.c_str(), "zerolatency") < 0)
    return core::Error{fmt::format("x264 does not know the preset '{}'", config_.software_preset)};
  // x264 needs even dimensions for 4:2:0; an odd edge is padded (and stays black).
  p.i_width = even(width);
  p.i_height = even(height);
  p.i_csp = X264_CSP_I420;
  p.i_fps_num = uint32_t(std::lround(config_.fps * 1000));
  p.i_fps_den = 1000;
  p.i_timebase_num = 1;
  p.i_timebase_den = 1'000'000;  // pts in microseconds of the capture clock
  p.b_vfr_input = 0;  // VFR rate control waits for the next frame's pts: one frame of delay
  p.i_threads = std::max(1, config_.threads);
  p.b_sliced_threads = 1;
  p.i_bframe = 0;
  p.i_scenecut_threshold = 0;
  p.b_intra_refresh = config_.intra_refresh;
  p.i_keyint_max = config_.intra_refresh ? std::max(1, int(config_.fps * 2)) : X264_KEYINT_MAX_INFINITE;
  p.b_repeat_headers = 1;  // SPS/PPS with every IDR, so any IDR starts a decodable stream
  p.b_annexb = 1;
  p.b_aud = config_.access_unit_delimiters;
  p.analyse.b_mb_info = 1;
  if (config_.profile == H264Profile::Main) p.b_cabac = 1;  // the profile is a ceiling: ultrafast is baseline
  // libyuv converts with BT.601 limited range: say so in the VUI so decoders convert back right.
  p.vui.i_colmatrix = 6;  // SMPTE 170M
  p.vui.i_colorprim = 1;  // BT.709 (sRGB primaries)
  p.vui.i_transfer = 13;  // IEC 61966-2-1 (sRGB)
  p.vui.b_fullrange = 0;
  p.pf_log = x264_log;
  p.i_log_level = core::log_enabled(core::LogLevel::Debug) ? X264_LOG_INFO : X264_LOG_ERROR;
  applied_bitrate_ = bitrate_;
  set_rate_control(p, applied_bitrate_);
  if (x264_param_apply_profile(&p, config_.profile == H264Profile::Main ? "main" : "baseline") < 0)
    return core::Error{"x264 refused the profile"};

  x264_ = x264_encoder_open(&p);
  if (!x264_) return core::Error{fmt::format("x264 could not open an encoder at {}x{}", p.i_width, p.i_height)};

  // One allocation for the three planes; strides 64-byte aligned for the SIMD paths.
  const int32_t y_stride = align(p.i_width, 64), c_stride = align(p.i_width / 2, 64);
  const size_t y_size = size_t(y_stride) * p.i_height, c_size = size_t(c_stride) * (p.i_height / 2);
  planes_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, y_size + 2 * c_size)));
  if (!planes_) return core::Error{"out of memory for the I420 planes"};
  uint8_t* base = planes_.get();
  picture_ = {base, base + y_size, base + y_size + c_size, y_stride, c_stride, c_stride};
  // Black in limited range, so padding and anything never damaged is defined.
  memset(picture_.y, 16, y_size);
  memset(picture_.u, 128, 2 * c_size);

  width_ = width;
  height_ = height;
  keyframe_requested_ = true;
  return {};
}

static_assert(I420Converter::kTile == 16, "mb_info is indexed by the converter's tiles: they must be macroblocks");

uint8_t* X264Encoder::constant_macroblocks(const core::TileMask& changed) {
  // The converter's 16x16 tiles are x264's macroblocks (an odd edge pads into the same tile).
  auto* info = static_cast<uint8_t*>(std::malloc(size_t(changed.columns()) * changed.rows()));
  if (!info) return nullptr;
  for (int32_t row = 0; row < changed.rows(); ++row)
    for (int32_t col = 0; col < changed.columns(); ++col)
      info[size_t(row) * changed.columns() + col] = changed.test(col, row) ? 0 : X264_MBINFO_CONSTANT;
  return info;
}

core::Result<std::vector<core::EncodedFrame>> X264Encoder::encode(const core::Frame& frame) {
  if (!frame.buffer) return core::Error{"frame without a buffer"};
  core::DamageRegion damage = frame.damage;
  if (!x264_ || frame.width() != width_ || frame.height() != height_) {
    if (x264_) ++counters_.reconfigurations;
    if (core::Status s = open(frame.width(), frame.height()); !s) return core::Error{s.error()};
    damage = core::DamageRegion::full(width_, height_);
  }
  if (uint32_t want = bitrate_; want != applied_bitrate_) {
    applied_bitrate_ = want;
    set_rate_control(*param_, want);
    if (x264_encoder_reconfig(x264_, param_.get()) < 0) return core::Error{"x264 refused the new bitrate"};
  }

  const core::TileMask changed = damage.to_tile_mask(width_, height_, I420Converter::kTile);
  auto tiles = converter_.convert(*frame.buffer, changed, picture_);
  if (!tiles) return core::Error{tiles.error()};
  counters_.tiles_converted += *tiles;
  core::FrameTimestamps ts = frame.timestamps;
  ts.converted_ns = core::monotonic_now_ns();

  const bool want_idr = keyframe_requested_.exchange(false);
  x264_picture_t in;
  x264_picture_init(&in);
  in.i_type = want_idr ? X264_TYPE_IDR : X264_TYPE_AUTO;
  in.img.i_csp = X264_CSP_I420;
  in.img.i_plane = 3;
  in.img.plane[0] = picture_.y;
  in.img.plane[1] = picture_.u;
  in.img.plane[2] = picture_.v;
  in.img.i_stride[0] = picture_.y_stride;
  in.img.i_stride[1] = picture_.u_stride;
  in.img.i_stride[2] = picture_.v_stride;
  if (!want_idr) {
    in.prop.mb_info = constant_macroblocks(changed);
    in.prop.mb_info_free = std::free;
  }
  int64_t pts = frame.timestamps.captured_ns > 0 ? frame.timestamps.captured_ns / 1000 : next_pts_;
  in.i_pts = std::max(pts, next_pts_);  // strictly increasing, whatever the source says
  next_pts_ = in.i_pts + 1;

  x264_nal_t* nals = nullptr;
  int nal_count = 0;
  x264_picture_t out_pic;
  int size = x264_encoder_encode(x264_, &nals, &nal_count, &in, &out_pic);
  if (size < 0) {
    if (want_idr) keyframe_requested_ = true;
    return core::Error{"x264_encoder_encode failed"};
  }
  std::vector<core::EncodedFrame> out;
  if (size == 0) return out;  // zerolatency never buffers, but the API allows it
  core::EncodedFrame ef;
  ef.codec = core::Codec::H264;
  ef.data.assign(nals[0].p_payload, nals[0].p_payload + size);  // x264 lays the NALs out back to back
  ef.keyframe = out_pic.b_keyframe && core::contains_idr(core::Codec::H264, ef.data);
  ef.width = width_;
  ef.height = height_;
  ef.sequence = frame.sequence;
  ef.timestamps = ts;
  ef.timestamps.encoded_ns = core::monotonic_now_ns();
  ++counters_.frames;
  if (ef.keyframe) ++counters_.keyframes;
  out.push_back(std::move(ef));
  return out;
}

}  // namespace vdistream::encode
