#include "encode/onevpl/onevpl_encoder.hpp"

#include <drm_fourcc.h>
#include <fmt/format.h>
#include <vpl/mfxdispatcher.h>

#include "core/clock.hpp"
#include "encode/onevpl/onevpl_params.hpp"
#include "encode/vaapi/udmabuf.hpp"
#include "encode/vaapi/va_prime.hpp"

namespace vdistream::encode {

namespace {

constexpr size_t kMaxImports = 8;
constexpr mfxU32 kSyncTimeoutMs = 1000;

std::string mfx_status(mfxStatus s) {
  switch (s) {
    case MFX_ERR_UNSUPPORTED: return "MFX_ERR_UNSUPPORTED";
    case MFX_ERR_MEMORY_ALLOC: return "MFX_ERR_MEMORY_ALLOC";
    case MFX_ERR_NOT_INITIALIZED: return "MFX_ERR_NOT_INITIALIZED";
    case MFX_ERR_NOT_FOUND: return "MFX_ERR_NOT_FOUND";
    case MFX_ERR_MORE_DATA: return "MFX_ERR_MORE_DATA";
    case MFX_ERR_DEVICE_LOST: return "MFX_ERR_DEVICE_LOST";
    case MFX_ERR_INCOMPATIBLE_VIDEO_PARAM: return "MFX_ERR_INCOMPATIBLE_VIDEO_PARAM";
    case MFX_ERR_INVALID_VIDEO_PARAM: return "MFX_ERR_INVALID_VIDEO_PARAM";
    case MFX_ERR_DEVICE_FAILED: return "MFX_ERR_DEVICE_FAILED";
    case MFX_ERR_GPU_HANG: return "MFX_ERR_GPU_HANG";
    default: return fmt::format("mfxStatus {}", int(s));
  }
}

mfxU32 mfx_fourcc_of(uint32_t drm_fourcc) {
  switch (drm_fourcc) {
    case DRM_FORMAT_XRGB8888:
    case DRM_FORMAT_ARGB8888: return MFX_FOURCC_RGB4;  // B, G, R, A in memory
    case DRM_FORMAT_XBGR8888:
    case DRM_FORMAT_ABGR8888: return MFX_FOURCC_BGR4;
    default: return 0;
  }
}

// Restricts the loader to hardware implementations on VAAPI that encode `codec`.
core::Status set_filter(mfxLoader loader, const char* name, mfxVariant value) {
  mfxConfig cfg = MFXCreateConfig(loader);
  if (!cfg) return core::Error{"MFXCreateConfig failed"};
  if (mfxStatus s = MFXSetConfigFilterProperty(cfg, reinterpret_cast<const mfxU8*>(name), value); s != MFX_ERR_NONE)
    return core::Error{fmt::format("oneVPL filter {}: {}", name, mfx_status(s))};
  return {};
}

mfxVariant u32_variant(mfxU32 v) {
  mfxVariant var{};
  var.Type = MFX_VARIANT_TYPE_U32;
  var.Data.U32 = v;
  return var;
}

}  // namespace

core::Result<std::unique_ptr<Encoder>> OneVplEncoder::create(const EncoderConfig& config, const HardwareOptions& hw) {
  std::unique_ptr<OneVplEncoder> e(new OneVplEncoder(config));
  e->loader_ = MFXLoad();
  if (!e->loader_) return core::Error{"MFXLoad failed (libvpl dispatcher)"};
  const mfxU32 codec = config.codec == core::Codec::H265 ? MFX_CODEC_HEVC : MFX_CODEC_AVC;
  for (auto [name, value] : {std::pair{"mfxImplDescription.Impl", u32_variant(MFX_IMPL_TYPE_HARDWARE)},
                             std::pair{"mfxImplDescription.AccelerationMode", u32_variant(MFX_ACCEL_MODE_VIA_VAAPI)},
                             std::pair{"mfxImplDescription.mfxEncoderDescription.encoder.CodecID", u32_variant(codec)}})
    if (core::Status s = set_filter(e->loader_, name, value); !s) return core::Error{s.error()};
  if (mfxStatus s = MFXCreateSession(e->loader_, 0, &e->session_); s != MFX_ERR_NONE) {
    e->session_ = nullptr;
    return core::Error{fmt::format("no oneVPL runtime for a VAAPI hardware {} encoder (libmfx-gen.so.1.2 for Gen12+, "
                                   "libmfxhw64.so.1 for older GPUs; {})",
                                   core::codec_name(config.codec), mfx_status(s))};
  }
  mfxImplDescription* desc = nullptr;
  if (MFXEnumImplementations(e->loader_, 0, MFX_IMPLCAPS_IMPLDESCSTRUCTURE, reinterpret_cast<mfxHDL*>(&desc)) == MFX_ERR_NONE && desc) {
    e->implementation_ = fmt::format("{} API {}.{}", desc->ImplName, desc->ApiVersion.Major, desc->ApiVersion.Minor);
    MFXDispReleaseImplDescription(e->loader_, desc);
  }
  auto node = find_render_node(hw.render_node);
  if (!node) return core::Error{node.error()};
  auto display = VaDisplay::open(*node);
  if (!display) return core::Error{display.error()};
  e->display_ = std::move(*display);
  if (mfxStatus s = MFXVideoCORE_SetHandle(e->session_, MFX_HANDLE_VA_DISPLAY, e->display_->get()); s != MFX_ERR_NONE)
    return core::Error{"oneVPL refused our VA display: " + mfx_status(s)};
  e->allocator_.pthis = e.get();
  e->allocator_.Alloc = &OneVplEncoder::alloc_frames;
  e->allocator_.Free = &OneVplEncoder::free_frames;
  e->allocator_.GetHDL = &OneVplEncoder::get_handle;
  e->allocator_.Lock = [](mfxHDL, mfxMemId, mfxFrameData*) { return MFX_ERR_UNSUPPORTED; };  // never on the CPU
  e->allocator_.Unlock = [](mfxHDL, mfxMemId, mfxFrameData*) { return MFX_ERR_UNSUPPORTED; };
  if (mfxStatus s = MFXVideoCORE_SetFrameAllocator(e->session_, &e->allocator_); s != MFX_ERR_NONE)
    return core::Error{"oneVPL refused our frame allocator: " + mfx_status(s)};
  return std::unique_ptr<Encoder>(std::move(e));
}

OneVplEncoder::OneVplEncoder(const EncoderConfig& config) : config_(config), bitrate_(config.bitrate_bps) {}

OneVplEncoder::~OneVplEncoder() {
  close();
  if (session_) MFXClose(session_);
  if (loader_) MFXUnload(loader_);
}

std::string OneVplEncoder::name() const {
  return fmt::format("onevpl {} ({}) on {}", core::codec_name(config_.codec),
                     implementation_.empty() ? "runtime" : implementation_, display_ ? display_->node() : "?");
}

mfxStatus OneVplEncoder::alloc_frames(mfxHDL pthis, mfxFrameAllocRequest* request, mfxFrameAllocResponse* response) {
  auto* self = static_cast<OneVplEncoder*>(pthis);
  const bool nv12 = request->Info.FourCC == MFX_FOURCC_NV12;
  if (!nv12 && request->Info.FourCC != MFX_FOURCC_RGB4) return MFX_ERR_UNSUPPORTED;
  const mfxU16 n = request->NumFrameSuggested;
  std::vector<VASurfaceID> ids(n, VA_INVALID_SURFACE);
  VASurfaceAttrib attr{};
  attr.type = VASurfaceAttribPixelFormat;
  attr.flags = VA_SURFACE_ATTRIB_SETTABLE;
  attr.value.type = VAGenericValueTypeInteger;
  attr.value.value.i = int(nv12 ? VA_FOURCC_NV12 : VA_FOURCC_BGRX);
  if (vaCreateSurfaces(self->display_->get(), nv12 ? VA_RT_FORMAT_YUV420 : VA_RT_FORMAT_RGB32, request->Info.Width,
                       request->Info.Height, ids.data(), n, &attr, 1) != VA_STATUS_SUCCESS)
    return MFX_ERR_MEMORY_ALLOC;
  auto* mids = new mfxMemId[n];
  for (mfxU16 i = 0; i < n; ++i) {
    self->surfaces_.push_back(ids[i]);
    mids[i] = &self->surfaces_.back();
  }
  response->mids = mids;
  response->NumFrameActual = n;
  return MFX_ERR_NONE;
}

mfxStatus OneVplEncoder::free_frames(mfxHDL pthis, mfxFrameAllocResponse* response) {
  auto* self = static_cast<OneVplEncoder*>(pthis);
  if (!response || !response->mids) return MFX_ERR_NONE;
  for (mfxU16 i = 0; i < response->NumFrameActual; ++i) {
    auto* id = static_cast<VASurfaceID*>(response->mids[i]);
    if (*id != VA_INVALID_SURFACE) vaDestroySurfaces(self->display_->get(), id, 1);
    *id = VA_INVALID_SURFACE;
  }
  delete[] response->mids;
  response->mids = nullptr;
  response->NumFrameActual = 0;
  return MFX_ERR_NONE;
}

mfxStatus OneVplEncoder::get_handle(mfxHDL, mfxMemId mid, mfxHDL* handle) {
  if (!mid || !handle) return MFX_ERR_INVALID_HANDLE;
  *handle = mid;  // a VASurfaceID*, as the VAAPI runtimes expect
  return MFX_ERR_NONE;
}

void OneVplEncoder::close() {
  if (session_ && opened_) {
    MFXVideoENCODE_Close(session_);
    MFXVideoVPP_Close(session_);
  }
  opened_ = false;
  if (display_) {
    for (auto& [id, imp] : imports_) vaDestroySurfaces(display_->get(), imp.surface, 1);
    if (!nv12_pool_.empty()) {
      mfxFrameAllocResponse r{};
      r.mids = new mfxMemId[nv12_pool_.size()];
      std::copy(nv12_pool_.begin(), nv12_pool_.end(), r.mids);
      r.NumFrameActual = mfxU16(nv12_pool_.size());
      free_frames(this, &r);
    }
  }
  imports_.clear();
  nv12_pool_.clear();
  nv12_surfaces_.clear();
}

core::Status OneVplEncoder::open(int32_t width, int32_t height, uint32_t drm_fourcc) {
  close();
  const mfxU32 in_fourcc = mfx_fourcc_of(drm_fourcc);
  if (!in_fourcc) return core::Error{"oneVPL VPP input " + core::PixelFormat{drm_fourcc, 0}.name() + " is not supported"};
  applied_bitrate_ = bitrate_;
  EncoderConfig cfg = config_;
  cfg.bitrate_bps = applied_bitrate_;
  mfxVideoParam vpp = onevpl_vpp_params(cfg, width, height, in_fourcc);
  auto enc = onevpl_encode_params(cfg, width, height);
  if (mfxStatus s = MFXVideoENCODE_Query(session_, &enc->video, &enc->video); s < MFX_ERR_NONE)
    return core::Error{"oneVPL rejected the encoder parameters: " + mfx_status(s)};
  mfxFrameAllocRequest vpp_req[2] = {}, enc_req{};
  if (mfxStatus s = MFXVideoVPP_QueryIOSurf(session_, &vpp, vpp_req); s < MFX_ERR_NONE)
    return core::Error{"VPP QueryIOSurf: " + mfx_status(s)};
  if (mfxStatus s = MFXVideoENCODE_QueryIOSurf(session_, &enc->video, &enc_req); s < MFX_ERR_NONE)
    return core::Error{"ENCODE QueryIOSurf: " + mfx_status(s)};
  // VPP output surfaces are the encoder's input: one pool for both.
  mfxFrameAllocRequest pool = enc_req;
  pool.NumFrameSuggested = mfxU16(std::max<int>(2, enc_req.NumFrameSuggested + vpp_req[1].NumFrameSuggested));
  pool.Type = MFX_MEMTYPE_EXTERNAL_FRAME | MFX_MEMTYPE_FROM_VPPOUT | MFX_MEMTYPE_FROM_ENCODE |
              MFX_MEMTYPE_VIDEO_MEMORY_DECODER_TARGET;
  mfxFrameAllocResponse response{};
  if (alloc_frames(this, &pool, &response) != MFX_ERR_NONE) return core::Error{"could not allocate NV12 VA surfaces"};
  nv12_pool_.assign(response.mids, response.mids + response.NumFrameActual);
  delete[] response.mids;
  nv12_surfaces_.assign(nv12_pool_.size(), mfxFrameSurface1{});
  for (size_t i = 0; i < nv12_pool_.size(); ++i) {
    nv12_surfaces_[i].Info = vpp.vpp.Out;
    nv12_surfaces_[i].Data.MemId = nv12_pool_[i];
  }
  if (mfxStatus s = MFXVideoVPP_Init(session_, &vpp); s < MFX_ERR_NONE) return core::Error{"VPP Init: " + mfx_status(s)};
  if (mfxStatus s = MFXVideoENCODE_Init(session_, &enc->video); s < MFX_ERR_NONE) {
    MFXVideoVPP_Close(session_);
    return core::Error{"ENCODE Init (a session limit or unsupported parameters): " + mfx_status(s)};
  }
  opened_ = true;
  vpp_in_ = vpp.vpp.In;
  vpp_out_ = vpp.vpp.Out;
  mfxVideoParam got{};
  MFXVideoENCODE_GetVideoParam(session_, &got);
  bitstream_.assign(std::max<size_t>(size_t(got.mfx.BufferSizeInKB) * 1000 * std::max<mfxU16>(1, got.mfx.BRCParamMultiplier),
                                     size_t(width) * size_t(height) * 3 / 2),
                    0);
  width_ = width;
  height_ = height;
  fourcc_ = drm_fourcc;
  keyframe_requested_ = true;
  return {};
}

core::Result<VASurfaceID*> OneVplEncoder::import(const core::FrameBufferPtr& buffer) {
  if (auto it = imports_.find(buffer->id()); it != imports_.end()) return it->second.surface;
  if (imports_.size() >= kMaxImports) {
    for (auto& [id, imp] : imports_) vaDestroySurfaces(display_->get(), imp.surface, 1);
    imports_.clear();
  }
  core::FrameBufferPtr importable = buffer;
  if (buffer->backing() == core::BackingKind::Memory) {  // a memfd reaches the GPU as a udmabuf
    auto wrapped = wrap_memfd_as_dmabuf(*buffer);
    if (!wrapped) return core::Error{"a memfd frame cannot reach the GPU without a copy: " + wrapped.error()};
    importable = *wrapped;
  }
  auto layout = describe_dmabuf(*importable);
  if (!layout) return core::Error{layout.error()};
  auto descriptor = va_prime_descriptor(*layout);
  if (!descriptor) return core::Error{descriptor.error()};
  auto format = va_surface_format(buffer->format().fourcc);
  VASurfaceAttrib attrs[2] = {};
  attrs[0].type = VASurfaceAttribMemoryType;
  attrs[0].flags = VA_SURFACE_ATTRIB_SETTABLE;
  attrs[0].value.type = VAGenericValueTypeInteger;
  attrs[0].value.value.i = VA_SURFACE_ATTRIB_MEM_TYPE_DRM_PRIME_2;
  attrs[1].type = VASurfaceAttribExternalBufferDescriptor;
  attrs[1].flags = VA_SURFACE_ATTRIB_SETTABLE;
  attrs[1].value.type = VAGenericValueTypePointer;
  attrs[1].value.value.p = &*descriptor;
  VASurfaceID id = VA_INVALID_SURFACE;
  VAStatus st = vaCreateSurfaces(display_->get(), format->rt_format, uint32_t(buffer->width()), uint32_t(buffer->height()),
                                 &id, 1, attrs, 2);
  if (st != VA_STATUS_SUCCESS)
    return core::Error{fmt::format("importing the dma-buf ({} {}) as a VA surface: {}", buffer->format().name(),
                                   core::modifier_name(buffer->format().modifier), vaErrorStr(st))};
  surfaces_.push_back(id);
  VASurfaceID* stable = &surfaces_.back();
  imports_.emplace(buffer->id(), Import{importable, stable});
  return stable;
}

core::Result<std::vector<core::EncodedFrame>> OneVplEncoder::encode(const core::Frame& frame) {
  if (!frame.buffer) return core::Error{"frame without a buffer"};
  const core::FrameBuffer& fb = *frame.buffer;
  if (!opened_ || fb.width() != width_ || fb.height() != height_ || fb.format().fourcc != fourcc_ ||
      bitrate_ != applied_bitrate_) {
    if (opened_) ++counters_.reconfigurations;
    if (core::Status s = open(fb.width(), fb.height(), fb.format().fourcc); !s) return core::Error{s.error()};
  }
  auto surface = import(frame.buffer);
  if (!surface) return core::Error{surface.error()};
  mfxFrameSurface1 in{};
  in.Info = vpp_in_;
  in.Data.MemId = *surface;
  mfxFrameSurface1* out = nullptr;
  for (auto& s : nv12_surfaces_)
    if (!s.Data.Locked) out = &s;
  if (!out) return core::Error{"every NV12 surface is still locked by oneVPL"};
  mfxSyncPoint vpp_sync = nullptr;
  if (mfxStatus s = MFXVideoVPP_RunFrameVPPAsync(session_, &in, out, nullptr, &vpp_sync); s < MFX_ERR_NONE)
    return core::Error{"VPP RGB to NV12: " + mfx_status(s)};
  core::Frame stamped = frame;
  stamped.timestamps.converted_ns = core::monotonic_now_ns();

  mfxEncodeCtrl ctrl{};
  const bool idr = keyframe_requested_.exchange(false);
  if (idr) ctrl.FrameType = MFX_FRAMETYPE_I | MFX_FRAMETYPE_IDR | MFX_FRAMETYPE_REF;
  mfxBitstream bs{};
  bs.Data = bitstream_.data();
  bs.MaxLength = mfxU32(bitstream_.size());
  mfxSyncPoint sync = nullptr;
  mfxStatus s = MFXVideoENCODE_EncodeFrameAsync(session_, idr ? &ctrl : nullptr, out, &bs, &sync);
  if (s < MFX_ERR_NONE) return core::Error{"EncodeFrameAsync: " + mfx_status(s)};
  std::vector<core::EncodedFrame> result;
  if (!sync) return result;  // MFX_ERR_MORE_DATA cannot happen with AsyncDepth 1 and GopRefDist 1, but be safe
  if (s = MFXVideoCORE_SyncOperation(session_, sync, kSyncTimeoutMs); s < MFX_ERR_NONE)
    return core::Error{"SyncOperation: " + mfx_status(s)};
  core::EncodedFrame ef;
  ef.codec = config_.codec;
  ef.data.assign(bs.Data + bs.DataOffset, bs.Data + bs.DataOffset + bs.DataLength);
  ef.keyframe = (bs.FrameType & MFX_FRAMETYPE_IDR) != 0;
  ef.width = width_;
  ef.height = height_;
  ef.sequence = frame.sequence;
  ef.timestamps = stamped.timestamps;
  ef.timestamps.encoded_ns = core::monotonic_now_ns();
  ++counters_.frames;
  counters_.keyframes += ef.keyframe ? 1 : 0;
  result.push_back(std::move(ef));
  return result;
}

}  // namespace vdistream::encode
