#include <fmt/format.h>

#include <sstream>
#include <string>
#include <vector>

#include "vidfeat/store/feature_store.h"

namespace vidfeat {

std::vector<std::string> metadataDifferences(const FileMetadata& stored,
                                             const FileMetadata& wanted) {
  std::vector<std::string> out;
  auto cmp = [&](const char* what, const std::string& a, const std::string& b) {
    if (a != b)
      out.push_back(std::string(what) + ": file has '" + a + "', this run has '" + b + "'");
  };
  if (modelPartsText(stored.parts) != modelPartsText(wanted.parts)) {
    // Another set of models (one file holds the models it was made with).
    auto names = [](const FileMetadata& m) {
      return m.parts.empty() ? m.modelName : modelPartsText(m.parts);
    };
    out.push_back("models: file has '" + names(stored) + "', this run has '" + names(wanted) +
                  "' (a file keeps the models it was made with; adding a model to an existing "
                  "file is not supported yet: write another output)");
  }
  cmp("model arch", stored.modelArch, wanted.modelArch);
  cmp("checkpoint sha256", stored.checkpointSha256, wanted.checkpointSha256);
  cmp("weights", stored.weights, wanted.weights);
  cmp("tail policy", stored.tailPolicy, wanted.tailPolicy);
  cmp("feature", stored.featureName, wanted.featureName);
  auto num = [&](const char* what, double a, double b) {
    if (a != b)
      out.push_back(std::string(what) + ": file has " + fmt::format("{}", a) + ", this run has " +
                    fmt::format("{}", b));
  };
  num("feature dim", double(stored.featureDim), double(wanted.featureDim));
  num("--crops", stored.crops, wanted.crops);
  num("NUM_FRAMES", stored.numFrames, wanted.numFrames);
  num("SAMPLING_RATE", stored.samplingRate, wanted.samplingRate);
  num("stride", stored.stride, wanted.stride);
  num("--fps", stored.targetFps, wanted.targetFps);
  if (stored.configYaml != wanted.configYaml) {
    // Name the first differing lines of the effective config, the part a user can act on.
    std::istringstream a(stored.configYaml), b(wanted.configYaml);
    std::string la, lb;
    int shown = 0;
    while (shown < 3) {
      bool ha = bool(std::getline(a, la)), hb = bool(std::getline(b, lb));
      if (!ha && !hb) break;
      if (!ha) la = "<end>";
      if (!hb) lb = "<end>";
      if (la != lb) {
        out.push_back("config: file has '" + la + "', this run has '" + lb + "'");
        ++shown;
      }
    }
    if (shown == 0) out.push_back("config: the effective configurations differ");
  }
  return out;
}

}  // namespace vidfeat
