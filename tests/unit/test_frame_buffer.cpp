#include <catch2/catch.hpp>

#include <drm_fourcc.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <string>

#include "core/frame_buffer.hpp"

namespace core = vdistream::core;
using Catch::Matchers::Contains;
using core::FrameBuffer;
using core::PixelFormat;
using core::Plane;
using core::UniqueFd;
using Planes = std::array<Plane, FrameBuffer::kMaxPlanes>;

namespace {

constexpr PixelFormat kXrgb{DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR};
constexpr PixelFormat kNv12{DRM_FORMAT_NV12, DRM_FORMAT_MOD_LINEAR};

UniqueFd make_memfd(uint64_t size, const char* name = "test-frame-buffer") {
  UniqueFd fd(memfd_create(name, MFD_CLOEXEC));
  REQUIRE(fd.valid());
  REQUIRE(ftruncate(fd.get(), off_t(size)) == 0);
  return fd;
}

UniqueFd dup_fd(const UniqueFd& fd) {
  UniqueFd copy(fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
  REQUIRE(copy.valid());
  return copy;
}

Planes one_plane(UniqueFd fd, uint32_t pitch, uint32_t offset = 0) {
  Planes planes;
  planes[0] = Plane{std::move(fd), offset, pitch};
  return planes;
}

core::Result<core::FrameBufferPtr> create_single(int32_t width, int32_t height, PixelFormat format, UniqueFd fd,
                                                 uint32_t pitch, uint32_t offset = 0) {
  return FrameBuffer::create(width, height, format, one_plane(std::move(fd), pitch, offset), 1);
}

// A well-formed two-plane NV12 descriptor over one memfd: luma, then interleaved chroma.
core::Result<core::FrameBufferPtr> create_nv12(int32_t width, int32_t height, uint64_t file_size) {
  UniqueFd fd = make_memfd(file_size);
  Planes planes;
  uint32_t pitch = uint32_t(width);
  planes[1] = Plane{dup_fd(fd), pitch * uint32_t(height), pitch};
  planes[0] = Plane{std::move(fd), 0, pitch};
  return FrameBuffer::create(width, height, kNv12, std::move(planes), 2);
}

// A descriptor number that no file can have: above this process's fd limit.
int unopenable_fd_number() {
  rlimit limit{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &limit) == 0);
  REQUIRE(limit.rlim_cur < rlim_t(INT_MAX - 10));
  return int(limit.rlim_cur) + 7;
}

bool fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

}  // namespace

// ---- Good descriptors ----------------------------------------------------------------------

TEST_CASE("a linear XRGB8888 buffer over a big enough memfd is accepted", "[frame_buffer]") {
  UniqueFd fd = make_memfd(1920 * 4 * 1080);
  struct stat st {};
  REQUIRE(fstat(fd.get(), &st) == 0);

  auto fb = create_single(1920, 1080, kXrgb, std::move(fd), 1920 * 4);
  REQUIRE(fb.ok());
  const FrameBuffer& b = **fb;
  CHECK(b.width() == 1920);
  CHECK(b.height() == 1080);
  CHECK(b.format() == kXrgb);
  CHECK(b.plane_count() == 1);
  CHECK(b.plane(0).pitch == 1920 * 4);
  CHECK(b.plane(0).offset == 0);
  CHECK(b.id().device == uint64_t(st.st_dev));
  CHECK(b.id().inode == uint64_t(st.st_ino));
  CHECK(b.backing() == core::BackingKind::Memory);
  CHECK(b.file_size() == 1920 * 4 * 1080);
  CHECK(b.check_cpu_readable().ok());
}

TEST_CASE("a padded pitch and an offset are accepted when the fd holds them", "[frame_buffer]") {
  // 100 px rows padded to 512 bytes, starting 4096 bytes into the file: exactly enough bytes.
  auto fb = create_single(100, 50, kXrgb, make_memfd(4096 + 512 * 50), 512, 4096);
  REQUIRE(fb.ok());
  CHECK((*fb)->plane(0).offset == 4096);
  CHECK((*fb)->plane(0).pitch == 512);
}

TEST_CASE("the largest allowed dimension is accepted", "[frame_buffer]") {
  auto fb = create_single(FrameBuffer::kMaxDimension, 1, kXrgb, make_memfd(FrameBuffer::kMaxDimension * 4),
                          FrameBuffer::kMaxDimension * 4);
  CHECK(fb.ok());
}

TEST_CASE("buffers built from dup'ed fds of one memfd have the same identity", "[frame_buffer]") {
  UniqueFd fd = make_memfd(64 * 4 * 64);
  UniqueFd copy = dup_fd(fd);
  REQUIRE(copy.get() != fd.get());
  auto a = create_single(64, 64, kXrgb, std::move(fd), 256);
  auto b = create_single(64, 64, kXrgb, std::move(copy), 256);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK((*a)->id() == (*b)->id());
  CHECK(core::BufferIdHash()((*a)->id()) == core::BufferIdHash()((*b)->id()));

  auto other = create_single(64, 64, kXrgb, make_memfd(64 * 4 * 64), 256);
  REQUIRE(other.ok());
  CHECK_FALSE((*other)->id() == (*a)->id());
}

TEST_CASE("a buffer owns its fds and closes them when it goes away", "[frame_buffer]") {
  UniqueFd fd = make_memfd(64 * 4 * 64);
  int number = fd.get();
  {
    auto fb = create_single(64, 64, kXrgb, std::move(fd), 256);
    REQUIRE(fb.ok());
    CHECK(fd_is_open(number));
  }
  CHECK_FALSE(fd_is_open(number));
}

TEST_CASE("a refused descriptor still closes the fds it was given", "[frame_buffer]") {
  UniqueFd fd = make_memfd(16);
  int number = fd.get();
  auto fb = create_single(64, 64, kXrgb, std::move(fd), 256);
  REQUIRE_FALSE(fb.ok());
  CHECK_FALSE(fd_is_open(number));
}

// ---- Bad descriptors: each gives its error, none crashes -------------------------------------

TEST_CASE("a pitch smaller than width times bytes per pixel is refused", "[frame_buffer]") {
  auto fb = create_single(1920, 1080, kXrgb, make_memfd(5000 * 1080), 5000);
  REQUIRE_FALSE(fb.ok());
  INFO(fb.error());
  CHECK_THAT(fb.error(), Contains("stride"));
  CHECK_THAT(fb.error(), Contains("5000"));
  CHECK_THAT(fb.error(), Contains("1920"));
  CHECK_THAT(fb.error(), Contains("4"));

  auto one_short = create_single(64, 64, kXrgb, make_memfd(1 << 20), 64 * 4 - 1);
  REQUIRE_FALSE(one_short.ok());
  CHECK_THAT(one_short.error(), Contains("stride 255"));
}

TEST_CASE("an fd shorter than pitch times height is refused, naming the sizes", "[frame_buffer]") {
  // 64 x 64 XRGB needs 16384 bytes; the memfd holds one byte less.
  auto fb = create_single(64, 64, kXrgb, make_memfd(16383), 256);
  REQUIRE_FALSE(fb.ok());
  INFO(fb.error());
  CHECK_THAT(fb.error(), Contains("16383"));
  CHECK_THAT(fb.error(), Contains("16384"));

  auto empty = create_single(64, 64, kXrgb, make_memfd(0), 256);
  REQUIRE_FALSE(empty.ok());
  CHECK_THAT(empty.error(), Contains("holds 0 bytes"));
}

TEST_CASE("an offset that pushes the frame past the end of the fd is refused", "[frame_buffer]") {
  auto fb = create_single(64, 64, kXrgb, make_memfd(16384), 256, 4096);
  REQUIRE_FALSE(fb.ok());
  INFO(fb.error());
  CHECK_THAT(fb.error(), Contains("offset 4096"));
  CHECK_THAT(fb.error(), Contains("16384"));
  CHECK_THAT(fb.error(), Contains("20480"));

  auto huge_offset = create_single(64, 64, kXrgb, make_memfd(16384), 256, UINT32_MAX);
  REQUIRE_FALSE(huge_offset.ok());
  CHECK_THAT(huge_offset.error(), Contains(std::to_string(UINT32_MAX)));

  auto huge_pitch = create_single(64, 64, kXrgb, make_memfd(16384), UINT32_MAX);
  REQUIRE_FALSE(huge_pitch.ok());
  CHECK_THAT(huge_pitch.error(), Contains(std::to_string(uint64_t(UINT32_MAX) * 63 + 256)));
}

TEST_CASE("an unknown fourcc is refused, naming it", "[frame_buffer]") {
  PixelFormat printable{fourcc_code('Z', 'Q', '4', '2'), DRM_FORMAT_MOD_LINEAR};
  auto fb = create_single(64, 64, printable, make_memfd(16384), 256);
  REQUIRE_FALSE(fb.ok());
  INFO(fb.error());
  CHECK_THAT(fb.error(), Contains("ZQ42"));

  PixelFormat binary{0x01020304, DRM_FORMAT_MOD_LINEAR};
  auto fb2 = create_single(64, 64, binary, make_memfd(16384), 256);
  REQUIRE_FALSE(fb2.ok());
  CHECK_THAT(fb2.error(), Contains("0x01020304"));

  PixelFormat zero{0, DRM_FORMAT_MOD_LINEAR};
  CHECK_FALSE(create_single(64, 64, zero, make_memfd(16384), 256).ok());
}

TEST_CASE("a zero, negative or huge size is refused", "[frame_buffer]") {
  struct Size {
    int32_t width, height;
  };
  auto [width, height] = GENERATE(Size{0, 64}, Size{64, 0}, Size{0, 0}, Size{-1, 64}, Size{64, -64},
                                  Size{INT32_MIN, INT32_MIN}, Size{100000, 100000}, Size{FrameBuffer::kMaxDimension + 1, 1},
                                  Size{1, FrameBuffer::kMaxDimension + 1}, Size{INT32_MAX, INT32_MAX});
  INFO(width << "x" << height);
  auto fb = create_single(width, height, kXrgb, make_memfd(1 << 16), 4096);
  REQUIRE_FALSE(fb.ok());
  CHECK_THAT(fb.error(), Contains(std::to_string(width) + "x" + std::to_string(height)));
  CHECK_THAT(fb.error(), Contains("outside"));
}

TEST_CASE("a plane count outside 1..4 is refused", "[frame_buffer]") {
  int count = GENERATE(-1, 0, 5, 100);
  auto fb = FrameBuffer::create(64, 64, kXrgb, one_plane(make_memfd(16384), 256), count);
  REQUIRE_FALSE(fb.ok());
  CHECK_THAT(fb.error(), Contains("plane count " + std::to_string(count)));
}

TEST_CASE("a plane count that does not match the format is refused", "[frame_buffer]") {
  auto nv12_one_plane = create_single(64, 64, kNv12, make_memfd(1 << 16), 64);
  REQUIRE_FALSE(nv12_one_plane.ok());
  INFO(nv12_one_plane.error());
  CHECK_THAT(nv12_one_plane.error(), Contains("NV12 needs 2 plane(s)"));
  CHECK_THAT(nv12_one_plane.error(), Contains("has 1"));

  UniqueFd fd = make_memfd(1 << 16);
  Planes planes;
  planes[1] = Plane{dup_fd(fd), 16384, 256};
  planes[0] = Plane{std::move(fd), 0, 256};
  auto xrgb_two_planes = FrameBuffer::create(64, 64, kXrgb, std::move(planes), 2);
  REQUIRE_FALSE(xrgb_two_planes.ok());
  CHECK_THAT(xrgb_two_planes.error(), Contains("XRGB8888 needs 1 plane(s)"));
}

TEST_CASE("a missing file descriptor is refused", "[frame_buffer]") {
  auto fb = create_single(64, 64, kXrgb, UniqueFd(), 256);
  REQUIRE_FALSE(fb.ok());
  CHECK_THAT(fb.error(), Contains("no file descriptor"));
}

TEST_CASE("a descriptor number that is not open is refused", "[frame_buffer]") {
  int number = unopenable_fd_number();
  REQUIRE_FALSE(fd_is_open(number));
  auto fb = create_single(64, 64, kXrgb, UniqueFd(number), 256);
  REQUIRE_FALSE(fb.ok());
  INFO(fb.error());
  CHECK_THAT(fb.error(), Contains("fstat"));
  CHECK_THAT(fb.error(), Contains(std::to_string(number)));
}

TEST_CASE("an fd that is neither a memfd nor a dma-buf is refused", "[frame_buffer]") {
  int ends[2];
  REQUIRE(pipe2(ends, O_CLOEXEC) == 0);
  UniqueFd read_end(ends[0]), write_end(ends[1]);
  auto fb = create_single(64, 64, kXrgb, std::move(read_end), 256);
  REQUIRE_FALSE(fb.ok());
  CHECK_THAT(fb.error(), Contains("neither a memfd nor a dma-buf"));
}

// ---- Two planes ----------------------------------------------------------------------------

TEST_CASE("an NV12 buffer with luma and chroma planes is accepted", "[frame_buffer]") {
  auto fb = create_nv12(64, 64, 64 * 64 * 3 / 2);
  REQUIRE(fb.ok());
  CHECK((*fb)->plane_count() == 2);
  CHECK((*fb)->plane(1).offset == 64 * 64);
}

TEST_CASE("an NV12 chroma plane past the end of its fd is refused", "[frame_buffer]") {
  auto fb = create_nv12(64, 64, 64 * 64 * 3 / 2 - 1);
  REQUIRE_FALSE(fb.ok());
  INFO(fb.error());
  CHECK_THAT(fb.error(), Contains("plane 1"));
  CHECK_THAT(fb.error(), Contains("32 rows"));
}

TEST_CASE("an NV12 chroma plane without an fd is refused", "[frame_buffer]") {
  UniqueFd fd = make_memfd(64 * 64 * 3 / 2);
  Planes planes;
  planes[0] = Plane{std::move(fd), 0, 64};
  planes[1] = Plane{UniqueFd(), 64 * 64, 64};
  auto fb = FrameBuffer::create(64, 64, kNv12, std::move(planes), 2);
  REQUIRE_FALSE(fb.ok());
  CHECK_THAT(fb.error(), Contains("plane 1: no file descriptor"));
}

// ---- CPU readability -----------------------------------------------------------------------

TEST_CASE("a tiled buffer is a valid descriptor but not readable by the CPU", "[frame_buffer]") {
  PixelFormat tiled{DRM_FORMAT_XRGB8888, I915_FORMAT_MOD_X_TILED};
  auto fb = create_single(64, 64, tiled, make_memfd(16384), 256);
  REQUIRE(fb.ok());
  core::Status readable = (*fb)->check_cpu_readable();
  REQUIRE_FALSE(readable.ok());
  CHECK_THAT(readable.error(), Contains("not linear"));
}

TEST_CASE("an NV12 buffer is not readable by the CPU path", "[frame_buffer]") {
  auto fb = create_nv12(64, 64, 64 * 64 * 3 / 2);
  REQUIRE(fb.ok());
  core::Status readable = (*fb)->check_cpu_readable();
  REQUIRE_FALSE(readable.ok());
  CHECK_THAT(readable.error(), Contains("NV12"));
}

TEST_CASE("every 32-bit RGB format is readable by the CPU when linear", "[frame_buffer]") {
  uint32_t fourcc = GENERATE(DRM_FORMAT_XRGB8888, DRM_FORMAT_ARGB8888, DRM_FORMAT_XBGR8888, DRM_FORMAT_ABGR8888);
  auto fb = create_single(16, 16, PixelFormat{fourcc, DRM_FORMAT_MOD_LINEAR}, make_memfd(1024), 64);
  REQUIRE(fb.ok());
  CHECK((*fb)->check_cpu_readable().ok());
}

// ---- allocate_memfd ------------------------------------------------------------------------

TEST_CASE("allocate_memfd gives a sealed linear buffer of the right size", "[frame_buffer]") {
  auto fb = FrameBuffer::allocate_memfd(320, 200, DRM_FORMAT_XRGB8888, "test-allocate");
  REQUIRE(fb.ok());
  const FrameBuffer& b = **fb;
  CHECK(b.width() == 320);
  CHECK(b.height() == 200);
  CHECK(b.format() == kXrgb);
  CHECK(b.plane_count() == 1);
  CHECK(b.plane(0).pitch == 320 * 4);
  CHECK(b.file_size() == 320 * 4 * 200);
  CHECK(b.backing() == core::BackingKind::Memory);
  CHECK(b.check_cpu_readable().ok());

  int fd = b.plane(0).fd.get();
  struct stat st {};
  REQUIRE(fstat(fd, &st) == 0);
  CHECK(st.st_size == 320 * 4 * 200);
  CHECK(b.id() == core::BufferId{uint64_t(st.st_dev), uint64_t(st.st_ino)});
  int seals = fcntl(fd, F_GET_SEALS);
  REQUIRE(seals != -1);
  CHECK((seals & F_SEAL_SHRINK) != 0);
  CHECK(ftruncate(fd, 16) != 0);  // the seal holds
}

TEST_CASE("allocate_memfd refuses formats and sizes it cannot make", "[frame_buffer]") {
  auto nv12 = FrameBuffer::allocate_memfd(64, 64, DRM_FORMAT_NV12, "test-nv12");
  REQUIRE_FALSE(nv12.ok());
  CHECK_THAT(nv12.error(), Contains("NV12"));
  CHECK_FALSE(FrameBuffer::allocate_memfd(0, 64, DRM_FORMAT_XRGB8888, "test-zero").ok());
  CHECK_FALSE(FrameBuffer::allocate_memfd(64, -1, DRM_FORMAT_XRGB8888, "test-negative").ok());
  CHECK_FALSE(FrameBuffer::allocate_memfd(100000, 100000, DRM_FORMAT_XRGB8888, "test-huge").ok());
}
