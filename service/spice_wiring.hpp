// SPICE stream mode between a desktop's pipeline and its SpiceDesktop: H.264 access units from
// the desktop's encoder, and MJPEG (the pipeline's own JpegStream) for clients without an H.264
// decoder. Nothing to do in QXL mode, where the SpiceDesktop takes frames instead.
#pragma once

#include "core/status.hpp"
#include "encode/pipeline.hpp"
#include "spice/spice_desktop.hpp"

namespace vdistream::service {

inline core::Status attach_spice_stream(encode::DesktopPipeline& pipeline, spice::SpiceDesktop& spice) {
  if (auto sink = spice.stream_sink()) pipeline.add_sink(sink);
  if (auto sink = spice.stream_mjpeg_sink()) return pipeline.add_sink(sink, core::Codec::Mjpeg);
  return {};
}

inline void detach_spice_stream(encode::DesktopPipeline& pipeline, spice::SpiceDesktop& spice) {
  for (const auto& sink : {spice.stream_sink(), spice.stream_mjpeg_sink()})
    if (sink) pipeline.remove_sink(sink);
}

}  // namespace vdistream::service
