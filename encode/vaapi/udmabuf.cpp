#include "encode/vaapi/udmabuf.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/udmabuf.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vdistream::encode {

core::Result<core::FrameBufferPtr> wrap_memfd_as_dmabuf(const core::FrameBuffer& buffer) {
  if (buffer.backing() != core::BackingKind::Memory) return core::Error{"not a memfd-backed buffer"};
  if (buffer.plane_count() != 1) return core::Error{"udmabuf wrapping handles one-plane buffers only"};
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  if (buffer.file_size() % page != 0)
    return core::Error{fmt::format("memfd of {} bytes is not a whole number of {}-byte pages", buffer.file_size(), page)};
  const int memfd = buffer.plane(0).fd.get();
  int seals = fcntl(memfd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK)) return core::Error{"the memfd is not sealed against shrinking (udmabuf needs it)"};
  core::UniqueFd dev(::open("/dev/udmabuf", O_RDWR | O_CLOEXEC));
  if (!dev) return core::Error{fmt::format("/dev/udmabuf: {}", strerror(errno))};
  udmabuf_create create{};
  create.memfd = uint32_t(memfd);
  create.flags = UDMABUF_FLAGS_CLOEXEC;
  create.offset = 0;
  create.size = buffer.file_size();
  int fd = ioctl(dev.get(), UDMABUF_CREATE, &create);
  if (fd < 0) return core::Error{fmt::format("UDMABUF_CREATE: {}", strerror(errno))};
  std::array<core::Plane, core::FrameBuffer::kMaxPlanes> planes;
  planes[0] = core::Plane{core::UniqueFd(fd), buffer.plane(0).offset, buffer.plane(0).pitch};
  return core::FrameBuffer::create(buffer.width(), buffer.height(), buffer.format(), std::move(planes), 1);
}

}  // namespace vdistream::encode
