// A thread that runs a GMainLoop on a GMainContext of its own (pushed as the thread's default):
// the home of a desktop's D-Bus listener, its spice-server, the HTTP server. Other threads hand
// work to it with post() (FIFO) or invoke() (waits for the result).
#pragma once

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <type_traits>

typedef struct _GMainContext GMainContext;
typedef struct _GMainLoop GMainLoop;

namespace vdistream::glib {

class LoopThread {
 public:
  LoopThread();
  ~LoopThread();  // stop()
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  void start();  // no-op while running
  // Runs what was posted before, ends the loop, lets the sources that are ready then (the last
  // socket callbacks) run, and joins. Idempotent; a second caller waits for the first. Not from
  // the thread itself.
  void stop();

  // Queues `fn` to run on the thread (before start(): once it starts). Once stop() has begun,
  // `fn` is dropped (destroyed unrun) and post() returns false.
  bool post(std::function<void()> fn);

  // Runs `fn` on the thread and waits for its result. Runs it directly when called on the
  // thread, or when no loop runs (not started, or stopped: nothing else touches the context
  // then); a call that meets stop() half-way waits for the thread to end first.
  template <typename F>
  std::invoke_result_t<F&> invoke(F fn) {
    if (on_thread()) return fn();
    std::packaged_task<std::invoke_result_t<F&>()> task(std::move(fn));
    auto result = task.get_future();
    if (!post_if_running([&task] { task(); })) task();
    return result.get();
  }

  bool on_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  GMainContext* context() const { return context_; }

 private:
  enum class State { Idle, Running, Stopping, Stopped };
  // Attaches `fn` and returns true while the loop runs; otherwise waits out a stop() under way
  // and returns false (fn kept).
  bool post_if_running(std::function<void()> fn);
  void attach(std::function<void()> fn);  // under mutex_
  void loop();

  GMainContext* context_;
  GMainLoop* loop_;
  std::thread thread_;
  std::mutex mutex_;  // orders posts before the quit that stop() posts
  std::condition_variable stopped_;
  State state_ = State::Idle;
};

}  // namespace vdistream::glib
