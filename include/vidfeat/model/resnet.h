#pragma once
// PySlowFast's single-pathway ResNet video models (video_model_builder.ResNet): C2D, I3D, Slow,
// built from the config. Module names equal PySlowFast's state-dict keys.
#include <torch/torch.h>

#include "vidfeat/model/resnet_helper.h"
#include "vidfeat/model/video_net.h"

namespace vidfeat::model {

// Average pool per pathway, concatenation, then the classifier projection (ResNetBasicHead).
struct ResNetBasicHeadImpl : torch::nn::Module {
  // poolSize: per pathway {T, H, W} kernel (stride 1); empty = adaptive pool to 1x1x1.
  ResNetBasicHeadImpl(const std::vector<int64_t>& dimIn, int64_t numClasses,
                      const std::vector<std::vector<int64_t>>& poolSize, const std::string& act);
  NetOutput forward(const std::vector<torch::Tensor>& x, bool withLogits);

  std::vector<torch::nn::AnyModule> avgpools;
  torch::nn::Linear projection{nullptr};
  std::string act;
};
TORCH_MODULE(ResNetBasicHead);

class ResNetImpl : public VideoNet {
 public:
  explicit ResNetImpl(const Config& cfg);
  NetOutput forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) override;
  int64_t featureDim() const override { return featureDim_; }
  int64_t numClasses() const override { return numClasses_; }

  VideoModelStem s1{nullptr};
  ResStage s2{nullptr}, s3{nullptr}, s4{nullptr}, s5{nullptr};
  torch::nn::MaxPool3d pathway0_pool{nullptr};
  ResNetBasicHead head{nullptr};

 private:
  int64_t featureDim_ = 0;
  int64_t numClasses_ = 0;
};

// Temporal kernel basis per stage ({stem, res2..res5}, each a list) and the pool after res2, per
// PySlowFast's _TEMPORAL_KERNEL_BASIS / _POOL1 tables. Throws Error for an unknown MODEL.ARCH.
struct ArchTables {
  std::vector<std::vector<std::vector<int64_t>>> temporalKernels;  // [stage][pathway][basis]
  std::vector<std::vector<int64_t>> pool1;                         // [pathway][t,h,w]
};
ArchTables archTables(const std::string& arch);

// Blocks per stage for RESNET.DEPTH (18, 50, 101).
std::vector<int64_t> stageDepths(int depth);

}  // namespace vidfeat::model
