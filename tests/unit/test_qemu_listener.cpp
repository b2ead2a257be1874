// The D-Bus display Listener, driven by a test peer that speaks QEMU's side of the protocol
// over a real peer-to-peer GDBus connection.
#include <catch2/catch.hpp>

#include <drm_fourcc.h>

#include <cstring>

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

TEST_CASE("the listener exposes an empty Interfaces property") {
  test::ListenerPeer peer;
  auto value = peer.get_property("Interfaces");
  REQUIRE(value.ok());
  CHECK(g_variant_is_of_type(value->get(), G_VARIANT_TYPE("as")));
  CHECK(g_variant_n_children(value->get()) == 0);
}

TEST_CASE("Scanout and Update write pixels once into one memfd surface and give frames with exact damage") {
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
  REQUIRE(frames[1].damage.rects().size() == 1);
  CHECK(frames[1].damage.rects()[0] == core::Rect{0, 16, int32_t(w), 8});
  CHECK(frames[2].damage.rects()[0] == core::Rect{10, 0, 4, 2});
  for (const auto& f : frames) CHECK(f.damage_exact);
  CHECK(frames[0].buffer == frames[2].buffer);  // written in place
  CHECK(frames[1].sequence == frames[0].sequence + 1);

  CHECK(pixel(frames[2], 3, 3) == pixel_of(first, stride, 3, 3));
  CHECK(pixel(frames[2], 5, 20) == pixel_of(band, w * 4, 5, 4));
  auto stats = peer.stats();
  CHECK(stats.scanouts == 1);
  CHECK(stats.updates == 2);
  CHECK(stats.surfaces_allocated == 1);
  CHECK(stats.bytes_written == uint64_t(w) * h * 4 + uint64_t(w) * 8 * 4 + 4 * 2 * 4);  // each pixel once
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
