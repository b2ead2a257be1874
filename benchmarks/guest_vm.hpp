// The project's test guest (tests/guest/: Debian 12's kernel, a busybox initramfs, vdt-guest
// drawing the synthetic desktop into the framebuffer) in a real QEMU, for the benchmarks and the
// tests. QEMU runs under TCG with -display dbus on a private bus (or peer to peer behind QMP),
// optionally with its own SPICE server too, so one guest is served by QEMU's SPICE and by
// vdistream in the same run. The guest's protocol serial port is read on a thread of its own:
// every line is stamped with core::monotonic_now_ns() when it arrives ("the guest finished
// frame N", the start of glass-to-glass).
//
// Every child (dbus-daemon, QEMU) runs in its own process group, dies with this process
// (PR_SET_PDEATHSIG) and is killed and reaped when this goes away. Only unix sockets in a
// private directory are used; every wait is bounded.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/child_process.hpp"
#include "benchmarks/private_bus.hpp"
#include "benchmarks/private_dir.hpp"
#include "capture/qemu/display_connection.hpp"
#include "core/status.hpp"
#include "core/unique_fd.hpp"

namespace vdistream::bench {

enum class Qemu {
  Host72,  // the host's /usr/bin/qemu-system-x86_64 (Debian 12: QEMU 7.2)
  V10,     // QEMU 10 unpacked by scripts/install-test-vm.sh into VM_DIR/qemu-10
};
const char* qemu_name(Qemu qemu);  // "qemu-7.2", "qemu-10"

// Where the guest's pieces are. Defaults come from the build (VDISTREAM_TEST_VM_DIR,
// VDISTREAM_GUEST_INITRAMFS); the environment variables of the same names override them.
struct GuestVmPaths {
  std::string vm_dir;     // kernel/ and qemu-10/ (install-test-vm.sh)
  std::string initramfs;  // tests/guest's vdt-initramfs.gz in the build tree
  static GuestVmPaths defaults();
  std::string kernel() const { return vm_dir + "/kernel/vmlinuz"; }
  std::string qemu10_dir() const { return vm_dir + "/qemu-10"; }
};

// How the guest's framebuffers reach QEMU. vesafb writes go straight to the VGA's memory; the
// fbdev of a DRM driver (bochs, virtio-gpu; Linux 6.1) is a shadow buffer flushed by deferred I/O
// every 50 ms, so its frames reach QEMU late and merged: measure latency on head 0 of Vga.
enum class GuestDisplay {
  Vga,        // -device VGA: the guest's vesafb in the mode vga= selects (24 or 32 bpp). A second
              // head is a -device secondary-vga driven by the bochs DRM driver (32 bpp, same size)
  VirtioVga,  // -device virtio-vga: the virtio-gpu DRM driver's fbdev (32 bpp, one head)
};

struct GuestVmOptions {
  Qemu qemu = Qemu::Host72;
  GuestDisplay display = GuestDisplay::Vga;
  int32_t width = 1280, height = 720;
  int bpp = 32;                          // of head 0; 24 only on VGA
  std::string workload = "window-drag";  // capture::parse_workload names
  std::string workload1 = "typing";      // head 1's
  double fps = 30;
  uint64_t frames = 0;  // the guest's scenes stop after this many frames; 0 = never
  int heads = 1;        // 2: VGA + secondary-vga (Vga only)
  bool peer_to_peer = false;  // -display dbus,p2p=yes + a QMP socket instead of a private bus
  bool qemu_spice = false;    // also QEMU's own SPICE server on a unix socket (spice_socket())
  int memory_mb = 256;
  // Sound: QEMU gets -audiodev dbus,id=snd0 (its D-Bus display's Audio object) with the PC speaker
  // on it, and the guest plays `tone` on the speaker ("HZ,ON_MS,OFF_MS", see guest::kArgTone).
  bool audio = false;
  std::string tone;  // empty: silent (needs audio to be heard)
  // The guest records all along (guest::kArgRecord) from a sound card on that audiodev
  // (-device intel-hda -device hda-duplex): QEMU reads the D-Bus AudioInListener. Needs audio.
  bool record = false;
  std::vector<std::string> trace;       // QEMU trace event patterns (-trace enable=...), into qemu_log()
  std::vector<std::string> extra_args;  // appended to QEMU's command line
  GuestVmPaths paths = GuestVmPaths::defaults();
};

// Lines of the guest's protocol port (tests/guest/guest_protocol.hpp), each with the monotonic
// time it arrived and the boot it came from (0, then 1 after restart_qemu(), ...).
struct GuestReady {
  int head = 0;
  int32_t width = 0, height = 0;
  int bpp = 0;
  int64_t arrival_ns = 0;
  int boot = 0;
};
struct GuestFrame {
  int head = 0;
  uint64_t value = 0;  // the barcode value (the picture shows it modulo 2^24)
  uint64_t drawn = 0, skipped = 0;
  int64_t arrival_ns = 0;
  int boot = 0;
};
struct GuestTone {
  double hz = 0;       // the tone that started; 0: the tone stopped
  uint32_t count = 0;  // tones since the guest booted
  int64_t arrival_ns = 0;
  int boot = 0;
};
struct GuestHeard {  // an M line: half a second of what the guest recorded
  double hz = 0;       // from the time between the left channel's rising zero crossings; 0 in silence
  int32_t peak = 0;    // 0..32768
  uint32_t count = 0;  // half seconds recorded since the guest booted
  int64_t arrival_ns = 0;
  int boot = 0;
};
struct GuestKey {
  uint32_t code = 0;   // Linux key code
  uint32_t count = 0;  // presses since the guest booted
  int64_t arrival_ns = 0;
  int boot = 0;
};

class GuestVm {
 public:
  // Whether this QEMU can run here; the error says what is missing and what to run.
  static core::Status available(Qemu qemu, const GuestVmPaths& paths = GuestVmPaths::defaults());
  // Whether the guest's kernel and initramfs are there (the same kind of message).
  static core::Status guest_available(const GuestVmPaths& paths = GuestVmPaths::defaults());
  // The kernel command line and QEMU arguments for `options`, or why they are refused.
  static core::Result<std::vector<std::string>> qemu_arguments(const GuestVmOptions& options, const std::string& dir);

  // Starts the bus (unless peer to peer) and QEMU; returns at once (the guest boots for seconds:
  // wait_ready()).
  static core::Result<std::unique_ptr<GuestVm>> start(const GuestVmOptions& options);
  ~GuestVm();
  GuestVm(const GuestVm&) = delete;
  GuestVm& operator=(const GuestVm&) = delete;

  const GuestVmOptions& options() const { return options_; }
  // For capture::qemu::QemuSource (QemuSourceConfig::target) and its spec string
  // ("qemu-dbus:unix:path=..." or "qemu-qmp:...").
  capture::qemu::DisplayTarget display_target() const;
  std::string spec() const { return display_target().describe(); }
  std::string spice_socket() const;  // QEMU's own SPICE (options.qemu_spice), empty without
  const std::string& dir() const { return dir_.path(); }

  // The READY line of `head` in the current boot. Fails early, with the guest's and QEMU's own
  // words, when the guest reports an error or QEMU exits.
  core::Result<GuestReady> wait_ready(int head, std::chrono::milliseconds limit);
  // The first F line of `head` in the current boot whose barcode value equals `value` modulo 2^24.
  std::optional<GuestFrame> wait_frame(int head, uint64_t value, std::chrono::milliseconds limit);
  // The first F line of `head` in the current boot that arrived after `after_ns`.
  std::optional<GuestFrame> wait_frame_after(int head, int64_t after_ns, std::chrono::milliseconds limit);
  // The K line with this press count in the current boot.
  std::optional<GuestKey> wait_key(uint32_t count, std::chrono::milliseconds limit);

  std::vector<GuestFrame> frames() const;  // every boot, in arrival order
  std::vector<GuestKey> keys() const;
  std::vector<GuestTone> tones() const;  // every boot, in arrival order (A lines)
  // The first A line of the current boot that arrived after `after_ns` and started a tone
  // (`started`) or stopped one.
  std::optional<GuestTone> wait_tone(bool started, int64_t after_ns, std::chrono::milliseconds limit);
  std::vector<GuestHeard> heard() const;  // every boot, in arrival order (M lines)
  // The first M line of the current boot that arrived after `after_ns` and satisfies `what`.
  std::optional<GuestHeard> wait_heard(int64_t after_ns, std::chrono::milliseconds limit,
                                       const std::function<bool(const GuestHeard&)>& what);
  std::optional<std::string> guest_error() const;  // an E line of the current boot
  int boot() const { return boot_; }

  std::string console_tail(size_t max_bytes = 4000) const;  // ttyS0: kernel and init messages
  std::string qemu_log(size_t max_bytes = 8000) const;      // QEMU's stdout and stderr (traces too)
  // QEMU's state, its log and the console, for a test's failure message.
  std::string diagnostics();
  bool qemu_running() { return qemu_.running(); }
  pid_t qemu_pid() const { return qemu_.pid(); }  // for its CPU time (/proc/PID/stat); -1 when stopped

  void kill_qemu();            // SIGKILL, reaped; the bus stays
  core::Status restart_qemu();  // a fresh QEMU (and boot) on the same bus and sockets

 private:
  explicit GuestVm(const GuestVmOptions& options) : options_(options) {}
  core::Status start_qemu();
  void read_serial();
  void parse_line(const std::string& line, int64_t arrival_ns);
  template <typename Pred>
  bool wait_for(std::chrono::milliseconds limit, Pred pred);

  GuestVmOptions options_;
  PrivateDir dir_{"vdistream-guest"};
  std::unique_ptr<PrivateBus> bus_;
  ChildProcess qemu_;
  std::vector<std::string> qemu_argv_, qemu_env_;

  std::thread reader_;
  std::atomic<bool> stopping_{false};
  core::UniqueFd wake_read_, wake_write_;  // a pipe that wakes the reader when stopping

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::atomic<int> boot_{0};
  std::vector<GuestReady> ready_;
  std::vector<GuestFrame> frames_;
  std::vector<GuestKey> keys_;
  std::vector<GuestTone> tones_;
  std::vector<GuestHeard> heard_;
  std::vector<std::pair<int, std::string>> errors_;  // (boot, message)
};

}  // namespace vdistream::bench
