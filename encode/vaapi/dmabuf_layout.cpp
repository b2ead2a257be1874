#include "encode/vaapi/dmabuf_layout.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vdistream::encode {

namespace {

struct FileIdentity {
  core::BufferId id;
  uint64_t size = 0;
};

core::Result<FileIdentity> identify(int fd, int plane) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return core::Error{fmt::format("plane {}: fstat(fd {}): {}", plane, fd, strerror(errno))};
  FileIdentity f{{uint64_t(st.st_dev), uint64_t(st.st_ino)}, uint64_t(st.st_size)};
  if (!S_ISREG(st.st_mode)) {
    // A dma-buf reports st_size 0; its size is where SEEK_END lands (pread/mmap use their own
    // offsets, so moving this fd's position harms nobody).
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0) return core::Error{fmt::format("plane {}: size of fd {}: {}", plane, fd, strerror(errno))};
    lseek(fd, 0, SEEK_SET);
    f.size = uint64_t(end);
  }
  return f;
}

}  // namespace

core::Result<DmaBufLayout> describe_dmabuf(const core::FrameBuffer& buffer) {
  DmaBufLayout layout;
  layout.drm_fourcc = buffer.format().fourcc;
  layout.width = buffer.width();
  layout.height = buffer.height();
  layout.plane_count = buffer.plane_count();
  std::array<core::BufferId, core::FrameBuffer::kMaxPlanes> ids{};
  for (int i = 0; i < buffer.plane_count(); ++i) {
    const core::Plane& p = buffer.plane(i);
    auto file = identify(p.fd.get(), i);
    if (!file) return core::Error{file.error()};
    int index = -1;
    for (int o = 0; o < layout.object_count; ++o)
      if (ids[o] == file->id) index = o;
    if (index < 0) {
      index = layout.object_count++;
      ids[index] = file->id;
      layout.objects[index] = {p.fd.get(), file->size, buffer.format().modifier};
    }
    layout.planes[i] = {index, p.offset, p.pitch};
  }
  return layout;
}

}  // namespace vdistream::encode
