// capture/qemu/audio_listener and audio_in_listener: QEMU's AudioOutListener calls, made by a
// GDBus peer in QEMU's role, become packets with their stream's format and volume; its
// AudioInListener Reads are answered from the desktop's microphone; what does not add up is
// refused at the edge.
#include <catch2/catch.hpp>
#include <gio/gio.h>
#include <sys/socket.h>

#include <cmath>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "capture/qemu/audio_in_listener.hpp"
#include "capture/qemu/audio_listener.hpp"
#include "capture/qemu/display_connection.hpp"
#include "encode/audio/microphone.hpp"
#include "encode/audio/spectrum.hpp"

using namespace vdistream;
using capture::qemu::AudioInListener;
using capture::qemu::AudioListener;

namespace {

// A GDBus peer in QEMU's role, calling listener L (AudioListener or AudioInListener) made by
// `make` on a thread of its own, over a socketpair as Audio.Register*Listener would make.
template <class L>
class Peer {
 public:
  using Make = std::function<core::Result<std::unique_ptr<L>>(glib::GObjectPtr<GDBusConnection>)>;
  explicit Peer(Make make) {
    int pair[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    core::UniqueFd ours(pair[0]), theirs(pair[1]);
    context_.reset(g_main_context_new());
    std::promise<void> ready;
    thread_ = std::thread([this, fd = ours.release(), &ready, &make]() mutable {
      glib::ThreadDefaultContext use(context_.get());
      auto connection = capture::qemu::open_peer_connection(core::UniqueFd(fd), G_DBUS_CONNECTION_FLAGS_DELAY_MESSAGE_PROCESSING,
                                                            nullptr);
      if (connection) {
        auto listener = make(std::move(*connection));
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
  ~Peer() { stop(); }
  // Ends the listener (its destructor may still call back, e.g. on_audio_stop) and the thread:
  // a derived peer calls it first in its own destructor, while the members its callbacks use live.
  void stop() {
    if (!thread_.joinable()) return;
    quit_ = true;
    g_main_context_wakeup(context_.get());
    thread_.join();
    g_dbus_connection_close_sync(peer_.get(), nullptr, nullptr);
  }

  core::Result<glib::GVariantPtr> call_reply(const char* method, GVariant* parameters) {
    glib::GErrorSlot err;
    glib::GVariantPtr reply(g_dbus_connection_call_sync(peer_.get(), nullptr, L::kObjectPath, L::kInterface, method,
                                                        parameters, nullptr, G_DBUS_CALL_FLAGS_NONE, 5000, nullptr,
                                                        err.out()));
    if (!reply) return core::Error{err.message()};
    return reply;
  }
  core::Status call(const char* method, GVariant* parameters) {
    auto reply = call_reply(method, parameters);
    if (!reply) return core::Error{reply.error()};
    return {};
  }
  core::Status init(uint64_t id, uint8_t bits, bool is_signed, uint32_t rate, uint8_t channels, uint32_t bpf, uint32_t bps) {
    return call("Init", g_variant_new("(tybbuyuub)", id, bits, is_signed, FALSE, rate, channels, bpf, bps, FALSE));
  }
  auto stats() { return listener_->stats(); }

 private:
  glib::GMainContextPtr context_;
  std::thread thread_;
  std::atomic<bool> quit_{false};
  std::unique_ptr<L> listener_;
  glib::GObjectPtr<GDBusConnection> peer_;
};

// QEMU writing the guest's sound.
class AudioPeer : public Peer<AudioListener> {
 public:
  AudioPeer()
      : Peer([this](glib::GObjectPtr<GDBusConnection> c) {
          capture::SourceCallbacks callbacks;
          callbacks.on_audio = [this](const core::AudioPacket& p) {
            std::lock_guard lock(mutex_);
            packets_.push_back({p.stream, p.format, std::vector<uint8_t>(p.data, p.data + p.size), p.volume});
          };
          callbacks.on_audio_stop = [this](uint64_t stream) {
            std::lock_guard lock(mutex_);
            stops_.push_back(stream);
          };
          return AudioListener::create(std::move(c), "test", callbacks);
        }) {}
  ~AudioPeer() { stop(); }

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

 private:
  std::mutex mutex_;
  std::vector<Got> packets_;
  std::vector<uint64_t> stops_;
};

// QEMU reading what the guest records.
class MicrophonePeer : public Peer<AudioInListener> {
 public:
  explicit MicrophonePeer(std::shared_ptr<core::Microphone> mic)
      : Peer([mic](glib::GObjectPtr<GDBusConnection> c) { return AudioInListener::create(std::move(c), "test", mic); }) {}

  // Read(id, size): the bytes, or why not.
  core::Result<std::vector<uint8_t>> read(uint64_t id, uint64_t size) {
    auto reply = call_reply("Read", g_variant_new("(tt)", id, size));
    if (!reply) return core::Error{reply.error()};
    GVariant* data = nullptr;
    g_variant_get(reply->get(), "(@ay)", &data);
    glib::GVariantPtr owned(data);
    gsize n = 0;
    const auto* bytes = static_cast<const uint8_t*>(g_variant_get_fixed_array(data, &n, 1));
    return std::vector<uint8_t>(bytes, bytes + n);
  }
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

TEST_CASE("QEMU's Read of the guest's recording gets what a viewer says in the stream's format") {
  auto mic = std::make_shared<encode::MicrophoneMixer>();
  std::vector<bool> heard;
  mic->on_listening([&](bool on) { heard.push_back(on); });
  MicrophonePeer peer(mic);
  REQUIRE(peer.init(5, 16, true, 44100, 2, 4, 176400));
  CHECK_FALSE(mic->listening());  // initialised, not recording yet
  REQUIRE(peer.call("SetEnabled", g_variant_new("(tb)", uint64_t(5), TRUE)));
  CHECK(heard == std::vector<bool>{false, true});
  // Before anybody talks: a quiet microphone.
  auto quiet = peer.read(5, 441 * 4);
  REQUIRE(quiet);
  CHECK(quiet->size() == 441 * 4);
  CHECK(std::all_of(quiet->begin(), quiet->end(), [](uint8_t b) { return b == 0; }));
  // A viewer says 440 Hz for 300 ms in 10 ms packets; QEMU reads a period after each.
  std::vector<int16_t> got;
  for (int i = 0; i < 30; ++i) {
    std::vector<int16_t> packet(480 * 2);
    for (size_t f = 0; f < 480; ++f)
      packet[2 * f] = packet[2 * f + 1] = int16_t(16000 * std::sin(2 * M_PI * 440 * double(i * 480 + f) / 48000));
    mic->push("spice", packet.data(), 480);
    auto pcm = peer.read(5, 441 * 4);
    REQUIRE(pcm);
    REQUIRE(pcm->size() % 4 == 0);
    const auto* s = reinterpret_cast<const int16_t*>(pcm->data());
    got.insert(got.end(), s, s + pcm->size() / 2);
  }
  const auto spectrum = encode::analyse(got, 2, 44100);
  CHECK(spectrum.peak_hz == Approx(440).epsilon(0.02));
  CHECK(spectrum.level > 0.2);
  auto stats = peer.stats();
  CHECK(stats.connected);
  CHECK(stats.listening);
  CHECK(stats.format == "s16le 44100 Hz 2 ch");
  CHECK(stats.reads == 31);
  REQUIRE(peer.call("SetEnabled", g_variant_new("(tb)", uint64_t(5), FALSE)));
  CHECK(heard.back() == false);
  CHECK_FALSE(peer.stats().listening);
}

TEST_CASE("a Read QEMU should not make gets no bytes rather than an error - Init is checked as for sound out") {
  auto mic = std::make_shared<encode::MicrophoneMixer>();
  MicrophonePeer peer(mic);
  auto none = peer.read(9, 1920);  // never initialised
  REQUIRE(none);
  CHECK(none->empty());
  CHECK(peer.stats().refused == 1);
  CHECK(peer.stats().last_refusal.find("Read: stream 9 was never initialised") != std::string::npos);
  CHECK_FALSE(peer.init(1, 16, true, 48000, 2, 4, 100));
  REQUIRE(peer.init(1, 16, true, 48000, 2, 4, 192000));
  auto odd = peer.read(1, 6);  // one whole frame of the six bytes
  REQUIRE(odd);
  CHECK(odd->size() == 4);
  auto huge = peer.read(1, uint64_t(1) << 40);  // capped
  REQUIRE(huge);
  CHECK(huge->size() <= AudioInListener::kMaxReadBytes);
  CHECK(mic->listening());  // QEMU reads only enabled streams: reading says it records
  REQUIRE(peer.call("Fini", g_variant_new("(t)", uint64_t(1))));
  CHECK_FALSE(mic->listening());
}
