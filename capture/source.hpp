// Where frames come from: one Source per desktop head.
#pragma once

#include <functional>
#include <string>

#include "core/frame.hpp"
#include "core/input.hpp"
#include "core/status.hpp"

namespace vdistream::capture {

// Callbacks a source calls, from its own thread. on_frame must return quickly (it hands the
// frame to a latest-wins slot).
struct SourceCallbacks {
  std::function<void(core::Frame)> on_frame;
  std::function<void(const core::CursorShape&)> on_cursor_shape;
  std::function<void(const core::CursorPosition&)> on_cursor_position;
  // Connected / disconnected (with the reason), for sources that can lose their VM.
  std::function<void(bool connected, const std::string& why)> on_state;
};

class Source {
 public:
  virtual ~Source() = default;
  virtual std::string describe() const = 0;
  // Frames per second the source aims at (sizes the encoder's one-frame VBV); 0 if unknown.
  virtual double frame_rate() const { return 0; }
  virtual core::Status start(SourceCallbacks callbacks) = 0;
  virtual void stop() = 0;
  // Keyboard and mouse of the VM behind this source; nullptr when it has none.
  virtual core::InputSink* input() { return nullptr; }
};

}  // namespace vdistream::capture
