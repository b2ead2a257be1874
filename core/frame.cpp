#include "core/frame.hpp"

namespace vdistream::core {

const char* codec_name(Codec c) {
  switch (c) {
    case Codec::H264: return "h264";
    case Codec::H265: return "h265";
    case Codec::Mjpeg: return "mjpeg";
  }
  return "?";
}

}  // namespace vdistream::core
