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

FileMetadata combinedMetadata(const std::vector<FileMetadata>& models) {
  if (models.size() == 1) return models.front();
  FileMetadata meta = models.front();  // tail, crops, the first model's frame settings
  auto join = [&](std::string FileMetadata::*field, const char* sep) {
    std::string out;
    bool any = false;
    for (size_t i = 0; i < models.size(); ++i) {
      out += (i ? sep : "") + models[i].*field;
      any |= !(models[i].*field).empty();
    }
    return any ? out : std::string();  // random weights: no checkpoint at all
  };
  meta.modelName = join(&FileMetadata::modelName, "+");
  meta.modelArch = join(&FileMetadata::modelArch, "+");
  meta.checkpointPath = join(&FileMetadata::checkpointPath, " + ");
  meta.checkpointSha256 = join(&FileMetadata::checkpointSha256, " + ");
  meta.weights = join(&FileMetadata::weights, " + ");
  // One YAML document per model, each headed by its name.
  meta.configYaml.clear();
  meta.featureName.clear();
  meta.featureDim = 0;
  meta.parts.clear();
  for (size_t i = 0; i < models.size(); ++i) {
    const FileMetadata& m = models[i];
    meta.configYaml += (i ? "---\n" : "") + std::string("# model ") + std::to_string(i + 1) +
                       " of " + std::to_string(models.size()) + ": " + m.modelName + "\n" +
                       m.configYaml;
    if (!meta.configYaml.empty() && meta.configYaml.back() != '\n') meta.configYaml += '\n';
    meta.featureName +=
        (i ? "; " : "") + std::string("columns [") + std::to_string(meta.featureDim) + ", " +
        std::to_string(meta.featureDim + m.featureDim) + ") " + m.modelName + ": " + m.featureName;
    meta.featureDim += m.featureDim;
    meta.parts.emplace_back(m.modelName, m.featureDim);
  }
  return meta;
}

}  // namespace vidfeat
