// The checks of ExtractOptions, in one place: the CLI calls validate() before it builds the model
// or touches the output, and VideoExtractor's constructor relies on the same function.
#include "vidfeat/common/error.h"
#include "vidfeat/pipeline/video_extractor.h"

namespace vidfeat {

void ExtractOptions::validate() const {
  buckets.validate();
  if (targetFps < 0) throw Error("--fps must be positive");
  (void)clipSequence(buckets, targetFps);  // --clip-seconds with --fps, a stride it cannot cut
  if (batch < 1) throw Error("--batch must be at least 1");
  if (queueClips < 0) throw Error("--queue must be >= 0");
  if (crops != 1 && crops != 3) throw Error("--crops must be 1 or 3");
  if (moreStreams.empty()) return;
  if (!buckets.byTime()) {
    throw Error(
        "several models need clips by time (--clip-seconds): their windows must be the same, and "
        "frame-based clips of models with other NUM_FRAMES x SAMPLING_RATE are not");
  }
  if (crops != 1) throw Error("--crops 3 takes one model; several models use the centre crop");
  for (const auto& s : moreStreams) {
    s.buckets.validate();
    if (s.buckets.clipSeconds != buckets.clipSeconds ||
        s.buckets.windowStride() != buckets.windowStride() || s.buckets.tail != buckets.tail) {
      throw Error(
          "internal: the models of one run must share --clip-seconds, its stride and --tail");
    }
    (void)clipSequence(s.buckets, targetFps);
  }
}

ExtractOptions::DecodePriority parseDecodePriority(const std::string& name) {
  if (name == "normal") return ExtractOptions::DecodePriority::Normal;
  if (name == "idle") return ExtractOptions::DecodePriority::Idle;
  throw Error("--decode-priority must be normal or idle, got '" + name + "'");
}

}  // namespace vidfeat
