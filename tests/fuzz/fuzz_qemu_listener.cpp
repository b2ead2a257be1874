// What QEMU's D-Bus display sends our Listener, which a guest influences (sizes, strides, offsets,
// formats, rectangles, cursor images) and QEMU passes on: a real capture::qemu::Listener behind a
// real peer-to-peer GDBus connection (tests/fixtures/qemu_peer, playing QEMU), called with
// Scanout, Update, ScanoutDMABUF, UpdateDMABUF, ScanoutMap, UpdateMap, ScanoutDMABUF2,
// CursorDefine, MouseSet and Disable whose parameters come from the input, and whose fds are
// memfds of a size from the input. Each call must be answered (a refusal is an answer), and the
// connection must stay up: garbage is refused, it never ends the display.
#include <fuzzer/FuzzedDataProvider.h>
#include <gio/gio.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/unique_fd.hpp"
#include "fixtures/qemu_peer.hpp"

using namespace vdistream;

namespace {

test::ListenerPeer* peer = nullptr;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_qemu_listener: %s\n", what);
  std::abort();
}

// Mostly plausible values (small, or around a display's), sometimes anything.
uint32_t dimension(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: return in.ConsumeIntegralInRange<uint32_t>(0, 64);
    case 1: return in.ConsumeIntegralInRange<uint32_t>(0, 4096);
    case 2: return in.ConsumeIntegralInRange<uint32_t>(0xfffffff0u, 0xffffffffu);
    default: return in.ConsumeIntegral<uint32_t>();
  }
}
int32_t coordinate(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0: return in.ConsumeIntegralInRange<int32_t>(-8, 64);
    case 1: return in.ConsumeIntegralInRange<int32_t>(-4096, 4096);
    default: return in.ConsumeIntegral<int32_t>();
  }
}
uint32_t pixman_format(FuzzedDataProvider& in) {
  static constexpr uint32_t kFormats[] = {0x20020888u, 0x20028888u, 0x20038888u, 0x20030888u, 0x20010565u};
  return in.ConsumeBool() ? kFormats[in.ConsumeIntegralInRange<size_t>(0, 4)] : in.ConsumeIntegral<uint32_t>();
}
uint32_t fourcc(FuzzedDataProvider& in) {
  static constexpr uint32_t kFourccs[] = {0x34325258u /* XR24 */, 0x34325241u /* AR24 */, 0x34324258u /* XB24 */,
                                          0x3231564eu /* NV12 */};
  return in.ConsumeBool() ? kFourccs[in.ConsumeIntegralInRange<size_t>(0, 3)] : in.ConsumeIntegral<uint32_t>();
}
uint64_t modifier(FuzzedDataProvider& in) {
  return in.ConsumeBool() ? 0 : in.ConsumeIntegral<uint64_t>();  // 0: linear
}
GVariant* bytes(FuzzedDataProvider& in, size_t max) {
  const std::vector<uint8_t> b = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, max));
  return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, b.data(), b.size(), 1);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  capture::qemu::ListenerConfig config;
  config.name = "fuzz";
  peer = new test::ListenerPeer(config, {}, false);  // lives for the whole run
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  // Every input starts from no scanout, so it does the same whatever ran before it.
  (void)peer->call("Disable", nullptr);
  std::vector<core::UniqueFd> fds;  // this input's memfds, closed when it ends
  auto new_fd = [&]() {
    // Sparse: a large size costs nothing until the listener reads it.
    const size_t bytes = in.ConsumeBool() ? in.ConsumeIntegralInRange<size_t>(0, 1 << 16)
                                          : in.ConsumeIntegralInRange<size_t>(0, 64u << 20);
    fds.push_back(test::make_memfd(bytes, "fuzz"));
    return fds.back().get();
  };
  for (int calls = 0; calls < 8 && in.remaining_bytes() > 0; ++calls) {
    core::Status answered;
    switch (in.ConsumeIntegralInRange<int>(0, 9)) {
      case 0: {
        const uint32_t w = dimension(in), h = dimension(in), stride = dimension(in), format = pixman_format(in);
        answered = peer->call("Scanout", g_variant_new("(uuuu@ay)", w, h, stride, format, bytes(in, 1 << 16)));
        break;
      }
      case 1: {
        const int32_t x = coordinate(in), y = coordinate(in), w = coordinate(in), h = coordinate(in);
        const uint32_t stride = dimension(in), format = pixman_format(in);
        answered = peer->call("Update", g_variant_new("(iiiiuu@ay)", x, y, w, h, stride, format, bytes(in, 1 << 16)));
        break;
      }
      case 2: {
        const int fd = new_fd();
        const uint32_t w = dimension(in), h = dimension(in), stride = dimension(in), cc = fourcc(in);
        const uint64_t mod = modifier(in);
        const bool y0_top = in.ConsumeBool();
        // The handle is an index into the message's fds: 0 is ours, others are out of range.
        const int32_t handle = in.ConsumeBool() ? 0 : in.ConsumeIntegral<int32_t>();
        answered = peer->call(capture::qemu::Listener::kInterface, "ScanoutDMABUF",
                              g_variant_new("(huuuutb)", handle, w, h, stride, cc, mod, y0_top), {fd});
        break;
      }
      case 3:
      case 4: {
        const int32_t x = coordinate(in), y = coordinate(in), w = coordinate(in), h = coordinate(in);
        const bool map = in.ConsumeBool();
        answered = peer->call(map ? capture::qemu::Listener::kMapInterface : capture::qemu::Listener::kInterface,
                              map ? "UpdateMap" : "UpdateDMABUF", g_variant_new("(iiii)", x, y, w, h), {});
        break;
      }
      case 5: {
        const int fd = new_fd();
        const int32_t handle = in.ConsumeBool() ? 0 : in.ConsumeIntegral<int32_t>();
        const uint32_t offset = in.ConsumeBool() ? 0 : dimension(in);
        const uint32_t w = dimension(in), h = dimension(in), stride = dimension(in), format = pixman_format(in);
        answered = peer->call(capture::qemu::Listener::kMapInterface, "ScanoutMap",
                              g_variant_new("(huuuuu)", handle, offset, w, h, stride, format), {fd});
        break;
      }
      case 6: {
        const size_t planes = in.ConsumeIntegralInRange<size_t>(0, 4);
        std::vector<int> plane_fds;
        GVariantBuilder handles, offsets, strides;
        g_variant_builder_init(&handles, G_VARIANT_TYPE("ah"));
        g_variant_builder_init(&offsets, G_VARIANT_TYPE("au"));
        g_variant_builder_init(&strides, G_VARIANT_TYPE("au"));
        for (size_t i = 0; i < planes; ++i) {
          plane_fds.push_back(new_fd());
          g_variant_builder_add(&handles, "h", in.ConsumeBool() ? int32_t(i) : in.ConsumeIntegral<int32_t>());
        }
        const size_t n_offsets = in.ConsumeBool() ? planes : in.ConsumeIntegralInRange<size_t>(0, 5);
        for (size_t i = 0; i < n_offsets; ++i) g_variant_builder_add(&offsets, "u", in.ConsumeBool() ? 0u : dimension(in));
        const size_t n_strides = in.ConsumeBool() ? planes : in.ConsumeIntegralInRange<size_t>(0, 5);
        for (size_t i = 0; i < n_strides; ++i) g_variant_builder_add(&strides, "u", dimension(in));
        const uint32_t x = dimension(in), y = dimension(in), w = dimension(in), h = dimension(in);
        const uint32_t num_planes = in.ConsumeBool() ? uint32_t(planes) : dimension(in);
        const uint32_t cc = fourcc(in), bw = dimension(in), bh = dimension(in);
        const uint64_t mod = modifier(in);
        const bool y0_top = in.ConsumeBool();
        answered = peer->call(capture::qemu::Listener::kDmabuf2Interface, "ScanoutDMABUF2",
                              g_variant_new("(@ahuuuu@au@auuuuutb)", g_variant_builder_end(&handles), x, y, w, h,
                                            g_variant_builder_end(&offsets), g_variant_builder_end(&strides), num_planes,
                                            cc, bw, bh, mod, y0_top),
                              plane_fds);
        break;
      }
      case 7: {
        const int32_t w = coordinate(in), h = coordinate(in), hx = coordinate(in), hy = coordinate(in);
        answered = peer->call("CursorDefine", g_variant_new("(iiii@ay)", w, h, hx, hy, bytes(in, 1 << 14)));
        break;
      }
      case 8: {
        const int32_t x = coordinate(in), y = coordinate(in), on = in.ConsumeIntegral<int32_t>();
        answered = peer->call("MouseSet", g_variant_new("(iii)", x, y, on));
        break;
      }
      default:
        answered = peer->call("Disable", nullptr);
        break;
    }
    // A refusal is an answer; only a call that got none (a timeout) or a closed connection is a finding.
    if (!answered) require(std::string(answered.error()).find("Timeout") == std::string::npos, "a call got no answer");
    require(!peer->listener_closed(), "the listener's connection closed");
  }
  peer->forget();
  return 0;
}
