#pragma once
// PySlowFast's SlowFast network (video_model_builder.SlowFast, after Feichtenhofer et al.,
// "SlowFast networks for video recognition"): a Slow and a Fast ResNet pathway with lateral
// FuseFastToSlow connections after the stem and res2..res4, built from the config (RESNET.DEPTH,
// SLOWFAST.ALPHA / BETA_INV / FUSION_CONV_CHANNEL_RATIO / FUSION_KERNEL_SZ, NONLOCAL.*). Module
// names equal PySlowFast's state-dict keys ("s1_fuse.conv_f2s.weight",
// "s2.pathway1_res0.branch2.a.weight", "head.projection.weight").
#include <torch/torch.h>

#include "networks/resnet.h"
#include "networks/resnet_helper.h"
#include "networks/video_net.h"

namespace vidfeat::model {

// Fast -> Slow lateral: a [k,1,1] conv with temporal stride alpha (so Fast's frames line up with
// Slow's), BN and ReLU, concatenated onto the Slow pathway's channels.
struct FuseFastToSlowImpl : torch::nn::Module, BnFoldable {
  FuseFastToSlowImpl(int64_t dimIn, int64_t channelRatio, int64_t kernel, int64_t alpha,
                     double eps = 1e-5);
  std::vector<torch::Tensor> forward(std::vector<torch::Tensor> x);

  torch::nn::Conv3d conv_f2s{nullptr};
  torch::nn::BatchNorm3d bn{nullptr};
  ConvBn convBn;
};
TORCH_MODULE(FuseFastToSlow);

class SlowFastImpl : public VideoNet {
 public:
  explicit SlowFastImpl(const Config& cfg);
  NetOutput forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) override;

  VideoModelStem s1{nullptr};
  FuseFastToSlow s1_fuse{nullptr}, s2_fuse{nullptr}, s3_fuse{nullptr}, s4_fuse{nullptr};
  ResStage s2{nullptr}, s3{nullptr}, s4{nullptr}, s5{nullptr};
  torch::nn::MaxPool3d pathway0_pool{nullptr}, pathway1_pool{nullptr};
  ResNetBasicHead head{nullptr};
};

}  // namespace vidfeat::model
