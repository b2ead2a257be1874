#include "encode/nvenc/cuda_runtime.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include "encode/nvenc/ffnvcodec.hpp"

namespace vdistream::encode {

namespace {

// dlopen()s `name` once to learn whether it is there; the loader opens it again for itself.
core::Status library_present(const char* name) {
  void* handle = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    return core::Error{fmt::format("{} not found ({})", name, why ? why : "dlopen failed")};
  }
  dlclose(handle);
  return {};
}

}  // namespace

std::string nvenc_api_name(uint32_t version) { return fmt::format("NVENC API {}.{}", version >> 4, version & 0xf); }

bool nvenc_api_sufficient(uint32_t driver_version, uint32_t needed_version) { return driver_version >= needed_version; }

core::Result<std::unique_ptr<CudaRuntime>> CudaRuntime::load() {
  if (core::Status s = library_present("libcuda.so.1"); !s) return core::Error{s.error()};
  if (core::Status s = library_present("libnvidia-encode.so.1"); !s) return core::Error{s.error()};
  std::unique_ptr<CudaRuntime> r(new CudaRuntime());
  if (cuda_load_functions(&r->cuda_, nullptr) != 0) return core::Error{"libcuda.so.1 lacks a CUDA driver API symbol this build needs"};
  if (nvenc_load_functions(&r->nvenc_, nullptr) != 0) return core::Error{"libnvidia-encode.so.1 lacks NvEncodeAPICreateInstance"};
  if (r->nvenc_->NvEncodeAPIGetMaxSupportedVersion(&r->max_api_) != NV_ENC_SUCCESS)
    return core::Error{"NvEncodeAPIGetMaxSupportedVersion failed"};
  const uint32_t needed = (NVENCAPI_MAJOR_VERSION << 4) | NVENCAPI_MINOR_VERSION;
  if (!nvenc_api_sufficient(r->max_api_, needed))
    return core::Error{fmt::format("the driver offers {}, this FFmpeg needs {} (driver 470.57 or newer)",
                                   nvenc_api_name(r->max_api_), nvenc_api_name(needed))};
  if (CUresult err = r->cuda_->cuInit(0); err != CUDA_SUCCESS) return core::Error{fmt::format("cuInit failed (CUresult {})", int(err))};
  if (r->cuda_->cuDeviceGetCount(&r->devices_) != CUDA_SUCCESS || r->devices_ == 0)
    return core::Error{"the CUDA driver sees no device"};
  return r;
}

CudaRuntime::~CudaRuntime() {
  nvenc_free_functions(&nvenc_);
  cuda_free_functions(&cuda_);
}

std::string CudaRuntime::driver_api() const { return nvenc_api_name(max_api_); }

}  // namespace vdistream::encode
