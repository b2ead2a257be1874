#include "encode/nvenc/egl_cuda_importer.hpp"

#include <dlfcn.h>
#include <drm_fourcc.h>
#include <fmt/format.h>

namespace vdistream::encode {

namespace {

constexpr size_t kMaxImports = 8;
constexpr unsigned kGlTexture2d = 0x0DE1;
constexpr unsigned kGlTextureMinFilter = 0x2801, kGlTextureMagFilter = 0x2800, kGlNearest = 0x2600;

}  // namespace

std::vector<EGLint> egl_dmabuf_attributes(const DmaBufLayout& layout) {
  static constexpr EGLint kFd[4] = {EGL_DMA_BUF_PLANE0_FD_EXT, EGL_DMA_BUF_PLANE1_FD_EXT, EGL_DMA_BUF_PLANE2_FD_EXT,
                                    EGL_DMA_BUF_PLANE3_FD_EXT};
  static constexpr EGLint kOffset[4] = {EGL_DMA_BUF_PLANE0_OFFSET_EXT, EGL_DMA_BUF_PLANE1_OFFSET_EXT,
                                        EGL_DMA_BUF_PLANE2_OFFSET_EXT, EGL_DMA_BUF_PLANE3_OFFSET_EXT};
  static constexpr EGLint kPitch[4] = {EGL_DMA_BUF_PLANE0_PITCH_EXT, EGL_DMA_BUF_PLANE1_PITCH_EXT,
                                       EGL_DMA_BUF_PLANE2_PITCH_EXT, EGL_DMA_BUF_PLANE3_PITCH_EXT};
  static constexpr EGLint kModLo[4] = {EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE1_MODIFIER_LO_EXT,
                                       EGL_DMA_BUF_PLANE2_MODIFIER_LO_EXT, EGL_DMA_BUF_PLANE3_MODIFIER_LO_EXT};
  static constexpr EGLint kModHi[4] = {EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT, EGL_DMA_BUF_PLANE1_MODIFIER_HI_EXT,
                                       EGL_DMA_BUF_PLANE2_MODIFIER_HI_EXT, EGL_DMA_BUF_PLANE3_MODIFIER_HI_EXT};
  std::vector<EGLint> a{EGL_WIDTH, layout.width, EGL_HEIGHT, layout.height, EGL_LINUX_DRM_FOURCC_EXT,
                        EGLint(layout.drm_fourcc)};
  for (int i = 0; i < layout.plane_count && i < 4; ++i) {
    const DmaBufLayout::Object& obj = layout.objects[layout.planes[i].object_index];
    a.insert(a.end(), {kFd[i], obj.fd, kOffset[i], EGLint(layout.planes[i].offset), kPitch[i], EGLint(layout.planes[i].pitch)});
    if (obj.modifier != DRM_FORMAT_MOD_INVALID)
      a.insert(a.end(), {kModLo[i], EGLint(uint32_t(obj.modifier & 0xffffffffu)), kModHi[i], EGLint(uint32_t(obj.modifier >> 32))});
  }
  a.push_back(EGL_NONE);
  return a;
}

// libEGL and the GL entry points we use, resolved at run time.
struct EglCudaImporter::Egl {
  void* lib = nullptr;
  PFNEGLGETPROCADDRESSPROC get_proc = nullptr;
  PFNEGLQUERYDEVICESEXTPROC query_devices = nullptr;
  PFNEGLQUERYDEVICEATTRIBEXTPROC query_device_attrib = nullptr;
  PFNEGLGETPLATFORMDISPLAYEXTPROC platform_display = nullptr;
  PFNEGLINITIALIZEPROC initialize = nullptr;
  PFNEGLTERMINATEPROC terminate = nullptr;
  PFNEGLBINDAPIPROC bind_api = nullptr;
  PFNEGLCREATECONTEXTPROC create_context = nullptr;
  PFNEGLDESTROYCONTEXTPROC destroy_context = nullptr;
  PFNEGLMAKECURRENTPROC make_current = nullptr;
  PFNEGLGETERRORPROC get_error = nullptr;
  PFNEGLCREATEIMAGEKHRPROC create_image = nullptr;
  PFNEGLDESTROYIMAGEKHRPROC destroy_image = nullptr;
  void (*gen_textures)(int, unsigned*) = nullptr;
  void (*delete_textures)(int, const unsigned*) = nullptr;
  void (*bind_texture)(unsigned, unsigned) = nullptr;
  void (*tex_parameteri)(unsigned, unsigned, int) = nullptr;
  unsigned (*gl_get_error)() = nullptr;
  void (*image_target_texture)(unsigned, void*) = nullptr;  // glEGLImageTargetTexture2DOES

  ~Egl() {
    if (lib) dlclose(lib);
  }

  core::Status load() {
    lib = dlopen("libEGL.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!lib) return core::Error{fmt::format("libEGL.so.1 not found ({})", dlerror())};
    get_proc = reinterpret_cast<PFNEGLGETPROCADDRESSPROC>(dlsym(lib, "eglGetProcAddress"));
    if (!get_proc) return core::Error{"libEGL.so.1 has no eglGetProcAddress"};
    std::string missing;
    auto need = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(get_proc(name));
      if (!fn) missing += std::string(missing.empty() ? "" : ", ") + name;
    };
    need(query_devices, "eglQueryDevicesEXT");
    need(query_device_attrib, "eglQueryDeviceAttribEXT");
    need(platform_display, "eglGetPlatformDisplayEXT");
    need(initialize, "eglInitialize");
    need(terminate, "eglTerminate");
    need(bind_api, "eglBindAPI");
    need(create_context, "eglCreateContext");
    need(destroy_context, "eglDestroyContext");
    need(make_current, "eglMakeCurrent");
    need(get_error, "eglGetError");
    need(create_image, "eglCreateImageKHR");
    need(destroy_image, "eglDestroyImageKHR");
    need(gen_textures, "glGenTextures");
    need(delete_textures, "glDeleteTextures");
    need(bind_texture, "glBindTexture");
    need(tex_parameteri, "glTexParameteri");
    need(gl_get_error, "glGetError");
    need(image_target_texture, "glEGLImageTargetTexture2DOES");
    if (!missing.empty()) return core::Error{"EGL/GL entry points missing: " + missing};
    return {};
  }
};

EglCudaImporter::EglCudaImporter(const CudaFunctions& cu, CUcontext context) : cu_(cu), context_(context) {}

core::Result<std::unique_ptr<EglCudaImporter>> EglCudaImporter::create(const CudaFunctions& cu, CUcontext context,
                                                                       int cuda_device) {
  std::unique_ptr<EglCudaImporter> im(new EglCudaImporter(cu, context));
  im->egl_ = std::make_unique<Egl>();
  if (core::Status s = im->egl_->load(); !s) return core::Error{s.error()};
  Egl& egl = *im->egl_;
  EGLDeviceEXT devices[16];
  EGLint count = 0;
  if (!egl.query_devices(16, devices, &count) || count == 0) return core::Error{"EGL sees no device"};
  EGLDeviceEXT chosen = nullptr;
  for (EGLint i = 0; i < count && !chosen; ++i) {
    EGLAttrib ordinal = -1;
    if (egl.query_device_attrib(devices[i], EGL_CUDA_DEVICE_NV, &ordinal) && ordinal == cuda_device) chosen = devices[i];
  }
  if (!chosen) return core::Error{fmt::format("no EGL device is CUDA device {} (EGL_NV_device_cuda)", cuda_device)};
  im->display_ = egl.platform_display(EGL_PLATFORM_DEVICE_EXT, chosen, nullptr);
  if (im->display_ == EGL_NO_DISPLAY || !egl.initialize(im->display_, nullptr, nullptr))
    return core::Error{fmt::format("EGL display on the CUDA device: error 0x{:x}", egl.get_error())};
  if (!egl.bind_api(EGL_OPENGL_API)) return core::Error{"eglBindAPI(EGL_OPENGL_API) failed"};
  im->gl_ = egl.create_context(im->display_, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT, nullptr);
  if (im->gl_ == EGL_NO_CONTEXT) return core::Error{fmt::format("surfaceless GL context: EGL error 0x{:x}", egl.get_error())};
  return im;
}

EglCudaImporter::~EglCudaImporter() {
  if (egl_ && display_ != EGL_NO_DISPLAY) {
    egl_->make_current(display_, EGL_NO_SURFACE, EGL_NO_SURFACE, gl_);
    cu_.cuCtxPushCurrent(context_);
    for (auto& [id, imp] : imports_) release(imp);
    CUcontext dummy = nullptr;
    cu_.cuCtxPopCurrent(&dummy);
    egl_->make_current(display_, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    if (gl_ != EGL_NO_CONTEXT) egl_->destroy_context(display_, gl_);
    egl_->terminate(display_);
  }
}

void EglCudaImporter::release(Import& imp) {
  if (imp.resource) cu_.cuGraphicsUnregisterResource(imp.resource);
  if (imp.texture) egl_->delete_textures(1, &imp.texture);
  if (imp.image != EGL_NO_IMAGE) egl_->destroy_image(display_, imp.image);
  imp = {};
}

core::Result<EglCudaImporter::Import*> EglCudaImporter::import(const core::FrameBufferPtr& buffer) {
  if (auto it = imports_.find(buffer->id()); it != imports_.end()) return &it->second;
  if (imports_.size() >= kMaxImports) {
    for (auto& [id, imp] : imports_) release(imp);
    imports_.clear();
  }
  auto layout = describe_dmabuf(*buffer);
  if (!layout) return core::Error{layout.error()};
  std::vector<EGLint> attrs = egl_dmabuf_attributes(*layout);
  Import imp;
  imp.buffer = buffer;
  imp.image = egl_->create_image(display_, EGL_NO_CONTEXT, EGL_LINUX_DMA_BUF_EXT, nullptr, attrs.data());
  if (imp.image == EGL_NO_IMAGE)
    return core::Error{fmt::format("eglCreateImage of the dma-buf ({} {}): EGL error 0x{:x}", buffer->format().name(),
                                   core::modifier_name(buffer->format().modifier), egl_->get_error())};
  egl_->gen_textures(1, &imp.texture);
  egl_->bind_texture(kGlTexture2d, imp.texture);
  egl_->tex_parameteri(kGlTexture2d, kGlTextureMinFilter, int(kGlNearest));
  egl_->tex_parameteri(kGlTexture2d, kGlTextureMagFilter, int(kGlNearest));
  egl_->image_target_texture(kGlTexture2d, imp.image);
  if (unsigned err = egl_->gl_get_error(); err != 0) {
    release(imp);
    return core::Error{fmt::format("glEGLImageTargetTexture2DOES: GL error 0x{:x}", err)};
  }
  if (CUresult r = cu_.cuGraphicsGLRegisterImage(&imp.resource, imp.texture, kGlTexture2d, CU_GRAPHICS_REGISTER_FLAGS_READ_ONLY);
      r != CUDA_SUCCESS) {
    imp.resource = nullptr;
    release(imp);
    return core::Error{fmt::format("cuGraphicsGLRegisterImage: CUresult {}", int(r))};
  }
  return &imports_.emplace(buffer->id(), std::move(imp)).first->second;
}

core::Status EglCudaImporter::copy(const core::FrameBufferPtr& buffer, CUdeviceptr dst, size_t dst_pitch) {
  if (!egl_->make_current(display_, EGL_NO_SURFACE, EGL_NO_SURFACE, gl_))
    return core::Error{fmt::format("eglMakeCurrent: EGL error 0x{:x}", egl_->get_error())};
  if (cu_.cuCtxPushCurrent(context_) != CUDA_SUCCESS) return core::Error{"cuCtxPushCurrent failed"};
  struct PopContext {
    const CudaFunctions& cu;
    ~PopContext() {
      CUcontext dummy = nullptr;
      cu.cuCtxPopCurrent(&dummy);
    }
  } pop{cu_};
  auto imp = import(buffer);
  if (!imp) return core::Error{imp.error()};
  CUgraphicsResource res = (*imp)->resource;
  if (CUresult r = cu_.cuGraphicsMapResources(1, &res, nullptr); r != CUDA_SUCCESS)
    return core::Error{fmt::format("cuGraphicsMapResources: CUresult {}", int(r))};
  CUarray array = nullptr;
  CUresult r = cu_.cuGraphicsSubResourceGetMappedArray(&array, res, 0, 0);
  if (r == CUDA_SUCCESS) {
    CUDA_MEMCPY2D copy{};
    copy.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    copy.srcArray = array;
    copy.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    copy.dstDevice = dst;
    copy.dstPitch = dst_pitch;
    copy.WidthInBytes = size_t(buffer->width()) * 4;
    copy.Height = size_t(buffer->height());
    r = cu_.cuMemcpy2D(&copy);
  }
  cu_.cuGraphicsUnmapResources(1, &res, nullptr);
  if (r != CUDA_SUCCESS) return core::Error{fmt::format("copy from the GL texture into the CUDA frame: CUresult {}", int(r))};
  return {};
}

}  // namespace vdistream::encode
