#include "vidfeat/pipeline/decode_rate.h"

#include <chrono>
#include <vector>

#include "decode_worker.h"

namespace vidfeat {

DecodeRate measureDecodeRate(const ExtractOptions& options, const VideoEntry& video) {
  options.validate();
  // One crop of a clip, 3 x T x crop x crop (the model's input shape: FeatureModel::inputShape).
  const size_t cropValues = size_t(3) * size_t(options.buckets.numFrames) *
                            size_t(options.preprocess.cropSize) *
                            size_t(options.preprocess.cropSize);
  // The crops extract makes (video_extractor.cpp), normalised by the worker as on the CPU path.
  std::vector<int> spatial = options.crops == 3 ? std::vector<int>{0, 1, 2} : std::vector<int>{1};
  const size_t queueClips =
      options.queueClips > 0 ? size_t(options.queueClips) : size_t(2 * options.batch);
  const auto t0 = std::chrono::steady_clock::now();
  DecodeWorker worker(options, {cropValues}, false, std::move(spatial), queueClips,
                      options.decodePriority == ExtractOptions::DecodePriority::Idle);
  worker.submit(0, video);
  DecodeRate rate;
  for (;;) {
    WorkerItem item;
    if (!worker.queue().popUntil(item, std::chrono::steady_clock::now() + std::chrono::hours(1))) {
      continue;  // nothing within the hour: the worker is still decoding (its own timeout applies)
    }
    if (item.restart) {
      rate.clips = 0;  // decoded again single-threaded: only that decode counts
    } else if (item.isClip) {
      ++rate.clips;
      worker.recycle(std::move(item.pixels));
    } else {
      rate.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rate.status = item.end.status;
      rate.error = item.end.error;
      rate.decodedFrames = item.end.decodedFrames;
      rate.framesConverted = item.framesConverted;
      return rate;
    }
  }
}

}  // namespace vidfeat
