// dma-bufs QEMU scans out: ScanoutDMABUF (one plane) and ScanoutDMABUF2 (QEMU ≥ 10.1,
// org.qemu.Display1.Listener.Unix.ScanoutDMABUF2: up to four planes with their own offsets and
// strides, a modifier, and the visible rectangle of a larger backing buffer). Each becomes a
// validated FrameBuffer; QEMU sends a fresh duplicate fd every time, so imports are cached by the
// identity (st_dev, st_ino) of plane 0 and reused while the layout is the same.
#pragma once

#include <array>
#include <cstdint>
#include <list>

#include "core/frame_buffer.hpp"
#include "core/status.hpp"
#include "core/unique_fd.hpp"

namespace vdistream::capture::qemu {

struct DmabufScanout {
  std::array<core::UniqueFd, core::FrameBuffer::kMaxPlanes> fds;
  std::array<uint32_t, core::FrameBuffer::kMaxPlanes> offsets{}, strides{};
  int planes = 0;
  uint32_t fourcc = 0;
  uint64_t modifier = 0;
  // The visible rectangle, in the backing buffer (the whole of it for ScanoutDMABUF).
  uint32_t x = 0, y = 0, width = 0, height = 0;
  uint32_t backing_width = 0, backing_height = 0;
};

struct DmabufImportStats {
  uint64_t imports = 0, reused = 0;
};

class DmabufScanouts {
 public:
  // Tiled (non-linear) buffers need an encoder that imports them by modifier: refused unless
  // `accept_tiled`. `cache` imports are kept by identity.
  DmabufScanouts(bool accept_tiled, size_t cache) : accept_tiled_(accept_tiled), cache_(cache) {}

  // Validates the descriptor (sizes, crop inside the backing, plane count for the format,
  // offsets and strides against every plane's fd) and returns the visible picture as a buffer.
  core::Result<core::FrameBufferPtr> import(DmabufScanout scanout);
  const DmabufImportStats& stats() const { return stats_; }

 private:
  bool accept_tiled_;
  size_t cache_;
  std::list<core::FrameBufferPtr> imports_;  // most recent first
  DmabufImportStats stats_;
};

}  // namespace vdistream::capture::qemu
