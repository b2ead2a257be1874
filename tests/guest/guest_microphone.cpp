#include "guest_microphone.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sound/asound.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace vdistream::guest {

namespace {

constexpr int kChannels = 2;
// 1024 frames (21 ms) a period, 4 periods a buffer: read every period, and little kept waiting.
constexpr uint32_t kPeriodFrames = 1024, kPeriods = 4;
constexpr int32_t kDeadBand = 1000;  // a rise is from below -kDeadBand to above +kDeadBand

snd_mask* mask(snd_pcm_hw_params& p, int param) { return &p.masks[param - SNDRV_PCM_HW_PARAM_FIRST_MASK]; }
snd_interval* interval(snd_pcm_hw_params& p, int param) {
  return &p.intervals[param - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL];
}

// Everything allowed (what the kernel refines from), as alsa-lib's snd_pcm_hw_params_any starts.
void any(snd_pcm_hw_params& p) {
  std::memset(&p, 0, sizeof(p));
  for (int m = SNDRV_PCM_HW_PARAM_FIRST_MASK; m <= SNDRV_PCM_HW_PARAM_LAST_MASK; ++m)
    std::memset(mask(p, m)->bits, 0xff, sizeof(mask(p, m)->bits));
  for (int i = SNDRV_PCM_HW_PARAM_FIRST_INTERVAL; i <= SNDRV_PCM_HW_PARAM_LAST_INTERVAL; ++i) {
    interval(p, i)->min = 0;
    interval(p, i)->max = UINT_MAX;
  }
  p.rmask = ~0u;
}

void only(snd_pcm_hw_params& p, int param, unsigned value) {
  snd_mask* m = mask(p, param);
  std::memset(m->bits, 0, sizeof(m->bits));
  m->bits[value / 32] = 1u << (value % 32);
}

void exactly(snd_pcm_hw_params& p, int param, unsigned value) {
  snd_interval* i = interval(p, param);
  i->min = i->max = value;
  i->integer = 1;
}

}  // namespace

bool GuestMicrophone::open(const char* device, int wait_ms, std::string& error) {
  for (int waited = 0;; waited += 100) {
    fd_.reset(::open(device, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (fd_ || waited >= wait_ms) break;
    usleep(100'000);
  }
  if (!fd_) return error = fmt::format("cannot open {}: {}", device, std::strerror(errno)), false;

  // 48 kHz, or 44.1 kHz, in periods of 1024 frames; the rest as the kernel chooses.
  snd_pcm_hw_params p;
  bool set = false;
  for (const unsigned rate : {48000u, 44100u}) {
    for (const bool fixed_period : {true, false}) {
      any(p);
      only(p, SNDRV_PCM_HW_PARAM_ACCESS, SNDRV_PCM_ACCESS_RW_INTERLEAVED);
      only(p, SNDRV_PCM_HW_PARAM_FORMAT, SNDRV_PCM_FORMAT_S16_LE);
      only(p, SNDRV_PCM_HW_PARAM_SUBFORMAT, SNDRV_PCM_SUBFORMAT_STD);
      exactly(p, SNDRV_PCM_HW_PARAM_CHANNELS, kChannels);
      exactly(p, SNDRV_PCM_HW_PARAM_RATE, rate);
      if (fixed_period) {
        exactly(p, SNDRV_PCM_HW_PARAM_PERIOD_SIZE, kPeriodFrames);
        exactly(p, SNDRV_PCM_HW_PARAM_PERIODS, kPeriods);
      }
      if (ioctl(fd_.get(), SNDRV_PCM_IOCTL_HW_PARAMS, &p) == 0) {
        set = true;
        break;
      }
    }
    if (set) break;
  }
  if (!set) return error = fmt::format("{}: no s16le stereo at 48 or 44.1 kHz: {}", device, std::strerror(errno)), false;
  rate_ = int(interval(p, SNDRV_PCM_HW_PARAM_RATE)->min);
  buffer_frames_ = interval(p, SNDRV_PCM_HW_PARAM_BUFFER_SIZE)->min;
  window_frames_ = size_t(rate_ / 2);
  buffer_.resize(size_t(kPeriodFrames) * kPeriods * kChannels);
  return start(error);
}

bool GuestMicrophone::start(std::string& error) {
  if (ioctl(fd_.get(), SNDRV_PCM_IOCTL_PREPARE) != 0)
    return error = fmt::format("SNDRV_PCM_IOCTL_PREPARE: {}", std::strerror(errno)), false;
  if (ioctl(fd_.get(), SNDRV_PCM_IOCTL_START) != 0)
    return error = fmt::format("SNDRV_PCM_IOCTL_START: {}", std::strerror(errno)), false;
  return true;
}

std::vector<Heard> GuestMicrophone::read(std::string& error) {
  std::vector<Heard> heard;
  for (;;) {
    snd_xferi xfer{};
    xfer.buf = buffer_.data();
    xfer.frames = buffer_.size() / kChannels;
    if (ioctl(fd_.get(), SNDRV_PCM_IOCTL_READI_FRAMES, &xfer) != 0) {
      if (errno == EAGAIN || errno == EINTR) return heard;
      if (errno == EPIPE) {  // overrun: the guest read too late; start again
        ++overruns_;
        if (!start(error)) return heard;
        continue;
      }
      error = fmt::format("SNDRV_PCM_IOCTL_READI_FRAMES: {}", std::strerror(errno));
      return heard;
    }
    for (size_t f = 0; f < size_t(xfer.result); ++f) {
      const int32_t left = buffer_[f * kChannels];
      peak_ = std::max(peak_, std::abs(left));
      if (left < -kDeadBand) low_ = true;
      if (left > kDeadBand && low_) {
        if (since_rise_ > 0) periods_.push_back(since_rise_);
        since_rise_ = 0, low_ = false;
      }
      if (since_rise_ >= 0 && ++since_rise_ > int64_t(window_frames_)) since_rise_ = -1;  // too long: silence
      if (++frames_ == window_frames_) {
        // The mean of the middle half of the periods: a glitch (a gap, a jump where frames were
        // lost) spoils one or two, and the mean gives a fraction of a frame.
        double hz = 0;
        if (periods_.size() >= 4) {
          std::sort(periods_.begin(), periods_.end());
          const size_t from = periods_.size() / 4, to = periods_.size() - periods_.size() / 4;
          int64_t sum = 0;
          for (size_t i = from; i < to; ++i) sum += periods_[i];
          hz = double(rate_) * double(to - from) / double(sum);
        }
        heard.push_back({hz, peak_});
        frames_ = 0, peak_ = 0;
        periods_.clear();
      }
    }
    if (size_t(xfer.result) < buffer_.size() / kChannels) return heard;
  }
}

}  // namespace vdistream::guest
