#pragma once
// The common face of the re-implemented networks: pathways in, the seed's feature (and the
// classifier output) out.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "kernels/conv_bn.h"  // foldBatchNorms: after weights change

namespace vidfeat {
class Config;
}

namespace vidfeat::model {

struct NetOutput {
  torch::Tensor features;  // [B, D]: the activation entering the head projection, mean over H, W,
                           // flattened over T*C
  torch::Tensor logits;    // [B, classes] after the head's activation (as PySlowFast at test
                           // time), or undefined when not asked for
};

class VideoNet : public torch::nn::Module {
 public:
  // `pathways`: one [B, C, T, H, W] tensor per pathway (see packPathways).
  virtual NetOutput forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) = 0;
  int64_t featureDim() const { return featureDim_; }
  int64_t numClasses() const { return numClasses_; }
  // What the feature row is, with the widths of this built network, e.g. "2304-d: Slow res5 (2048)
  // and Fast res5 (256) outputs, ...". Written into the output's feature_name attribute.
  const std::string& featureDescription() const { return description_; }
  // A checkpoint key this network does not take, dropped before the strict load (CLIP's text
  // tower, in the same files as its image tower). None by default: every key must match.
  virtual bool ignoresCheckpointKey(const std::string& /*key*/) const { return false; }

 protected:
  // Set by each network's constructor from the widths it built.
  int64_t featureDim_ = 0;
  int64_t numClasses_ = 0;
  std::string description_;
};

// Builds the network MODEL.ARCH / MODEL.MODEL_NAME describe. Unsupported values throw Error
// naming the config key.
std::shared_ptr<VideoNet> buildVideoNet(const Config& cfg);
// The MODEL.MODEL_NAME values buildVideoNet builds, in the order its error lists them.
std::vector<std::string> supportedModelNames();

// Removes from `dict` the keys `net` does not take (VideoNet::ignoresCheckpointKey: CLIP's text
// tower) before a strict applyStateDict; returns them.
std::vector<std::string> dropIgnoredKeys(const VideoNet& net,
                                         std::vector<std::pair<std::string, torch::Tensor>>& dict);

// PySlowFast's pack_pathway_output at test time: single-pathway archs take the clip as is;
// SlowFast's slow pathway is index_select(linspace(0, T-1, T/ALPHA)) of the fast one.
std::vector<torch::Tensor> packPathways(const Config& cfg, const torch::Tensor& clip);

// Sets every floating-point parameter and BatchNorm statistic from a seeded generator: conv and
// linear weights He-normal, norm weights 1 + N(0, 0.1), biases and running means N(0, 0.1),
// running variances U(0.5, 1.5). Same seed, same weights, on every machine.
void randomizeParameters(torch::nn::Module& module, uint64_t seed);

}  // namespace vidfeat::model
