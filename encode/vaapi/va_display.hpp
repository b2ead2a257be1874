// A VA display on a DRM render node: the node chosen by configuration or by scanning
// /dev/dri/renderD*, opened, vaInitialize()d, and asked what it can encode. Shared by the
// VAAPI backend (FFmpeg derives its device from the node) and the oneVPL backend.
#pragma once

#include <va/va.h>

#include <memory>
#include <string>
#include <vector>

#include "core/frame.hpp"
#include "core/status.hpp"
#include "core/unique_fd.hpp"

namespace vdistream::encode {

// `configured` wins when non-empty; otherwise the first renderD* in `dri_dir`, in name order.
// Errors say what was missing ("no render node in /dev/dri").
core::Result<std::string> find_render_node(const std::string& configured, const std::string& dri_dir = "/dev/dri");

struct VaEncodeSupport {
  bool encode = false;            // VAEntrypointEncSlice
  bool encode_low_power = false;  // VAEntrypointEncSliceLP
  bool video_processing = false;  // VAEntrypointVideoProc (RGB -> NV12 on the GPU)
};

// Which encode and video-processing entrypoints `display` offers for `codec`.
VaEncodeSupport query_va_encode(VADisplay display, core::Codec codec);
// An error naming what is missing when `codec` cannot be encoded from RGB with `support`.
core::Status require_va_encode(const VaEncodeSupport& support, const std::string& node, core::Codec codec);

class VaDisplay {
 public:
  static core::Result<std::unique_ptr<VaDisplay>> open(const std::string& render_node);
  ~VaDisplay();
  VaDisplay(const VaDisplay&) = delete;
  VaDisplay& operator=(const VaDisplay&) = delete;

  VADisplay get() const { return display_; }
  const std::string& node() const { return node_; }
  const std::string& vendor() const { return vendor_; }
  core::Status require_encode(core::Codec codec) const {
    return require_va_encode(query_va_encode(display_, codec), node_ + " (" + vendor_ + ")", codec);
  }

 private:
  VaDisplay() = default;
  core::UniqueFd fd_;
  VADisplay display_ = nullptr;
  std::string node_, vendor_;
};

}  // namespace vdistream::encode
