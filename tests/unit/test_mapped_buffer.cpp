#include <catch2/catch.hpp>

#include <drm_fourcc.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "core/mapped_buffer.hpp"

namespace core = vdistream::core;
using Catch::Matchers::Contains;
using core::FrameBuffer;
using core::MappedBuffer;
using core::MappingCache;
using core::PixelFormat;
using core::Plane;
using core::UniqueFd;

namespace {

constexpr PixelFormat kXrgb{DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR};

UniqueFd make_memfd(uint64_t size, const char* name = "test-mapped-buffer") {
  UniqueFd fd(memfd_create(name, MFD_CLOEXEC));
  REQUIRE(fd.valid());
  REQUIRE(ftruncate(fd.get(), off_t(size)) == 0);
  return fd;
}

UniqueFd dup_fd(int fd) {
  UniqueFd copy(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  REQUIRE(copy.valid());
  return copy;
}

core::FrameBufferPtr create(int32_t width, int32_t height, UniqueFd fd, uint32_t pitch, uint32_t offset = 0,
                            PixelFormat format = kXrgb) {
  std::array<Plane, FrameBuffer::kMaxPlanes> planes;
  planes[0] = Plane{std::move(fd), offset, pitch};
  auto fb = FrameBuffer::create(width, height, format, std::move(planes), 1);
  INFO(fb.error());
  REQUIRE(fb.ok());
  return *fb;
}

// The same buffer described again under a new fd, as QEMU re-sends a scanout.
core::FrameBufferPtr redescribe(const FrameBuffer& buffer, uint32_t pitch, int32_t height) {
  return create(buffer.width(), height, dup_fd(buffer.plane(0).fd.get()), pitch, buffer.plane(0).offset,
                buffer.format());
}

core::FrameBufferPtr allocate(int32_t width, int32_t height) {
  auto fb = FrameBuffer::allocate_memfd(width, height, DRM_FORMAT_XRGB8888, "test-mapped-buffer");
  REQUIRE(fb.ok());
  return *fb;
}

uint32_t pattern(int32_t x, int32_t y) { return 0xff000000u | uint32_t(y) << 12 | uint32_t(x); }

void fill(const MappedBuffer& m) {
  uint8_t* data = m.writable_data();
  REQUIRE(data != nullptr);
  for (int32_t y = 0; y < m.height(); ++y)
    for (int32_t x = 0; x < m.width(); ++x) {
      uint32_t v = pattern(x, y);
      std::memcpy(data + size_t(y) * m.pitch() + size_t(x) * 4, &v, 4);
    }
}

uint32_t pixel(const MappedBuffer& m, int32_t x, int32_t y) {
  uint32_t v = 0;
  std::memcpy(&v, m.data() + size_t(y) * m.pitch() + size_t(x) * 4, 4);
  return v;
}

// Lines of /proc/self/maps that map a memfd of this name.
int mappings_named(const std::string& memfd_name) {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);)
    if (line.find("/memfd:" + memfd_name + " ") != std::string::npos) ++n;
  return n;
}

}  // namespace

TEST_CASE("pixels written through a read-write mapping are read back through a read-only one",
          "[mapped_buffer]") {
  auto fb = allocate(64, 32);
  auto writer = MappedBuffer::map(*fb, MappedBuffer::Access::ReadWrite);
  REQUIRE(writer.ok());
  CHECK((*writer)->width() == 64);
  CHECK((*writer)->height() == 32);
  CHECK((*writer)->pitch() == 256);
  CHECK((*writer)->id() == fb->id());
  CHECK((*writer)->mapped_size() == 256 * 32);
  CHECK((*writer)->covers(*fb));
  fill(**writer);

  auto reader = MappedBuffer::map(*fb, MappedBuffer::Access::Read);
  REQUIRE(reader.ok());
  const MappedBuffer& m = **reader;
  CHECK(m.writable_data() == nullptr);
  CHECK(m.data() != (*writer)->data());  // two mappings of one file
  for (int32_t y : {0, 1, 17, 31})
    for (int32_t x : {0, 1, 40, 63}) {
      INFO(x << "," << y);
      CHECK(pixel(m, x, y) == pattern(x, y));
    }
}

TEST_CASE("a read-only mapping has no writable data", "[mapped_buffer]") {
  auto fb = allocate(16, 16);
  auto m = MappedBuffer::map(*fb);
  REQUIRE(m.ok());
  CHECK((*m)->writable_data() == nullptr);
  CHECK((*m)->data() != nullptr);
}

TEST_CASE("a mapping starts at the plane's offset and steps by its pitch", "[mapped_buffer]") {
  // 10 x 4 pixels, rows padded to 64 bytes, 4096 bytes into the file.
  UniqueFd fd = make_memfd(4096 + 64 * 4);
  int raw = fd.get();
  auto fb = create(10, 4, dup_fd(raw), 64, 4096);
  auto m = MappedBuffer::map(*fb, MappedBuffer::Access::ReadWrite);
  REQUIRE(m.ok());
  fill(**m);
  CHECK((*m)->mapped_size() == 4096 + 64 * 3 + 10 * 4);  // the last row ends at its last pixel

  // Read the file itself: pixel (3, 2) is at offset + 2 × pitch + 3 × 4.
  uint32_t v = 0;
  REQUIRE(pread(raw, &v, 4, 4096 + 2 * 64 + 3 * 4) == 4);
  CHECK(v == pattern(3, 2));
  uint32_t before = 1;
  REQUIRE(pread(raw, &before, 4, 4092) == 4);
  CHECK(before == 0);  // nothing was written ahead of the offset
}

TEST_CASE("CPU access on a memfd mapping is a no-op that does not fail", "[mapped_buffer]") {
  auto fb = allocate(8, 8);
  auto rw = MappedBuffer::map(*fb, MappedBuffer::Access::ReadWrite);
  REQUIRE(rw.ok());
  {
    MappedBuffer::CpuAccess access(**rw);
    fill(**rw);
  }
  auto ro = MappedBuffer::map(*fb);
  REQUIRE(ro.ok());
  {
    MappedBuffer::CpuAccess access(**ro);
    CHECK(pixel(**ro, 7, 7) == pattern(7, 7));
  }
}

TEST_CASE("mapping a tiled buffer is refused before any mmap", "[mapped_buffer]") {
  const std::string name = "test-tiled-never-mapped";
  PixelFormat tiled{DRM_FORMAT_XRGB8888, I915_FORMAT_MOD_X_TILED};
  auto fb = create(64, 64, make_memfd(16384, name.c_str()), 256, 0, tiled);

  auto m = MappedBuffer::map(*fb, MappedBuffer::Access::ReadWrite);
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.error(), Contains("not linear"));

  MappingCache cache;
  auto cached = cache.get(*fb);
  REQUIRE_FALSE(cached.ok());
  CHECK_THAT(cached.error(), Contains("not linear"));
  CHECK(cache.maps_made() == 0);
  CHECK(cache.size() == 0);
  CHECK(mappings_named(name) == 0);
}

TEST_CASE("mapping a two-plane YUV buffer is refused", "[mapped_buffer]") {
  UniqueFd fd = make_memfd(64 * 64 * 3 / 2);
  std::array<Plane, FrameBuffer::kMaxPlanes> planes;
  planes[1] = Plane{dup_fd(fd.get()), 64 * 64, 64};
  planes[0] = Plane{std::move(fd), 0, 64};
  auto fb = FrameBuffer::create(64, 64, PixelFormat{DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR}, std::move(planes), 2);
  REQUIRE(fb.ok());
  auto m = MappedBuffer::map(**fb);
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.error(), Contains("NV12"));
}

TEST_CASE("a mapping is released when its last holder lets go", "[mapped_buffer]") {
  const std::string name = "test-unmapped-on-release";
  auto fb = create(16, 16, make_memfd(16 * 16 * 4, name.c_str()), 64);
  {
    auto m = MappedBuffer::map(*fb);
    REQUIRE(m.ok());
    CHECK(mappings_named(name) == 1);
  }
  CHECK(mappings_named(name) == 0);
}

// ---- MappingCache --------------------------------------------------------------------------

TEST_CASE("the cache returns the same mapping for a buffer that comes back under a new fd",
          "[mapped_buffer]") {
  auto first = allocate(64, 64);
  auto again = redescribe(*first, first->plane(0).pitch, first->height());
  REQUIRE(again->plane(0).fd.get() != first->plane(0).fd.get());
  REQUIRE(again->id() == first->id());

  MappingCache cache;
  auto a = cache.get(*first);
  auto b = cache.get(*again);
  auto c = cache.get(*first);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  CHECK(a->get() == b->get());
  CHECK(a->get() == c->get());
  CHECK(cache.maps_made() == 1);
  CHECK(cache.size() == 1);
}

TEST_CASE("the cache lets go of a mapping once no buffer of it is left, at its next use", "[mapped_buffer]") {
  // A VM's surface after QEMU restarted: the old memfd is gone everywhere but in the cache, which
  // would keep its memory resident until newer buffers pushed it out.
  auto gone = FrameBuffer::allocate_memfd(64, 64, DRM_FORMAT_XRGB8888, "test-cache-gone");
  auto kept = FrameBuffer::allocate_memfd(64, 64, DRM_FORMAT_XRGB8888, "test-cache-kept");
  REQUIRE(gone.ok());
  REQUIRE(kept.ok());
  auto again = redescribe(**kept, (*kept)->plane(0).pitch, (*kept)->height());  // the same memfd, another fd

  MappingCache cache;
  REQUIRE(cache.get(**gone).ok());
  REQUIRE(cache.get(**kept).ok());
  CHECK(mappings_named("test-cache-gone") == 1);
  *gone = nullptr;
  CHECK(mappings_named("test-cache-gone") == 1);  // only the cache holds it now
  REQUIRE(cache.get(**kept).ok());
  CHECK(mappings_named("test-cache-gone") == 0);
  CHECK(cache.size() == 1);

  // The same memfd still described by another FrameBuffer: its mapping stays, and is reused.
  *kept = nullptr;
  REQUIRE(cache.get(*again).ok());
  CHECK(cache.maps_made() == 2);
  CHECK(mappings_named("test-cache-kept") == 1);
  CHECK(cache.size() == 1);
}

TEST_CASE("the cache maps again when the same buffer comes back with a new layout", "[mapped_buffer]") {
  UniqueFd fd = make_memfd(1 << 16);
  auto narrow = create(32, 32, dup_fd(fd.get()), 128);
  auto padded = redescribe(*narrow, 256, 32);   // new pitch
  auto taller = redescribe(*padded, 256, 64);  // new height

  MappingCache cache;
  auto a = cache.get(*narrow);
  REQUIRE(a.ok());
  auto b = cache.get(*padded);
  REQUIRE(b.ok());
  CHECK(cache.maps_made() == 2);
  CHECK(cache.size() == 1);  // the stale layout was dropped, not kept beside the new one
  CHECK((*b)->pitch() == 256);
  CHECK((*b)->covers(*padded));
  CHECK_FALSE((*b)->covers(*narrow));

  auto c = cache.get(*taller);
  REQUIRE(c.ok());
  CHECK(cache.maps_made() == 3);
  CHECK(cache.size() == 1);
  CHECK((*c)->height() == 64);
  CHECK((*c)->mapped_size() == 256 * 63 + 32 * 4);

  // A mapping handed out earlier stays usable after the cache replaced it.
  CHECK((*a)->data()[128 * 32 - 1] == 0);
}

TEST_CASE("the cache evicts the least recently used mapping beyond its capacity", "[mapped_buffer]") {
  auto a = allocate(8, 8), b = allocate(8, 8), c = allocate(8, 8);
  MappingCache cache(2);
  REQUIRE(cache.get(*a).ok());
  REQUIRE(cache.get(*b).ok());
  REQUIRE(cache.get(*a).ok());  // a is now the most recent
  CHECK(cache.maps_made() == 2);

  REQUIRE(cache.get(*c).ok());  // evicts b
  CHECK(cache.size() == 2);
  CHECK(cache.maps_made() == 3);
  REQUIRE(cache.get(*a).ok());
  CHECK(cache.maps_made() == 3);  // a survived
  REQUIRE(cache.get(*b).ok());
  CHECK(cache.maps_made() == 4);  // b had to be mapped again
  CHECK(cache.size() == 2);
}

TEST_CASE("a forgotten buffer is mapped again on its next use", "[mapped_buffer]") {
  auto a = allocate(8, 8), b = allocate(8, 8);
  MappingCache cache;
  auto kept = cache.get(*a);
  REQUIRE(kept.ok());
  REQUIRE(cache.get(*b).ok());
  CHECK(cache.size() == 2);

  cache.forget(a->id());
  CHECK(cache.size() == 1);
  cache.forget(a->id());  // forgetting twice is harmless
  CHECK(cache.size() == 1);

  auto again = cache.get(*a);
  REQUIRE(again.ok());
  CHECK(cache.maps_made() == 3);
  CHECK(again->get() != kept->get());
  CHECK((*kept)->data()[0] == 0);  // the old mapping is still valid for whoever holds it
}
