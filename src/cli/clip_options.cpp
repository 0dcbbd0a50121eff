#include "clip_options.h"

#include "vidfeat/config/config.h"

namespace vidfeat::cli {

void declareClipOptions(CommandOptions& opts, ClipArgs& a) {
  opts.add()("crops", po::value(&a.crops)->default_value(1),
             "spatial crops per clip: 1 (centre) or 3 (PySlowFast's left/centre/right), an extra "
             "/features axis")(
      "tail", po::value(&a.tail)->default_value("repeat"),
      "last partial clip: repeat (the last frame), sample (seeded random tail frames), drop")(
      "tail-seed", po::value(&a.tailSeed)->default_value(0), "seed of --tail sample")(
      "stride", po::value(&a.stride)->default_value(0),
      "frames between clip starts (default NUM_FRAMES x SAMPLING_RATE; smaller overlaps)")(
      "fps", po::value(&a.fps)->default_value(0.0),
      "resample to this frame rate by presentation time before cutting clips (0 = native)")(
      "clip-seconds", po::value(&a.clipSeconds)->default_value(0.0),
      "clips by time: one clip per window of this many seconds of presentation time, its "
      "NUM_FRAMES frames taken evenly across it (0 = frame-based clips; not with --fps or "
      "--stride)")("clip-stride-seconds", po::value(&a.clipStrideSeconds)->default_value(0.0),
                   "seconds between window starts with --clip-seconds (0 = --clip-seconds)");
}

ExtractOptions clipOptions(const ClipArgs& a, const Config& cfg) {
  ExtractOptions eo;
  eo.buckets.numFrames = cfg.get<int>("DATA.NUM_FRAMES");
  eo.buckets.samplingRate = cfg.get<int>("DATA.SAMPLING_RATE");
  eo.buckets.stride = a.stride;
  eo.buckets.tail = parseTailPolicy(a.tail);
  eo.buckets.clipSeconds = a.clipSeconds;
  eo.buckets.clipStrideSeconds = a.clipStrideSeconds;
  eo.preprocess = PreprocessSpec::fromConfig(cfg);
  eo.targetFps = a.fps;
  eo.tailSeed = a.tailSeed;
  eo.crops = a.crops;
  return eo;
}

}  // namespace vidfeat::cli
