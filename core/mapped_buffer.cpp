#include "core/mapped_buffer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/dma-buf.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vdistream::core {

Result<std::shared_ptr<MappedBuffer>> MappedBuffer::map(const FrameBuffer& buffer, Access access) {
  if (Status s = buffer.check_cpu_readable(); !s) return Error{s.error()};
  const Plane& plane = buffer.plane(0);
  const uint64_t needed = buffer.plane_end(0);
  if (buffer.file_size() < needed)  // FrameBuffer::create checked this; never map past the end
    return Error{fmt::format("fd holds {} bytes, the frame needs {}", buffer.file_size(), needed)};

  int prot = PROT_READ | (access == Access::ReadWrite ? PROT_WRITE : 0);
  void* base = mmap(nullptr, needed, prot, MAP_SHARED, plane.fd.get(), 0);
  if (base == MAP_FAILED) return Error{fmt::format("mmap of {} bytes failed: {}", needed, strerror(errno))};

  std::shared_ptr<MappedBuffer> m(new MappedBuffer());
  m->base_ = static_cast<uint8_t*>(base);
  m->size_ = needed;
  m->offset_ = plane.offset;
  m->pitch_ = plane.pitch;
  m->width_ = buffer.width();
  m->height_ = buffer.height();
  m->id_ = buffer.id();
  m->access_ = access;
  if (buffer.backing() == BackingKind::DmaBuf) m->sync_fd_ = fcntl(plane.fd.get(), F_DUPFD_CLOEXEC, 0);
  return m;
}

MappedBuffer::~MappedBuffer() {
  if (base_) munmap(base_, size_);
  if (sync_fd_ >= 0) close(sync_fd_);
}

bool MappedBuffer::covers(const FrameBuffer& buffer) const {
  const Plane& p = buffer.plane(0);
  return buffer.id() == id_ && p.offset == offset_ && p.pitch == pitch_ && buffer.width() == width_ &&
         buffer.height() == height_;
}

MappedBuffer::CpuAccess::CpuAccess(const MappedBuffer& m) : m_(m) {
  if (m_.sync_fd_ < 0) return;
  dma_buf_sync sync{__u64(DMA_BUF_SYNC_START | (m_.access_ == Access::ReadWrite ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ))};
  while (ioctl(m_.sync_fd_, DMA_BUF_IOCTL_SYNC, &sync) != 0 && (errno == EINTR || errno == EAGAIN)) {
  }
}

MappedBuffer::CpuAccess::~CpuAccess() {
  if (m_.sync_fd_ < 0) return;
  dma_buf_sync sync{__u64(DMA_BUF_SYNC_END | (m_.access_ == Access::ReadWrite ? DMA_BUF_SYNC_RW : DMA_BUF_SYNC_READ))};
  while (ioctl(m_.sync_fd_, DMA_BUF_IOCTL_SYNC, &sync) != 0 && (errno == EINTR || errno == EAGAIN)) {
  }
}

Result<std::shared_ptr<MappedBuffer>> MappingCache::get(const FrameBuffer& buffer) {
  std::lock_guard lock(mutex_);
  std::shared_ptr<MappedBuffer> found;
  for (auto it = lru_.begin(); it != lru_.end(); ++it) {
    if (it->mapping->id() != buffer.id()) continue;
    if (it->mapping->covers(buffer)) {
      it->buffer = buffer.weak_from_this();
      lru_.splice(lru_.begin(), lru_, it);
      found = lru_.front().mapping;
    } else {
      lru_.erase(it);  // same buffer, new layout: map again
    }
    break;
  }
  if (!found) {
    auto mapped = MappedBuffer::map(buffer);
    if (!mapped) return mapped;
    ++maps_made_;
    found = *mapped;
    lru_.push_front({found, buffer.weak_from_this()});
  }
  // The others whose buffers are all gone; the one returned stays while the caller holds it.
  lru_.remove_if([&](const Entry& e) { return e.mapping != found && e.buffer.expired(); });
  while (lru_.size() > capacity_) lru_.pop_back();
  return found;
}

void MappingCache::forget(const BufferId& id) {
  std::lock_guard lock(mutex_);
  lru_.remove_if([&](const Entry& e) { return e.mapping->id() == id; });
}

size_t MappingCache::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace vdistream::core
