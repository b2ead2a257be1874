// A framebuffer described the way the kernel shares one: up to four planes, each an fd with
// offset and pitch. Owns its fds. Identity is the (st_dev, st_ino) of plane 0's file, so a
// buffer that comes back under a new fd (QEMU dups it on every ScanoutDMABUF) is recognised.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "core/pixel_format.hpp"
#include "core/status.hpp"
#include "core/unique_fd.hpp"

namespace vdistream::core {

struct BufferId {
  uint64_t device = 0;
  uint64_t inode = 0;
  bool operator==(const BufferId&) const = default;
};

struct BufferIdHash {
  size_t operator()(const BufferId& id) const { return std::hash<uint64_t>()(id.device * 0x9e3779b97f4a7c15ull ^ id.inode); }
};

struct Plane {
  UniqueFd fd;
  uint32_t offset = 0;
  uint32_t pitch = 0;
};

// What kind of file backs plane 0: decides how its size is read and whether the CPU must
// bracket access with DMA_BUF_IOCTL_SYNC.
enum class BackingKind { Memory /* memfd or regular file */, DmaBuf /* anything else that mmaps */ };

// Always owned by a shared_ptr (made only by create() and allocate_memfd()); a MappingCache
// watches its buffers through weak_from_this().
class FrameBuffer : public std::enable_shared_from_this<FrameBuffer> {
 public:
  static constexpr int kMaxPlanes = 4;
  static constexpr int32_t kMaxDimension = 16384;

  // Takes ownership of the fds, fstat()s plane 0 once, and checks the descriptor adds up
  // (see validate()). Returns an error naming the numbers when it does not.
  static Result<std::shared_ptr<const FrameBuffer>> create(int32_t width, int32_t height, PixelFormat format,
                                                           std::array<Plane, kMaxPlanes> planes, int plane_count);

  // A linear single-plane buffer in a new sealed memfd, for sources that draw themselves.
  static Result<std::shared_ptr<const FrameBuffer>> allocate_memfd(int32_t width, int32_t height, uint32_t fourcc,
                                                                   const std::string& debug_name);

  FrameBuffer(const FrameBuffer&) = delete;
  FrameBuffer& operator=(const FrameBuffer&) = delete;

  int32_t width() const { return width_; }
  int32_t height() const { return height_; }
  const PixelFormat& format() const { return format_; }
  int plane_count() const { return plane_count_; }
  const Plane& plane(int i) const { return planes_[i]; }
  BufferId id() const { return id_; }
  BackingKind backing() const { return backing_; }
  uint64_t file_size() const { return file_size_; }  // of plane 0's fd, read at creation

  // Can the CPU read this buffer as linear pixels? (linear modifier, 32-bit RGB, one plane)
  Status check_cpu_readable() const;
  // Where plane i's pixels end in its fd: offset + pitch × (rows - 1) + the last row's bytes.
  // A buffer that is a crop of a larger one (a second head at x = 1920 of a 3840-wide
  // framebuffer) ends before the whole pitch of its last row does.
  uint64_t plane_end(int i) const;

 private:
  FrameBuffer() = default;
  Status validate() const;

  int32_t width_ = 0, height_ = 0;
  PixelFormat format_;
  std::array<Plane, kMaxPlanes> planes_;
  int plane_count_ = 0;
  BufferId id_;
  BackingKind backing_ = BackingKind::Memory;
  uint64_t file_size_ = 0;
};

using FrameBufferPtr = std::shared_ptr<const FrameBuffer>;

}  // namespace vdistream::core
