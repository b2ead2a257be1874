// QXL cursor commands, as QEMU's spice display builds them for its emulated VGA.
#include <algorithm>
#include <cstring>

#include "spice/qxl_resources.hpp"

namespace vdistream::spice {

namespace {

constexpr uint32_t kMemslotGroup = 0;

QXLPoint16 point(const core::CursorPosition& at) {
  return QXLPoint16{int16_t(std::clamp(at.x, -32768, 32767)), int16_t(std::clamp(at.y, -32768, 32767))};
}

std::unique_ptr<QxlCursorUpdate> cursor_command(uint8_t type) {
  auto u = std::make_unique<QxlCursorUpdate>();
  u->set_release(u->cmd.release_info);
  u->cmd.type = type;
  u->ext.cmd.type = QXL_CMD_CURSOR;
  u->ext.cmd.data = physical(&u->cmd);
  u->ext.group_id = kMemslotGroup;
  return u;
}

}  // namespace

std::unique_ptr<QxlCursorUpdate> make_cursor_set(const core::CursorShape& shape, const core::CursorPosition& at,
                                                 uint64_t unique) {
  auto u = cursor_command(QXL_CURSOR_SET);
  const size_t bytes = shape.argb.size() * 4;
  u->shape.assign(sizeof(QXLCursor) + bytes, 0);
  auto* cursor = reinterpret_cast<QXLCursor*>(u->shape.data());
  cursor->header.unique = unique;
  cursor->header.type = SPICE_CURSOR_TYPE_ALPHA;
  cursor->header.width = uint16_t(shape.width);
  cursor->header.height = uint16_t(shape.height);
  cursor->header.hot_spot_x = uint16_t(shape.hot_x);
  cursor->header.hot_spot_y = uint16_t(shape.hot_y);
  cursor->data_size = uint32_t(bytes);
  cursor->chunk.data_size = uint32_t(bytes);
  cursor->chunk.prev_chunk = cursor->chunk.next_chunk = 0;
  std::memcpy(u->shape.data() + sizeof(QXLCursor), shape.argb.data(), bytes);
  u->cmd.u.set.position = point(at);
  u->cmd.u.set.visible = at.visible ? 1 : 0;
  u->cmd.u.set.shape = physical(cursor);
  return u;
}

std::unique_ptr<QxlCursorUpdate> make_cursor_move(const core::CursorPosition& at) {
  if (!at.visible) return cursor_command(QXL_CURSOR_HIDE);
  auto u = cursor_command(QXL_CURSOR_MOVE);
  u->cmd.u.position = point(at);
  return u;
}

}  // namespace vdistream::spice
