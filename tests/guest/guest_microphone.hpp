// The test guest's microphone: it records from the first sound card's capture device
// (/dev/snd/pcmC0D0c; under QEMU, intel-hda + hda-duplex on the D-Bus audiodev, so QEMU reads
// vdistream's AudioInListener while it runs) with the kernel's ALSA ioctls (no alsa-lib in the
// guest), and tells what it heard in windows of half a second: the left channel's peak and its
// frequency, from the time between its rising zero crossings (the middle half of them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"

namespace vdistream::guest {

struct Heard {
  double hz = 0;     // from the time between rising zero crossings (with a dead band); 0 in silence
  int32_t peak = 0;  // the largest |sample| of the window (s16)
};

class GuestMicrophone {
 public:
  // Opens the capture device (waiting up to `wait_ms` for it to appear), sets s16le stereo near
  // 48 kHz and starts capturing. False with why.
  bool open(const char* device, int wait_ms, std::string& error);
  bool valid() const { return bool(fd_); }
  int fd() const { return fd_.get(); }  // readable when frames wait
  int rate() const { return rate_; }
  unsigned buffer_frames() const { return buffer_frames_; }
  uint32_t overruns() const { return overruns_; }

  // Reads what is there (non-blocking): the windows that filled up. An overrun starts the
  // capture again; any other error is in `error` (then close()).
  std::vector<Heard> read(std::string& error);
  void close() { fd_.reset(); }

 private:
  bool start(std::string& error);

  core::UniqueFd fd_;
  int rate_ = 0;
  unsigned buffer_frames_ = 0;
  uint32_t overruns_ = 0;
  std::vector<int16_t> buffer_;
  // The window being filled.
  size_t window_frames_ = 0, frames_ = 0;
  int32_t peak_ = 0;
  std::vector<int64_t> periods_;  // frames between rises, in this window
  int64_t since_rise_ = -1;        // frames since the last rise (-1: none lately)
  bool low_ = false;               // the signal went below the dead band since the last rise
};

}  // namespace vdistream::guest
