#include <catch2/catch.hpp>

#include <glib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "glib/loop_thread.hpp"

using vdistream::glib::LoopThread;

namespace {

// Counts its own destruction: tells a function dropped unrun from one never made.
struct DestroyCounter {
  explicit DestroyCounter(std::atomic<int>& count) : count_(count) {}
  ~DestroyCounter() { ++count_; }
  std::atomic<int>& count_;
};

}  // namespace

TEST_CASE("a loop thread runs posted functions in order on its own thread, its context the thread default") {
  LoopThread loop;
  std::vector<int> order;
  REQUIRE(loop.post([&] { order.push_back(0); }));  // before start(): runs once it starts
  loop.start();
  for (int i = 1; i < 100; ++i) REQUIRE(loop.post([&, i] { order.push_back(i); }));
  bool on_thread = false;
  GMainContext* thread_default = nullptr;
  loop.invoke([&] {
    on_thread = loop.on_thread();
    thread_default = g_main_context_get_thread_default();
  });
  CHECK(on_thread);
  CHECK_FALSE(loop.on_thread());
  CHECK(thread_default == loop.context());
  loop.stop();
  REQUIRE(order.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(order[size_t(i)] == i);
}

TEST_CASE("invoke returns the function's result from the loop, and runs directly when called on the loop") {
  LoopThread loop;
  loop.start();
  std::thread::id caller = std::this_thread::get_id();
  CHECK(loop.invoke([&] { return std::this_thread::get_id() != caller; }));
  CHECK(loop.invoke([] { return std::string("answer"); }) == "answer");
  // From the loop itself: it would wait for itself if it posted.
  CHECK(loop.invoke([&] { return loop.invoke([&] { return loop.on_thread() ? 42 : 0; }); }) == 42);
  auto moved = loop.invoke([] { return std::make_unique<int>(7); });  // move-only results
  CHECK(*moved == 7);
}

TEST_CASE("stop runs what was posted before it and the sources ready then, joins, and drops what is posted after") {
  LoopThread loop;
  loop.start();
  std::atomic<int> ran{0}, destroyed{0};
  bool idle_ran = false;
  // Blocks the loop so that everything below is queued when stop() comes.
  std::atomic<bool> release{false};
  loop.post([&] {
    while (!release) std::this_thread::yield();
  });
  for (int i = 0; i < 10; ++i) loop.post([&, d = std::make_shared<DestroyCounter>(destroyed)] { ++ran; });
  loop.post([&] {
    // A source of its own (as a socket's callback would be), ready when the loop quits.
    GSource* idle = g_idle_source_new();
    g_source_set_priority(idle, G_PRIORITY_LOW);
    g_source_set_callback(
        idle, [](gpointer flag) -> gboolean { return *static_cast<bool*>(flag) = true, G_SOURCE_REMOVE; }, &idle_ran,
        nullptr);
    g_source_attach(idle, g_main_context_get_thread_default());
    g_source_unref(idle);
  });
  std::thread stopper([&] { loop.stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // stop() posts its quit meanwhile
  release = true;
  stopper.join();
  CHECK(ran == 10);
  CHECK(destroyed == 10);
  CHECK(idle_ran);

  // After stop(): dropped, that is destroyed unrun, at once.
  CHECK_FALSE(loop.post([&, d = std::make_shared<DestroyCounter>(destroyed)] { ++ran; }));
  CHECK(ran == 10);
  CHECK(destroyed == 11);
  loop.stop();  // idempotent
  CHECK_FALSE(loop.on_thread());
}

TEST_CASE("invoke never waits on a loop that does not run: not started or stopped, it runs on the caller") {
  LoopThread loop;
  const std::thread::id caller = std::this_thread::get_id();
  CHECK(loop.invoke([] { return std::this_thread::get_id(); }) == caller);
  loop.start();
  CHECK(loop.invoke([] { return std::this_thread::get_id(); }) != caller);
  loop.stop();
  CHECK(loop.invoke([] { return std::this_thread::get_id(); }) == caller);
  loop.start();  // and it starts again
  CHECK(loop.invoke([] { return std::this_thread::get_id(); }) != caller);
}

TEST_CASE("invokes from other threads racing stop() each run exactly once, none of them hangs") {
  for (int round = 0; round < 20; ++round) {
    LoopThread loop;
    loop.start();
    std::atomic<int> ran{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t)
      callers.emplace_back([&] {
        for (int i = 0; i < 50; ++i) loop.invoke([&] { ++ran; });
      });
    loop.stop();
    for (auto& c : callers) c.join();
    CHECK(ran == 200);
  }
}

TEST_CASE("two threads stopping one loop both return once it has ended") {
  LoopThread loop;
  loop.start();
  std::atomic<bool> release{false};
  loop.post([&] {
    while (!release) std::this_thread::yield();
  });
  std::atomic<int> returned{0};
  std::thread a([&] { loop.stop(), ++returned; }), b([&] { loop.stop(), ++returned; });
  release = true;
  a.join();
  b.join();
  CHECK(returned == 2);
  CHECK_FALSE(loop.post([] {}));
}
