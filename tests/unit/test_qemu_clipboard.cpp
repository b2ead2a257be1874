// capture/qemu/clipboard against a GDBus peer in QEMU's role (its ui/dbus-clipboard.c behaviour:
// Register reads our object before it answers; Grab/Release/Request both ways; serials): a
// viewer's copy becomes QEMU's Grab and QEMU's Request gets the text; QEMU's Grab makes us ask
// for the guest's text, which reaches the viewers; an older or tied grab of QEMU's is discarded.
#include <catch2/catch.hpp>
#include <gio/gio.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "capture/qemu/clipboard.hpp"
#include "capture/qemu/display_connection.hpp"
#include "fixtures/wait.hpp"

using namespace vdistream;
using capture::qemu::QemuClipboard;
using namespace std::chrono_literals;

namespace {

constexpr const char* kXml = R"(<node><interface name="org.qemu.Display1.Clipboard">
  <method name="Register"/><method name="Unregister"/>
  <method name="Grab"><arg type="u" direction="in"/><arg type="u" direction="in"/><arg type="as" direction="in"/></method>
  <method name="Release"><arg type="u" direction="in"/></method>
  <method name="Request"><arg type="u" direction="in"/><arg type="as" direction="in"/>
    <arg type="s" direction="out"/><arg type="ay" direction="out"/></method>
</interface></node>)";

struct Viewer : core::ClipboardClient {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> texts;
  void vm_copied(const core::ClipboardTextPtr& text) override {
    std::lock_guard lock(mutex);
    texts.push_back(text->text);
    changed.notify_all();
  }
  void vm_cleared() override {}
  bool wait(size_t n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 5s, [&] { return texts.size() >= n; });
  }
};

// QEMU's side: serves its Clipboard on its own thread, records what we call.
class FakeQemu {
 public:
  FakeQemu() : hub(std::make_shared<core::ClipboardHub>("test", 1000)) {
    int pair[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    core::UniqueFd ours(pair[0]), theirs(pair[1]);
    qemu_context_.reset(g_main_context_new());
    our_context_.reset(g_main_context_new());
    // Our side: the source's thread, its context the connection's.
    std::promise<void> ready;
    ours_ = std::thread([this, fd = ours.release(), &ready]() mutable {
      glib::ThreadDefaultContext use(our_context_.get());
      auto connection = capture::qemu::open_peer_connection(core::UniqueFd(fd), GDBusConnectionFlags(0), nullptr);
      if (connection) {
        our_connection_ = std::move(*connection);
        auto c = QemuClipboard::create(our_connection_.get(), nullptr, hub, "test");
        if (c) clipboard_ = std::move(*c);
      }
      ready.set_value();
      while (!quit_) g_main_context_iteration(our_context_.get(), TRUE);
      clipboard_.reset();
    });
    // QEMU's side.
    std::promise<void> served;
    qemu_ = std::thread([this, fd = theirs.release(), &served] {
      glib::ThreadDefaultContext use(qemu_context_.get());
      glib::GErrorSlot err;
      glib::GObjectPtr<GSocket> socket(g_socket_new_from_fd(fd, err.out()));
      glib::GObjectPtr<GSocketConnection> stream(g_socket_connection_factory_create_connection(socket.get()));
      gchar* guid = g_dbus_generate_guid();
      peer_.reset(g_dbus_connection_new_sync(G_IO_STREAM(stream.get()), guid,
                                             G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER, nullptr, nullptr, err.out()));
      g_free(guid);
      node_.reset(g_dbus_node_info_new_for_xml(kXml, nullptr));
      static const GDBusInterfaceVTable vtable = {&FakeQemu::on_call, nullptr, nullptr, {}};
      g_dbus_connection_register_object(peer_.get(), QemuClipboard::kPath, node_->interfaces[0], &vtable, this, nullptr,
                                        nullptr);
      served.set_value();
      while (!quit_) g_main_context_iteration(qemu_context_.get(), TRUE);
    });
    served.get_future().wait();
    ready.get_future().wait();
    REQUIRE(peer_);
    REQUIRE(clipboard_);
  }
  ~FakeQemu() {
    quit_ = true;
    g_main_context_wakeup(our_context_.get());
    ours_.join();
    g_main_context_wakeup(qemu_context_.get());
    qemu_.join();
    g_dbus_connection_close_sync(peer_.get(), nullptr, nullptr);
  }

  // QEMU calls our Clipboard (from the test's thread).
  core::Result<glib::GVariantPtr> call(const char* method, GVariant* parameters) {
    glib::GErrorSlot err;
    glib::GVariantPtr reply(g_dbus_connection_call_sync(peer_.get(), nullptr, QemuClipboard::kPath,
                                                        QemuClipboard::kInterface, method, parameters, nullptr,
                                                        G_DBUS_CALL_FLAGS_NONE, 5000, nullptr, err.out()));
    if (!reply) return core::Error{err.message()};
    return reply;
  }
  template <typename Pred>
  bool wait(Pred pred) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 5s, pred);
  }

  std::shared_ptr<core::ClipboardHub> hub;
  std::mutex mutex;
  std::condition_variable changed;
  int registers = 0, requests = 0;
  std::vector<std::pair<uint32_t, uint32_t>> grabs;  // selection, serial
  bool read_our_object = false;
  std::string guest_text = "from the guest";

 private:
  static void on_call(GDBusConnection* connection, const gchar*, const gchar*, const gchar*, const gchar* method,
                      GVariant* parameters, GDBusMethodInvocation* invocation, gpointer data) {
    auto* self = static_cast<FakeQemu*>(data);
    const std::string m = method;
    if (m == "Register") {
      // As QEMU: a proxy on the caller's object, its properties read synchronously, then the answer.
      glib::GVariantPtr props(g_dbus_connection_call_sync(connection, nullptr, QemuClipboard::kPath,
                                                          "org.freedesktop.DBus.Properties", "GetAll",
                                                          g_variant_new("(s)", QemuClipboard::kInterface), nullptr,
                                                          G_DBUS_CALL_FLAGS_NONE, 3000, nullptr, nullptr));
      std::lock_guard lock(self->mutex);
      self->read_our_object = props != nullptr;
      ++self->registers;
      self->changed.notify_all();
      g_dbus_method_invocation_return_value(invocation, nullptr);
      return;
    }
    if (m == "Grab") {
      uint32_t selection, serial;
      g_variant_get(parameters, "(uu^a&s)", &selection, &serial, nullptr);
      std::lock_guard lock(self->mutex);
      self->grabs.emplace_back(selection, serial);
      self->changed.notify_all();
      g_dbus_method_invocation_return_value(invocation, nullptr);
      return;
    }
    if (m == "Request") {
      std::string text;
      {
        std::lock_guard lock(self->mutex);
        ++self->requests;
        text = self->guest_text;
        self->changed.notify_all();
      }
      g_dbus_method_invocation_return_value(
          invocation, g_variant_new("(s@ay)", core::kClipboardText,
                                    g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, text.data(), text.size(), 1)));
      return;
    }
    g_dbus_method_invocation_return_value(invocation, nullptr);
  }

  glib::GMainContextPtr qemu_context_, our_context_;
  std::thread ours_, qemu_;
  std::atomic<bool> quit_{false};
  glib::GObjectPtr<GDBusConnection> peer_, our_connection_;
  glib::GDBusNodeInfoPtr node_;
  std::unique_ptr<QemuClipboard> clipboard_;
};

GVariant* grab_args(uint32_t serial) {  // floating: the call takes it
  const char* mimes[] = {core::kClipboardText, nullptr};
  return g_variant_new("(uu^as)", 0u, serial, mimes);
}

std::string request_text(FakeQemu& q) {
  const char* mimes[] = {core::kClipboardText, nullptr};
  auto reply = q.call("Request", g_variant_new("(u^as)", 0u, mimes));
  if (!reply) return "error: " + reply.error();
  const char* mime = nullptr;
  GVariant* data = nullptr;
  g_variant_get(reply->get(), "(&s@ay)", &mime, &data);
  gsize size = 0;
  const auto* bytes = static_cast<const char*>(g_variant_get_fixed_array(data, &size, 1));
  std::string text(bytes ? bytes : "", size);
  g_variant_unref(data);
  return text;
}

}  // namespace

TEST_CASE("QEMU's clipboard: we register (QEMU reads our object meanwhile) and a viewer's copy is QEMU's to paste") {
  FakeQemu q;
  REQUIRE(q.wait([&] { return q.registers == 1; }));
  CHECK(q.read_our_object);
  REQUIRE(test::eventually([&] { return q.hub->stats().vm_connected; }));
  CHECK(request_text(q) == "error: GDBus.Error:org.qemu.Display1.Error.Failed: Empty clipboard");
  REQUIRE(q.hub->client_copied("from a viewer"));
  REQUIRE(q.wait([&] { return q.grabs.size() == 1; }));
  CHECK(q.grabs[0] == std::pair<uint32_t, uint32_t>{0, 1});  // the CLIPBOARD selection, serial 1
  CHECK(request_text(q) == "from a viewer");
  CHECK(q.hub->stats().vm_requests == 1);
}

TEST_CASE("QEMU's grab brings the guest's text to the viewers - an older or tied grab is discarded") {
  FakeQemu q;
  REQUIRE(test::eventually([&] { return q.hub->stats().vm_connected; }));
  Viewer viewer;
  q.hub->add_client(&viewer);
  REQUIRE(q.call("Grab", grab_args(3)));
  REQUIRE(viewer.wait(1));
  CHECK(viewer.texts[0] == "from the guest");
  CHECK(q.requests == 1);

  // Ours now (serial 4): QEMU's grab with 4 is a tie (we keep it), with 2 older; both discarded.
  REQUIRE(q.hub->client_copied("mine"));
  REQUIRE(q.wait([&] { return q.grabs.size() == 1; }));
  CHECK(q.grabs[0].second == 4);
  REQUIRE(q.call("Grab", grab_args(4)));
  REQUIRE(q.call("Grab", grab_args(2)));
  CHECK(request_text(q) == "mine");
  CHECK(q.requests == 1);
  // A newer one wins.
  {
    std::lock_guard lock(q.mutex);
    q.guest_text = "newer";
  }
  REQUIRE(q.call("Grab", grab_args(5)));
  REQUIRE(viewer.wait(2));
  CHECK(viewer.texts[1] == "newer");
  CHECK(request_text(q) == "error: GDBus.Error:org.qemu.Display1.Error.Failed: Empty clipboard");
  q.hub->remove_client(&viewer);
}
