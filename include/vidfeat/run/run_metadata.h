#pragma once
// What a run records about itself in the output (FileMetadata, docs/FORMAT.md), built in one
// place from the config, the model as built and its weights; and setting those weights.
#include <cstdint>
#include <string>
#include <vector>

#include "vidfeat/store/feature_store.h"

namespace vidfeat {

class Config;
class FeatureModel;
struct ExtractOptions;

// Where a run's weights come from: a checkpoint file, or (randomSeed >= 0) seeded random weights.
struct WeightsSource {
  std::string checkpoint;
  int64_t randomSeed = -1;
};

// The weights a model carries, as the output records them.
struct LoadedWeights {
  std::string checkpointPath;    // empty with random weights
  std::string checkpointSha256;  // empty with random weights
  std::string weights;           // "checkpoint", or kRandomWeights + ", seed N"
  bool untrained() const { return checkpointPath.empty(); }
};

// Sets the model's weights from `source`: the checkpoint (read as `cfg`'s TEST.CHECKPOINT_TYPE;
// every rank reads the file itself, so a rank that cannot read it fails the job rather than
// extracting garbage) or seeded random ones. With `log` (rank 0) it says what was loaded, and
// warns that random weights are untrained.
LoadedWeights setWeights(FeatureModel& model, const Config& cfg, const WeightsSource& source,
                         bool log);

// The output's provenance for a run of `model` (built from `cfg`) with `weights` and the clip
// settings of `options`; `modelName` is the published name or the config file's stem. A
// reduced-precision forward is part of `weights` (its features differ from fp32 ones, so a
// resume with another --precision is refused rather than mixing the two in one file).
FileMetadata runMetadata(const std::string& modelName, const Config& cfg, const FeatureModel& model,
                         const LoadedWeights& weights, const ExtractOptions& options);

}  // namespace vidfeat
