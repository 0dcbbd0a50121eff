#pragma once
// The video record types shared by the store (what it writes and reads back), the pipeline (what
// it produces) and the run (what it hands out): one neutral header below all three, so none of
// them includes another only for these structs.
#include <cstdint>
#include <string>
#include <vector>

#include "vidfeat/common/segment.h"

namespace vidfeat {

enum class VideoStatus : int8_t { Pending = 0, Complete = 1, Failed = 2 };

// One manifest line.
struct VideoEntry {
  std::string videoId;
  std::string path;
};

// What is known of one attempt at a video: the part a fresh result (VideoResult), a /videos row
// read back (StoredVideo), a journal record and a merge all share. One definition, so passing it
// from one to another is one assignment, not a field-by-field copy.
struct VideoOutcome {
  VideoStatus status = VideoStatus::Pending;
  double fps = 0.0;           // average frame rate of the decoded frames
  int64_t decodedFrames = 0;  // frames the decoder produced
  double duration = 0.0;      // seconds covered by the decoded frames
  int64_t decodeErrors = 0;   // broken packets/frames skipped
  std::string error;          // reason, when status == Failed
};

// What one rank produced for one video.
struct VideoResult : VideoOutcome {
  VideoResult() { status = VideoStatus::Complete; }
  int64_t videoRow = -1;     // row in /videos, as returned by addVideos
  std::string failureStage;  // where it failed: manifest, open, decode, model, timeout
  std::vector<SegmentRecord> segments;
  std::vector<float> features;  // segments.size() x crops x featureDim, row-major
};

// One row of /videos as read back: its manifest line, its outcome (Pending until written) and
// its rows [firstRow, firstRow + segmentCount) of /features.
struct StoredVideo : VideoEntry, VideoOutcome {
  int64_t firstRow = 0;
  int64_t segmentCount = 0;
};

}  // namespace vidfeat
