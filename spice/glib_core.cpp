#include "spice/glib_core.hpp"

#include <glib-unix.h>
#include <glib.h>
#include <spice.h>

#include <algorithm>
#include <mutex>
#include <vector>


struct SpiceTimer {
  GMainContext* context = nullptr;
  GSource* source = nullptr;
  SpiceTimerFunc func = nullptr;
  void* opaque = nullptr;
};

struct SpiceWatch {
  GMainContext* context = nullptr;
  GSource* source = nullptr;
  int fd = -1;
  SpiceWatchFunc func = nullptr;
  void* opaque = nullptr;
};

namespace vdistream::spice {

namespace {

// The desktop whose thread this is (see glib_core_bind_thread).
thread_local const core::Logger* t_logger = nullptr;
thread_local ClientCount* t_clients = nullptr;

// Every live timer and watch, so that what spice-server leaves behind when it is destroyed can
// be dropped (see glib_core_drop_leftovers). Touched from the desktops' threads.
std::mutex g_live_mutex;
std::vector<SpiceTimer*> g_live_timers;
std::vector<SpiceWatch*> g_live_watches;

template <typename T>
void forget(std::vector<T*>& live, T* item) {
  std::lock_guard lock(g_live_mutex);
  live.erase(std::remove(live.begin(), live.end(), item), live.end());
}

GMainContext* calling_context() {
  GMainContext* context = g_main_context_get_thread_default();
  return context ? context : g_main_context_default();
}

void drop_source(GSource*& source) {
  if (!source) return;
  g_source_destroy(source);
  g_source_unref(source);
  source = nullptr;
}

SpiceTimer* timer_add(SpiceTimerFunc func, void* opaque) {
  auto* timer = new SpiceTimer{calling_context(), nullptr, func, opaque};
  std::lock_guard lock(g_live_mutex);
  g_live_timers.push_back(timer);
  return timer;
}

gboolean timer_fired(gpointer data) {
  auto* timer = static_cast<SpiceTimer*>(data);
  // One-shot: forget the source before the callback, which may start or remove the timer.
  g_source_unref(timer->source);
  timer->source = nullptr;
  timer->func(timer->opaque);
  return G_SOURCE_REMOVE;
}

void timer_cancel(SpiceTimer* timer) { drop_source(timer->source); }

void timer_start(SpiceTimer* timer, uint32_t ms) {
  timer_cancel(timer);
  timer->source = g_timeout_source_new(ms);
  g_source_set_callback(timer->source, timer_fired, timer, nullptr);
  g_source_attach(timer->source, timer->context);
}

void timer_remove(SpiceTimer* timer) {
  forget(g_live_timers, timer);
  timer_cancel(timer);
  delete timer;
}

gboolean watch_ready(gint fd, GIOCondition condition, gpointer data) {
  auto* watch = static_cast<SpiceWatch*>(data);
  int events = 0;
  if (condition & (G_IO_IN | G_IO_HUP | G_IO_ERR)) events |= SPICE_WATCH_EVENT_READ;
  if (condition & G_IO_OUT) events |= SPICE_WATCH_EVENT_WRITE;
  // The callback may update or remove this watch: do not touch it afterwards.
  watch->func(fd, events, watch->opaque);
  return G_SOURCE_CONTINUE;
}

void watch_update_mask(SpiceWatch* watch, int event_mask) {
  drop_source(watch->source);
  int condition = 0;
  if (event_mask & SPICE_WATCH_EVENT_READ) condition |= G_IO_IN | G_IO_HUP | G_IO_ERR;
  if (event_mask & SPICE_WATCH_EVENT_WRITE) condition |= G_IO_OUT;
  if (condition == 0) return;
  watch->source = g_unix_fd_source_new(watch->fd, GIOCondition(condition));
  g_source_set_callback(watch->source, G_SOURCE_FUNC(watch_ready), watch, nullptr);
  g_source_attach(watch->source, watch->context);
}

SpiceWatch* watch_add(int fd, int event_mask, SpiceWatchFunc func, void* opaque) {
  auto* watch = new SpiceWatch{calling_context(), nullptr, fd, func, opaque};
  watch_update_mask(watch, event_mask);
  std::lock_guard lock(g_live_mutex);
  g_live_watches.push_back(watch);
  return watch;
}

void watch_remove(SpiceWatch* watch) {
  forget(g_live_watches, watch);
  drop_source(watch->source);
  delete watch;
}

const char* channel_type_name(int type) {
  switch (type) {
    case SPICE_CHANNEL_MAIN: return "main";
    case SPICE_CHANNEL_DISPLAY: return "display";
    case SPICE_CHANNEL_INPUTS: return "inputs";
    case SPICE_CHANNEL_CURSOR: return "cursor";
    case SPICE_CHANNEL_PLAYBACK: return "playback";
    case SPICE_CHANNEL_RECORD: return "record";
    case SPICE_CHANNEL_PORT: return "port";
    default: return "other";
  }
}

// May run on spice-server's display worker thread too: it only logs.
void channel_event(int event, SpiceChannelEventInfo* info) {
  static const core::Logger fallback("spice");
  const core::Logger* log = t_logger ? t_logger : &fallback;
  const char* what = event == SPICE_CHANNEL_EVENT_CONNECTED      ? "connected"
                     : event == SPICE_CHANNEL_EVENT_INITIALIZED  ? "initialized"
                     : event == SPICE_CHANNEL_EVENT_DISCONNECTED ? "disconnected"
                                                                 : "event";
  const bool tls = info && (info->flags & SPICE_CHANNEL_EVENT_FLAG_TLS);
  // A client is its main channel: counted on the desktop's thread, where spice-server runs it.
  if (info && info->type == SPICE_CHANNEL_MAIN)
    if (t_clients) {
      if (event == SPICE_CHANNEL_EVENT_INITIALIZED) t_clients->up(info->connection_id);
      if (event == SPICE_CHANNEL_EVENT_DISCONNECTED) t_clients->gone(info->connection_id);
    }
  log->debug("spice {} channel {} (connection {}{})", info ? channel_type_name(info->type) : "?", what,
             info ? info->connection_id : 0, tls ? ", TLS" : "");
}

SpiceCoreInterface g_core = {
    {SPICE_INTERFACE_CORE, "vdistream glib core", SPICE_INTERFACE_CORE_MAJOR, SPICE_INTERFACE_CORE_MINOR},
    timer_add,
    timer_start,
    timer_cancel,
    timer_remove,
    watch_add,
    watch_update_mask,
    watch_remove,
    channel_event,
};

}  // namespace

SpiceCoreInterface* glib_core_interface() { return &g_core; }

void ClientCount::up(uint64_t connection_id) {
  if (connections_.insert(connection_id).second) ++clients_;
}

void ClientCount::gone(uint64_t connection_id) {
  if (connections_.erase(connection_id)) --clients_;
}

void glib_core_bind_thread(const core::Logger* log, ClientCount* clients) {
  t_logger = log;
  t_clients = clients;
}

size_t glib_core_drop_leftovers(GMainContext* context) {
  std::vector<SpiceTimer*> timers;
  std::vector<SpiceWatch*> watches;
  {
    std::lock_guard lock(g_live_mutex);
    auto take = [context](auto& live, auto& out) {
      for (auto* item : live)
        if (item->context == context) out.push_back(item);
      live.erase(std::remove_if(live.begin(), live.end(), [context](auto* item) { return item->context == context; }),
                 live.end());
    };
    take(g_live_timers, timers);
    take(g_live_watches, watches);
  }
  for (SpiceTimer* timer : timers) {
    drop_source(timer->source);
    delete timer;
  }
  for (SpiceWatch* watch : watches) {
    drop_source(watch->source);
    delete watch;
  }
  return timers.size() + watches.size();
}

}  // namespace vdistream::spice
