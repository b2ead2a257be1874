// spice-server's SpiceCoreInterface (timers, fd watches) on GLib. SpiceCoreInterface passes no
// user pointer, so timers and watches attach to the calling thread's default main context:
// spice-server calls its core only from the thread that called spice_server_init, which is the
// desktop's ContextThread (it pushes its context as thread default).
#pragma once

typedef struct SpiceCoreInterface SpiceCoreInterface;

namespace vdistream::spice {

SpiceCoreInterface* glib_core_interface();

}  // namespace vdistream::spice
