// What one desktop's pipeline did: counters and per-stage latency, a first-class value.
#pragma once

#include <cstdint>

#include "core/histogram.hpp"

namespace vdistream::encode {

struct PipelineStats {
  uint64_t frames_captured = 0;   // submitted by the source
  uint64_t frames_replaced = 0;   // replaced in the slot by a newer frame before encoding (damage merged)
  uint64_t frames_skipped = 0;    // nothing changed: not encoded
  uint64_t frames_unwatched = 0;  // taken while no sink was attached: not encoded
  uint64_t frames_encoded = 0;    // access units produced (keep-alives included)
  uint64_t keepalives = 0;
  uint64_t trailing_frames = 0;  // unchanged frames right after the last change (EncodedSink::wants_trailing_frame)
  uint64_t keyframes = 0;
  uint64_t keyframe_requests = 0;  // asked for by sinks; coalesced into `keyframes`
  uint64_t encode_errors = 0;
  uint64_t bytes_out = 0;
  uint64_t tiles_converted = 0;
  // Whole-picture CPU copies on the way to the encoder: 0 by design where the source's damage
  // is exact; the damage tracker's shadow costs one per inexact frame that changed everywhere.
  uint64_t full_frame_copies = 0;

  // Per stage, on the monotonic clock (see core::FrameTimestamps).
  core::LatencyHistogram wait;     // captured → dequeued (time in the slot)
  core::LatencyHistogram convert;  // dequeued → converted
  core::LatencyHistogram encode;   // converted → encoded
  core::LatencyHistogram total;    // captured → encoded: host processing latency
};

}  // namespace vdistream::encode
