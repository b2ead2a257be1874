#include "spice/qxl_display.hpp"

#include <drm_fourcc.h>

#include <cstring>
#include <ctime>

#include "spice/qxl_resources.hpp"

namespace vdistream::spice {

namespace {

constexpr uint32_t kMemslotGroup = 0;  // one slot covering the whole address space: QXL
constexpr uint32_t kMemslotId = 0;     // "physical" addresses are our own pointers
constexpr uint32_t kPrimarySurfaceId = 0;
// Drawables the worker has not taken yet beyond which it is lagging: the queue is replaced by
// one picture of the whole surface (latest wins, memory stays bounded).
constexpr size_t kMaxPending = 64;

uint32_t mm_time_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint32_t(ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000);
}

}  // namespace

struct QxlDisplay::Handle {
  QXLInstance qxl{};  // first member: spice-server's QXLInstance* is a Handle*
  QxlDisplay* owner = nullptr;
};

namespace {

void ignore_attached(QXLInstance*) {}
void ignore_compression_level(QXLInstance*, int) {}
void ignore_notify_update(QXLInstance*, uint32_t) {}
int flush_resources(QXLInstance*) { return 0; }
void ignore_async_complete(QXLInstance*, uint64_t) {}
void ignore_update_area_complete(QXLInstance*, uint32_t, QXLRect*, uint32_t) {}
void ignore_client_capabilities(QXLInstance*, uint8_t, uint8_t*) {}
int no_monitors_config(QXLInstance*, VDAgentMonitorsConfig*) { return 0; }

}  // namespace

QxlDisplay::QxlDisplay(const core::Logger& log, glib::LoopThread& thread)
    : log_(log), thread_(thread), handle_(std::make_unique<Handle>()) {
  static const QXLInterface kInterface = {
      .base = {SPICE_INTERFACE_QXL, "vdistream qxl", SPICE_INTERFACE_QXL_MAJOR, SPICE_INTERFACE_QXL_MINOR},
      .attached_worker = ignore_attached,
      .set_compression_level = ignore_compression_level,
      .get_init_info = &QxlDisplay::get_init_info,
      .get_command = &QxlDisplay::get_command,
      .req_cmd_notification = &QxlDisplay::req_cmd_notification,
      .release_resource = &QxlDisplay::release_resource,
      .get_cursor_command = &QxlDisplay::get_cursor_command,
      .req_cursor_notification = &QxlDisplay::req_cursor_notification,
      .notify_update = ignore_notify_update,
      .flush_resources = flush_resources,
      .async_complete = ignore_async_complete,
      .update_area_complete = ignore_update_area_complete,
      .set_client_capabilities = ignore_client_capabilities,
      .client_monitors_config = no_monitors_config,
  };
  handle_->qxl.base.sif = &kInterface.base;
  handle_->qxl.id = 0;
  handle_->owner = this;
}

QxlDisplay::~QxlDisplay() {
  std::lock_guard lock(mutex_);
  for (QxlResource* r : live_) delete r;
}

SpiceBaseInstance* QxlDisplay::instance() { return &handle_->qxl.base; }

QxlDisplay* QxlDisplay::owner(QXLInstance* qxl) { return reinterpret_cast<Handle*>(qxl)->owner; }

void QxlDisplay::attached() {
  QXLDevMemSlot slot{};
  slot.slot_group_id = kMemslotGroup;
  slot.slot_id = kMemslotId;
  slot.generation = 0;
  slot.virt_start = 0;
  slot.virt_end = ~uintptr_t(0);
  slot.addr_delta = 0;
  slot.qxl_ram_size = ~uint32_t(0);
  spice_qxl_add_memslot(&handle_->qxl, &slot);
}

void QxlDisplay::get_init_info(QXLInstance*, QXLDevInitInfo* info) {
  info->num_memslots_groups = 1;
  info->num_memslots = 1;
  info->memslot_gen_bits = 8;
  info->memslot_id_bits = 8;
  info->qxl_ram_size = 16 * 1024 * 1024;
  info->internal_groupslot_id = 0;
  info->n_surfaces = 1024;
}

int QxlDisplay::get_command(QXLInstance* qxl, QXLCommandExt* cmd) {
  QxlDisplay* self = owner(qxl);
  std::lock_guard lock(self->mutex_);
  if (self->pending_.empty()) return 0;
  QxlResource* r = self->pending_.front();
  self->pending_.pop_front();
  self->pending_count_ = self->pending_.size();
  *cmd = r->ext;
  return 1;
}

int QxlDisplay::get_cursor_command(QXLInstance* qxl, QXLCommandExt* cmd) {
  QxlDisplay* self = owner(qxl);
  std::lock_guard lock(self->mutex_);
  if (self->cursor_pending_.empty()) return 0;
  *cmd = self->cursor_pending_.front()->ext;
  self->cursor_pending_.pop_front();
  return 1;
}

int QxlDisplay::req_cursor_notification(QXLInstance* qxl) {
  QxlDisplay* self = owner(qxl);
  std::lock_guard lock(self->mutex_);
  return self->cursor_pending_.empty() ? 1 : 0;
}

int QxlDisplay::req_cmd_notification(QXLInstance* qxl) {
  QxlDisplay* self = owner(qxl);
  std::lock_guard lock(self->mutex_);
  return self->pending_.empty() ? 1 : 0;  // 0: commands are waiting, ask again now
}

void QxlDisplay::release_resource(QXLInstance* qxl, QXLReleaseInfoExt release) {
  QxlDisplay* self = owner(qxl);
  QxlResource* r = QxlResource::from_release(release.info);
  std::lock_guard lock(self->mutex_);
  if (self->live_.erase(r)) delete r;
}

core::Status QxlDisplay::on_frame(const core::Frame& frame) {
  if (!frame.buffer) return core::Error{"QXL: frame without a buffer"};
  const uint32_t fourcc = frame.buffer->format().fourcc;
  if (fourcc != DRM_FORMAT_XRGB8888 && fourcc != DRM_FORMAT_ARGB8888)
    return core::Error{fmt::format("QXL: pixel format {} is not XRGB8888 or ARGB8888", frame.buffer->format().name())};
  const int32_t width = frame.width(), height = frame.height();
  const bool resized = width != prepared_width_ || height != prepared_height_;
  const bool lagging = pending_count_.load() > kMaxPending;
  core::DamageRegion damage = frame.damage;
  if (resized || lagging) damage = core::DamageRegion::full(width, height);
  damage.clip(width, height);
  if (damage.empty()) return core::Status::success();

  auto mapped = mappings_.get(*frame.buffer);
  if (!mapped) return core::Error{"QXL: " + mapped.error()};
  const core::MappedBuffer& pixels = **mapped;

  auto batch = std::make_shared<Batch>();
  const uint32_t mm_time = mm_time_now();
  uint64_t bytes = 0;
  {
    core::MappedBuffer::CpuAccess access(pixels);
    for (const core::Rect& r : damage.rects()) {
      auto u = std::make_unique<QxlImageUpdate>();
      const size_t row_bytes = size_t(r.width) * 4;
      u->pixels.resize(row_bytes * r.height);
      for (int32_t row = 0; row < r.height; ++row)
        std::memcpy(u->pixels.data() + row_bytes * row,
                    pixels.data() + size_t(r.y + row) * pixels.pitch() + size_t(r.x) * 4, row_bytes);
      bytes += u->pixels.size();

      QXLDrawable& d = u->drawable;
      u->set_release(d.release_info);
      d.surface_id = kPrimarySurfaceId;
      d.effect = QXL_EFFECT_OPAQUE;
      d.type = QXL_DRAW_COPY;
      d.bbox = QXLRect{r.y, r.x, r.bottom(), r.right()};  // top, left, bottom, right
      d.clip.type = SPICE_CLIP_TYPE_NONE;
      d.mm_time = mm_time;
      d.surfaces_dest[0] = d.surfaces_dest[1] = d.surfaces_dest[2] = -1;
      d.u.copy.rop_descriptor = SPICE_ROPD_OP_PUT;
      d.u.copy.src_bitmap = physical(u->image.get());
      d.u.copy.src_area = QXLRect{0, 0, r.height, r.width};

      QXLImage& image = *u->image;
      QXL_SET_IMAGE_ID(&image, QXL_IMAGE_GROUP_DEVICE, next_image_id_++);
      image.descriptor.type = SPICE_IMAGE_TYPE_BITMAP;
      image.descriptor.width = uint32_t(r.width);
      image.descriptor.height = uint32_t(r.height);
      image.bitmap.format = SPICE_BITMAP_FMT_32BIT;
      image.bitmap.flags = QXL_BITMAP_DIRECT | QXL_BITMAP_TOP_DOWN;
      image.bitmap.x = uint32_t(r.width);
      image.bitmap.y = uint32_t(r.height);
      image.bitmap.stride = uint32_t(row_bytes);
      image.bitmap.palette = 0;
      image.bitmap.data = physical(u->pixels.data());

      u->ext.cmd.type = QXL_CMD_DRAW;
      u->ext.cmd.data = physical(&u->drawable);
      u->ext.group_id = kMemslotGroup;
      u->ext.flags = 0;
      batch->push_back(std::move(u));
    }
  }
  prepared_width_ = width;
  prepared_height_ = height;
  {
    std::lock_guard lock(mutex_);
    ++stats_.frames;
    stats_.drawables += batch->size();
    stats_.bytes_copied += bytes;
    if (lagging) ++stats_.queue_overflows;
  }
  thread_.post([this, batch, width, height, lagging] { queue(width, height, lagging, *batch); });
  return core::Status::success();
}

void QxlDisplay::drop_pending_locked() {
  for (auto* queue : {&pending_, &cursor_pending_}) {
    for (QxlResource* r : *queue) {
      live_.erase(r);
      delete r;
    }
    queue->clear();
  }
  pending_count_ = 0;
}

void QxlDisplay::create_primary(int32_t width, int32_t height) {
  destroy_primary();
  surface_.assign(size_t(width) * height * 4, 0);
  QXLDevSurfaceCreate surface{};
  surface.format = SPICE_SURFACE_FMT_32_xRGB;
  surface.width = uint32_t(width);
  surface.height = uint32_t(height);
  surface.stride = width * 4;
  surface.mouse_mode = 1;  // the client may use its own (absolute) pointer
  surface.flags = 0;
  surface.type = 0;  // QXL_SURF_TYPE_PRIMARY
  surface.mem = physical(surface_.data());
  surface.group_id = kMemslotGroup;
  spice_qxl_create_primary_surface(&handle_->qxl, kPrimarySurfaceId, &surface);
  primary_ = true;
  width_ = width;
  height_ = height;
  {
    std::lock_guard lock(mutex_);
    ++stats_.primaries_created;
  }
  log_.info("SPICE primary surface {}x{}", width, height);
  if (cursor_shape_) queue_cursor(make_cursor_set(*cursor_shape_, cursor_at_, next_cursor_id_++));
}

void QxlDisplay::destroy_primary() {
  if (!primary_) return;
  // Synchronous: the worker releases the drawables it holds before this returns.
  spice_qxl_destroy_primary_surface(&handle_->qxl, kPrimarySurfaceId);
  primary_ = false;
  {
    std::lock_guard lock(mutex_);
    drop_pending_locked();
  }
  surface_.clear();
  surface_.shrink_to_fit();
}

void QxlDisplay::queue(int32_t width, int32_t height, bool replace_pending, Batch& batch) {
  if (!primary_ || width != width_.load() || height != height_.load()) create_primary(width, height);
  {
    std::lock_guard lock(mutex_);
    if (replace_pending) drop_pending_locked();
    for (auto& u : batch) {
      QxlResource* raw = u.release();
      live_.insert(raw);
      pending_.push_back(raw);
    }
    pending_count_ = pending_.size();
  }
  batch.clear();
  spice_qxl_wakeup(&handle_->qxl);
}

void QxlDisplay::queue_cursor(std::unique_ptr<QxlResource> command) {
  {
    std::lock_guard lock(mutex_);
    QxlResource* raw = command.release();
    live_.insert(raw);
    cursor_pending_.push_back(raw);
  }
  spice_qxl_wakeup(&handle_->qxl);
}

void QxlDisplay::set_cursor(const core::CursorShape& shape, const core::CursorPosition& at) {
  if (shape.width <= 0 || shape.height <= 0 || shape.width > 1024 || shape.height > 1024 ||
      shape.argb.size() != size_t(shape.width) * shape.height) {
    log_.warn("cursor shape {}x{} with {} pixels ignored (at most 1024x1024, width x height pixels)", shape.width,
              shape.height, shape.argb.size());
    return;
  }
  thread_.post([this, shape, at] {
    cursor_shape_ = shape;
    cursor_at_ = at;
    if (primary_) queue_cursor(make_cursor_set(shape, at, next_cursor_id_++));
  });
}

void QxlDisplay::move_cursor(const core::CursorPosition& at) {
  thread_.post([this, at] {
    cursor_at_ = at;
    if (primary_ && cursor_shape_) queue_cursor(make_cursor_move(at));
  });
}

QxlStats QxlDisplay::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace vdistream::spice
