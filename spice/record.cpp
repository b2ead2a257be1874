#include "spice/record.hpp"

#include <glib.h>
#include <spice.h>

namespace vdistream::spice {

namespace {
const SpiceRecordInterface kRecordInterface = {
    {SPICE_INTERFACE_RECORD, "vdistream record", SPICE_INTERFACE_RECORD_MAJOR, SPICE_INTERFACE_RECORD_MINOR}};
}

struct SpiceRecord::Instance {
  SpiceRecordInstance sin{};
};

// The microphone keeps its callbacks for its whole life; ours posts to the desktop's thread only
// while this SpiceRecord is attached.
struct SpiceRecord::Gate {
  std::mutex mutex;
  SpiceRecord* record = nullptr;
};

SpiceRecord::SpiceRecord(const core::Logger& log, glib::LoopThread& thread, std::shared_ptr<core::Microphone> microphone)
    : log_(log),
      thread_(thread),
      microphone_(std::move(microphone)),
      instance_(std::make_unique<Instance>()),
      gate_(std::make_shared<Gate>()),
      samples_(core::kAudioRate / 50) {
  instance_->sin.base.sif = &kRecordInterface.base;
}

SpiceRecord::~SpiceRecord() {
  std::lock_guard lock(gate_->mutex);
  gate_->record = nullptr;
}

SpiceBaseInstance* SpiceRecord::instance() { return &instance_->sin.base; }

void SpiceRecord::attached() {
  spice_server_set_record_rate(&instance_->sin, core::kAudioRate);
  attached_ = true;
  {
    std::lock_guard lock(gate_->mutex);
    gate_->record = this;
  }
  microphone_->on_listening([gate = std::weak_ptr<Gate>(gate_)](bool listening) {
    auto g = gate.lock();
    if (!g) return;
    std::lock_guard lock(g->mutex);
    if (g->record) g->record->thread_.post([gate, listening] {
      // On the desktop's thread, where detach() runs: still attached if the gate still says so.
      auto g = gate.lock();
      if (!g) return;
      SpiceRecord* record;
      {
        std::lock_guard lock(g->mutex);
        record = g->record;
      }
      if (record) record->set_recording(listening);
    });
  });
}

void SpiceRecord::detach() {
  {
    std::lock_guard lock(gate_->mutex);
    gate_->record = nullptr;
  }
  set_recording(false);
  attached_ = false;
}

RecordStats SpiceRecord::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void SpiceRecord::set_recording(bool on) {
  if (!attached_ || on == (timer_ != 0)) return;
  {
    // Before the clients are told: one that saw the start or stop finds the stats saying so.
    std::lock_guard lock(stats_mutex_);
    stats_.recording = on;
    if (on) ++stats_.starts;
  }
  if (on) {
    spice_server_record_start(&instance_->sin);
    GSource* source = g_timeout_source_new(kPollMs);
    g_source_set_callback(source, &SpiceRecord::poll, this, nullptr);
    timer_ = g_source_attach(source, thread_.context());
    g_source_unref(source);
    log_.info("microphone: the VM listens; SPICE clients are asked to record");
  } else {
    if (GSource* timer = g_main_context_find_source_by_id(thread_.context(), timer_)) g_source_destroy(timer);
    timer_ = 0;
    spice_server_record_stop(&instance_->sin);
    log_.info("microphone: the VM stopped listening; SPICE clients stop recording");
  }
}

int SpiceRecord::poll(void* data) {
  auto* self = static_cast<SpiceRecord*>(data);
  uint64_t total = 0;
  std::vector<int16_t> pcm;
  for (;;) {
    const uint32_t n = spice_server_record_get_samples(&self->instance_->sin, self->samples_.data(),
                                                       uint32_t(self->samples_.size()));
    if (n == 0) break;
    // Each sample is one frame: left in the low 16 bits, right in the high (little-endian s16).
    pcm.resize(size_t(n) * 2);
    for (uint32_t i = 0; i < n; ++i) {
      pcm[2 * i] = int16_t(uint16_t(self->samples_[i] & 0xffff));
      pcm[2 * i + 1] = int16_t(uint16_t(self->samples_[i] >> 16));
    }
    self->microphone_->push("spice", pcm.data(), n);
    total += n;
    if (n < self->samples_.size()) break;
  }
  if (total) {
    std::lock_guard lock(self->stats_mutex_);
    self->stats_.frames += total;
  }
  return G_SOURCE_CONTINUE;
}

}  // namespace vdistream::spice
