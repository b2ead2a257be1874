// Keyboard, mouse and window size going back to one QEMU console. send() may be called from any
// thread; the D-Bus calls are made on the source's loop thread, in the order they were sent.
#pragma once

#include <gio/gio.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/input.hpp"
#include "core/log.hpp"
#include "core/status.hpp"
#include "glib/loop_thread.hpp"
#include "glib/ptr.hpp"

namespace vdistream::capture::qemu {

struct VmInputCounters {
  uint64_t sent = 0;     // calls made
  uint64_t dropped = 0;  // events while no VM was connected
  uint64_t errors = 0;   // calls QEMU answered with an error
  uint64_t shed = 0;     // events not sent while QEMU left too many calls unanswered (see kMaxPending*)
};

class VmInput final : public core::InputSink {
 public:
  // Calls QEMU has not answered bound what is sent next. Pointer motion gives way first (the next
  // motion that is sent carries the pointer to where it is by then), presses next; releases go on
  // until the last bound, so a key let go in the client is let go in the guest once QEMU reads.
  static constexpr int kMaxPendingMotion = 64;
  static constexpr int kMaxPendingPress = 256;
  static constexpr int kMaxPending = 1024;

  static constexpr int kCallTimeoutMs = 1000;  // a call QEMU has not answered by then has failed
  VmInput(glib::LoopThread& loop, std::string name, int call_timeout_ms = kCallTimeoutMs);
  ~VmInput() override;

  void send(const core::InputEvent& event) override;
  // Asks the guest to resize the console to a client's window (Console.SetUIInfo). `done` runs
  // on the source's thread with QEMU's answer (VGA, for one, does not support it).
  void set_ui_info(uint32_t width, uint32_t height, std::function<void(core::Status)> done);

  // On the loop thread: the console events go to from now on, and its mouse mode.
  void attach(GDBusConnection* connection, const char* peer_name, const std::string& console_path, bool absolute,
              uint32_t leds = 0);
  void detach();  // drops later events and cancels calls in flight
  // Calls whose answer has not been dispatched yet (the source drains them before it stops).
  int pending() const { return pending_; }

  bool absolute() const { return absolute_; }
  uint32_t keyboard_leds() const override { return leds_; }  // Keyboard.Modifiers, followed
  VmInputCounters counters() const { return {sent_, dropped_, errors_, shed_}; }

 private:
  struct Call;
  void deliver(const core::InputEvent& event);  // on the loop thread
  bool shed(const core::InputEvent& event);     // on the loop thread: too many calls unanswered for it
  void call(const char* interface, const char* method, GVariant* parameters, std::function<void(core::Status)> done = {});
  static void on_reply(GObject* source, GAsyncResult* result, gpointer call);
  static void on_properties_changed(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar*,
                                    GVariant* parameters, gpointer self);

  glib::LoopThread& loop_;
  core::Logger log_;
  const int call_timeout_ms_;
  core::LogLimiter refusals_logged_;  // a peer repeats refused calls at its own pace
  // Loop thread only:
  glib::GObjectPtr<GDBusConnection> connection_;
  glib::GObjectPtr<GCancellable> cancellable_;
  std::string peer_name_;
  bool peer_is_bus_ = false;
  std::string console_path_;
  guint properties_subscription_ = 0;
  int32_t last_x_ = 0, last_y_ = 0;  // where we last put an absolute pointer
  int32_t unsent_dx_ = 0, unsent_dy_ = 0;  // relative motion shed, added to the next one sent

  std::atomic<bool> absolute_{false};
  std::atomic<uint32_t> leds_{0};
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> sent_{0}, dropped_{0}, errors_{0}, shed_{0};
};

}  // namespace vdistream::capture::qemu
