#pragma once
// PySlowFast's single-pathway ResNet video models (video_model_builder.ResNet): C2D, I3D, Slow,
// built from the config. Module names equal PySlowFast's state-dict keys.
#include <torch/torch.h>

#include "networks/backbone_config.h"
#include "networks/resnet_helper.h"
#include "networks/video_net.h"

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

  VideoModelStem s1{nullptr};
  ResStage s2{nullptr}, s3{nullptr}, s4{nullptr}, s5{nullptr};
  torch::nn::MaxPool3d pathway0_pool{nullptr};
  ResNetBasicHead head{nullptr};
};

}  // namespace vidfeat::model
