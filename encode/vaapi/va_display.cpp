#include "encode/vaapi/va_display.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <va/va_drm.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace vdistream::encode {

core::Result<std::string> find_render_node(const std::string& configured, const std::string& dri_dir) {
  namespace fs = std::filesystem;
  if (!configured.empty()) {
    if (access(configured.c_str(), R_OK | W_OK) != 0)
      return core::Error{fmt::format("render node {}: {}", configured, strerror(errno))};
    return configured;
  }
  std::error_code ec;
  if (!fs::is_directory(dri_dir, ec)) return core::Error{fmt::format("no render node: {} does not exist (no GPU visible to this host)", dri_dir)};
  std::vector<std::string> nodes;
  for (const auto& entry : fs::directory_iterator(dri_dir, ec))
    if (entry.path().filename().string().rfind("renderD", 0) == 0) nodes.push_back(entry.path().string());
  if (nodes.empty()) return core::Error{fmt::format("no render node in {}", dri_dir)};
  std::sort(nodes.begin(), nodes.end());
  for (const std::string& n : nodes)
    if (access(n.c_str(), R_OK | W_OK) == 0) return n;
  return core::Error{fmt::format("{} exists but this user may not open it (add it to the render group)", nodes.front())};
}

core::Result<std::unique_ptr<VaDisplay>> VaDisplay::open(const std::string& render_node) {
  std::unique_ptr<VaDisplay> d(new VaDisplay());
  d->node_ = render_node;
  d->fd_.reset(::open(render_node.c_str(), O_RDWR | O_CLOEXEC));
  if (!d->fd_) return core::Error{fmt::format("open {}: {}", render_node, strerror(errno))};
  d->display_ = vaGetDisplayDRM(d->fd_.get());
  if (!d->display_) return core::Error{fmt::format("vaGetDisplayDRM({}) returned no display", render_node)};
  int major = 0, minor = 0;
  VAStatus st = vaInitialize(d->display_, &major, &minor);
  if (st != VA_STATUS_SUCCESS) {
    vaTerminate(d->display_);
    d->display_ = nullptr;
    return core::Error{fmt::format("vaInitialize on {}: {} (no VA driver for this GPU?)", render_node, vaErrorStr(st))};
  }
  const char* vendor = vaQueryVendorString(d->display_);
  d->vendor_ = vendor ? vendor : "unknown VA driver";
  return d;
}

VaDisplay::~VaDisplay() {
  if (display_) vaTerminate(display_);
}

VaEncodeSupport query_va_encode(VADisplay display, core::Codec codec) {
  VaEncodeSupport s;
  std::vector<VAEntrypoint> eps(size_t(std::max(1, vaMaxNumEntrypoints(display))));
  auto has = [&](VAProfile profile, VAEntrypoint want) {
    int n = 0;
    if (vaQueryConfigEntrypoints(display, profile, eps.data(), &n) != VA_STATUS_SUCCESS) return false;
    return std::find(eps.begin(), eps.begin() + n, want) != eps.begin() + n;
  };
  const std::vector<VAProfile> profiles = codec == core::Codec::H264
                                              ? std::vector<VAProfile>{VAProfileH264ConstrainedBaseline, VAProfileH264Main, VAProfileH264High}
                                              : std::vector<VAProfile>{VAProfileHEVCMain};
  for (VAProfile p : profiles) {
    s.encode = s.encode || has(p, VAEntrypointEncSlice);
    s.encode_low_power = s.encode_low_power || has(p, VAEntrypointEncSliceLP);
  }
  s.video_processing = has(VAProfileNone, VAEntrypointVideoProc);
  return s;
}

core::Status require_va_encode(const VaEncodeSupport& s, const std::string& node, core::Codec codec) {
  if (!s.encode && !s.encode_low_power)
    return core::Error{fmt::format("{} has no {} encode entrypoint", node, core::codec_name(codec))};
  if (!s.video_processing)
    return core::Error{fmt::format("{} has no video processing entrypoint for RGB to NV12", node)};
  return {};
}

}  // namespace vdistream::encode
