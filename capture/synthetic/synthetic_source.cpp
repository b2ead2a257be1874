#include "capture/synthetic/synthetic_source.hpp"

#include <drm_fourcc.h>
#include <fmt/format.h>
#include <time.h>

#include <array>
#include <charconv>
#include <cmath>
#include <string_view>

#include "capture/synthetic/scene.hpp"
#include "core/log.hpp"
#include "core/mapped_buffer.hpp"

namespace vdistream::capture {

namespace {

constexpr std::array<std::pair<Workload, const char*>, 6> kWorkloads{{
    {Workload::Idle, "idle"},
    {Workload::Typing, "typing"},
    {Workload::Scrolling, "scrolling"},
    {Workload::WindowDrag, "window-drag"},
    {Workload::Video, "video"},
    {Workload::FullMotion, "fullmotion"},
}};

constexpr int32_t kMinSide = 16, kMaxWidth = 3840, kMaxHeight = 2160;
constexpr double kMinFps = 1.0, kMaxFps = 240.0;
constexpr int kMinPool = 2, kMaxPool = 8;
constexpr std::string_view kSpecPrefix = "synthetic:";
// A paced thread sleeps at most this long at a time, so stop() never waits a whole frame
// period at low frame rates.
constexpr int64_t kMaxSleepNs = 50'000'000;

core::Status validate(const SyntheticConfig& config) {
  if (config.width < kMinSide || config.width > kMaxWidth || config.height < kMinSide || config.height > kMaxHeight)
    return core::Error{fmt::format("size {}x{} is outside {}x{}..{}x{}", config.width, config.height, kMinSide,
                                   kMinSide, kMaxWidth, kMaxHeight)};
  if (!(config.fps >= kMinFps && config.fps <= kMaxFps))  // also refuses NaN
    return core::Error{fmt::format("frame rate {} is outside {}..{} fps", config.fps, kMinFps, kMaxFps)};
  if (config.pool_size < kMinPool || config.pool_size > kMaxPool)
    return core::Error{fmt::format("pool size {} is outside {}..{} buffers", config.pool_size, kMinPool, kMaxPool)};
  return {};
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t at = text.find(separator); at != std::string_view::npos; at = text.find(separator, start)) {
    parts.push_back(text.substr(start, at - start));
    start = at + 1;
  }
  parts.push_back(text.substr(start));
  return parts;
}

template <typename Number>
std::optional<Number> parse_number(std::string_view text) {
  Number value{};
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

core::Status parse_size(std::string_view text, SyntheticConfig& config) {
  size_t x = text.find('x');
  auto width = parse_number<int32_t>(text.substr(0, x));
  auto height = parse_number<int32_t>(text.substr(x + 1));
  if (!width || !height) return core::Error{fmt::format("'{}' is not a size WIDTHxHEIGHT such as 1920x1080", text)};
  config.width = *width;
  config.height = *height;
  return {};
}

core::Status parse_fps(std::string_view text, SyntheticConfig& config) {
  auto fps = parse_number<double>(text);
  if (!fps) return core::Error{fmt::format("'{}' is not a frame rate such as 30 or 59.94", text)};
  config.fps = *fps;
  return {};
}

// The WIDTHxHEIGHT and FPS fields after the workload, in that order, each optional.
core::Status parse_fields(const std::vector<std::string_view>& fields, SyntheticConfig& config) {
  bool have_size = false, have_fps = false;
  for (std::string_view field : fields) {
    if (field.empty()) return core::Error{"an empty field between '@'s"};
    bool is_size = field.find('x') != std::string_view::npos;
    if (is_size && (have_size || have_fps))
      return core::Error{fmt::format("size '{}' must come once, before the frame rate", field)};
    if (!is_size && have_fps) return core::Error{fmt::format("a second frame rate '{}'", field)};
    core::Status parsed = is_size ? parse_size(field, config) : parse_fps(field, config);
    if (!parsed) return parsed;
    (is_size ? have_size : have_fps) = true;
  }
  return {};
}

// Sleeps until `deadline_ns` on the monotonic clock, waking now and then to notice `running`
// going false. Returns whether the source is still running.
bool sleep_until(int64_t deadline_ns, const std::atomic<bool>& running) {
  while (running) {
    int64_t now = core::monotonic_now_ns();
    if (now >= deadline_ns) return true;
    int64_t wake = std::min(deadline_ns, now + kMaxSleepNs);
    timespec ts{time_t(wake / 1'000'000'000), long(wake % 1'000'000'000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);  // EINTR: just loop
  }
  return false;
}

}  // namespace

const char* workload_name(Workload w) {
  for (const auto& [workload, name] : kWorkloads)
    if (workload == w) return name;
  return "unknown";
}

std::optional<Workload> parse_workload(const std::string& name) {
  for (const auto& [workload, known] : kWorkloads)
    if (name == known) return workload;
  return std::nullopt;
}

const char* workload_list() { return "idle, typing, scrolling, window-drag, video, fullmotion"; }

core::Result<SyntheticConfig> parse_synthetic_spec(const std::string& spec) {
  std::string_view text(spec);
  if (!text.starts_with(kSpecPrefix))
    return core::Error{fmt::format("'{}' is not a synthetic source: expected synthetic:WORKLOAD[@WIDTHxHEIGHT][@FPS]", spec)};
  std::vector<std::string_view> fields = split(text.substr(kSpecPrefix.size()), '@');
  SyntheticConfig config;
  auto workload = parse_workload(std::string(fields.front()));
  if (!workload)
    return core::Error{fmt::format("'{}': unknown workload '{}' (workloads: {})", spec, fields.front(), workload_list())};
  config.workload = *workload;
  fields.erase(fields.begin());
  if (core::Status s = parse_fields(fields, config); !s) return core::Error{fmt::format("'{}': {}", spec, s.error())};
  if (core::Status s = validate(config); !s) return core::Error{fmt::format("'{}': {}", spec, s.error())};
  return config;
}

// One buffer of the pool, and what changed in the scene since it last held a frame.
struct SyntheticSource::PoolBuffer {
  core::FrameBufferPtr buffer;
  std::shared_ptr<core::MappedBuffer> mapping;
  core::DamageRegion stale;
};

SyntheticSource::SyntheticSource(const SyntheticConfig& config) : config_(config) {}

SyntheticSource::~SyntheticSource() { stop(); }

core::Result<std::unique_ptr<SyntheticSource>> SyntheticSource::create(const SyntheticConfig& config) {
  if (core::Status s = validate(config); !s) return core::Error{"synthetic source: " + s.error()};
  std::unique_ptr<SyntheticSource> source(new SyntheticSource(config));
  source->scene_ = Scene::create(config.workload, {config.width, config.height, config.fps, config.barcode});
  for (int i = 0; i < config.pool_size; ++i) {
    auto buffer = core::FrameBuffer::allocate_memfd(config.width, config.height, DRM_FORMAT_XRGB8888,
                                                    fmt::format("vdistream-synthetic-{}", i));
    if (!buffer) return core::Error{fmt::format("synthetic source: pool buffer {}: {}", i, buffer.error())};
    auto mapping = core::MappedBuffer::map(**buffer, core::MappedBuffer::Access::ReadWrite);
    if (!mapping) return core::Error{fmt::format("synthetic source: mapping pool buffer {}: {}", i, mapping.error())};
    source->pool_.push_back(std::make_unique<PoolBuffer>(
        PoolBuffer{*buffer, *mapping, core::DamageRegion::full(config.width, config.height)}));
  }
  return source;
}

std::string SyntheticSource::describe() const {
  return fmt::format("synthetic:{}@{}x{}@{:g}", workload_name(config_.workload), config_.width, config_.height,
                     config_.fps);
}

SyntheticSource::PoolBuffer* SyntheticSource::free_buffer() {
  PoolBuffer* best = nullptr;
  for (auto& candidate : pool_) {
    if (candidate->buffer.use_count() != 1) continue;  // a Frame downstream still holds it
    if (!best || candidate->stale.area() < best->stale.area()) best = candidate.get();
  }
  // use_count() is a relaxed read: this fence pairs with the release in the last holder's
  // shared_ptr destructor, so that holder's reads of the pixels happen before we overwrite them.
  if (best) std::atomic_thread_fence(std::memory_order_acquire);
  return best;
}

core::Result<core::Frame> SyntheticSource::render_next() {
  PoolBuffer* target = free_buffer();
  if (!target) return core::Error{fmt::format("all {} pool buffers are in use", pool_.size())};
  const uint64_t sequence = sequence_.load();
  core::DamageRegion damage = scene_->damage(sequence);
  for (auto& buffer : pool_) buffer->stale.add(damage);
  {
    core::MappedBuffer::CpuAccess access(*target->mapping);
    scene_->draw(sequence, target->stale, target->mapping->writable_data(), target->mapping->pitch());
  }
  target->stale.clear();
  sequence_.store(sequence + 1);

  core::Frame frame;
  frame.buffer = target->buffer;
  frame.damage = std::move(damage);
  frame.sequence = sequence;
  frame.timestamps.captured_ns = core::monotonic_now_ns();
  return frame;
}

void SyntheticSource::render_reference(uint64_t sequence, uint8_t* out, uint32_t pitch) const {
  scene_->draw(sequence, scene_->surface(), out, pitch);
}

core::Status SyntheticSource::start(SourceCallbacks callbacks) {
  if (running_) return core::Error{fmt::format("{} is already running", describe())};
  if (!callbacks.on_frame) return core::Error{fmt::format("{}: start() needs an on_frame callback", describe())};
  if (thread_.joinable()) thread_.join();  // a previous run that reached max_frames
  finished_ = false;
  running_ = true;
  thread_ = std::thread(&SyntheticSource::run, this, std::move(callbacks));
  return {};
}

void SyntheticSource::stop() {
  running_ = false;
  if (thread_.joinable()) thread_.join();
}

// Frame k is due at start + k / fps. After a late wake-up the schedule skips the ticks that
// are already past instead of rendering them back to back: latency over frame rate.
void SyntheticSource::run(SourceCallbacks callbacks) {
  const core::Logger log(describe());
  const double period_ns = 1e9 / config_.fps;
  const int64_t start_ns = core::monotonic_now_ns();
  uint64_t tick = 0, delivered = 0;
  log.debug("pacing {} frames at {:g} fps", max_frames_ ? fmt::format("{}", max_frames_) : "unbounded", config_.fps);
  if (callbacks.on_state) callbacks.on_state(true, "synthetic desktop started");
  while (sleep_until(start_ns + int64_t(std::llround(double(tick) * period_ns)), running_)) {
    auto frame = render_next();
    render_cpu_ns_ = core::thread_cpu_ns();
    if (frame) {
      callbacks.on_frame(std::move(*frame));
      ++delivered;
      if (max_frames_ != 0 && delivered >= max_frames_) {
        finished_ = true;
        break;
      }
    } else if (skipped_busy_.fetch_add(1) == 0) {
      log.warn("skipping a tick: {} (the consumer holds every frame; more follow at debug level)", frame.error());
    } else {
      log.debug("skipping a tick: {}", frame.error());
    }
    auto due = uint64_t(double(core::monotonic_now_ns() - start_ns) / period_ns);
    if (due > tick + 1) skipped_late_ += due - (tick + 1);
    tick = std::max(tick + 1, due);
  }
  running_ = false;
  log.info("stopped after {} frames ({} ticks skipped with every buffer busy, {} skipped late)", delivered,
           skipped_busy_.load(), skipped_late_.load());
}

}  // namespace vdistream::capture
