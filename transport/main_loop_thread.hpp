// A thread that runs one GLib main context: the home of the HTTP server and of each desktop's
// signalling. Other threads hand work to it with post() (FIFO) or run() (waits for the result).
#pragma once

#include <functional>
#include <future>
#include <thread>

typedef struct _GMainContext GMainContext;
typedef struct _GMainLoop GMainLoop;

namespace vdistream::transport {

class MainLoopThread {
 public:
  MainLoopThread();
  ~MainLoopThread();  // stop()
  MainLoopThread(const MainLoopThread&) = delete;
  MainLoopThread& operator=(const MainLoopThread&) = delete;

  void start();
  void stop();  // runs what was posted before, then ends the loop and joins; idempotent

  void post(std::function<void()> fn);  // dropped unrun if the thread has stopped

  template <typename F>
  auto run(F fn) -> decltype(fn()) {
    if (on_thread() || !thread_.joinable()) return fn();
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    post([&task] { task(); });
    return result.get();
  }

  bool on_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  GMainContext* context() const { return context_; }

 private:
  GMainContext* context_;
  GMainLoop* loop_;
  std::thread thread_;
};

}  // namespace vdistream::transport
