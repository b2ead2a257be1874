// The NVIDIA driver libraries, loaded at run time (ffnvcodec's loader, the one FFmpeg uses) so
// vdistreamd starts on hosts without them and says which one is missing.
#pragma once

#include <memory>
#include <string>

#include "core/status.hpp"

struct CudaFunctions;
struct NvencFunctions;

namespace vdistream::encode {

class CudaRuntime {
 public:
  // libcuda.so.1 and libnvidia-encode.so.1, cuInit, at least one device, and a driver whose
  // NVENC API is at least the one Debian's FFmpeg was built against (ffnvcodec 11.1).
  static core::Result<std::unique_ptr<CudaRuntime>> load();
  ~CudaRuntime();
  CudaRuntime(const CudaRuntime&) = delete;
  CudaRuntime& operator=(const CudaRuntime&) = delete;

  const CudaFunctions& cuda() const { return *cuda_; }
  int device_count() const { return devices_; }
  std::string driver_api() const;  // "NVENC API 12.1"

 private:
  CudaRuntime() = default;
  CudaFunctions* cuda_ = nullptr;
  NvencFunctions* nvenc_ = nullptr;
  int devices_ = 0;
  uint32_t max_api_ = 0;
};

// The NVENC API version as the driver reports it ((major << 4) | minor), readable.
std::string nvenc_api_name(uint32_t version);
// Is a driver reporting `driver_version` new enough for headers of `needed_version`?
bool nvenc_api_sufficient(uint32_t driver_version, uint32_t needed_version);

}  // namespace vdistream::encode
