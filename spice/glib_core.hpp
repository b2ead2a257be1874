// spice-server's SpiceCoreInterface (timers, fd watches) on GLib. SpiceCoreInterface passes no
// user pointer, so timers and watches attach to the calling thread's default main context:
// spice-server calls its core only from the thread that called spice_server_init, which is the
// desktop's ContextThread (it pushes its context as thread default).
#pragma once

#include <cstddef>

typedef struct SpiceCoreInterface SpiceCoreInterface;
typedef struct _GMainContext GMainContext;

namespace vdistream::spice {

SpiceCoreInterface* glib_core_interface();

// After spice_server_destroy(), on the context's thread: drops the timers and watches the server
// left on `context` (0.15.1 leaves some of a connected client's), so none of them fires into the
// freed server while the thread finishes. Returns how many there were.
size_t glib_core_drop_leftovers(GMainContext* context);

}  // namespace vdistream::spice
