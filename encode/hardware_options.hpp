// Host-level choices for the hardware backends that the encoder configuration does not carry.
#pragma once

#include <string>

namespace vdistream::encode {

struct HardwareOptions {
  std::string render_node;  // e.g. "/dev/dri/renderD129"; empty = the first renderD* found
  int cuda_device = 0;      // NVENC: which CUDA device
};

}  // namespace vdistream::encode
