// A desktop's clipboard, shared between its VM and its viewers. The VM side is QEMU's D-Bus
// Clipboard (capture/qemu/clipboard); the viewers are SPICE clients (through the agent protocol,
// spice/agent) and browsers (the data channel). The hub holds the text each side copied last:
//
//   - the VM copies: the hub fetches the text from the VM at once and hands it to every viewer,
//     which offers it to its user's clipboard (a SPICE client's GRAB; a browser's writeText);
//   - a viewer copies: the viewer's text comes to the hub whole, the hub claims the VM's
//     clipboard, and answers the VM's request for the data from what it holds.
//
// Fetching at once rather than on demand keeps QEMU's side short: QEMU asks for the data with a
// blocking call from its main loop, so the answer must be ready when it asks.
//
// QEMU's D-Bus clipboard (7.2 to 10.0) carries one type, text/plain;charset=utf-8, and so does
// the hub. Each transfer is at most max_bytes (refused beyond, with the reason, nothing else
// changed).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/log.hpp"
#include "core/status.hpp"

namespace vdistream::core {

inline constexpr const char* kClipboardText = "text/plain;charset=utf-8";
inline constexpr size_t kDefaultClipboardMaxBytes = 16u << 20;

struct ClipboardText {
  std::string text;  // UTF-8
};
using ClipboardTextPtr = std::shared_ptr<const ClipboardText>;

// The VM's clipboard as the source sees it. Calls from any thread; the source does the work on
// its own thread.
class VmClipboard {
 public:
  virtual ~VmClipboard() = default;
  // Our side (a viewer) copied text: claim the VM's clipboard with it.
  virtual void grab() = 0;
  // Our side's text went away: give the VM's clipboard up (if we still hold it).
  virtual void release() = 0;
  // The VM's text, now that it claimed the clipboard; `done` runs on the source's thread.
  virtual void request(std::function<void(Result<std::string>)> done) = 0;
};

// A viewer of the desktop (a SPICE client's agent, a browser). Called with the hub's client lock
// held: post the work to the viewer's own thread, never call back into the hub from here.
class ClipboardClient {
 public:
  virtual ~ClipboardClient() = default;
  virtual void vm_copied(const ClipboardTextPtr& text) = 0;  // the VM's new text
  virtual void vm_cleared() = 0;                             // the VM's clipboard is empty
};

struct ClipboardStats {
  bool vm_connected = false;  // QEMU's Clipboard took our registration
  std::string unavailable;    // why the VM has no clipboard for us ("" when connected)
  uint64_t to_vm = 0, to_vm_bytes = 0;      // viewers' copies the VM can paste
  uint64_t from_vm = 0, from_vm_bytes = 0;  // the VM's copies handed to the viewers
  uint64_t vm_requests = 0;                 // the VM pasted what a viewer copied
  uint64_t refused = 0;                     // transfers beyond the limit, or not text
  std::string last_refusal;
  size_t max_bytes = 0;
  std::string owner;  // "vm", "viewer" or "" (nobody)
};

class ClipboardHub {
 public:
  ClipboardHub(std::string name, size_t max_bytes);
  ClipboardHub(const ClipboardHub&) = delete;
  ClipboardHub& operator=(const ClipboardHub&) = delete;

  size_t max_bytes() const { return max_bytes_; }

  // The VM side (the source's thread). attach when QEMU's clipboard took the registration,
  // detach before the VmClipboard goes; unavailable() says why there is none.
  void attach_vm(VmClipboard* vm);
  void detach_vm(VmClipboard* vm);
  void vm_unavailable(const std::string& why);
  // The VM copied (it holds text now): the hub fetches it and hands it to the viewers.
  void vm_grabbed();
  void vm_released();
  // The VM pastes what a viewer copied: the text, or why there is none.
  Result<std::string> vm_paste();

  // Viewers (any thread). A viewer added while the VM holds text gets it at once.
  void add_client(ClipboardClient* client);
  void remove_client(ClipboardClient* client);  // no call reaches it once this returns
  // A viewer copied `text` (UTF-8, checked at the edge that received it): the VM can paste it.
  // Refused beyond max_bytes.
  Status client_copied(std::string text);
  // Counts a transfer refused before it reached the hub (a viewer's message cut off at the
  // limit), with its reason.
  void refuse(const std::string& why);

  ClipboardStats stats() const;

 private:
  void vm_text(Result<std::string> text, uint64_t generation);

  Logger log_;
  LogLimiter refusal_log_;  // refusals are a peer's to repeat
  const size_t max_bytes_;

  mutable std::mutex mutex_;  // everything below but clients_
  VmClipboard* vm_ = nullptr;
  ClipboardTextPtr vm_text_;         // the VM's last copy, once fetched
  ClipboardTextPtr client_text_;     // a viewer's last copy, while it owns the VM's clipboard
  uint64_t vm_generation_ = 0;       // counts VM grabs, so a late fetch cannot override a newer one
  ClipboardStats stats_;

  std::mutex clients_mutex_;  // held while a client is called
  std::vector<ClipboardClient*> clients_;
};

}  // namespace vdistream::core
