#include "spice/agent.hpp"

#include <glib.h>
#include <spice.h>
#include <spice/vd_agent.h>

#include <algorithm>
#include <cstring>

#include "spice/char_device.hpp"

namespace vdistream::spice {

struct SpiceAgent::Handle : CharDevice<SpiceAgent> {
  using CharDevice::CharDevice;
};

namespace {

bool has_cap(const std::vector<uint32_t>& caps, uint32_t cap) {
  return cap / 32 < caps.size() && (caps[cap / 32] & (1u << (cap % 32)));
}

}  // namespace

SpiceAgent::SpiceAgent(const core::Logger& log, glib::LoopThread& thread, std::shared_ptr<core::ClipboardHub> hub)
    : log_(log),
      thread_(thread),
      hub_(std::move(hub)),
      handle_(std::make_unique<Handle>(this, "vdagent")),
      alive_(std::make_shared<bool>(true)),
      reader_(hub_->max_bytes() + 8),  // the selection and the type come before the text
      out_(max_queued()) {}

// One whole text in chunks (its headers add 20 bytes per 2048) and the small messages around it.
size_t SpiceAgent::max_queued() const { return hub_->max_bytes() + hub_->max_bytes() / 64 + kQueueSlackBytes; }

SpiceAgent::~SpiceAgent() {
  if (in_hub_) hub_->remove_client(this);
}

SpiceBaseInstance* SpiceAgent::instance() { return &handle_->sin()->base; }

void SpiceAgent::attached() {
  // A new server (the first, or after disconnect_viewers): nothing of the last one's stream.
  reader_ = AgentReader(hub_->max_bytes() + 8);
  out_.clear();
  stream_refused_ = false;
  reset_client();
  alive_ = std::make_shared<bool>(true);
  attached_ = true;
  in_hub_ = true;
  hub_->add_client(this);
}

void SpiceAgent::detach() {
  if (in_hub_) hub_->remove_client(this);
  in_hub_ = false;
  attached_ = false;
  *alive_ = false;
}

AgentStats SpiceAgent::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void SpiceAgent::vm_copied(const core::ClipboardTextPtr& text) {
  thread_.post([this, alive = alive_, text] {
    if (!*alive) return;
    vm_text_ = text;
    offer_vm_text();
  });
}

void SpiceAgent::vm_cleared() {
  thread_.post([this, alive = alive_] {
    if (!*alive) return;
    vm_text_.reset();
    if (grabbed_ && client_ready_)
      send(VD_AGENT_CLIPBOARD_RELEASE, clipboard_payload(selection_, VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD, {}));
    grabbed_ = false;
  });
}

int SpiceAgent::write(const uint8_t* bytes, int size) {
  if (size <= 0) return 0;
  AgentReader::Events events;
  events.on_message = [this](AgentMessage m) { on_message(std::move(m)); };
  events.on_refused = [this](uint32_t type, uint64_t bytes) {
    hub_->refuse(fmt::format("a SPICE client sent {} bytes of clipboard (agent message {}), more than the limit of {} "
                             "(clipboard_max_bytes)",
                             bytes, type, hub_->max_bytes()));
    if (type == VD_AGENT_CLIPBOARD) requested_ = false;
  };
  if (core::Status s = reader_.feed(bytes, size_t(size), events); !s) {
    // A stream we cannot follow: ignore the rest of this server's life rather than guess.
    if (!stream_refused_) log_.warn("clipboard: agent stream refused: {}", s.error());
    stream_refused_ = true;
  }
  return size;
}

int SpiceAgent::read(uint8_t* out, int size) {
  return size > 0 ? int(out_.read(out, size_t(size))) : 0;
}

bool SpiceAgent::send(uint32_t type, const std::vector<uint8_t>& data) {
  if (!attached_) return false;
  if (!out_.push(agent_chunks(type, data, VD_AGENT_MAX_DATA_SIZE))) {
    hub_->refuse(fmt::format("a SPICE client asks faster than it reads: {} bytes wait for it already, message {} not sent",
                             out_.waiting(), type));
    return false;
  }
  spice_server_char_device_wakeup(handle_->sin());
  return true;
}

void SpiceAgent::reset_client() {
  client_caps_.clear();
  client_ready_ = selection_ = requested_ = grabbed_ = false;
  client_max_ = -1;
  std::lock_guard lock(stats_mutex_);
  stats_.client_agent = false;
}

void SpiceAgent::offer_vm_text() {
  if (!client_ready_ || !vm_text_) return;
  if (client_max_ >= 0 && int64_t(vm_text_->text.size()) > client_max_) {
    hub_->refuse(fmt::format("the VM copied {} bytes, more than the SPICE client takes ({})", vm_text_->text.size(),
                             client_max_));
    return;
  }
  send(VD_AGENT_CLIPBOARD_GRAB,
       clipboard_payload(selection_, VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD, {VD_AGENT_CLIPBOARD_UTF8_TEXT}));
  grabbed_ = true;
  std::lock_guard lock(stats_mutex_);
  ++stats_.vm_copies_offered;
}

void SpiceAgent::on_message(AgentMessage m) {
  if (m.port == VDP_SERVER_PORT) {
    if (m.type == VD_AGENT_CLIENT_DISCONNECTED) reset_client();
    return;  // VD_AGENT_MOUSE_STATE does not come: the agent mouse is off
  }
  switch (m.type) {
    case VD_AGENT_ANNOUNCE_CAPABILITIES: {
      if (m.data.size() < 4) return;
      uint32_t request;
      memcpy(&request, m.data.data(), 4);
      client_caps_.assign((m.data.size() - 4) / 4, 0);
      memcpy(client_caps_.data(), m.data.data() + 4, client_caps_.size() * 4);
      selection_ = has_cap(client_caps_, VD_AGENT_CAP_CLIPBOARD_SELECTION);
      if (request) {
        std::vector<uint32_t> caps(VD_AGENT_CAPS_SIZE, 0);
        for (uint32_t cap : {VD_AGENT_CAP_CLIPBOARD_BY_DEMAND, VD_AGENT_CAP_CLIPBOARD_SELECTION,
                             VD_AGENT_CAP_GUEST_LINEEND_LF, VD_AGENT_CAP_MAX_CLIPBOARD, VD_AGENT_CAP_FILE_XFER_DISABLED})
          caps[cap / 32] |= 1u << (cap % 32);
        std::vector<uint8_t> data(4 + caps.size() * 4, 0);  // request = 0: an answer
        memcpy(data.data() + 4, caps.data(), caps.size() * 4);
        send(VD_AGENT_ANNOUNCE_CAPABILITIES, data);
      }
      const bool was_ready = client_ready_;
      client_ready_ = has_cap(client_caps_, VD_AGENT_CAP_CLIPBOARD_BY_DEMAND);
      {
        std::lock_guard lock(stats_mutex_);
        stats_.client_agent = true;
      }
      if (client_ready_ && !was_ready) {
        log_.info("clipboard: a SPICE client shares its clipboard{}", selection_ ? " (with selections)" : "");
        offer_vm_text();
      }
      return;
    }
    case VD_AGENT_MAX_CLIPBOARD:
      if (m.data.size() >= 4) {
        int32_t max;
        memcpy(&max, m.data.data(), 4);
        client_max_ = max;
      }
      return;
    case VD_AGENT_CLIPBOARD_GRAB:
    case VD_AGENT_CLIPBOARD_REQUEST:
    case VD_AGENT_CLIPBOARD:
    case VD_AGENT_CLIPBOARD_RELEASE:
      break;
    default:
      return;  // monitors, display config, file transfer: not announced, not handled
  }
  if (m.type == VD_AGENT_CLIPBOARD_RELEASE) return;  // the VM keeps the last text the client copied
  auto p = parse_clipboard(m.type, m.data, selection_);
  if (!p) {
    hub_->refuse(fmt::format("a SPICE client's clipboard message: {}", p.error()));
    return;
  }
  if (p->selection != VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD) return;  // PRIMARY is not shared
  if (m.type == VD_AGENT_CLIPBOARD_GRAB) {
    grabbed_ = false;  // the client's clipboard is its own now
    if (std::find(p->words.begin(), p->words.end(), uint32_t(VD_AGENT_CLIPBOARD_UTF8_TEXT)) == p->words.end()) return;
    requested_ = true;
    send(VD_AGENT_CLIPBOARD_REQUEST,
         clipboard_payload(selection_, VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD, {VD_AGENT_CLIPBOARD_UTF8_TEXT}));
  } else if (m.type == VD_AGENT_CLIPBOARD) {
    if (!requested_ || p->words[0] != VD_AGENT_CLIPBOARD_UTF8_TEXT) return;
    requested_ = false;
    std::string_view text = p->data;
    while (!text.empty() && text.back() == '\0') text.remove_suffix(1);
    const char* end = nullptr;
    if (!g_utf8_validate(text.data(), gssize(text.size()), &end)) {
      hub_->refuse(fmt::format("a SPICE client's text is not UTF-8 (byte {} of {})", end - text.data(), text.size()));
      return;
    }
    if (core::Status s = hub_->client_copied(std::string(text)); !s) {
      log_.debug("clipboard: a SPICE client's copy was not taken: {}", s.error());
      return;
    }
    std::lock_guard lock(stats_mutex_);
    ++stats_.client_copies;
  } else {  // REQUEST
    const bool text = vm_text_ && p->words[0] == VD_AGENT_CLIPBOARD_UTF8_TEXT;
    const bool sent = send(VD_AGENT_CLIPBOARD, clipboard_payload(selection_, VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD,
                                               {text ? uint32_t(VD_AGENT_CLIPBOARD_UTF8_TEXT) : uint32_t(VD_AGENT_CLIPBOARD_NONE)},
                                               text ? std::string_view(vm_text_->text) : std::string_view()));
    if (text && sent) {
      std::lock_guard lock(stats_mutex_);
      ++stats_.pastes;
    }
  }
}

}  // namespace vdistream::spice
