#pragma once
// A cheap look at a video file before any decoding: can it be opened, and how much work is it?
// Used by rank 0's manifest check and to balance work across ranks (an estimate only: the true
// frame count is what decoding yields).
#include <cstdint>
#include <string>

namespace vidfeat {

// The cost estimate is bounded by the file's size: at most fileBytes / kMinBytesPerFrame frames,
// so a header claiming a duration the file cannot hold (1e9 s in 9 KB) costs no more than an
// honest file of the same size whose frames take 64 bytes -- it does not put the video first.
// (Only the schedule uses the estimate; decoding counts the true frames.)
constexpr int64_t kMinBytesPerFrame = 64;

struct ProbeResult {
  bool ok = false;
  std::string error;  // why it cannot be opened (when !ok)
  int64_t fileBytes = 0;
  int64_t estimatedFrames = -1;  // header frame count, or duration x frame rate; -1 unknown
  // Relative cost for balancing: estimated frames when known, else a size-based guess.
  double cost() const;
};

// Reads only the container header (no stream probing, no decoding): about a millisecond. Opens
// with the container and protocol whitelists (decode/ffmpeg.h) and gives up after 60 s.
ProbeResult probeVideo(const std::string& path);

}  // namespace vidfeat
