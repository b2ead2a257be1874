#include "core/clipboard.hpp"

#include <algorithm>

namespace vdistream::core {

ClipboardHub::ClipboardHub(std::string name, size_t max_bytes) : log_(std::move(name)), max_bytes_(max_bytes) {
  stats_.max_bytes = max_bytes;
  stats_.unavailable = "not connected to the VM yet";
}

void ClipboardHub::attach_vm(VmClipboard* vm) {
  std::lock_guard lock(mutex_);
  vm_ = vm;
  vm_text_.reset();
  client_text_.reset();
  stats_.vm_connected = true;
  stats_.unavailable.clear();
  stats_.owner.clear();
}

void ClipboardHub::detach_vm(VmClipboard* vm) {
  {
    std::lock_guard lock(mutex_);
    if (vm_ != vm) return;
    vm_ = nullptr;
    ++vm_generation_;  // a fetch still under way is for a VM that is gone
    stats_.vm_connected = false;
    stats_.unavailable = "the VM went away";
    stats_.owner.clear();
    if (!vm_text_) return;
    vm_text_.reset();
  }
  std::lock_guard clients(clients_mutex_);
  for (ClipboardClient* c : clients_) c->vm_cleared();
}

void ClipboardHub::vm_unavailable(const std::string& why) {
  std::lock_guard lock(mutex_);
  stats_.vm_connected = false;
  stats_.unavailable = why;
}

void ClipboardHub::vm_grabbed() {
  std::lock_guard lock(mutex_);
  if (!vm_) return;
  const uint64_t generation = ++vm_generation_;
  client_text_.reset();  // the VM's copy replaces the viewer's
  stats_.owner = "vm";
  // The VmClipboard only queues the call (under the lock, so it cannot be detached meanwhile);
  // the answer comes on the source's thread.
  vm_->request([this, generation](Result<std::string> text) { vm_text(std::move(text), generation); });
}

void ClipboardHub::vm_text(Result<std::string> text, uint64_t generation) {
  ClipboardTextPtr copied;
  {
    std::lock_guard lock(mutex_);
    if (generation != vm_generation_) return;  // the VM copied again, or went away
    if (!text) {
      log_.warn("clipboard: the VM claimed it but gave no text: {}", text.error());
      return;
    }
    if (text->size() > max_bytes_) {
      ++stats_.refused;
      stats_.last_refusal = fmt::format("the VM copied {} bytes, more than the limit of {} (clipboard_max_bytes)",
                                        text->size(), max_bytes_);
      log_.warn("clipboard: {}; the viewers keep what they had", stats_.last_refusal);
      return;
    }
    ++stats_.from_vm;
    stats_.from_vm_bytes += text->size();
    copied = std::make_shared<const ClipboardText>(ClipboardText{std::move(*text)});
    vm_text_ = copied;
  }
  log_.debug("clipboard: the VM copied {} bytes", copied->text.size());
  std::lock_guard clients(clients_mutex_);
  for (ClipboardClient* c : clients_) c->vm_copied(copied);
}

void ClipboardHub::vm_released() {
  {
    std::lock_guard lock(mutex_);
    ++vm_generation_;
    if (stats_.owner == "vm") stats_.owner.clear();
    if (!vm_text_) return;
    vm_text_.reset();
  }
  std::lock_guard clients(clients_mutex_);
  for (ClipboardClient* c : clients_) c->vm_cleared();
}

Result<std::string> ClipboardHub::vm_paste() {
  std::lock_guard lock(mutex_);
  if (!client_text_) return Error{"no viewer has copied anything"};
  ++stats_.vm_requests;
  return client_text_->text;
}

void ClipboardHub::add_client(ClipboardClient* client) {
  ClipboardTextPtr current;
  {
    std::lock_guard lock(mutex_);
    current = vm_text_;
  }
  std::lock_guard clients(clients_mutex_);
  clients_.push_back(client);
  if (current) client->vm_copied(current);
}

void ClipboardHub::remove_client(ClipboardClient* client) {
  std::lock_guard clients(clients_mutex_);
  clients_.erase(std::remove(clients_.begin(), clients_.end(), client), clients_.end());
}

Status ClipboardHub::client_copied(std::string text) {
  std::lock_guard lock(mutex_);
  if (text.size() > max_bytes_) {
    ++stats_.refused;
    stats_.last_refusal = fmt::format("a viewer copied {} bytes, more than the limit of {} (clipboard_max_bytes)",
                                      text.size(), max_bytes_);
    log_.warn("clipboard: {}; the VM keeps what it had", stats_.last_refusal);
    return Error{stats_.last_refusal};
  }
  if (!vm_) return Error{"the VM's clipboard is not connected"};
  ++stats_.to_vm;
  stats_.to_vm_bytes += text.size();
  client_text_ = std::make_shared<const ClipboardText>(ClipboardText{std::move(text)});
  ++vm_generation_;  // a VM text still being fetched is older than this copy
  vm_text_.reset();
  stats_.owner = "viewer";
  vm_->grab();  // queued on the source's thread
  return {};
}

void ClipboardHub::refuse(const std::string& why) {
  std::lock_guard lock(mutex_);
  ++stats_.refused;
  stats_.last_refusal = why;
  log_.warn_limited(refusal_log_, "clipboard: {}", why);
}

ClipboardStats ClipboardHub::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace vdistream::core
