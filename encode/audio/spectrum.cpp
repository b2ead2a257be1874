#include "encode/audio/spectrum.hpp"

extern "C" {
#include <libavutil/mem.h>
#include <libavutil/tx.h>
}

#include <cmath>
#include <complex>
#include <memory>

namespace vdistream::encode {

Spectrum analyse(const std::vector<int16_t>& samples, int channels, int rate) {
  Spectrum result;
  if (channels < 1 || rate <= 0) return result;
  const size_t frames = samples.size() / size_t(channels);
  if (frames == 0) return result;
  std::vector<float> mono(frames);
  double sum = 0;
  for (size_t f = 0; f < frames; ++f) {
    double v = 0;
    for (int c = 0; c < channels; ++c) v += samples[f * size_t(channels) + size_t(c)];
    mono[f] = float(v / channels / 32768.0);
    sum += double(mono[f]) * mono[f];
  }
  result.level = std::sqrt(sum / double(frames));

  size_t n = 1024;
  if (frames < n) return result;
  while (n * 2 <= frames && n < (size_t(1) << 15)) n *= 2;
  AVTXContext* tx = nullptr;
  av_tx_fn fn = nullptr;
  const float scale = 1.0f;
  if (av_tx_init(&tx, &fn, AV_TX_FLOAT_RDFT, 0, int(n), &scale, 0) < 0) return result;
  std::unique_ptr<AVTXContext, void (*)(AVTXContext*)> owned(tx, [](AVTXContext* t) { av_tx_uninit(&t); });
  // av_tx wants aligned buffers: n floats in, n/2 + 1 complex out.
  std::unique_ptr<float, void (*)(void*)> in(static_cast<float*>(av_malloc(n * sizeof(float))), av_free);
  std::unique_ptr<AVComplexFloat, void (*)(void*)> out(
      static_cast<AVComplexFloat*>(av_malloc((n / 2 + 1) * sizeof(AVComplexFloat))), av_free);
  if (!in || !out) return result;
  const float* last = mono.data() + (frames - n);
  for (size_t i = 0; i < n; ++i) in.get()[i] = last[i] * float(0.5 - 0.5 * std::cos(2 * M_PI * double(i) / double(n - 1)));
  fn(tx, out.get(), in.get(), sizeof(AVComplexFloat));
  auto magnitude = [&](size_t k) { return std::log(std::hypot(out.get()[k].re, out.get()[k].im) + 1e-12); };
  const size_t first = std::max<size_t>(2, size_t(std::ceil(20.0 * double(n) / rate)));
  size_t best = first;
  for (size_t k = first; k < n / 2; ++k)
    if (magnitude(k) > magnitude(best)) best = k;
  // A parabola through the log magnitudes of the peak and its neighbours.
  const double a = magnitude(best - 1), b = magnitude(best), c = magnitude(best + 1);
  const double shift = (a - 2 * b + c) != 0 ? 0.5 * (a - c) / (a - 2 * b + c) : 0;
  result.peak_hz = (double(best) + shift) * rate / double(n);
  return result;
}

}  // namespace vdistream::encode
