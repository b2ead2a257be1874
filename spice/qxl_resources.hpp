// What QxlDisplay hands spice-server: commands and the memory they point into, alive until
// spice-server releases them. Internal to spice/.
#pragma once

#include <spice.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/damage.hpp"
#include "core/input.hpp"

namespace vdistream::spice {

// QXL "physical" addresses are our own pointers (one memslot covering the address space).
inline QXLPHYSICAL physical(const void* p) { return QXLPHYSICAL(reinterpret_cast<uintptr_t>(p)); }

struct QxlResource {
  virtual ~QxlResource() = default;
  QXLCommandExt ext{};
  // Makes `release_info` identify this resource to release_resource().
  void set_release(QXLReleaseInfo& release_info) { release_info.id = physical(this); }
  static QxlResource* from_release(const QXLReleaseInfo* info) {
    return reinterpret_cast<QxlResource*>(uintptr_t(info->id));
  }
};

// One damaged rectangle as a QXL_DRAW_COPY of a bitmap image.
struct QxlImageUpdate final : QxlResource {
  QXLDrawable drawable{};
  std::vector<uint8_t> pixels;
  // Apart: QXLImage's QUIC variant ends in a zero-size array, which cannot be a member.
  std::unique_ptr<QXLImage> image = std::make_unique<QXLImage>();
};

struct QxlCursorUpdate final : QxlResource {
  QXLCursorCmd cmd{};
  std::vector<uint8_t> shape;  // a QXLCursor followed by its ARGB pixels
};

// Builders (qxl_cursor.cpp).
std::unique_ptr<QxlCursorUpdate> make_cursor_set(const core::CursorShape& shape, const core::CursorPosition& at,
                                                 uint64_t unique);
std::unique_ptr<QxlCursorUpdate> make_cursor_move(const core::CursorPosition& at);

}  // namespace vdistream::spice
