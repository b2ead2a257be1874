// Giving freed memory back to the system. glibc keeps what a thread freed in that thread's arena
// for reuse; after a desktop stops (its encoder, pipeline and buffers: tens of MiB) or a viewer
// leaves (its webrtcbin), much of it would stay resident for good, and the service's RSS would
// climb to the sum of its past peaks: the soak benchmark saw 118 MiB in use beside 280 MiB held,
// and malloc_trim took RSS from 348 to 230 MiB. Rare events, a few milliseconds each.
#pragma once

#include <malloc.h>

#include <cstddef>
#include <cstdlib>

namespace vdistream::core {

inline void release_free_memory() { malloc_trim(0); }

// glibc gives a thread that finds its arena busy an arena of its own, up to 8 per core; what is
// freed goes back to the arena it came from, and a page stays resident while any block on it is
// in use, so memory spread over many arenas is memory that cannot be given back. vdistreamd's
// threads (GStreamer's streaming threads, encoders, the desktops' loops) come and go with the
// viewers and desktops; fewer arenas keep their leftovers together. Each thread's own cache of
// small blocks (tcache) still takes most allocations without a lock. MALLOC_ARENA_MAX in the
// environment, when set, is the operator's and wins.
inline constexpr int kMallocArenas = 2;
inline void limit_malloc_arenas(int arenas = kMallocArenas) {
  if (!std::getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, arenas);
}

// What malloc holds, over all of its arenas (glibc's mallinfo2): what a growing RSS is made of.
// A leak grows in_use; memory freed but kept by malloc (fragmentation, arenas) grows free_held.
struct HeapStats {
  size_t in_use = 0;     // bytes in blocks handed out, arenas and mmapped blocks
  size_t free_held = 0;  // bytes free in the arenas, kept by malloc for reuse
  size_t mmapped = 0;    // bytes in blocks malloc mmapped on their own (part of in_use)
};

inline HeapStats heap_stats() {
  const struct mallinfo2 m = mallinfo2();
  return {m.uordblks + m.hblkhd, m.fordblks, m.hblkhd};
}

}  // namespace vdistream::core
