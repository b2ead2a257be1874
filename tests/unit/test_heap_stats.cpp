// core::heap_stats: what malloc holds (GET /api/service's "memory", the soak's heap curve). It must
// follow real allocations, or a soak could not tell a leak (in use grows) from memory malloc keeps.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/memory.hpp"

using namespace vdistream;

#if defined(__SANITIZE_ADDRESS__)
#define VDISTREAM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VDISTREAM_TEST_ASAN 1
#endif
#endif

TEST_CASE("heap statistics count what is allocated and no longer count it once freed", "[memory]") {
#ifdef VDISTREAM_TEST_ASAN
  WARN("AddressSanitizer's allocator replaces malloc: mallinfo2 sees none of it; checked in the optimised build");
  return;
#endif
  constexpr size_t kBlock = 1 << 20, kBlocks = 40;
  const core::HeapStats before = core::heap_stats();
  std::vector<void*> blocks;
  for (size_t i = 0; i < kBlocks; ++i) {
    void* p = std::malloc(kBlock);
    REQUIRE(p);
    std::memset(p, int(i), kBlock);  // used, so not optimised away
    blocks.push_back(p);
  }
  const core::HeapStats held = core::heap_stats();
  INFO("in use before " << before.in_use << ", with the blocks " << held.in_use);
  CHECK(held.in_use >= before.in_use + kBlocks * kBlock);
  for (void* p : blocks) std::free(p);
  core::release_free_memory();
  const core::HeapStats after = core::heap_stats();
  INFO("after freeing " << after.in_use);
  CHECK(after.in_use + kBlocks * kBlock <= held.in_use + kBlock);
}
