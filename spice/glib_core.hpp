// spice-server's SpiceCoreInterface (timers, fd watches) on GLib. SpiceCoreInterface passes no
// user pointer, so timers and watches attach to the calling thread's default main context:
// spice-server calls its core only from the thread that called spice_server_init, which is the
// desktop's glib::LoopThread (it pushes its context as thread default).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <set>

#include "core/log.hpp"

typedef struct SpiceCoreInterface SpiceCoreInterface;
typedef struct _GMainContext GMainContext;

namespace vdistream::spice {

SpiceCoreInterface* glib_core_interface();

// A desktop's SPICE clients (main channels), as spice-server's channel events report them (a
// connection that never got that far, such as a refused ticket, is not counted).
class ClientCount {
 public:
  int clients() const { return clients_; }  // any thread
  void up(uint64_t connection_id);          // the desktop's thread
  void gone(uint64_t connection_id);        // the desktop's thread

 private:
  std::atomic<int> clients_{0};
  std::set<uint64_t> connections_;  // the desktop's thread only
};

// On a desktop's thread, before its server starts: spice-server's channel events (which carry no
// user pointer) on this thread log through `log` and count into `clients`. nullptrs unbind.
void glib_core_bind_thread(const core::Logger* log, ClientCount* clients);

// After spice_server_destroy(), on the context's thread: drops the timers and watches the server
// left on `context` (0.15.1 leaves some of a connected client's), so none of them fires into the
// freed server while the thread finishes. Returns how many there were.
size_t glib_core_drop_leftovers(GMainContext* context);

}  // namespace vdistream::spice
