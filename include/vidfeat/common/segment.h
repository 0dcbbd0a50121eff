#pragma once
// One temporal bucket of a video, as stored in the output (/segments): which source frames it
// spans and when.
#include <cstdint>

namespace vidfeat {

// The field order leaves no padding: the store writes this struct as it is, after the video's
// row, as one /segments row (src/store/store_schema.h, docs/FORMAT.md).
struct SegmentRecord {
  int32_t index = 0;         // 0-based segment index within the video
  int32_t paddedFrames = 0;  // clip frames that are padding (no real frame at that position)
  int64_t firstFrame = 0;    // first source frame of the bucket span (decoded-frame index)
  int64_t lastFrame = 0;     // last source frame of the bucket span (inclusive)
  double startTime = 0.0;    // seconds: presentation time of the span's first frame
  double endTime = 0.0;      // seconds: presentation time of the frame after the span (or the
                             // last frame's time plus one frame duration at the end)
};
static_assert(sizeof(SegmentRecord) == 40, "SegmentRecord must have no padding");

}  // namespace vidfeat
