#pragma once
// One temporal bucket of a video, as stored in the output (/segments): which source frames it
// spans and when.
#include <cstdint>

namespace vidfeat {

struct SegmentRecord {
  int32_t index = 0;         // 0-based segment index within the video
  int64_t firstFrame = 0;    // first source frame of the bucket span (decoded-frame index)
  int64_t lastFrame = 0;     // last source frame of the bucket span (inclusive)
  double startTime = 0.0;    // seconds: presentation time of the span's first frame
  double endTime = 0.0;      // seconds: presentation time of the frame after the span (or the
                             // last frame's time plus one frame duration at the end)
  int32_t paddedFrames = 0;  // clip frames that are padding (no real frame at that position)
};

}  // namespace vidfeat
