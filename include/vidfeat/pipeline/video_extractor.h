#pragma once
// One video through the data path: decode -> clips -> preprocessing -> model, into a VideoResult
// ready for the store. A video that cannot be opened or decoded becomes a Failed result with the
// reason; it never throws for a bad video.
#include <cstdint>
#include <functional>
#include <string>

#include "vidfeat/clip/bucket_plan.h"
#include "vidfeat/clip/preprocess.h"
#include "vidfeat/store/feature_store.h"

namespace vidfeat {

class FeatureModel;

struct ExtractOptions {
  BucketSpec buckets;
  PreprocessSpec preprocess;
  double targetFps = 0.0;  // --fps: resample by presentation time first; 0 = native rate
  uint64_t tailSeed = 0;   // seeds the sample tail policy (mixed with the video id)
  int batch = 1;           // clips per forward
  int crops = 1;           // --crops: 1 (centre) or 3 (PySlowFast's left/centre/right test crops)
  int decodeThreads = 0;   // codec threads, 0 = FFmpeg's choice
  double timeoutSeconds = 0.0;  // --video-timeout: fail a video still running after this long
};

class VideoExtractor {
 public:
  VideoExtractor(FeatureModel& model, const ExtractOptions& options);

  // Extracts every segment of `video`. `videoRow` is its row in the store. `safePoint`, when
  // given, is called between decoded frames: the distributed driver takes part in collective
  // wave writes from there, so a rank busy with a long video never holds the others up.
  VideoResult run(const VideoEntry& video, int64_t videoRow,
                  const std::function<void()>& safePoint = {});

  // Seconds spent inside run() (for the per-rank busy time in the summary).
  double busySeconds() const { return busy_; }

  // Clips run through the model since construction (for throughput figures).
  int64_t clipsProcessed() const { return clips_; }

 private:
  FeatureModel& model_;
  ExtractOptions opt_;
  int64_t clips_ = 0;
  double busy_ = 0.0;
};

}  // namespace vidfeat
