#pragma once
// The decode side of a rank alone, for `vidfeat bench decode` (tools/bench/decode.py): one video
// through the same decode worker extract uses (decode -> --fps / --clip-seconds resampling ->
// clip assembly -> crops, normalised to floats as on the CPU path), every clip thrown away. No
// model is built, so the figure is the rate at which a rank can feed its model.
#include <cstdint>
#include <string>

#include "vidfeat/common/video_record.h"
#include "vidfeat/pipeline/video_extractor.h"

namespace vidfeat {

struct DecodeRate {
  VideoStatus status = VideoStatus::Pending;  // Complete, or Failed with `error`
  std::string error;
  int64_t decodedFrames = 0;    // frames the decoder produced
  int64_t framesConverted = 0;  // of those, frames scaled and converted to RGB (a clip uses them)
  int64_t clips = 0;            // clips assembled and preprocessed (all crops of one clip: 1)
  double seconds = 0.0;         // wall time from submitting the video to its last clip
  double framesPerSecond() const { return seconds > 0 ? double(decodedFrames) / seconds : 0.0; }
};

// Decodes `video` with the settings of `options` (buckets, preprocessing, crops, codec threads,
// decode device, timeout; the batch and queue only size the hand-over) and measures it. A video
// that cannot be decoded comes back Failed, never as an exception.
DecodeRate measureDecodeRate(const ExtractOptions& options, const VideoEntry& video);

}  // namespace vidfeat
