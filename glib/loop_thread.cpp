#include "glib/loop_thread.hpp"

#include <glib.h>

namespace vdistream::glib {

namespace {

gboolean run_posted(gpointer data) {
  (*static_cast<std::function<void()>*>(data))();
  return G_SOURCE_REMOVE;
}

void delete_posted(gpointer data) { delete static_cast<std::function<void()>*>(data); }

}  // namespace

LoopThread::LoopThread() : context_(g_main_context_new()), loop_(g_main_loop_new(context_, FALSE)) {}

LoopThread::~LoopThread() {
  stop();
  // Sources still attached (posted before a start() that never came) are destroyed with the context.
  g_main_loop_unref(loop_);
  g_main_context_unref(context_);
}

void LoopThread::start() {
  std::lock_guard lock(mutex_);
  if (state_ == State::Running || state_ == State::Stopping) return;
  state_ = State::Running;
  thread_ = std::thread([this] { loop(); });
}

void LoopThread::stop() {
  {
    std::unique_lock lock(mutex_);
    if (state_ == State::Idle) state_ = State::Stopped;
    if (state_ == State::Stopping) stopped_.wait(lock, [this] { return state_ == State::Stopped; });
    if (state_ == State::Stopped) return;
    state_ = State::Stopping;
    attach([this] { g_main_loop_quit(loop_); });  // after everything posted so far
  }
  thread_.join();
  {
    std::lock_guard lock(mutex_);
    state_ = State::Stopped;
  }
  stopped_.notify_all();
}

bool LoopThread::post(std::function<void()> fn) {
  std::unique_lock lock(mutex_);
  if (state_ == State::Stopping || state_ == State::Stopped) {
    lock.unlock();
    fn = nullptr;  // what it holds may post in its destructor
    return false;
  }
  attach(std::move(fn));
  return true;
}

bool LoopThread::post_if_running(std::function<void()> fn) {
  std::unique_lock lock(mutex_);
  if (state_ == State::Running) {
    attach(std::move(fn));
    return true;
  }
  stopped_.wait(lock, [this] { return state_ != State::Stopping; });
  return false;
}

void LoopThread::attach(std::function<void()> fn) {
  GSource* source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_DEFAULT);
  g_source_set_callback(source, run_posted, new std::function<void()>(std::move(fn)), delete_posted);
  g_source_attach(source, context_);
  g_source_unref(source);
}

void LoopThread::loop() {
  g_main_context_push_thread_default(context_);
  g_main_loop_run(loop_);
  // Let the sources that are ready now run (the last socket callbacks, cancelled calls freeing
  // their state); posts are refused from here on.
  while (g_main_context_iteration(context_, FALSE)) {
  }
  g_main_context_pop_thread_default(context_);
}

}  // namespace vdistream::glib
