#pragma once
// PySlowFast's X3D (video_model_builder.X3D, after Feichtenhofer, "X3D: Expanding Architectures
// for Efficient Video Recognition"): the X3D stem (stem_helper.X3DStem), the bottleneck with a
// channel-wise 3x3x3 conv, squeeze-excitation and swish (resnet_helper.X3DTransform,
// operators.SE), and the X3D head (head_helper.X3DHead), built from the config. Module names equal
// PySlowFast's state-dict keys ("s2.pathway0_res0.branch2.se.fc1.weight", "head.lin_5.weight").
#include <torch/torch.h>

#include "networks/resnet_helper.h"
#include "networks/video_net.h"

namespace vidfeat::model {

// PySlowFast's round_width: width * multiplier rounded to a multiple of `divisor`, at least
// minWidth, and never more than 10% below the exact product. multiplier 0 keeps the width.
int64_t roundWidth(int64_t width, double multiplier, int64_t minWidth = 1, int64_t divisor = 1);

// Squeeze-excitation: x * sigmoid(fc2(relu(fc1(mean over T, H, W of x)))). PySlowFast's SE uses
// ReLU here (relu_act=True), not swish, despite its docstring.
struct SEImpl : torch::nn::Module {
  SEImpl(int64_t dimIn, double ratio);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::AdaptiveAvgPool3d avg_pool{nullptr};
  torch::nn::Conv3d fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(SE);

// a (1x1x1) -> b (Tx3x3, grouped: channel-wise when groups == dimInner) -> [se] -> swish ->
// c (1x1x1), each conv followed by BN, ReLU after a. SE only on even blocks (blockIdx 0, 2, ...).
struct X3DTransformImpl : torch::nn::Module, BnFoldable {
  X3DTransformImpl(int64_t dimIn, int64_t dimOut, int64_t tempKernel, int64_t stride,
                   int64_t dimInner, int64_t numGroups, int64_t dilation, const BlockOptions& opt,
                   int64_t blockIdx, double seRatio = 0.0625);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv3d a{nullptr}, b{nullptr}, c{nullptr};
  torch::nn::BatchNorm3d a_bn{nullptr}, b_bn{nullptr}, c_bn{nullptr};
  SE se{nullptr};
  ConvBn aBn, bBn, cBn;
};
TORCH_MODULE(X3DTransform);

// conv_xy (1xKxK, spatial stride) -> conv (Kt x1x1, depth-wise) -> BN -> ReLU; no max pool.
struct X3DStemImpl : torch::nn::Module, BnFoldable {
  X3DStemImpl(int64_t dimIn, int64_t dimOut, const std::vector<int64_t>& kernel,
              const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
              double eps = 1e-5);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv3d conv_xy{nullptr}, conv{nullptr};
  torch::nn::BatchNorm3d bn{nullptr};
  ConvBn convBn;  // conv -> bn
};
TORCH_MODULE(X3DStem);

// conv_5 -> conv_5_bn -> ReLU -> average pool -> lin_5 -> [lin_5_bn] -> ReLU -> projection.
struct X3DHeadImpl : torch::nn::Module, BnFoldable {
  // poolSize: {T, H, W} kernel (stride 1); empty = adaptive pool to 1x1x1.
  X3DHeadImpl(int64_t dimIn, int64_t dimInner, int64_t dimOut, int64_t numClasses,
              const std::vector<int64_t>& poolSize, const std::string& act, bool bnLin5,
              double eps = 1e-5);
  NetOutput forward(const torch::Tensor& x, bool withLogits);

  torch::nn::Conv3d conv_5{nullptr}, lin_5{nullptr};
  torch::nn::BatchNorm3d conv_5_bn{nullptr}, lin_5_bn{nullptr};
  torch::nn::AnyModule avg_pool;
  torch::nn::Linear projection{nullptr};
  std::string act;
  ConvBn conv5Bn, lin5Bn;  // lin5Bn only with lin_5_bn
};
TORCH_MODULE(X3DHead);

class X3DImpl : public VideoNet {
 public:
  explicit X3DImpl(const Config& cfg);
  NetOutput forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) override;

  std::shared_ptr<torch::nn::Module> s1;  // holds pathway0_stem, as VideoModelStem does
  X3DStem stem{nullptr};
  std::vector<ResStage> stages;  // s2..s5
  X3DHead head{nullptr};
};

}  // namespace vidfeat::model
