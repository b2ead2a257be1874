// A deterministic desktop: workloads drawn into a small pool of memfd-backed buffers, with
// exact damage. For the demo, the tests and the benchmarks.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "capture/source.hpp"
#include "core/clock.hpp"
#include "core/frame.hpp"
#include "core/status.hpp"

namespace vdistream::capture {

enum class Workload { Idle, Typing, Scrolling, WindowDrag, Video, FullMotion };

const char* workload_name(Workload w);
std::optional<Workload> parse_workload(const std::string& name);
const char* workload_list();  // "idle, typing, scrolling, window-drag, video, fullmotion"

struct SyntheticConfig {
  Workload workload = Workload::WindowDrag;
  int32_t width = 1280;
  int32_t height = 720;
  double fps = 30.0;      // 1..240
  bool barcode = true;    // stamp the frame number on every frame that has other damage
  int pool_size = 3;      // buffers in flight (the encoder may still read the previous one)
};

// "synthetic:WORKLOAD[@WIDTHxHEIGHT][@FPS]", e.g. "synthetic:typing@1920x1080@60".
core::Result<SyntheticConfig> parse_synthetic_spec(const std::string& spec);

class Scene;  // draws a workload at a given time, clipped to a rectangle

class SyntheticSource final : public Source {
 public:
  static core::Result<std::unique_ptr<SyntheticSource>> create(const SyntheticConfig& config);
  ~SyntheticSource() override;

  // Renders frame number `next_sequence()` into a free pool buffer and returns it. The damage is
  // exact: what differs from the previous frame (the whole surface on the first frame).
  // Frames with nothing changed come back with empty damage. Deterministic: the same config gives
  // the same pixels for the same sequence number. Not to be called while start()ed.
  core::Result<core::Frame> render_next();
  uint64_t next_sequence() const { return sequence_.load(); }

  // Draws the complete picture of frame `sequence` into `out` (XRGB, `pitch` bytes per row):
  // the reference the tests compare decoded pictures with.
  void render_reference(uint64_t sequence, uint8_t* out, uint32_t pitch) const;

  // Paced mode: a thread renders a frame every 1/fps s and calls on_frame (also for frames
  // with empty damage: the pipeline decides what to do with them). `max_frames` 0 = unbounded.
  std::string describe() const override;
  double frame_rate() const override { return config_.fps; }
  core::Status start(SourceCallbacks callbacks) override;
  void stop() override;
  void set_max_frames(uint64_t n) { max_frames_ = n; }
  bool finished() const { return finished_; }  // max_frames reached
  // Paced ticks that delivered no frame: every pool buffer was still held downstream, or the
  // thread woke up too late for them (it skips ahead rather than bursting).
  uint64_t ticks_skipped_busy() const { return skipped_busy_.load(); }
  uint64_t ticks_skipped_late() const { return skipped_late_.load(); }
  // CPU time the paced thread spent (drawing the desktop stands in for the VM's work, so
  // benchmarks subtract it from the process's CPU). Updated after every paced frame.
  int64_t render_cpu_ns() const { return render_cpu_ns_.load(); }

  const SyntheticConfig& config() const { return config_; }

 private:
  explicit SyntheticSource(const SyntheticConfig& config);
  void run(SourceCallbacks callbacks);

  struct PoolBuffer;
  PoolBuffer* free_buffer();  // the one with the least to redraw among those nobody holds
  SyntheticConfig config_;
  std::unique_ptr<Scene> scene_;
  std::vector<std::unique_ptr<PoolBuffer>> pool_;
  std::atomic<uint64_t> sequence_{0};
  uint64_t max_frames_ = 0;
  std::atomic<uint64_t> skipped_busy_{0};
  std::atomic<uint64_t> skipped_late_{0};
  std::atomic<bool> running_{false};
  std::atomic<bool> finished_{false};
  std::atomic<int64_t> render_cpu_ns_{0};
  std::thread thread_;
};

}  // namespace vdistream::capture
