// CPU access to a FrameBuffer: validated before any mmap, bracketed with DMA_BUF_IOCTL_SYNC
// when the fd is a dma-buf, and cached per buffer identity so a buffer that comes back is not
// mapped again.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>

#include "core/frame_buffer.hpp"
#include "core/status.hpp"

namespace vdistream::core {

class MappedBuffer {
 public:
  enum class Access { Read, ReadWrite };

  // Refuses buffers the CPU must not or cannot read (tiled, non-RGB); the descriptor itself was
  // validated when the FrameBuffer was created.
  static Result<std::shared_ptr<MappedBuffer>> map(const FrameBuffer& buffer, Access access = Access::Read);

  MappedBuffer(const MappedBuffer&) = delete;
  MappedBuffer& operator=(const MappedBuffer&) = delete;
  ~MappedBuffer();

  const uint8_t* data() const { return base_ + offset_; }
  uint8_t* writable_data() const { return access_ == Access::ReadWrite ? base_ + offset_ : nullptr; }
  uint32_t pitch() const { return pitch_; }
  int32_t width() const { return width_; }
  int32_t height() const { return height_; }
  BufferId id() const { return id_; }
  size_t mapped_size() const { return size_; }
  // Does the mapping cover what this descriptor of the same buffer needs?
  bool covers(const FrameBuffer& buffer) const;

  // Brackets CPU access. A no-op for memfds; DMA_BUF_IOCTL_SYNC START/END for dma-bufs.
  class CpuAccess {
   public:
    explicit CpuAccess(const MappedBuffer& m);
    ~CpuAccess();
    CpuAccess(const CpuAccess&) = delete;
    CpuAccess& operator=(const CpuAccess&) = delete;

   private:
    const MappedBuffer& m_;
  };

 private:
  MappedBuffer() = default;

  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t offset_ = 0, pitch_ = 0;
  int32_t width_ = 0, height_ = 0;
  BufferId id_;
  Access access_ = Access::Read;
  int sync_fd_ = -1;  // dup of the dma-buf fd for the sync ioctl, -1 for memory
};

// Keeps the last few mappings by buffer identity (st_dev, st_ino), each while the FrameBuffer it
// last served lives: a mapping keeps its file's memory, so one kept for a buffer nobody has any
// more (a VM's old surface after QEMU restarted, a dropped scanout) would hold megabytes for
// nothing until newer buffers pushed it out. Such mappings are dropped at the next get(). (An
// older FrameBuffer of the same memfd that outlives the last one is mapped again when it is next
// asked for: one mmap, never a wrong mapping.)
class MappingCache {
 public:
  explicit MappingCache(size_t capacity = 8) : capacity_(capacity) {}

  Result<std::shared_ptr<MappedBuffer>> get(const FrameBuffer& buffer);
  void forget(const BufferId& id);
  size_t size() const;
  uint64_t maps_made() const {
    std::lock_guard lock(mutex_);
    return maps_made_;
  }

 private:
  mutable std::mutex mutex_;
  size_t capacity_;
  struct Entry {
    std::shared_ptr<MappedBuffer> mapping;
    std::weak_ptr<const FrameBuffer> buffer;  // the last FrameBuffer it was asked for
  };
  std::list<Entry> lru_;  // most recent first
  uint64_t maps_made_ = 0;
};

}  // namespace vdistream::core
