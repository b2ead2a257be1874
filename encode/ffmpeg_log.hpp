// FFmpeg (and x264 inside it) logs through our facade: its chatter at debug, its complaints as warnings.
#pragma once

namespace vdistream::encode {

// Installs the av_log callback once per process; cheap to call again.
void route_ffmpeg_logs();

}  // namespace vdistream::encode
