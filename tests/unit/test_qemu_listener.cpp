// The D-Bus display Listener, driven by a test peer that speaks QEMU's side of the protocol
// over a real peer-to-peer GDBus connection.
#include <catch2/catch.hpp>

#include <drm_fourcc.h>

#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <functional>

#include "capture/qemu/qemu_source.hpp"
#include "core/mapped_buffer.hpp"
#include "fixtures/qemu_peer.hpp"

using namespace vdistream;

namespace {

std::vector<uint8_t> pattern(uint32_t width, uint32_t height, uint32_t stride, uint8_t seed) {
  std::vector<uint8_t> px(size_t(stride) * height);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 7 + seed);
  (void)width;
  return px;
}

uint32_t pixel(const core::Frame& frame, int32_t x, int32_t y) {
  auto map = core::MappedBuffer::map(*frame.buffer);
  REQUIRE(map.ok());
  uint32_t v;
  std::memcpy(&v, (*map)->data() + size_t(y) * (*map)->pitch() + size_t(x) * 4, 4);
  return v;
}

uint32_t pixel_of(const std::vector<uint8_t>& px, uint32_t stride, int32_t x, int32_t y) {
  uint32_t v;
  std::memcpy(&v, px.data() + size_t(y) * stride + size_t(x) * 4, 4);
  return v;
}

}  // namespace

TEST_CASE("the listener offers QEMU the shared-memory and multi-plane dma-buf interfaces it serves") {
  {
    test::ListenerPeer peer;
    auto value = peer.get_property("Interfaces");
    REQUIRE(value.ok());
    REQUIRE(g_variant_is_of_type(value->get(), G_VARIANT_TYPE("as")));
    gsize n = 0;
    g_autofree const gchar** names = g_variant_get_strv(value->get(), &n);
    REQUIRE(n == 2);
    CHECK(std::string(names[0]) == "org.qemu.Display1.Listener.Unix.Map");
    CHECK(std::string(names[1]) == "org.qemu.Display1.Listener.Unix.ScanoutDMABUF2");
  }
  // Without them (QEMU 7.2 reads nothing; a test wants pixels by value): an empty list, and the
  // methods are not there.
  capture::qemu::ListenerConfig config;
  config.offer_shared_map = false;
  config.offer_dmabuf2 = false;
  test::ListenerPeer peer(config);
  auto value = peer.get_property("Interfaces");
  REQUIRE(value.ok());
  CHECK(g_variant_n_children(value->get()) == 0);
  core::UniqueFd fd = test::make_memfd(64 * 64 * 4);
  CHECK_FALSE(peer.scanout_map(fd.get(), 0, 64, 64, 256).ok());
}

TEST_CASE("Scanout and Update write pixels once into one memfd surface and give frames with tile damage") {
  test::ListenerPeer peer;
  const uint32_t w = 64, h = 40, stride = w * 4 + 16;  // QEMU's stride may exceed the row
  auto first = pattern(w, h, stride, 1);
  REQUIRE(peer.scanout(w, h, stride, first).ok());
  auto band = pattern(w, 8, w * 4, 99);
  REQUIRE(peer.update(0, 16, int32_t(w), 8, w * 4, band).ok());
  REQUIRE(peer.update(10, 0, 4, 2, 16, pattern(4, 2, 16, 5)).ok());

  auto frames = peer.frames();
  REQUIRE(frames.size() == 3);
  CHECK(frames[0].width() == int32_t(w));
  CHECK(frames[0].height() == int32_t(h));
  CHECK(frames[0].damage.covers(w, h));
  // Damage is whole 16x16 tiles (the encoder's macroblocks), clipped to the surface.
  REQUIRE(frames[1].damage.rects().size() == 1);
  CHECK(frames[1].damage.rects()[0] == core::Rect{0, 16, int32_t(w), 16});
  CHECK(frames[2].damage.rects()[0] == core::Rect{0, 0, 16, 16});
  for (const auto& f : frames) CHECK(f.damage_exact);
  CHECK(frames[0].buffer == frames[2].buffer);  // written in place
  CHECK(frames[1].sequence == frames[0].sequence + 1);

  CHECK(pixel(frames[2], 3, 3) == pixel_of(first, stride, 3, 3));
  CHECK(pixel(frames[2], 5, 20) == pixel_of(band, w * 4, 5, 4));
  CHECK(pixel(frames[2], 5, 30) == pixel_of(first, stride, 5, 30));
  auto stats = peer.stats();
  CHECK(stats.scanouts == 1);
  CHECK(stats.updates == 2);
  CHECK(stats.surfaces_allocated == 1);
  CHECK(stats.frames == 3);
  CHECK(stats.bytes_written == uint64_t(w) * h * 4 + uint64_t(w) * 8 * 4 + 4 * 2 * 4);  // each pixel once
  CHECK(stats.pixel_bytes_received == first.size() + band.size() + 4 * 2 * 4);
}

TEST_CASE("a band update is narrowed to the tiles whose pixels changed, and an unchanged one makes no frame") {
  test::ListenerPeer peer;
  const uint32_t w = 256, h = 64, stride = w * 4;
  std::vector<uint8_t> screen(size_t(stride) * h, 0x20);
  REQUIRE(peer.scanout(w, h, stride, screen).ok());
  // VGA reports whole scanlines: rows 20..29 of the full width, where only x 100..103 changed.
  std::vector<uint8_t> band(screen.begin() + 20 * stride, screen.begin() + 30 * stride);
  for (int32_t y = 0; y < 10; ++y)
    for (int32_t x = 100; x < 104; ++x) std::memset(&band[size_t(y) * stride + size_t(x) * 4], 0xee, 4);
  REQUIRE(peer.update(0, 20, int32_t(w), 10, stride, band).ok());
  auto frames = peer.frames();
  REQUIRE(frames.size() == 2);
  // Rows 20..29 lie in the tile row 16..31; x 100..103 in the tile column 96..111.
  REQUIRE(frames[1].damage.rects().size() == 1);
  CHECK(frames[1].damage.rects()[0] == core::Rect{96, 16, 16, 16});
  CHECK(pixel(frames[1], 101, 25) == 0xeeeeeeeeu);
  // Only the changed tile's part of the band is written (its 10 rows of 16 pixels).
  CHECK(peer.stats().bytes_written == uint64_t(w) * h * 4 + 10 * 16 * 4);

  // The same band again: nothing changed, no frame.
  REQUIRE(peer.update(0, 20, int32_t(w), 10, stride, band).ok());
  CHECK(peer.frames().size() == 2);
  CHECK(peer.stats().unchanged_refreshes == 1);
  CHECK(peer.stats().updates == 2);
}

TEST_CASE("the Updates of one refresh become one frame with their merged damage") {
  test::ListenerPeer peer;
  const uint32_t w = 320, h = 240, stride = w * 4;
  REQUIRE(peer.scanout(w, h, stride, std::vector<uint8_t>(size_t(stride) * h, 0)).ok());
  // QEMU sends a refresh's bands back to back without waiting for replies; here they all wait
  // on the socket while the listener is busy, as they do when it is.
  peer.pause_listener();
  for (int band = 0; band < 4; ++band)
    peer.update_no_reply(0, band * 60, int32_t(w), 30, stride, pattern(w, 30, stride, uint8_t(band + 1)));
  peer.resume_listener();
  peer.settle();
  auto frames = peer.frames();
  REQUIRE(frames.size() == 2);
  for (int band = 0; band < 4; ++band) {
    INFO("band " << band);
    core::DamageRegion rows;
    rows.add(core::Rect{0, band * 60, int32_t(w), 30});
    CHECK(frames[1].damage.intersected(rows).area() == int64_t(w) * 30);  // each band's rows are damaged...
  }
  CHECK(frames[1].damage.intersected(core::DamageRegion(core::Rect{0, 224, int32_t(w), 16})).empty());  // ...not below
  auto stats = peer.stats();
  CHECK(stats.updates == 4);
  CHECK(stats.frames == 2);
  CHECK(stats.display_messages == 5);
}

TEST_CASE("a surface shared through ScanoutMap gives frames of that memory, refined, with no pixels on the socket") {
  test::ListenerPeer peer;
  const uint32_t w = 128, h = 64, stride = w * 4 + 64, offset = 4096;
  core::UniqueFd memfd = test::make_memfd(offset + size_t(stride) * h);
  uint8_t* shared = static_cast<uint8_t*>(mmap(nullptr, offset + size_t(stride) * h, PROT_READ | PROT_WRITE, MAP_SHARED,
                                               memfd.get(), 0));
  REQUIRE(shared != MAP_FAILED);
  uint8_t* pixels = shared + offset;
  std::memset(pixels, 0x10, size_t(stride) * h);
  REQUIRE(peer.scanout_map(memfd.get(), offset, w, h, stride).ok());
  // QEMU draws into its surface, then names a band of whole scanlines.
  std::memset(pixels + 40 * stride + 70 * 4, 0x99, 4);
  REQUIRE(peer.update_map(0, 32, int32_t(w), 16).ok());
  REQUIRE(peer.update_map(0, 32, int32_t(w), 16).ok());  // the same band, unchanged since
  auto frames = peer.frames();
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].damage.covers(w, h));
  // The first look at a tile takes it whole: the band's tiles are reported once, then refined.
  CHECK(frames[1].damage.area() == int64_t(w) * 16);
  std::memset(pixels + 50 * stride + 3 * 4, 0x77, 4);
  REQUIRE(peer.update_map(0, 48, int32_t(w), 16).ok());
  REQUIRE(peer.update_map(0, 32, int32_t(w), 32).ok());  // nothing new: no frame
  std::memset(pixels + 33 * stride + 120 * 4, 0x55, 4);
  REQUIRE(peer.update_map(0, 32, int32_t(w), 16).ok());
  frames = peer.frames();
  REQUIRE(frames.size() == 4);
  CHECK(frames[2].damage.area() == int64_t(w) * 16);  // first look at the tiles of rows 48..63
  REQUIRE(frames[3].damage.rects().size() == 1);
  CHECK(frames[3].damage.rects()[0] == core::Rect{112, 32, 16, 16});

  // The frames are QEMU's memory itself: same file, nothing copied into a surface of ours.
  struct stat st {};
  REQUIRE(fstat(memfd.get(), &st) == 0);
  CHECK(frames[3].buffer->id().inode == uint64_t(st.st_ino));
  CHECK(frames[3].buffer->plane(0).offset == offset);
  CHECK(pixel(frames[3], 120, 33) == 0x55555555u);
  auto stats = peer.stats();
  CHECK(stats.map_scanouts == 1);
  CHECK(stats.map_updates == 5);
  CHECK(stats.pixel_bytes_received == 0);
  CHECK(stats.surfaces_allocated == 0);
  CHECK(stats.unchanged_refreshes == 2);
  munmap(shared, offset + size_t(stride) * h);
}

// Found by fuzz_qemu_listener: a refused UpdateMap after the last frame went out opened a pending
// frame with no quiet-period timer, so the listener held it (frame_pending()) until QEMU's next
// message.
TEST_CASE("a refused UpdateMap leaves no frame pending - the next good one is handed on") {
  test::ListenerPeer peer;
  const uint32_t w = 64, h = 32;
  core::UniqueFd memfd = test::make_memfd(size_t(w) * 4 * h);
  REQUIRE(peer.scanout_map(memfd.get(), 0, w, h, w * 4).ok());
  REQUIRE(peer.frames().size() == 1);
  CHECK(!peer.update_map(-100, -100, -50, -50).ok());
  CHECK(!peer.update_map(int32_t(w) + 10, 0, 5, 5).ok());
  CHECK(!peer.frame_pending());
  CHECK(peer.frames().size() == 1);
  CHECK(peer.stats().refused == 2);
}

TEST_CASE("ScanoutMap descriptors that do not fit their fd are refused with the reason, and QEMU's fallback works") {
  test::ListenerPeer peer;
  const uint32_t w = 64, h = 32, stride = w * 4;
  struct Bad {
    const char* what;
    size_t fd_size;
    uint32_t offset, width, height, stride, pixman;
    const char* reason;
  };
  const Bad bad[] = {
      {"fd shorter than the surface", size_t(stride) * h - 1, 0, w, h, stride, 0x20020888u, "needs 8192"},
      {"offset past the end", size_t(stride) * h, 4096, w, h, stride, 0x20020888u, "offset 4096"},
      {"stride below the row", size_t(stride) * h, 0, w, h, stride - 4, 0x20020888u, "stride 252 < width 64"},
      {"not a 32-bit format", size_t(stride) * h, 0, w, h, stride, 0x10020565u /* r5g6b5 */, "not a 32-bit RGB format"},
      {"no size", size_t(stride) * h, 0, 0, h, stride, 0x20020888u, "size 0x32"},
  };
  for (const Bad& b : bad) {
    INFO(b.what);
    core::UniqueFd fd = test::make_memfd(b.fd_size);
    auto refused = peer.scanout_map(fd.get(), b.offset, b.width, b.height, b.stride, b.pixman);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error(), Catch::Contains(b.reason));
    CHECK_THAT(peer.update_map(0, 0, 8, 8).error(), Catch::Contains("without a valid ScanoutMap"));
  }
  // A handle that names no fd.
  CHECK_THAT(peer.call(capture::qemu::Listener::kMapInterface, "ScanoutMap",
                       g_variant_new("(huuuuu)", 3, 0u, w, h, stride, 0x20020888u), {}).error(),
             Catch::Contains("not among the 0 fds"));
  // QEMU falls back to pixels by value; then a good shared surface, then by value again.
  REQUIRE(peer.scanout(w, h, stride, pattern(w, h, stride, 3)).ok());
  core::UniqueFd good = test::make_memfd(size_t(stride) * h);
  REQUIRE(peer.scanout_map(good.get(), 0, w, h, stride).ok());
  REQUIRE(peer.update_map(-10, -10, 1000, 1000).ok());  // clipped to the surface
  CHECK_THAT(peer.update_map(100, 100, 4, 4).error(), Catch::Contains("outside the 64x32 shared surface"));
  REQUIRE(peer.scanout(w, h, stride, pattern(w, h, stride, 4)).ok());
  CHECK_THAT(peer.update_map(0, 0, 8, 8).error(), Catch::Contains("without a valid ScanoutMap"));
  auto frames = peer.frames();
  REQUIRE(frames.size() >= 3);
  CHECK(frames.back().buffer->id() != frames[frames.size() - 2].buffer->id());
  CHECK(peer.stats().map_scanouts == 1);
}

TEST_CASE("malformed pixel calls are refused with a reason and the listener keeps working") {
  test::ListenerPeer peer;
  auto early = peer.update(0, 0, 4, 4, 16, pattern(4, 4, 16, 0));
  CHECK_FALSE(early.ok());
  CHECK_THAT(early.error(), Catch::Contains("before any Scanout"));
  auto short_data = peer.scanout(32, 32, 128, std::vector<uint8_t>(100));
  CHECK_THAT(short_data.error(), Catch::Contains("100 bytes"));
  auto narrow = peer.scanout(32, 32, 64, pattern(32, 32, 64, 0));
  CHECK_THAT(narrow.error(), Catch::Contains("stride 64 < width 32"));
  REQUIRE(peer.scanout(32, 32, 128, pattern(32, 32, 128, 0)).ok());
  auto outside = peer.update(30, 30, 4, 4, 16, pattern(4, 4, 16, 0));
  CHECK_THAT(outside.error(), Catch::Contains("not inside the 32x32 surface"));
  CHECK(peer.update(28, 28, 4, 4, 16, pattern(4, 4, 16, 0)).ok());
  CHECK(peer.frames().size() == 2);
  CHECK(peer.stats().refused == 4);
}

TEST_CASE("ScanoutDMABUF imports good memfd descriptors once by identity and refuses bad ones") {
  test::ListenerPeer peer;
  const uint32_t w = 128, h = 64, stride = w * 4;
  core::UniqueFd good = test::make_memfd(size_t(stride) * h);

  REQUIRE(peer.scanout_dmabuf(good.get(), w, h, stride, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR).ok());
  REQUIRE(peer.update_dmabuf(8, 8, 16, 16).ok());
  REQUIRE(peer.update_dmabuf(0, 0, int32_t(w), int32_t(h)).ok());
  // QEMU sends a fresh duplicate of the same buffer: the import is reused.
  REQUIRE(peer.scanout_dmabuf(good.get(), w, h, stride, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR).ok());

  struct Bad {
    const char* what;
    uint32_t width, height, stride, fourcc;
    uint64_t modifier;
    size_t fd_size;
    const char* reason;
  };
  const Bad bad[] = {
      {"stride too small", w, h, w * 4 - 4, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, size_t(stride) * h, "stride 508 < width 128"},
      {"fd shorter than stride × height", w, h, stride, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, size_t(stride) * (h - 1), "needs 32768"},
      {"unknown fourcc", w, h, stride, 0x34325258 /* 'XR24' reversed */ ^ 0x01010101, DRM_FORMAT_MOD_LINEAR, size_t(stride) * h, "unknown fourcc"},
      {"tiled modifier", w, h, stride, DRM_FORMAT_XRGB8888, I915_FORMAT_MOD_Y_TILED, size_t(stride) * h, "tiled"},
      {"width 0", 0, h, stride, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, size_t(stride) * h, "size 0x64"},
      {"100000 × 100000", 100000, 100000, 400000, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR, 4096, "size 100000x100000"},
  };
  for (const Bad& b : bad) {
    INFO(b.what);
    core::UniqueFd fd = test::make_memfd(b.fd_size);
    auto refused = peer.scanout_dmabuf(fd.get(), b.width, b.height, b.stride, b.fourcc, b.modifier);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error(), Catch::Contains(b.reason));
    // No buffer is current after a refused scanout: its updates are refused too.
    CHECK_FALSE(peer.update_dmabuf(0, 0, 8, 8).ok());
  }

  // The source keeps working: a good buffer afterwards becomes frames again.
  core::UniqueFd other = test::make_memfd(size_t(stride) * h);
  REQUIRE(peer.scanout_dmabuf(other.get(), w, h, stride, DRM_FORMAT_XRGB8888, DRM_FORMAT_MOD_LINEAR).ok());
  REQUIRE(peer.update_dmabuf(0, 0, 32, 32).ok());

  auto frames = peer.frames();
  REQUIRE(frames.size() == 6);
  CHECK(frames[0].damage.covers(w, h));
  CHECK(frames[1].damage.rects()[0] == core::Rect{8, 8, 16, 16});
  CHECK(frames[1].damage_exact);
  CHECK_FALSE(frames[2].damage_exact);  // a whole-surface update says nothing about what changed
  CHECK(frames[3].buffer == frames[0].buffer);  // same st_dev/st_ino: the same import
  CHECK(frames[4].buffer != frames[0].buffer);
  CHECK(frames[4].buffer->id() != frames[0].buffer->id());
  auto stats = peer.stats();
  CHECK(stats.dmabuf_imports == 2);
  CHECK(stats.dmabuf_reused == 1);
  CHECK(stats.refused == 12);
  CHECK_THAT(stats.last_refusal, Catch::Contains("UpdateDMABUF"));
}

TEST_CASE("a tiled dma-buf is accepted when an encoder can import it") {
  capture::qemu::ListenerConfig config;
  config.accept_tiled = true;
  test::ListenerPeer peer(config);
  core::UniqueFd fd = test::make_memfd(256 * 4 * 64);
  REQUIRE(peer.scanout_dmabuf(fd.get(), 256, 64, 1024, DRM_FORMAT_XRGB8888, I915_FORMAT_MOD_X_TILED).ok());
  REQUIRE(peer.frames().size() == 1);
  CHECK(peer.frames()[0].buffer->format().modifier == I915_FORMAT_MOD_X_TILED);
}

TEST_CASE("ScanoutDMABUF2 imports multi-plane and cropped dma-bufs and refuses descriptors that do not add up") {
  test::ListenerPeer peer;
  // NV12 1280x720 in one buffer: luma, then interleaved chroma at half height.
  const uint32_t w = 1280, h = 720, luma = w * h;
  core::UniqueFd nv12 = test::make_memfd(luma + luma / 2);
  test::ListenerPeer::Dmabuf2 d;
  d.fds = {nv12.get(), nv12.get()};
  d.width = d.backing_width = w;
  d.height = d.backing_height = h;
  d.offsets = {0, luma};
  d.strides = {w, w};
  d.num_planes = 2;
  d.fourcc = DRM_FORMAT_NV12;
  REQUIRE(peer.scanout_dmabuf2(d).ok());
  REQUIRE(peer.update_dmabuf(0, 0, 64, 64).ok());
  auto frames = peer.frames();
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].buffer->plane_count() == 2);
  CHECK(frames[0].buffer->plane(1).offset == luma);
  CHECK(frames[0].damage.covers(int32_t(w), int32_t(h)));
  CHECK(frames[1].damage.rects()[0] == core::Rect{0, 0, 64, 64});

  // The second head of a 3840x1080 XRGB framebuffer: the visible rectangle starts 1920 pixels in.
  core::UniqueFd wide = test::make_memfd(size_t(3840) * 4 * 1080);
  test::ListenerPeer::Dmabuf2 head;
  head.fds = {wide.get()};
  head.x = 1920;
  head.width = 1920;
  head.height = 1080;
  head.backing_width = 3840;
  head.backing_height = 1080;
  head.offsets = {0};
  head.strides = {3840 * 4};
  head.num_planes = 1;
  head.fourcc = DRM_FORMAT_XRGB8888;
  REQUIRE(peer.scanout_dmabuf2(head).ok());
  frames = peer.frames();
  REQUIRE(frames.size() == 3);
  CHECK(frames[2].width() == 1920);
  CHECK(frames[2].buffer->plane(0).offset == 1920 * 4);
  CHECK(frames[2].buffer->plane(0).pitch == 3840 * 4);

  struct Bad {
    const char* what;
    std::function<void(test::ListenerPeer::Dmabuf2&)> spoil;
    const char* reason;
  };
  core::UniqueFd short_fd = test::make_memfd(luma);  // no room for chroma
  const int short_number = short_fd.get();
  const Bad bad[] = {
      {"num_planes disagrees with the arrays", [](auto& b) { b.num_planes = 1; }, "1 planes, but 2 fds"},
      {"five planes", [](auto& b) { b.num_planes = 5; }, "plane count 5 is outside 1..4"},
      {"a crop outside the backing buffer", [](auto& b) { b.x = 8; }, "is not inside the 1280x720 backing buffer"},
      {"a crop of a tiled buffer",
       [](auto& b) {
         b.modifier = I915_FORMAT_MOD_X_TILED;
         b.x = 2;
         b.width = w - 2;
       },
       "tiled"},
      {"an odd crop of subsampled chroma",
       [](auto& b) {
         b.x = 1;
         b.width = w - 1;
       },
       "odd"},
      {"chroma past the end of its fd", [&](auto& b) { b.fds = {nv12.get(), short_number}; }, "plane 1: fd holds"},
      {"a backing buffer of 0 rows", [](auto& b) { b.backing_height = 0; }, "backing size 1280x0"},
      {"one plane for NV12",
       [](auto& b) {
         b.fds.resize(1);
         b.offsets.resize(1);
         b.strides.resize(1);
         b.num_planes = 1;
       },
       "NV12 needs 2 plane(s)"},
  };
  for (const Bad& b : bad) {
    INFO(b.what);
    test::ListenerPeer::Dmabuf2 spoilt = d;
    b.spoil(spoilt);
    auto refused = peer.scanout_dmabuf2(spoilt);
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.error(), Catch::Contains(b.reason));
    CHECK_FALSE(peer.update_dmabuf(0, 0, 8, 8).ok());
  }
  CHECK(peer.frames().size() == 3);
  CHECK(peer.stats().dmabuf2_scanouts == 2);
}

TEST_CASE("CursorDefine and MouseSet become cursor shapes and positions") {
  test::ListenerPeer peer;
  std::vector<uint8_t> argb(4 * 4 * 4, 0xff);
  GVariant* data = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, argb.data(), argb.size(), 1);
  REQUIRE(peer.call("CursorDefine", g_variant_new("(iiii@ay)", 4, 4, 1, 2, data)).ok());
  GVariant* wrong = g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, argb.data(), 10, 1);
  CHECK_THAT(peer.call("CursorDefine", g_variant_new("(iiii@ay)", 4, 4, 0, 0, wrong)).error(),
             Catch::Contains("needs 64 bytes"));
  REQUIRE(peer.call("MouseSet", g_variant_new("(iii)", 10, 20, 1)).ok());
  REQUIRE(peer.call("MouseSet", g_variant_new("(iii)", 11, 21, 0)).ok());
  REQUIRE(peer.call("Disable", nullptr).ok());

  auto cursors = peer.cursors();
  REQUIRE(cursors.size() == 1);
  CHECK(cursors[0].width == 4);
  CHECK(cursors[0].hot_y == 2);
  CHECK(cursors[0].argb.size() == 16);
  CHECK(cursors[0].argb[0] == 0xffffffffu);
  auto positions = peer.positions();
  REQUIRE(positions.size() == 2);
  CHECK(positions[0].x == 10);
  CHECK(positions[0].visible);
  CHECK_FALSE(positions[1].visible);
}

TEST_CASE("QEMU source specs name a bus address or a QMP socket and an optional console") {
  using capture::qemu::DisplayTarget;
  auto bus = capture::qemu::parse_qemu_spec("qemu-dbus:unix:path=/run/libvirt/qemu/dbus/1-win10.sock");
  REQUIRE(bus.ok());
  CHECK(bus->target.kind == DisplayTarget::Kind::Bus);
  CHECK(bus->target.address == "unix:path=/run/libvirt/qemu/dbus/1-win10.sock");
  CHECK(bus->console == -1);
  auto qmp = capture::qemu::parse_qemu_spec("qemu-qmp:/tmp/vm/qmp.sock#console=2");
  REQUIRE(qmp.ok());
  CHECK(qmp->target.kind == DisplayTarget::Kind::Qmp);
  CHECK(qmp->target.address == "/tmp/vm/qmp.sock");
  CHECK(qmp->console == 2);
  CHECK(capture::qemu::parse_qemu_spec("qemu-dbus:session").ok());
  CHECK_THAT(capture::qemu::parse_qemu_spec("qemu-dbus:").error(), Catch::Contains("no D-Bus address"));
  CHECK_THAT(capture::qemu::parse_qemu_spec("qemu-dbus:/not/an/address").error(), Catch::Contains("not a D-Bus address"));
  CHECK_THAT(capture::qemu::parse_qemu_spec("qemu-qmp:/x#console=one").error(), Catch::Contains("not a number"));
  CHECK_THAT(capture::qemu::parse_qemu_spec("qemu-qmp:/x#head=1").error(), Catch::Contains("unknown option"));
  CHECK_FALSE(capture::qemu::parse_qemu_spec("synthetic:idle").ok());
}
