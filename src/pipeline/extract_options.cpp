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
}

ExtractOptions::DecodePriority parseDecodePriority(const std::string& name) {
  if (name == "normal") return ExtractOptions::DecodePriority::Normal;
  if (name == "idle") return ExtractOptions::DecodePriority::Idle;
  throw Error("--decode-priority must be normal or idle, got '" + name + "'");
}

}  // namespace vidfeat
