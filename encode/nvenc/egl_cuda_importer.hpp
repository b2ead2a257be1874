// The NVIDIA zero-copy input: CUDA cannot import a dma-buf, but EGL can. The dma-buf becomes an
// EGLImage (EGL_LINUX_DMA_BUF_EXT, with its modifier), the image a GL texture, the texture a
// CUDA graphics resource, and one cuMemcpy2D on the GPU copies it into the encoder's CUDA frame.
// libEGL is loaded at run time, like libcuda; imports are cached per buffer identity.
#pragma once

#include <EGL/egl.h>
#include <EGL/eglext.h>

#include <memory>
#include <unordered_map>
#include <vector>

#include "core/frame_buffer.hpp"
#include "core/status.hpp"
#include "encode/nvenc/ffnvcodec.hpp"
#include "encode/vaapi/dmabuf_layout.hpp"

namespace vdistream::encode {

// The attribute list for eglCreateImageKHR(EGL_LINUX_DMA_BUF_EXT): size, fourcc, and per plane
// fd, offset, pitch and (unless DRM_FORMAT_MOD_INVALID) the modifier's halves; EGL_NONE-terminated.
std::vector<EGLint> egl_dmabuf_attributes(const DmaBufLayout& layout);

class EglCudaImporter {
 public:
  // An EGL display on the EGL device that is `cuda_device` (EGL_NV_device_cuda), a surfaceless
  // GL context on it. `cu` and `context` belong to the caller and outlive the importer.
  static core::Result<std::unique_ptr<EglCudaImporter>> create(const CudaFunctions& cu, CUcontext context, int cuda_device);
  ~EglCudaImporter();
  EglCudaImporter(const EglCudaImporter&) = delete;
  EglCudaImporter& operator=(const EglCudaImporter&) = delete;

  // Copies `buffer` (RGB, any modifier the driver imports) into `dst` (pitch `dst_pitch`) on the GPU.
  core::Status copy(const core::FrameBufferPtr& buffer, CUdeviceptr dst, size_t dst_pitch);

 private:
  struct Egl;
  struct Import {
    core::FrameBufferPtr buffer;
    EGLImage image = EGL_NO_IMAGE;
    unsigned texture = 0;
    CUgraphicsResource resource = nullptr;
  };
  EglCudaImporter(const CudaFunctions& cu, CUcontext context);
  core::Result<Import*> import(const core::FrameBufferPtr& buffer);
  void release(Import& imp);

  const CudaFunctions& cu_;
  CUcontext context_;
  std::unique_ptr<Egl> egl_;
  EGLDisplay display_ = EGL_NO_DISPLAY;
  EGLContext gl_ = EGL_NO_CONTEXT;
  std::unordered_map<core::BufferId, Import, core::BufferIdHash> imports_;
};

}  // namespace vdistream::encode
