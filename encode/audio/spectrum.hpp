// What a stretch of PCM sounds like, in two numbers: its RMS level and its strongest frequency
// (a Hann-windowed real FFT from libavutil's av_tx, the peak refined between bins). The tests and
// vdistream-bench use it on what clients received.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vdistream::encode {

struct Spectrum {
  double level = 0;    // RMS of the mono mix, 0..1 of full scale
  double peak_hz = 0;  // strongest frequency above 20 Hz; 0 when there are too few samples
};

// `samples`: interleaved s16 of `channels` channels at `rate`. Uses the last 2^k frames (k ≤ 15)
// that fit; fewer than 1024 frames give a level only.
Spectrum analyse(const std::vector<int16_t>& samples, int channels, int rate);

}  // namespace vdistream::encode
