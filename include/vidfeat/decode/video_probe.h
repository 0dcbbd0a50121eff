#pragma once
// A cheap look at a video file before any decoding: can it be opened, and how much work is it?
// Used by rank 0's manifest check and to balance work across ranks (an estimate only: the true
// frame count is what decoding yields).
#include <cstdint>
#include <string>

namespace vidfeat {

struct ProbeResult {
  bool ok = false;
  std::string error;              // why it cannot be opened (when !ok)
  int64_t fileBytes = 0;
  int64_t estimatedFrames = -1;   // header frame count, or duration x frame rate; -1 unknown
  // Relative cost for balancing: estimated frames when known, else a size-based guess.
  double cost() const;
};

// Reads only the container header (no stream probing, no decoding): about a millisecond.
ProbeResult probeVideo(const std::string& path);

}  // namespace vidfeat
