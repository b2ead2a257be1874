#include "spice/context_thread.hpp"

#include <glib.h>

namespace vdistream::spice {

namespace {

thread_local const core::Logger* t_logger = nullptr;
thread_local ContextThread* t_thread = nullptr;

gboolean run_posted(gpointer data) {
  (*static_cast<std::function<void()>*>(data))();
  return G_SOURCE_REMOVE;
}

void delete_posted(gpointer data) { delete static_cast<std::function<void()>*>(data); }

}  // namespace

ContextThread::ContextThread(const core::Logger& log)
    : log_(log), context_(g_main_context_new()), loop_(g_main_loop_new(context_, FALSE)) {}

ContextThread::~ContextThread() {
  stop();
  g_main_loop_unref(loop_);
  g_main_context_unref(context_);
}

void ContextThread::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
}

void ContextThread::stop() {
  if (!thread_.joinable()) return;
  post([this] { g_main_loop_quit(loop_); });
  thread_.join();
}

void ContextThread::post(std::function<void()> fn) {
  GSource* source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_DEFAULT);
  g_source_set_callback(source, run_posted, new std::function<void()>(std::move(fn)), delete_posted);
  g_source_attach(source, context_);
  g_source_unref(source);
}

const core::Logger* ContextThread::current_logger() { return t_logger; }
ContextThread* ContextThread::current() { return t_thread; }

void ContextThread::spice_client_up(uint64_t connection_id) {
  if (spice_connections_.insert(connection_id).second) ++spice_clients_;
}

void ContextThread::spice_connection_gone(uint64_t connection_id) {
  if (spice_connections_.erase(connection_id)) --spice_clients_;
}

void ContextThread::loop() {
  t_logger = &log_;
  t_thread = this;
  g_main_context_push_thread_default(context_);
  g_main_loop_run(loop_);
  g_main_context_pop_thread_default(context_);
  t_logger = nullptr;
  t_thread = nullptr;
}

}  // namespace vdistream::spice
