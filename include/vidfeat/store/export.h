#pragma once
// Working with a finished output: finding the segments of a time span, and exporting features to
// the seed's layout (one `<video_id>.npy` [segments, D] per video, for existing grounding code).
#include <string>
#include <vector>

#include "vidfeat/common/segment.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

struct Located {
  std::vector<int32_t> segments;  // indices whose [start_time, end_time) meets [start, end]
  double seedTau0 = 0.0;          // the seed's fractional index t * n * fps / l for start...
  double seedTau1 = 0.0;          // ...and for end (n segments, l frames, fps of the video)
};

// Segments of one video covering [start, end] seconds, using the stored per-segment times.
Located locateSegments(const StoredVideo& video, const std::vector<SegmentRecord>& segments,
                       double start, double end);

// Writes one .npy per selected video ([segments, D], or [segments, crops, D] with --crops 3) (all
// complete ones when `ids` is empty) under `dir`. Ids become relative paths (a/b -> dir/a/b.npy);
// an id that would leave `dir` (absolute, "..", NUL) is refused with an error naming it. Returns
// the number of files written.
int64_t exportNpy(const std::string& file, const std::string& dir,
                  const std::vector<std::string>& ids);

// The path `<dir>/<id>.npy`, or throws Error when the id would escape `dir`.
std::string npyPathFor(const std::string& dir, const std::string& videoId);

// Writes a little-endian float32 .npy (format 1.0) of the given C-order shape.
void writeNpy(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace vidfeat
