// capture/qemu/audio_listener: QEMU's AudioOutListener calls, made by a GDBus peer in QEMU's role,
// become packets with their stream's format and volume; what does not add up is refused at the edge.
#include <catch2/catch.hpp>
#include <gio/gio.h>
#include <sys/socket.h>

#include <future>
#include <mutex>
#include <thread>

#include "capture/qemu/audio_listener.hpp"
#include "capture/qemu/display_connection.hpp"

using namespace vdistream;
using capture::qemu::AudioListener;

namespace {

class AudioPeer {
 public:
  AudioPeer() {
    int pair[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    core::UniqueFd ours(pair[0]), theirs(pair[1]);
    context_.reset(g_main_context_new());
    std::promise<void> ready;
    thread_ = std::thread([this, fd = ours.release(), &ready]() mutable {
      glib::ThreadDefaultContext use(context_.get());
      auto connection = capture::qemu::open_peer_connection(core::UniqueFd(fd), G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING,
                                                            nullptr);
      if (connection) {
        capture::SourceCallbacks callbacks;
        callbacks.on_audio = [this](const core::AudioPacket& p) {
          std::lock_guard lock(mutex_);
          packets_.push_back({p.stream, p.format, std::vector<uint8_t>(p.data, p.data + p.size), p.volume});
        };
        callbacks.on_audio_stop = [this](uint64_t stream) {
          std::lock_guard lock(mutex_);
          stops_.push_back(stream);
        };
        auto listener = AudioListener::create(std::move(*connection), "test", callbacks);
        if (listener) listener_ = std::move(*listener);
      }
      ready.set_value();
      while (!quit_) g_main_context_iteration(context_.get(), TRUE);
      listener_.reset();
    });
    glib::GErrorSlot err;
    glib::GObjectPtr<GSocket> socket(g_socket_new_from_fd(theirs.get(), err.out()));
    REQUIRE(socket);
    theirs.release();
    glib::GObjectPtr<GSocketConnection> stream(g_socket_connection_factory_create_connection(socket.get()));
    gchar* guid = g_dbus_generate_guid();
    peer_.reset(g_dbus_connection_new_sync(G_IO_STREAM(stream.get()), guid, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_SERVER,
                                           nullptr, nullptr, err.out()));
    g_free(guid);
    ready.get_future().wait();
    REQUIRE(peer_);
    REQUIRE(listener_);
  }
  ~AudioPeer() {
    quit_ = true;
    g_main_context_wakeup(context_.get());
    thread_.join();
    g_dbus_connection_close_sync(peer_.get(), nullptr, nullptr);
  }

  core::Status call(const char* method, GVariant* parameters) {
    glib::GErrorSlot err;
    glib::GVariantPtr reply(g_dbus_connection_call_sync(peer_.get(), nullptr, AudioListener::kObjectPath,
                                                        AudioListener::kInterface, method, parameters, nullptr,
                                                        G_DBUS_CALL_FLAGS_NONE, 5000, nullptr, err.out()));
    if (!reply) return core::Error{err.message()};
    return {};
  }
  core::Status init(uint64_t id, uint8_t bits, bool is_signed, uint32_t rate, uint8_t channels, uint32_t bpf, uint32_t bps) {
    return call("Init", g_variant_new("(tybbuyuub)", id, bits, is_signed, FALSE, rate, channels, bpf, bps, FALSE));
  }
  core::Status write(uint64_t id, const std::vector<uint8_t>& pcm) {
    return call("Write", g_variant_new("(t@ay)", id,
                                       g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, pcm.data(), pcm.size(), 1)));
  }

  struct Got {
    uint64_t stream;
    core::AudioFormat format;
    std::vector<uint8_t> pcm;
    core::AudioVolume volume;
  };
  std::vector<Got> packets() {
    std::lock_guard lock(mutex_);
    return packets_;
  }
  std::vector<uint64_t> stops() {
    std::lock_guard lock(mutex_);
    return stops_;
  }
  capture::AudioCaptureStats stats() { return listener_->stats(); }

 private:
  glib::GMainContextPtr context_;
  std::thread thread_;
  std::atomic<bool> quit_{false};
  std::unique_ptr<AudioListener> listener_;
  glib::GObjectPtr<GDBusConnection> peer_;
  std::mutex mutex_;
  std::vector<Got> packets_;
  std::vector<uint64_t> stops_;
};

}  // namespace

TEST_CASE("QEMU's audio calls become packets of their stream's format and volume") {
  AudioPeer peer;
  REQUIRE(peer.init(42, 16, true, 48000, 2, 4, 192000));
  REQUIRE(peer.call("SetEnabled", g_variant_new("(tb)", uint64_t(42), TRUE)));
  const std::vector<uint8_t> pcm(480 * 4, 7);
  REQUIRE(peer.write(42, pcm));
  const uint8_t half[2] = {128, 64};
  REQUIRE(peer.call("SetVolume", g_variant_new("(tb@ay)", uint64_t(42), FALSE,
                                               g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, half, 2, 1))));
  REQUIRE(peer.write(42, pcm));
  REQUIRE(peer.call("SetEnabled", g_variant_new("(tb)", uint64_t(42), FALSE)));
  auto got = peer.packets();
  REQUIRE(got.size() == 2);
  CHECK(got[0].stream == 42);
  CHECK(got[0].format == core::AudioFormat{48000, 2, 16, true, false, false, 4});
  CHECK(got[0].pcm == pcm);
  CHECK(got[0].volume.levels.empty());
  CHECK(got[1].volume.levels == std::vector<uint8_t>{128, 64});
  CHECK(peer.stops() == std::vector<uint64_t>{42});
  auto stats = peer.stats();
  CHECK(stats.connected);
  CHECK(stats.format == "s16le 48000 Hz 2 ch");
  CHECK(stats.packets == 2);
  CHECK(stats.bytes == 2 * pcm.size());
  CHECK_FALSE(stats.playing);
  REQUIRE(peer.call("Fini", g_variant_new("(t)", uint64_t(42))));
  CHECK_FALSE(peer.write(42, pcm));  // the stream is gone
}

TEST_CASE("audio that does not add up is refused at the edge with its numbers") {
  AudioPeer peer;
  auto refused = [](const core::Status& s, const char* words) {
    INFO(s.error());
    CHECK_FALSE(s);
    CHECK(s.error().find(words) != std::string::npos);
  };
  refused(peer.write(1, std::vector<uint8_t>(8)), "stream 1 was never initialised");
  refused(peer.init(1, 16, true, 48000, 2, 4, 100), "100 bytes per second, 4 bytes × 48000 Hz make 192000");
  refused(peer.init(1, 16, true, 48000, 2, 3, 144000), "2 channels × 16 bits make 4");
  refused(peer.init(1, 24, true, 48000, 2, 6, 288000), "24-bit integer samples are not read");
  refused(peer.init(1, 16, true, 1000, 2, 4, 4000), "rate 1000 Hz is outside");
  REQUIRE(peer.init(1, 16, true, 44100, 2, 4, 176400));
  refused(peer.write(1, std::vector<uint8_t>(6)), "6 bytes are not whole frames of 4 bytes");
  refused(peer.write(1, std::vector<uint8_t>(AudioListener::kMaxWriteBytes + 4)), "in one write");
  refused(peer.call("SetEnabled", g_variant_new("(tb)", uint64_t(9), TRUE)), "never initialised");
  refused(peer.call("Nonsense", g_variant_new("()")), "");
  REQUIRE(peer.write(1, std::vector<uint8_t>(8)));  // the stream still works
  CHECK(peer.packets().size() == 1);
  auto stats = peer.stats();
  CHECK(stats.refused == 8);  // the unknown method is GDBus's own refusal
  CHECK(stats.last_refusal.find("SetEnabled: stream 9 was never initialised") != std::string::npos);
}
