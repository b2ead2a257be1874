#include "benchmarks/guest_vm.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "capture/synthetic/synthetic_source.hpp"
#include "core/clock.hpp"
#include "tests/guest/guest_protocol.hpp"

#ifndef VDISTREAM_TEST_VM_DIR_DEFAULT
#define VDISTREAM_TEST_VM_DIR_DEFAULT "/opt/vdistream-test"
#endif
#ifndef VDISTREAM_GUEST_INITRAMFS_DEFAULT
#define VDISTREAM_GUEST_INITRAMFS_DEFAULT ""
#endif

namespace vdistream::bench {

namespace {

constexpr const char* kHostQemu = "/usr/bin/qemu-system-x86_64";
constexpr const char* kInstallHint = "run ./scripts/install-deps.sh (it runs scripts/install-test-vm.sh)";
// QEMU makes its sockets within a second; a loaded machine gets more.
constexpr auto kQemuStartLimit = std::chrono::seconds(20);

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

bool executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }
bool readable(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

// QEMU's option parser splits on commas; a doubled comma is a literal one.
std::string qemu_escape(const std::string& value) {
  std::string out;
  for (char c : value) out += c == ',' ? std::string(",,") : std::string(1, c);
  return out;
}

std::string modes_list() {
  std::string out;
  for (const auto& m : guest::kGuestModes) out += fmt::format("{}{}x{}x{}", out.empty() ? "" : ", ", m.width, m.height, m.bpp);
  return out;
}

}  // namespace

const char* qemu_name(Qemu qemu) { return qemu == Qemu::Host72 ? "qemu-7.2" : "qemu-10"; }

GuestVmPaths GuestVmPaths::defaults() {
  return {env_or("VDISTREAM_TEST_VM_DIR", VDISTREAM_TEST_VM_DIR_DEFAULT),
          env_or("VDISTREAM_GUEST_INITRAMFS", VDISTREAM_GUEST_INITRAMFS_DEFAULT)};
}

core::Status GuestVm::available(Qemu qemu, const GuestVmPaths& paths) {
  if (qemu == Qemu::Host72) {
    if (!executable(kHostQemu))
      return core::Error{fmt::format("the host's QEMU ({}) is not installed: {}", kHostQemu, kInstallHint)};
    return {};
  }
  const std::string bin = paths.qemu10_dir() + "/usr/bin/qemu-system-x86_64";
  const std::string dbus_module = paths.qemu10_dir() + "/usr/lib/x86_64-linux-gnu/qemu/ui-dbus.so";
  if (!executable(bin)) return core::Error{fmt::format("QEMU 10 is not unpacked ({} is missing): {}", bin, kInstallHint)};
  if (!readable(dbus_module))
    return core::Error{fmt::format("QEMU 10 in {} has no D-Bus display module ({}): {}", paths.qemu10_dir(), dbus_module,
                                   kInstallHint)};
  return {};
}

core::Status GuestVm::guest_available(const GuestVmPaths& paths) {
  if (!readable(paths.kernel()))
    return core::Error{fmt::format("no test-guest kernel at {}: {}", paths.kernel(), kInstallHint)};
  if (paths.initramfs.empty() || !readable(paths.initramfs))
    return core::Error{fmt::format("no test-guest initramfs at '{}': the build makes it (tests/guest) once the kernel "
                                   "is installed; {}, then build again",
                                   paths.initramfs, kInstallHint)};
  return {};
}

core::Result<std::vector<std::string>> GuestVm::qemu_arguments(const GuestVmOptions& o, const std::string& dir) {
  for (const std::string* w : {&o.workload, &o.workload1})
    if (!capture::parse_workload(*w))
      return core::Error{fmt::format("unknown workload '{}' (known: {})", *w, capture::workload_list())};
  if (!(o.fps >= 1 && o.fps <= 240)) return core::Error{fmt::format("frame rate {} is outside 1..240", o.fps)};
  if (o.heads < 1 || o.heads > guest::kMaxHeads) return core::Error{fmt::format("{} heads: 1 or 2", o.heads)};
  if (o.memory_mb < 64) return core::Error{fmt::format("{} MB is too little memory for the guest", o.memory_mb)};

  std::string cmdline = "console=ttyS0 quiet panic=-1 vt.global_cursor_default=0";
  std::vector<std::string> devices;
  const auto mode = guest::find_guest_mode(o.width, o.height, o.bpp);
  const auto size32 = guest::find_guest_mode(o.width, o.height, 32);
  // DRM drivers (bochs, virtio-gpu) take the size from the device's EDID and give 32 bpp.
  const std::string size = fmt::format("xres={},yres={}", o.width, o.height);
  if (o.display == GuestDisplay::Vga) {
    if (!mode) return core::Error{fmt::format("guest mode {}x{}x{} is not offered (VGA modes: {})", o.width, o.height, o.bpp, modes_list())};
    cmdline += fmt::format(" vga=0x{:x}", mode->vga);
    devices = {"-device", "VGA"};
    if (o.heads == 2) {  // head 1 at the same size, 32 bpp
      cmdline += " vdt.drm=bochs";
      devices.insert(devices.end(), {"-device", "secondary-vga," + size});
    }
  } else {
    if (o.bpp != 32 || !size32)
      return core::Error{fmt::format("guest mode {}x{}x{} is not offered with virtio-vga (32 bpp only; sizes: {})", o.width,
                                     o.height, o.bpp, modes_list())};
    if (o.heads != 1) return core::Error{"virtio-vga gives the guest one framebuffer: one head only"};
    cmdline += " vdt.drm=virtio";
    devices = {"-device", "virtio-vga," + size};
  }
  cmdline += fmt::format(" {}={} {}={} {}={:g} {}={} {}={}", guest::kArgWorkload, o.workload, guest::kArgWorkload1,
                         o.workload1, guest::kArgFps, o.fps, guest::kArgFrames, o.frames, guest::kArgHeads, o.heads);

  if (!o.tone.empty()) cmdline += fmt::format(" {}={}", guest::kArgTone, o.tone);
  if (o.record) {
    if (!o.audio) return core::Error{"the guest records from QEMU's D-Bus audiodev: record needs audio"};
    cmdline += fmt::format(" {}=1", guest::kArgRecord);
  }

  std::vector<std::string> argv;
  if (o.qemu == Qemu::Host72) {
    argv = {kHostQemu};
  } else {
    const std::string q = o.paths.qemu10_dir();
    argv = {q + "/usr/bin/qemu-system-x86_64", "-L", q + "/usr/share/qemu", "-L", "/usr/share/seabios"};
  }
  const std::string sock = qemu_escape(dir);
  argv.insert(argv.end(), {"-name", "vdistream-guest", "-machine", "pc", "-accel", "tcg", "-m", std::to_string(o.memory_mb),
                           "-nodefaults", "-no-user-config", "-kernel", o.paths.kernel(), "-initrd", o.paths.initramfs,
                           "-append", cmdline});
  argv.insert(argv.end(), devices.begin(), devices.end());
  if (o.peer_to_peer) {
    argv.insert(argv.end(), {"-display", std::string("dbus,p2p=yes") + (o.audio ? ",audiodev=snd0" : ""), "-qmp",
                             "unix:" + sock + "/qmp.sock,server=on,wait=off"});
  } else {
    argv.insert(argv.end(), {"-display", "dbus,addr=unix:path=" + sock + "/bus" + (o.audio ? ",audiodev=snd0" : "")});
  }
  // The display exports the audiodev (-display dbus,audiodev=snd0 above); QEMU's mixing engine gives
  // the listener 48 kHz stereo s16 (its default would be 44.1 kHz).
  if (o.audio) argv.insert(argv.end(), {"-audiodev", "dbus,id=snd0,out.frequency=48000", "-machine", "pcspk-audiodev=snd0"});
  // A sound card that records from it; mixer=off: no amplifiers, so nothing in the guest has to
  // unmute the capture (its kernel's default would be muted).
  if (o.record) argv.insert(argv.end(), {"-device", "intel-hda", "-device", "hda-duplex,audiodev=snd0,mixer=off"});
  if (o.qemu_spice) argv.insert(argv.end(), {"-spice", "unix=on,addr=" + sock + "/spice.sock,disable-ticketing=on"});
  argv.insert(argv.end(),
              {"-chardev", "socket,id=con,path=" + sock + "/console.sock,server=on,wait=off,logfile=" + sock + "/console.log",
               "-serial", "chardev:con",
               "-chardev", "socket,id=vdt,path=" + sock + "/serial.sock,server=on,wait=off",
               "-serial", "chardev:vdt"});
  for (const std::string& pattern : o.trace) argv.insert(argv.end(), {"-trace", "enable=" + qemu_escape(pattern)});
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  return argv;
}

core::Result<std::unique_ptr<GuestVm>> GuestVm::start(const GuestVmOptions& options) {
  if (auto ok = available(options.qemu, options.paths); !ok) return core::Error{ok.error()};
  if (auto ok = guest_available(options.paths); !ok) return core::Error{ok.error()};
  std::unique_ptr<GuestVm> vm(new GuestVm(options));
  if (vm->dir().empty()) return core::Error{fmt::format("cannot make a private directory: {}", std::strerror(errno))};
  auto argv = qemu_arguments(options, vm->dir());
  if (!argv) return core::Error{argv.error()};
  vm->qemu_argv_ = std::move(*argv);
  vm->qemu_env_ = options.qemu == Qemu::V10
                      ? environment({"QEMU_MODULE_DIR"}, {"QEMU_MODULE_DIR=" + options.paths.qemu10_dir() +
                                                          "/usr/lib/x86_64-linux-gnu/qemu"})
                      : environment({"QEMU_MODULE_DIR"}, {});
  if (!options.peer_to_peer) {
    auto bus = PrivateBus::start(vm->dir());
    if (!bus) return core::Error{bus.error()};
    vm->bus_ = std::move(*bus);
  }
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) return core::Error{fmt::format("pipe2: {}", std::strerror(errno))};
  vm->wake_read_.reset(wake[0]);
  vm->wake_write_.reset(wake[1]);
  vm->reader_ = std::thread(&GuestVm::read_serial, vm.get());
  if (auto ok = vm->start_qemu(); !ok) return core::Error{ok.error()};
  return vm;
}

GuestVm::~GuestVm() {
  stopping_ = true;
  if (wake_write_ && write(wake_write_.get(), "x", 1) < 0) {
    // the pipe is full: the reader wakes anyway
  }
  if (reader_.joinable()) reader_.join();
  qemu_.stop(std::chrono::milliseconds(0));
}

capture::qemu::DisplayTarget GuestVm::display_target() const {
  using Kind = capture::qemu::DisplayTarget::Kind;
  return options_.peer_to_peer ? capture::qemu::DisplayTarget{Kind::Qmp, dir_.file("qmp.sock")}
                               : capture::qemu::DisplayTarget{Kind::Bus, bus_->address()};
}

std::string GuestVm::spice_socket() const { return options_.qemu_spice ? dir_.file("spice.sock") : std::string(); }

core::Status GuestVm::start_qemu() {
  std::error_code ec;
  for (const char* name : {"serial.sock", "console.sock", "qmp.sock", "spice.sock"}) std::filesystem::remove(dir_.file(name), ec);
  auto child = ChildProcess::spawn({qemu_argv_, qemu_env_, dir_.file("qemu.log"), -1, /*append_log=*/true});
  if (!child) return core::Error{child.error()};
  qemu_ = std::move(*child);
  // Its sockets exist once it has parsed its options and set up its devices.
  const std::string last_socket = dir_.file(options_.peer_to_peer ? "qmp.sock" : "serial.sock");
  const int64_t deadline = core::monotonic_now_ns() + std::chrono::nanoseconds(kQemuStartLimit).count();
  while (!std::filesystem::exists(dir_.file("serial.sock")) || !std::filesystem::exists(last_socket)) {
    if (!qemu_.running())
      return core::Error{fmt::format("{} {} at start: {}", qemu_name(options_.qemu), qemu_.exit_description(), qemu_log(3000))};
    if (core::monotonic_now_ns() > deadline)
      return core::Error{fmt::format("{} made no sockets within {} s: {}", qemu_name(options_.qemu),
                                     kQemuStartLimit.count(), qemu_log(3000))};
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return {};
}

void GuestVm::kill_qemu() { qemu_.stop(std::chrono::milliseconds(0)); }

core::Status GuestVm::restart_qemu() {
  kill_qemu();
  ++boot_;  // after the old QEMU is gone: its lines cannot arrive any more
  changed_.notify_all();
  return start_qemu();
}

// Connects to QEMU's end of the protocol port, again after every restart, and stamps each line
// with the time its bytes arrived.
void GuestVm::read_serial() {
  const std::string path = dir_.file("serial.sock");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    std::lock_guard lock(mutex_);
    errors_.emplace_back(boot_.load(), "the serial socket's path is too long: " + path);
    return;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  auto wait_wake = [this](int timeout_ms) {
    pollfd p{wake_read_.get(), POLLIN, 0};
    return poll(&p, 1, timeout_ms) > 0;
  };
  while (!stopping_) {
    core::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd || connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      wait_wake(10);
      continue;
    }
    const int connection_boot = boot_.load();
    std::string pending;
    char buffer[4096];
    for (;;) {
      pollfd fds[2] = {{fd.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[1].revents) return;
      const ssize_t n = read(fd.get(), buffer, sizeof(buffer));
      const int64_t now = core::monotonic_now_ns();
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // QEMU went away: connect to the next one
      pending.append(buffer, size_t(n));
      for (size_t end = pending.find('\n'); end != std::string::npos; end = pending.find('\n')) {
        std::string line = pending.substr(0, end);
        pending.erase(0, end + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::lock_guard lock(mutex_);
        if (connection_boot == boot_.load()) parse_line(line, now);
      }
      changed_.notify_all();
    }
  }
}

void GuestVm::parse_line(const std::string& line, int64_t arrival_ns) {
  std::istringstream in(line);
  std::string kind;
  in >> kind;
  const int boot = boot_.load();
  if (kind == guest::kLineReady) {
    GuestReady r;
    if (in >> r.head >> r.width >> r.height >> r.bpp) ready_.push_back({r.head, r.width, r.height, r.bpp, arrival_ns, boot});
  } else if (kind == guest::kLineFrame) {
    GuestFrame f;
    if (in >> f.head >> f.value >> f.drawn >> f.skipped) {
      f.arrival_ns = arrival_ns;
      f.boot = boot;
      frames_.push_back(f);
    }
  } else if (kind == guest::kLineKey) {
    GuestKey k;
    if (in >> k.code >> k.count) {
      k.arrival_ns = arrival_ns;
      k.boot = boot;
      keys_.push_back(k);
    }
  } else if (kind == guest::kLineTone) {
    GuestTone t;
    if (in >> t.hz >> t.count) {
      t.arrival_ns = arrival_ns;
      t.boot = boot;
      tones_.push_back(t);
    }
  } else if (kind == guest::kLineMicrophone) {
    GuestHeard h;
    if (in >> h.hz >> h.peak >> h.count) {
      h.arrival_ns = arrival_ns;
      h.boot = boot;
      heard_.push_back(h);
    }
  } else if (kind == guest::kLineError) {
    std::string message;
    std::getline(in >> std::ws, message);
    errors_.emplace_back(boot, message);
  }
}

// Waits until `pred()` holds (called under the lock), QEMU exits, or `limit` passes.
template <typename Pred>
bool GuestVm::wait_for(std::chrono::milliseconds limit, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::unique_lock lock(mutex_);
  for (;;) {
    if (pred()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    // QEMU's exit is not an event here: look every 100 ms.
    changed_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(100)));
    if (pred()) return true;
    lock.unlock();
    const bool alive = qemu_.running();
    lock.lock();
    if (!alive) return pred();
  }
}

core::Result<GuestReady> GuestVm::wait_ready(int head, std::chrono::milliseconds limit) {
  const int boot = boot_.load();
  std::optional<GuestReady> found;
  bool failed = false;
  wait_for(limit, [&] {
    for (const auto& r : ready_)
      if (r.boot == boot && r.head == head) return found = r, true;
    for (const auto& [b, message] : errors_)
      if (b == boot) return failed = true;
    return false;
  });
  if (found) return *found;
  const int64_t waited = limit.count();
  return core::Error{fmt::format("the guest (head {}, {}) was not ready within {} ms{}\n{}", head, qemu_name(options_.qemu),
                                 waited, failed ? " (it reported an error)" : "", diagnostics())};
}

std::optional<GuestFrame> GuestVm::wait_frame(int head, uint64_t value, std::chrono::milliseconds limit) {
  const int boot = boot_.load();
  std::optional<GuestFrame> found;
  wait_for(limit, [&] {
    for (const auto& f : frames_)
      if (f.boot == boot && f.head == head && (f.value & 0xffffff) == (value & 0xffffff)) return found = f, true;
    return false;
  });
  return found;
}

std::optional<GuestFrame> GuestVm::wait_frame_after(int head, int64_t after_ns, std::chrono::milliseconds limit) {
  const int boot = boot_.load();
  std::optional<GuestFrame> found;
  wait_for(limit, [&] {
    for (const auto& f : frames_)
      if (f.boot == boot && f.head == head && f.arrival_ns > after_ns) return found = f, true;
    return false;
  });
  return found;
}

std::optional<GuestKey> GuestVm::wait_key(uint32_t count, std::chrono::milliseconds limit) {
  const int boot = boot_.load();
  std::optional<GuestKey> found;
  wait_for(limit, [&] {
    for (const auto& k : keys_)
      if (k.boot == boot && k.count == count) return found = k, true;
    return false;
  });
  return found;
}

std::optional<GuestTone> GuestVm::wait_tone(bool started, int64_t after_ns, std::chrono::milliseconds limit) {
  const int boot = boot_.load();
  std::optional<GuestTone> found;
  wait_for(limit, [&] {
    for (const auto& t : tones_)
      if (t.boot == boot && t.arrival_ns > after_ns && (t.hz > 0) == started) return found = t, true;
    return false;
  });
  return found;
}

std::optional<GuestHeard> GuestVm::wait_heard(int64_t after_ns, std::chrono::milliseconds limit,
                                              const std::function<bool(const GuestHeard&)>& what) {
  const int boot = boot_.load();
  std::optional<GuestHeard> found;
  wait_for(limit, [&] {
    for (const auto& h : heard_)
      if (h.boot == boot && h.arrival_ns > after_ns && what(h)) return found = h, true;
    return false;
  });
  return found;
}

std::vector<GuestHeard> GuestVm::heard() const {
  std::lock_guard lock(mutex_);
  return heard_;
}

std::vector<GuestTone> GuestVm::tones() const {
  std::lock_guard lock(mutex_);
  return tones_;
}

std::vector<GuestFrame> GuestVm::frames() const {
  std::lock_guard lock(mutex_);
  return frames_;
}

std::vector<GuestKey> GuestVm::keys() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

std::optional<std::string> GuestVm::guest_error() const {
  std::lock_guard lock(mutex_);
  for (const auto& [boot, message] : errors_)
    if (boot == boot_.load()) return message;
  return std::nullopt;
}

std::string GuestVm::console_tail(size_t max_bytes) const { return file_tail(dir_.file("console.log"), max_bytes); }

std::string GuestVm::qemu_log(size_t max_bytes) const { return file_tail(dir_.file("qemu.log"), max_bytes); }

std::string GuestVm::diagnostics() {
  const bool running = qemu_.running();
  std::string out = fmt::format("{} {}", qemu_name(options_.qemu), running ? "is running" : qemu_.exit_description());
  if (auto error = guest_error()) out += fmt::format("; the guest said: {}", *error);
  size_t frames = 0;
  {
    std::lock_guard lock(mutex_);
    for (const auto& f : frames_) frames += f.boot == boot_.load() ? 1 : 0;
  }
  out += fmt::format("; {} frame lines this boot", frames);
  out += fmt::format("\n--- QEMU log (tail) ---\n{}\n--- guest console (tail) ---\n{}", qemu_log(3000), console_tail(3000));
  return out;
}

}  // namespace vdistream::bench
