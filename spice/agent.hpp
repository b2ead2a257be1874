// The agent end of spice-server's vdagent char device, for the clipboard: spice-server believes a
// guest agent is attached, and remote-viewer's copy and paste talk to us (as QEMU's own
// qemu-vdagent chardev does for its guest). We announce only clipboard capabilities (by demand,
// with selections; no file transfer, no monitors); the mouse stays on the tablet (the server's
// agent mouse is turned off by SpiceDesktop).
//
//   - the client copies (GRAB with UTF8_TEXT): we REQUEST the text at once and hand it to the
//     hub, which claims the VM's clipboard with it;
//   - the VM copies (the hub's vm_copied): we GRAB the client's clipboard with UTF8_TEXT and
//     answer its REQUEST with the text.
// Text only; a message larger than the hub's limit is skipped and counted as refused.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clipboard.hpp"
#include "core/log.hpp"
#include "glib/loop_thread.hpp"
#include "spice/agent_protocol.hpp"

typedef struct SpiceBaseInstance SpiceBaseInstance;

namespace vdistream::spice {

struct AgentStats {
  bool client_agent = false;   // a client announced its capabilities
  uint64_t client_copies = 0;  // texts a client copied, handed to the hub
  uint64_t vm_copies_offered = 0;  // GRABs sent for the VM's texts
  uint64_t pastes = 0;             // client REQUESTs answered with text
};

class SpiceAgent final : public core::ClipboardClient {
 public:
  SpiceAgent(const core::Logger& log, glib::LoopThread& thread, std::shared_ptr<core::ClipboardHub> hub);
  ~SpiceAgent() override;  // leaves the hub first
  SpiceAgent(const SpiceAgent&) = delete;
  SpiceAgent& operator=(const SpiceAgent&) = delete;

  SpiceBaseInstance* instance();
  void attached();  // desktop thread, after spice_server_add_interface: joins the hub
  void detach();    // desktop thread, before the server goes

  // core::ClipboardClient (any thread): queued to the desktop thread.
  void vm_copied(const core::ClipboardTextPtr& text) override;
  void vm_cleared() override;

  AgentStats stats() const;

  // spice-server's calls (desktop thread).
  static constexpr const char* kDeviceDescription = "vdistream agent";
  int write(const uint8_t* bytes, int size);
  int read(uint8_t* out, int size);

  struct Handle;

 private:
  void on_message(AgentMessage message);
  bool send(uint32_t type, const std::vector<uint8_t>& data);  // false: not attached, or refused (outbox full)
  size_t max_queued() const;
  static constexpr size_t kQueueSlackBytes = 64 * 1024;
  void offer_vm_text();  // GRAB, when a client is there and the VM has text
  void reset_client();

  const core::Logger& log_;
  glib::LoopThread& thread_;
  std::shared_ptr<core::ClipboardHub> hub_;
  std::unique_ptr<Handle> handle_;
  std::shared_ptr<bool> alive_;  // queued work checks it (desktop thread)

  // Desktop thread only.
  bool attached_ = false, in_hub_ = false, stream_refused_ = false;
  AgentReader reader_;
  AgentOutbox out_;
  std::vector<uint32_t> client_caps_;
  bool client_ready_ = false, selection_ = false;
  bool requested_ = false;    // we asked the client for its text
  bool grabbed_ = false;      // we told the client the VM has text
  int64_t client_max_ = -1;   // the client's VD_AGENT_MAX_CLIPBOARD (-1: none given)
  core::ClipboardTextPtr vm_text_;

  mutable std::mutex stats_mutex_;
  AgentStats stats_;
};

}  // namespace vdistream::spice
