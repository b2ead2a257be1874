#include "transport/main_loop_thread.hpp"

#include <glib.h>

namespace vdistream::transport {

namespace {

gboolean run_posted(gpointer data) {
  (*static_cast<std::function<void()>*>(data))();
  return G_SOURCE_REMOVE;
}

void delete_posted(gpointer data) { delete static_cast<std::function<void()>*>(data); }

}  // namespace

MainLoopThread::MainLoopThread() : context_(g_main_context_new()), loop_(g_main_loop_new(context_, FALSE)) {}

MainLoopThread::~MainLoopThread() {
  stop();
  // Sources still attached (posted after stop) are destroyed with the context.
  g_main_loop_unref(loop_);
  g_main_context_unref(context_);
}

void MainLoopThread::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    g_main_context_push_thread_default(context_);
    g_main_loop_run(loop_);
    // Let what was posted before stop() and the last socket callbacks run.
    while (g_main_context_iteration(context_, FALSE)) {
    }
    g_main_context_pop_thread_default(context_);
  });
}

void MainLoopThread::stop() {
  if (!thread_.joinable()) return;
  post([this] { g_main_loop_quit(loop_); });
  thread_.join();
  thread_ = std::thread();
}

void MainLoopThread::post(std::function<void()> fn) {
  GSource* source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_DEFAULT);
  g_source_set_callback(source, run_posted, new std::function<void()>(std::move(fn)), delete_posted);
  g_source_attach(source, context_);
  g_source_unref(source);
}

}  // namespace vdistream::transport
