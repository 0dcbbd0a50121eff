#include "vidfeat/run/run_metadata.h"

#include "vidfeat/common/log.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/feature_model.h"
#include "vidfeat/pipeline/video_extractor.h"

namespace vidfeat {

LoadedWeights setWeights(FeatureModel& model, const Config& cfg, const WeightsSource& source,
                         bool log) {
  LoadedWeights out;
  if (!source.checkpoint.empty()) {
    const CheckpointReport report =
        model.loadCheckpoint(source.checkpoint, cfg.get<std::string>("TEST.CHECKPOINT_TYPE"));
    out.checkpointPath = source.checkpoint;
    out.checkpointSha256 = report.sha256;
    out.weights = "checkpoint";
    if (log) {
      spdlog::info("checkpoint {}: {}, {} tensors, sha256 {}", source.checkpoint,
                   checkpointFormatName(report.format), report.tensorsLoaded, report.sha256);
      for (const auto& note : report.notes) spdlog::info("checkpoint: {}", note);
    }
  } else {
    model.randomizeWeights(uint64_t(source.randomSeed));
    out.weights = std::string(kRandomWeights) + ", seed " + std::to_string(source.randomSeed);
    if (log) {
      spdlog::warn(
          "UNTRAINED MODEL: seeded random weights (seed {}); these features are for tests "
          "and demos, not research",
          source.randomSeed);
    }
  }
  return out;
}

FileMetadata runMetadata(const std::string& modelName, const Config& cfg, const FeatureModel& model,
                         const LoadedWeights& weights, const ExtractOptions& options) {
  FileMetadata meta;
  meta.modelName = modelName;
  meta.modelArch = cfg.get<std::string>("MODEL.ARCH");
  meta.configYaml = cfg.dump();
  meta.checkpointPath = weights.checkpointPath;
  meta.checkpointSha256 = weights.checkpointSha256;
  meta.weights = model.precision() == Precision::Fp32
                     ? weights.weights
                     : weights.weights + ", " + precisionName(model.precision()) + " forward";
  meta.tailPolicy = tailPolicyName(options.buckets.tail);
  meta.featureName = model.featureDescription();
  meta.featureDim = model.featureDim();
  meta.crops = options.crops;
  meta.numFrames = options.buckets.numFrames;
  meta.samplingRate = options.buckets.samplingRate;
  meta.stride = int32_t(options.buckets.step());
  meta.targetFps = options.targetFps;
  if (options.buckets.byTime()) {
    // Clips by time: what a row is (the window, its stride, where its frames are taken) is part
    // of feature_name, which resume and merge compare; no frame stride applies (0).
    meta.featureName += "; " + timeWindowsDescription(options.buckets);
    meta.stride = 0;
  }
  return meta;
}

}  // namespace vidfeat
