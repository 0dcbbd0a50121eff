#pragma once
// Internal to src/cli: how videos become clips, the options `extract` and `bench decode` share
// (--stride, --tail, --tail-seed, --fps, --clip-seconds, --clip-stride-seconds, --crops), and the
// ExtractOptions they and the config give (buckets, preprocessing, crops).
#include <string>

#include "options.h"
#include "vidfeat/pipeline/video_extractor.h"

namespace vidfeat {
class Config;
}

namespace vidfeat::cli {

struct ClipArgs {
  std::string tail = "repeat";
  unsigned long long tailSeed = 0;
  int stride = 0, crops = 1;
  double fps = 0.0, clipSeconds = 0.0, clipStrideSeconds = 0.0;
};

void declareClipOptions(CommandOptions& opts, ClipArgs& a);

// The clip settings of `a` over the config's DATA.NUM_FRAMES / SAMPLING_RATE and preprocessing;
// the rest of ExtractOptions keeps its defaults. Not validated yet (ExtractOptions::validate).
ExtractOptions clipOptions(const ClipArgs& a, const Config& cfg);

}  // namespace vidfeat::cli
