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
  // nopool: MODEL.MODEL_NAME ResNet_nopool, the C2D/I3D variant without the temporal max pool
  // after res2 (see nopoolArch).
  explicit ResNetImpl(const Config& cfg, bool nopool = false);
  NetOutput forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) override;
  int64_t featureDim() const override { return featureDim_; }
  int64_t numClasses() const override { return numClasses_; }
  std::string featureDescription() const override { return description_; }

  VideoModelStem s1{nullptr};
  ResStage s2{nullptr}, s3{nullptr}, s4{nullptr}, s5{nullptr};
  torch::nn::MaxPool3d pathway0_pool{nullptr};
  ResNetBasicHead head{nullptr};

 private:
  int64_t featureDim_ = 0;
  int64_t numClasses_ = 0;
  std::string description_;
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

// The arch MODEL.MODEL_NAME ResNet_nopool builds for MODEL.ARCH. PySlowFast's published
// configs/Kinetics/c2/C2D_NOPOOL_8x8_R50.yaml says ARCH c2d, MODEL_NAME ResNet_nopool, but no
// ResNet_nopool was ever registered: the config dates from PySlowFast's first release, where it
// read ARCH c2d_nopool (built by the ResNet class from the c2d_nopool / i3d_nopool table rows: c2d /
// i3d temporal kernels, pool1 [1, 1, 1]); those rows were renamed slow_c2d / slow_i3d in commit
// 99a655b. So c2d -> c2d_nopool, i3d -> i3d_nopool; anything else is an error naming the keys.
std::string nopoolArch(const std::string& arch);

// Config checks every ResNet-family builder (ResNet, SlowFast, X3D) shares; throws Error naming
// the key (DETECTION.ENABLE, BN.NORM_TYPE, CONTRASTIVE.NUM_MLP_LAYERS).
void checkBackboneConfig(const Config& cfg);

// Fills the non-local fields of `spec` from NONLOCAL.LOCATION / GROUP / POOL [stage][pathway].
void setNonlocal(ResStageImpl::PathwaySpec& spec, const Config& cfg, size_t stage, size_t pathway);

}  // namespace vidfeat::model
