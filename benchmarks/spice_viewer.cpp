#include "benchmarks/spice_viewer.hpp"

#include <spice-client.h>

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>

#include "capture/synthetic/barcode.hpp"
#include "core/clock.hpp"

namespace vdistream::bench {

struct SpiceViewer::State {
  std::mutex mutex;
  std::condition_variable changed;
  bool opened = false, failed = false, disconnected = false, has_primary = false, inputs_open = false;
  std::vector<Seen> seen;

  // Loop thread only.
  GMainLoop* loop = nullptr;
  SpiceSession* session = nullptr;
  SpiceChannel* main = nullptr;
  SpiceChannel* display = nullptr;
  SpiceChannel* inputs = nullptr;

  template <typename F>
  void update(F f) {
    {
      std::lock_guard lock(mutex);
      f();
    }
    changed.notify_all();
  }
};

namespace {

using State = SpiceViewer::State;

void on_main_event(SpiceChannel*, SpiceChannelEvent event, gpointer data) {
  auto* s = static_cast<State*>(data);
  s->update([&] {
    if (event == SPICE_CHANNEL_OPENED) s->opened = true;
    else if (event != SPICE_CHANNEL_NONE && event != SPICE_CHANNEL_CLOSED) s->failed = true;
  });
}

void on_inputs_event(SpiceChannel*, SpiceChannelEvent event, gpointer data) {
  auto* s = static_cast<State*>(data);
  s->update([&] { s->inputs_open = event == SPICE_CHANNEL_OPENED; });
}

void on_primary_create(SpiceChannel*, gint, gint, gint, gint, gint, gpointer, gpointer data) {
  static_cast<State*>(data)->update([s = static_cast<State*>(data)] { s->has_primary = true; });
}

void on_invalidate(SpiceChannel* channel, gint, gint, gint, gint, gpointer data) {
  auto* s = static_cast<State*>(data);
  SpiceDisplayPrimary primary{};
  if (!spice_display_channel_get_primary(channel, 0, &primary) || !primary.data) return;
  auto value = capture::Barcode::read_xrgb(primary.data, uint32_t(primary.stride), primary.width, primary.height);
  if (!value) return;
  const int64_t now = core::monotonic_now_ns();
  s->update([&] {
    if (s->seen.empty() || s->seen.back().barcode != *value) s->seen.push_back({*value, now});
  });
}

void on_channel_new(SpiceSession*, SpiceChannel* channel, gpointer data) {
  auto* s = static_cast<State*>(data);
  if (SPICE_IS_MAIN_CHANNEL(channel) && !s->main) {
    s->main = SPICE_CHANNEL(g_object_ref(channel));
    g_signal_connect(channel, "channel-event", G_CALLBACK(on_main_event), s);
  } else if (SPICE_IS_DISPLAY_CHANNEL(channel) && !s->display) {
    s->display = SPICE_CHANNEL(g_object_ref(channel));
    g_signal_connect(channel, "display-primary-create", G_CALLBACK(on_primary_create), s);
    g_signal_connect(channel, "display-invalidate", G_CALLBACK(on_invalidate), s);
    spice_channel_connect(channel);
  } else if (SPICE_IS_INPUTS_CHANNEL(channel) && !s->inputs) {
    s->inputs = SPICE_CHANNEL(g_object_ref(channel));
    g_signal_connect(channel, "channel-event", G_CALLBACK(on_inputs_event), s);
    spice_channel_connect(channel);
  }
}

void on_disconnected(SpiceSession*, gpointer data) {
  auto* s = static_cast<State*>(data);
  s->update([&] { s->disconnected = true; });
}

gboolean run_function(gpointer data) {
  (*static_cast<std::function<void()>*>(data))();
  return G_SOURCE_REMOVE;
}
void delete_function(gpointer data) { delete static_cast<std::function<void()>*>(data); }

void post_default(std::function<void()> fn) {
  GSource* source = g_idle_source_new();
  g_source_set_callback(source, run_function, new std::function<void()>(std::move(fn)), delete_function);
  g_source_attach(source, g_main_context_default());
  g_source_unref(source);
}

}  // namespace

SpiceViewer::SpiceViewer(const SpiceViewerOptions& o) : state_(std::make_unique<State>()) {
  State* s = state_.get();
  s->loop = g_main_loop_new(g_main_context_default(), FALSE);
  thread_ = std::thread([s] { g_main_loop_run(s->loop); });
  run_on_loop([s, o] {
    s->session = spice_session_new();
    if (!o.unix_path.empty()) {
      g_object_set(s->session, "unix-path", o.unix_path.c_str(), nullptr);
    } else {
      g_object_set(s->session, "host", o.host.c_str(), "port", std::to_string(o.port).c_str(), nullptr);
    }
    if (!o.password.empty()) g_object_set(s->session, "password", o.password.c_str(), nullptr);
    g_signal_connect(s->session, "channel-new", G_CALLBACK(on_channel_new), s);
    g_signal_connect(s->session, "disconnected", G_CALLBACK(on_disconnected), s);
    if (!spice_session_connect(s->session)) s->update([s] { s->failed = true; });
  });
}

SpiceViewer::~SpiceViewer() {
  State* s = state_.get();
  run_on_loop([s] {
    for (SpiceChannel** c : {&s->main, &s->display, &s->inputs}) {
      if (*c) g_signal_handlers_disconnect_by_data(*c, s);
      g_clear_object(c);
    }
    spice_session_disconnect(s->session);
  });
  wait_for(std::chrono::seconds(5), [s] { return s->disconnected; });
  // spice-glib finishes tearing its channels down in idle callbacks: let them run first.
  auto drain = [] {
    for (int i = 0; i < 1000 && g_main_context_iteration(g_main_context_default(), FALSE); ++i) {
    }
  };
  run_on_loop(drain);
  run_on_loop([s] {
    g_signal_handlers_disconnect_by_data(s->session, s);
    g_clear_object(&s->session);
  });
  run_on_loop(drain);
  post_default([s] { g_main_loop_quit(s->loop); });
  thread_.join();
  g_main_loop_unref(s->loop);
}

void SpiceViewer::run_on_loop(std::function<void()> fn) {
  auto done = std::make_shared<std::promise<void>>();
  auto result = done->get_future();
  post_default([fn = std::move(fn), done] {
    fn();
    done->set_value();
  });
  result.wait();
}

template <typename Pred>
bool SpiceViewer::wait_for(std::chrono::milliseconds limit, Pred pred) {
  std::unique_lock lock(state_->mutex);
  return state_->changed.wait_for(lock, limit, pred);
}

bool SpiceViewer::wait_opened(std::chrono::milliseconds limit) {
  wait_for(limit, [this] { return state_->opened || state_->failed; });
  std::lock_guard lock(state_->mutex);
  return state_->opened && !state_->failed;
}

uint64_t SpiceViewer::display_bytes_read() {
  gsize bytes = 0;
  State* s = state_.get();
  run_on_loop([s, &bytes] {
    if (s->display) g_object_get(s->display, "total-read-bytes", &bytes, nullptr);
  });
  return bytes;
}

bool SpiceViewer::wait_display(std::chrono::milliseconds limit) {
  return wait_for(limit, [this] { return state_->has_primary; });
}

bool SpiceViewer::wait_barcode(uint32_t value, std::chrono::milliseconds limit) {
  return wait_for(limit, [&] {
    for (const Seen& seen : state_->seen)
      if (seen.barcode == value) return true;
    return false;
  });
}

bool SpiceViewer::wait_inputs(std::chrono::milliseconds limit) {
  return wait_for(limit, [this] { return state_->inputs_open; });
}

bool SpiceViewer::key_press(uint32_t scancode) {
  State* s = state_.get();
  bool sent = false;
  run_on_loop([s, scancode, &sent] {
    if (!s->inputs) return;
    spice_inputs_channel_key_press(SPICE_INPUTS_CHANNEL(s->inputs), scancode);
    sent = true;
  });
  return sent;
}

bool SpiceViewer::key_release(uint32_t scancode) {
  State* s = state_.get();
  bool sent = false;
  run_on_loop([s, scancode, &sent] {
    if (!s->inputs) return;
    spice_inputs_channel_key_release(SPICE_INPUTS_CHANNEL(s->inputs), scancode);
    sent = true;
  });
  return sent;
}

std::vector<SpiceViewer::Seen> SpiceViewer::barcodes() const {
  std::lock_guard lock(state_->mutex);
  return state_->seen;
}

void SpiceViewer::clear_barcodes() {
  std::lock_guard lock(state_->mutex);
  state_->seen.clear();
}

}  // namespace vdistream::bench
