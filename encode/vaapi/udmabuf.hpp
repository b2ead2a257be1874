// A memfd-backed FrameBuffer (QEMU's Scanout surfaces, the synthetic desktop) turned into a
// dma-buf over the same pages by /dev/udmabuf, so GPU importers take it without a copy. Needs
// the udmabuf module, access to /dev/udmabuf, a memfd sealed against shrinking and a
// page-aligned size.
#pragma once

#include "core/frame_buffer.hpp"
#include "core/status.hpp"

namespace vdistream::encode {

core::Result<core::FrameBufferPtr> wrap_memfd_as_dmabuf(const core::FrameBuffer& buffer);

}  // namespace vdistream::encode
