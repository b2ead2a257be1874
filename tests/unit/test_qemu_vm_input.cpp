// capture/qemu/vm_input against a GDBus peer in QEMU's console role that stops answering: what is
// sent is bounded by the calls left unanswered, pointer motion giving way first and key releases
// last, and a relative mouse loses none of its motion; once QEMU answers, input flows again.
#include <catch2/catch.hpp>
#include <gio/gio.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

#include "capture/qemu/display_connection.hpp"
#include "capture/qemu/vm_input.hpp"
#include "fixtures/wait.hpp"
#include "glib/loop_thread.hpp"

using namespace vdistream;
using capture::qemu::VmInput;
using namespace std::chrono_literals;

namespace {

constexpr const char* kPath = "/org/qemu/Display1/Console_0";
constexpr const char* kXml = R"(<node>
  <interface name="org.qemu.Display1.Keyboard">
    <method name="Press"><arg type="u" direction="in"/></method>
    <method name="Release"><arg type="u" direction="in"/></method>
  </interface>
  <interface name="org.qemu.Display1.Mouse">
    <method name="Press"><arg type="u" direction="in"/></method>
    <method name="Release"><arg type="u" direction="in"/></method>
    <method name="SetAbsPosition"><arg type="u" direction="in"/><arg type="u" direction="in"/></method>
    <method name="RelMotion"><arg type="i" direction="in"/><arg type="i" direction="in"/></method>
  </interface>
</node>)";

struct Received {
  std::string method;  // "Keyboard.Press", "Mouse.RelMotion", ...
  int64_t a = 0, b = 0;
};

// QEMU's console: its Keyboard and Mouse on its own thread; while `hold`, calls wait unanswered.
class FakeConsole {
 public:
  explicit FakeConsole(int fd) {
    std::promise<void> served;
    thread_ = std::thread([this, fd, &served] {
      glib::ThreadDefaultContext use(context_.get());
      glib::GErrorSlot err;
      glib::GObjectPtr<GSocket> socket(g_socket_new_from_fd(fd, err.out()));
      glib::GObjectPtr<GSocketConnection> stream(g_socket_connection_factory_create_connection(socket.get()));
      gchar* guid = g_dbus_generate_guid();
      served.set_value();  // our side connects while this authenticates it
      peer_.reset(g_dbus_connection_new_sync(G_IO_STREAM(stream.get()), guid, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER,
                                             nullptr, nullptr, err.out()));
      g_free(guid);
      node_.reset(g_dbus_node_info_new_for_xml(kXml, nullptr));
      static const GDBusInterfaceVTable vtable = {&FakeConsole::on_call, nullptr, nullptr, {}};
      for (int i = 0; node_ && peer_ && node_->interfaces[i]; ++i)
        g_dbus_connection_register_object(peer_.get(), kPath, node_->interfaces[i], &vtable, this, nullptr, nullptr);
      registered_ = true;
      while (!quit_) g_main_context_iteration(context_.get(), TRUE);
      answer_held();
      if (peer_) g_dbus_connection_close_sync(peer_.get(), nullptr, nullptr);
    });
    served.get_future().wait();
  }
  ~FakeConsole() {
    quit_ = true;
    g_main_context_wakeup(context_.get());
    thread_.join();
  }

  bool wait_received(size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return received_.size() >= n; });
  }
  std::vector<Received> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  void set_hold(bool hold) {
    hold_ = hold;
    if (!hold) {
      // Answered on QEMU's thread, as it would.
      g_main_context_invoke(context_.get(), [](gpointer self) {
        static_cast<FakeConsole*>(self)->answer_held();
        return G_SOURCE_REMOVE;
      }, this);
    }
  }
  bool ready() const { return registered_; }

 private:
  void answer_held() {
    std::vector<GDBusMethodInvocation*> held;
    {
      std::lock_guard lock(mutex_);
      held.swap(held_);
    }
    for (auto* invocation : held) g_dbus_method_invocation_return_value(invocation, nullptr);
  }
  static void on_call(GDBusConnection*, const gchar*, const gchar*, const gchar* interface, const gchar* method,
                      GVariant* parameters, GDBusMethodInvocation* invocation, gpointer data) {
    auto* self = static_cast<FakeConsole*>(data);
    Received r{std::string(std::strrchr(interface, '.') + 1) + "." + method};
    if (g_variant_is_of_type(parameters, G_VARIANT_TYPE("(u)"))) {
      guint32 v;
      g_variant_get(parameters, "(u)", &v);
      r.a = v;
    } else if (g_variant_is_of_type(parameters, G_VARIANT_TYPE("(uu)"))) {
      guint32 x, y;
      g_variant_get(parameters, "(uu)", &x, &y);
      r.a = x, r.b = y;
    } else if (g_variant_is_of_type(parameters, G_VARIANT_TYPE("(ii)"))) {
      gint32 x, y;
      g_variant_get(parameters, "(ii)", &x, &y);
      r.a = x, r.b = y;
    }
    {
      std::lock_guard lock(self->mutex_);
      self->received_.push_back(r);
      if (self->hold_) self->held_.push_back(invocation);
      self->changed_.notify_all();
    }
    if (!self->hold_) g_dbus_method_invocation_return_value(invocation, nullptr);
  }

  glib::GMainContextPtr context_{g_main_context_new()};
  glib::GObjectPtr<GDBusConnection> peer_;
  std::unique_ptr<GDBusNodeInfo, decltype(&g_dbus_node_info_unref)> node_{nullptr, &g_dbus_node_info_unref};
  std::thread thread_;
  std::atomic<bool> quit_{false}, hold_{true}, registered_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Received> received_;
  std::vector<GDBusMethodInvocation*> held_;
};

// Our side: a VmInput on its loop thread, attached to the fake console. Calls time out after a
// minute here, so nothing but the fake's answers ends them.
struct Rig {
  glib::LoopThread loop;
  std::unique_ptr<FakeConsole> qemu;
  glib::GObjectPtr<GDBusConnection> connection;
  VmInput input{loop, "vm-input-test", 60'000};

  explicit Rig(bool absolute) {
    int pair[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    qemu = std::make_unique<FakeConsole>(pair[1]);
    loop.start();
    const bool attached = loop.invoke([&] {
      auto c = capture::qemu::open_peer_connection(core::UniqueFd(pair[0]), GDBusConnectionFlags(0), nullptr);
      if (!c) return false;
      connection = std::move(*c);
      input.attach(connection.get(), nullptr, kPath, absolute);
      return true;
    });
    REQUIRE(attached);
    REQUIRE(test::eventually([&] { return qemu->ready(); }, 5s));
  }
  ~Rig() {
    // Every answer dispatched first (as QemuSource drains its calls): a reply still on its way
    // when the loop stops would leave its call's record behind.
    test::eventually([&] { return pending() == 0; }, 5s);
    loop.invoke([&] { input.detach(); });
    qemu.reset();
    loop.stop();
  }
  int pending() {
    return loop.invoke([&] { return input.pending(); });
  }
};

}  // namespace

TEST_CASE("input toward a QEMU that stops answering: motion gives way first, then presses, and releases still go") {
  Rig rig(/*absolute=*/true);
  for (int i = 0; i < 100; ++i) rig.input.send(core::InputEvent::move_to(i, i));
  rig.input.send(core::InputEvent::key(0x1e, true));
  rig.input.send(core::InputEvent::key(0x1e, false));
  for (int i = 0; i < 250; ++i) rig.input.send(core::InputEvent::key(0x1f, true));
  for (int i = 0; i < 250; ++i) rig.input.send(core::InputEvent::key(0x1f, false));

  // 64 motions; A pressed and released; presses until 256 are unanswered (190); every release.
  constexpr size_t kSent = VmInput::kMaxPendingMotion + 2 + (VmInput::kMaxPendingPress - VmInput::kMaxPendingMotion - 2) + 250;
  REQUIRE(rig.qemu->wait_received(kSent));
  CHECK(rig.pending() == int(kSent));  // on the loop, after every event posted: the counters are final
  const auto counters = rig.input.counters();
  CHECK(counters.sent == kSent);
  CHECK(counters.shed == (100 - VmInput::kMaxPendingMotion) + (250 - 190));
  CHECK(counters.errors == 0);
  const auto got = rig.qemu->received();
  REQUIRE(got.size() == kSent);
  CHECK(got[63].method == "Mouse.SetAbsPosition");
  CHECK(got[63].a == 63);
  CHECK(got[64].method == "Keyboard.Press");
  CHECK(got[65].method == "Keyboard.Release");
  CHECK(got[65].a == 0x1e);
  CHECK(std::count_if(got.begin(), got.end(), [](const Received& r) { return r.method == "Keyboard.Release" && r.a == 0x1f; }) == 250);

  // QEMU answers again: nothing waits, and the next motion goes where the pointer is.
  rig.qemu->set_hold(false);
  REQUIRE(test::eventually([&] { return rig.pending() == 0; }, 10s));
  rig.input.send(core::InputEvent::move_to(500, 400));
  REQUIRE(rig.qemu->wait_received(kSent + 1));
  const auto last = rig.qemu->received().back();
  CHECK(last.method == "Mouse.SetAbsPosition");
  CHECK(last.a == 500);
  CHECK(last.b == 400);
  CHECK(rig.input.counters().errors == 0);
}

TEST_CASE("a relative mouse's motion shed while QEMU does not answer arrives with the next motion sent") {
  Rig rig(/*absolute=*/false);
  for (int i = 0; i < VmInput::kMaxPendingMotion + 10; ++i) rig.input.send(core::InputEvent::move_by(1, 2));
  REQUIRE(rig.qemu->wait_received(VmInput::kMaxPendingMotion));
  // pending() runs on the loop after every event posted before it: the shed ones are counted by then.
  CHECK(rig.pending() == VmInput::kMaxPendingMotion);
  CHECK(rig.input.counters().shed == 10);
  rig.qemu->set_hold(false);
  REQUIRE(test::eventually([&] { return rig.pending() == 0; }, 10s));
  rig.input.send(core::InputEvent::move_by(1, 2));
  REQUIRE(rig.qemu->wait_received(VmInput::kMaxPendingMotion + 1));
  const auto got = rig.qemu->received();
  int64_t dx = 0, dy = 0;
  for (const auto& r : got) {
    REQUIRE(r.method == "Mouse.RelMotion");
    dx += r.a, dy += r.b;
  }
  CHECK(dx == VmInput::kMaxPendingMotion + 11);  // every step of the pointer, none lost
  CHECK(dy == 2 * (VmInput::kMaxPendingMotion + 11));
  CHECK(got.back().a == 11);
}
