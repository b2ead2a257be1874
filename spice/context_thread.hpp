// A thread that runs one GLib main context: the home of one desktop's spice-server. Other
// threads hand work to it with post() (FIFO) or run() (waits for the result).
#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <set>
#include <string>
#include <thread>

#include "core/log.hpp"

typedef struct _GMainContext GMainContext;
typedef struct _GMainLoop GMainLoop;

namespace vdistream::spice {

class ContextThread {
 public:
  explicit ContextThread(const core::Logger& log);
  ~ContextThread();  // stop()
  ContextThread(const ContextThread&) = delete;
  ContextThread& operator=(const ContextThread&) = delete;

  void start();
  // Runs what was posted before, then ends the loop and joins. Idempotent.
  void stop();

  // Queues `fn` to run on the thread. Dropped (destroyed unrun) if the thread has stopped.
  void post(std::function<void()> fn);

  // Runs `fn` on the thread and waits for its result; runs it inline when called on the thread.
  template <typename F>
  auto run(F fn) -> decltype(fn()) {
    if (on_thread()) return fn();
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    post([&task] { task(); });
    return result.get();
  }

  bool on_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  GMainContext* context() const { return context_; }

  // The logger of the desktop whose thread the caller is on (for callbacks without context,
  // such as spice-server's channel_event); nullptr on other threads.
  static const core::Logger* current_logger();
  // The thread the caller is on, or nullptr (same use).
  static ContextThread* current();

  // SPICE clients connected to the server on this thread (main channels), from any thread.
  int spice_clients() const { return spice_clients_; }
  // On the thread: a client's main channel is up, or its connection is gone (a connection that
  // never got that far, such as a refused ticket, is not counted).
  void spice_client_up(uint64_t connection_id);
  void spice_connection_gone(uint64_t connection_id);

 private:
  void loop();

  core::Logger log_;
  GMainContext* context_;
  GMainLoop* loop_;
  std::thread thread_;
  std::atomic<int> spice_clients_{0};
  std::set<uint64_t> spice_connections_;  // thread only
};

}  // namespace vdistream::spice
