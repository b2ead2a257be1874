#include "service/host.hpp"

#include <fmt/format.h>

#include <map>
#include <thread>

#include "core/log.hpp"
#include "core/memory.hpp"

namespace vdistream::service {

namespace {

std::string join(const std::vector<std::string>& names) {
  if (names.empty()) return "-";
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Stops sessions in parallel: one slow teardown (a QEMU that hangs) does not hold up the others.
void stop_sessions(const std::vector<std::shared_ptr<DesktopSession>>& sessions) {
  std::vector<std::thread> stoppers;
  for (const auto& s : sessions) stoppers.emplace_back([s] { s->stop(); });
  for (auto& t : stoppers) t.join();
}

}  // namespace

std::string ReloadSummary::to_string() const {
  return fmt::format("added {}; removed {}; restarted {}; kept {}", join(added), join(removed), join(restarted),
                     join(kept));
}

Host::~Host() { stop_all(); }

ReloadSummary Host::apply(const ServiceConfig& config) {
  // Sessions stop and start without mutex_ held: a stopping desktop unregisters its WebRTC paths
  // on the HTTP thread, which may be waiting for mutex_ in an API request meanwhile.
  std::lock_guard apply_lock(apply_mutex_);
  std::vector<std::shared_ptr<DesktopSession>> current = sessions();
  ReloadSummary summary;
  std::map<std::string, std::shared_ptr<DesktopSession>> running;
  for (const auto& s : current) running[s->name()] = s;

  std::vector<std::shared_ptr<DesktopSession>> to_stop;
  for (const auto& s : current) {
    const DesktopConfig* wanted = config.find(s->name());
    if (!wanted) {
      summary.removed.push_back(s->name());
      to_stop.push_back(s);
    } else if (wanted->fingerprint() != s->config().fingerprint()) {
      summary.restarted.push_back(s->name());
      to_stop.push_back(s);
    }
  }
  stop_sessions(to_stop);

  std::vector<std::shared_ptr<DesktopSession>> next;
  for (const auto& d : config.desktops) {
    auto it = running.find(d.name);
    const bool keep = it != running.end() && it->second->config().fingerprint() == d.fingerprint();
    if (keep) {
      summary.kept.push_back(d.name);
      next.push_back(it->second);
      continue;
    }
    if (it == running.end()) summary.added.push_back(d.name);
    auto session = std::make_shared<DesktopSession>(d, registry_, http_);
    session->start();
    next.push_back(std::move(session));
  }
  {
    std::lock_guard lock(mutex_);
    sessions_ = std::move(next);
  }
  config_ = config;
  if (!to_stop.empty()) {
    // The stopped desktops go now (the last references), and what they held goes back to the system.
    to_stop.clear();
    current.clear();
    running.clear();
    core::release_free_memory();
  }
  core::Logger("service").info("configuration applied: {}", summary.to_string());
  return summary;
}

void Host::stop_all() {
  std::lock_guard apply_lock(apply_mutex_);
  std::vector<std::shared_ptr<DesktopSession>> sessions;
  {
    std::lock_guard lock(mutex_);
    sessions.swap(sessions_);
  }
  stop_sessions(sessions);
}

std::vector<DesktopStatus> Host::statuses() const {
  std::vector<DesktopStatus> out;
  for (const auto& s : sessions()) out.push_back(s->status());
  return out;
}

std::shared_ptr<DesktopSession> Host::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  for (const auto& s : sessions_)
    if (s->name() == name) return s;
  return nullptr;
}

std::vector<std::shared_ptr<DesktopSession>> Host::sessions() const {
  std::lock_guard lock(mutex_);
  return sessions_;
}

}  // namespace vdistream::service
