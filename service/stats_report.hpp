// Pipeline stats as a person reads them.
#pragma once

#include <string>

#include "capture/source.hpp"
#include "encode/pipeline_stats.hpp"

namespace vdistream::service {

// A few lines: frames, drops, bitrate, host latency percentiles per stage, copies.
// `cpu_seconds`: CPU the process spent over `seconds` (all threads), or < 0 when unknown.
std::string format_stats(const encode::PipelineStats& stats, double seconds, double cpu_seconds = -1);
// One line on how a VM's display gave its frames: the path, display messages per frame, pixel
// bytes on the socket, CPU per frame.
std::string format_capture(const capture::CaptureStats& capture, double seconds);

}  // namespace vdistream::service
