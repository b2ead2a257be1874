// Button masks and wheel steps from spice-server become InputSink button events.
#include <catch2/catch.hpp>

#include <vector>

#include "spice/inputs.hpp"

using namespace vdistream;
using spice::ButtonTracker;

namespace {

struct Recorded {
  core::MouseButton button;
  bool pressed;
  bool operator==(const Recorded&) const = default;
};

}  // namespace

TEST_CASE("button masks turn into press and release events of the buttons that changed") {
  ButtonTracker tracker;
  std::vector<Recorded> out;
  auto emit = [&](const core::InputEvent& e) { out.push_back({e.button, e.pressed}); };
  tracker.update(spice::kLocalLeft, emit);
  tracker.update(spice::kLocalLeft | spice::kLocalRight, emit);
  tracker.update(spice::kLocalLeft | spice::kLocalRight, emit);  // no change, no event
  tracker.update(spice::kLocalMiddle, emit);
  CHECK(out == std::vector<Recorded>{{core::MouseButton::Left, true},
                                     {core::MouseButton::Right, true},
                                     {core::MouseButton::Left, false},
                                     {core::MouseButton::Right, false},
                                     {core::MouseButton::Middle, true}});
}

TEST_CASE("each wheel step is a click of WheelUp or WheelDown") {
  std::vector<Recorded> out;
  auto emit = [&](const core::InputEvent& e) { out.push_back({e.button, e.pressed}); };
  ButtonTracker::wheel(-1, emit);
  ButtonTracker::wheel(2, emit);
  CHECK(out == std::vector<Recorded>{{core::MouseButton::WheelUp, true},
                                     {core::MouseButton::WheelUp, false},
                                     {core::MouseButton::WheelDown, true},
                                     {core::MouseButton::WheelDown, false},
                                     {core::MouseButton::WheelDown, true},
                                     {core::MouseButton::WheelDown, false}});
}
