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
                  "' (a file keeps the models it was made with; to add a model, extract it alone "
                  "into another output with the same --clip-seconds and `vidfeat join` the two)");
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
    if (m.parts.empty()) {
      meta.parts.emplace_back(m.modelName, m.featureDim);
    } else {  // a file of several models joined with another: its models, in order
      meta.parts.insert(meta.parts.end(), m.parts.begin(), m.parts.end());
    }
  }
  return meta;
}

}  // namespace vidfeat
