// An Encoder over a chain of backends in preference order. It encodes with the first one that
// opens; when that one fails (at open: a card out of encoder sessions; or mid-stream: a device
// reset, a driver error) it hands over to the next, re-encodes the same picture in full with an
// IDR, and keeps the reason. Viewers see one keyframe, not a gap. Asked to re-probe (a new
// session on a desktop that fell back), it tries the earlier backends again at the next frame.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/log.hpp"
#include "encode/encoder.hpp"

namespace vdistream::encode {

struct FallbackLink {
  std::string backend;  // "nvenc", "software", ...
  std::function<core::Result<std::unique_ptr<Encoder>>(const EncoderConfig&)> create;
};

struct FallbackEvent {
  std::string from;    // the backend given up ("" when the first one never opened)
  std::string to;      // the one taken over ("" when none was left)
  std::string reason;  // what failed, in the backend's words
  uint64_t at_frame = 0;  // frames the wrapper had encoded when it happened
};

class FallbackEncoder final : public Encoder {
 public:
  // Opens the first link that opens at `config`'s size (the probe size when 0); an error lists
  // every link's reason when none does.
  static core::Result<std::unique_ptr<FallbackEncoder>> create(std::vector<FallbackLink> chain, const EncoderConfig& config,
                                                               std::string log_scope = "encode");

  // The current backend's name, and when it is not the first choice, why ("fell back: ...").
  std::string name() const override;
  core::Result<std::vector<core::EncodedFrame>> encode(const core::Frame& frame) override;
  void request_keyframe() override { keyframe_requested_ = true; }
  void set_bitrate(uint32_t bps) override { bitrate_ = bps; }
  uint32_t bitrate() const override { return bitrate_; }
  EncoderCounters counters() const override;

  // From any thread: at the next frame, try the links before the current one again.
  void request_reprobe() { reprobe_requested_ = true; }

  std::string current_backend() const;
  std::vector<FallbackEvent> events() const;  // every hand-over and every link that would not open

 private:
  FallbackEncoder(std::vector<FallbackLink> chain, const EncoderConfig& config, std::string log_scope);
  // Opens links from `first` on; true when one opened (then current_ is it).
  bool open_from(size_t first, const std::string& given_up, const std::string& why);
  void retire_current();
  void record(FallbackEvent e);
  void try_earlier_links();

  std::vector<FallbackLink> chain_;
  EncoderConfig config_;
  core::Logger log_;
  size_t index_ = 0;  // current link
  std::unique_ptr<Encoder> current_;  // encode thread only
  std::atomic<bool> keyframe_requested_{false};
  std::atomic<bool> reprobe_requested_{false};
  std::atomic<uint32_t> bitrate_;
  uint64_t frames_ = 0;
  EncoderCounters retired_;  // counters of encoders handed over from

  mutable std::mutex mutex_;  // guards what status readers see
  std::string current_name_, current_backend_;
  std::vector<FallbackEvent> events_;
  EncoderCounters current_counters_;
};

}  // namespace vdistream::encode
