#pragma once
// Building blocks of PySlowFast's ResNet-family backbones (slowfast/models/resnet_helper.py and
// stem_helper.py), as LibTorch modules. Every submodule is registered under the attribute name
// PySlowFast uses, so state-dict keys match (e.g. "s2.pathway0_res0.branch2.a_bn.running_mean").
// Lists indexed by pathway follow PySlowFast's convention: one entry per pathway (1 for C2D, I3D,
// Slow; 2 for SlowFast).
#include <torch/torch.h>

#include <string>
#include <vector>

#include "kernels/conv_bn.h"
#include "networks/nonlocal.h"

namespace vidfeat::model {

// Layer options shared by the 3-D conv nets: a bias-free Conv3d (every conv of PySlowFast's
// ResNet/X3D is followed by a norm) and PySlowFast's BatchNorm3d (momentum 0.1).
torch::nn::Conv3dOptions conv3dNoBias(int64_t in, int64_t out, std::vector<int64_t> kernel,
                                      std::vector<int64_t> stride, std::vector<int64_t> padding);
torch::nn::BatchNorm3dOptions batchNorm3d(int64_t channels, double eps);

// Conv -> BN -> ReLU -> max pool [1,3,3]/[1,2,2] (ResNetBasicStem).
struct ResNetBasicStemImpl : torch::nn::Module, BnFoldable {
  ResNetBasicStemImpl(int64_t dimIn, int64_t dimOut, std::vector<int64_t> kernel,
                      std::vector<int64_t> stride, std::vector<int64_t> padding, double eps);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv3d conv{nullptr};
  torch::nn::BatchNorm3d bn{nullptr};
  torch::nn::MaxPool3d pool_layer{nullptr};
  ConvBn convBn;
};
TORCH_MODULE(ResNetBasicStem);

// One stem per pathway: pathway{p}_stem (VideoModelStem).
struct VideoModelStemImpl : torch::nn::Module {
  VideoModelStemImpl(const std::vector<int64_t>& dimIn, const std::vector<int64_t>& dimOut,
                     const std::vector<std::vector<int64_t>>& kernel,
                     const std::vector<std::vector<int64_t>>& stride,
                     const std::vector<std::vector<int64_t>>& padding, double eps = 1e-5);
  std::vector<torch::Tensor> forward(std::vector<torch::Tensor> x);

  std::vector<ResNetBasicStem> stems;
};
TORCH_MODULE(VideoModelStem);

// Options shared by the blocks of a stage.
struct BlockOptions {
  std::string transFunc = "bottleneck_transform";  // or "basic_transform", "x3d_transform"
  bool stride1x1 = false;
  double eps = 1e-5;
  std::string nonlocalInstantiation = "softmax";  // NONLOCAL.INSTANTIATION
};

// a (Tx1x1) -> b (1x3x3, grouped, dilated) -> c (1x1x1), each followed by BN (ReLU after a, b).
struct BottleneckTransformImpl : torch::nn::Module, BnFoldable {
  BottleneckTransformImpl(int64_t dimIn, int64_t dimOut, int64_t tempKernel, int64_t stride,
                          int64_t dimInner, int64_t numGroups, int64_t dilation,
                          const BlockOptions& opt);
  torch::Tensor forward(torch::Tensor x);
  // forward(cat(x, lateral)) with a split first conv (ResBlockImpl::forwardWithLateral).
  torch::Tensor forwardWithLateral(torch::Tensor x, const torch::Tensor& lateral);

  torch::nn::Conv3d a{nullptr}, b{nullptr}, c{nullptr};
  torch::nn::BatchNorm3d a_bn{nullptr}, b_bn{nullptr}, c_bn{nullptr};
  ConvBn aBn, bBn, cBn;
};
TORCH_MODULE(BottleneckTransform);

// a (Tx3x3) -> b (1x3x3) (ResNet-18/34 blocks).
struct BasicTransformImpl : torch::nn::Module, BnFoldable {
  BasicTransformImpl(int64_t dimIn, int64_t dimOut, int64_t tempKernel, int64_t stride,
                     int64_t dilation, const BlockOptions& opt);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv3d a{nullptr}, b{nullptr};
  torch::nn::BatchNorm3d a_bn{nullptr}, b_bn{nullptr};
  ConvBn aBn, bBn;
};
TORCH_MODULE(BasicTransform);

// relu(branch2(x) + shortcut(x)); the shortcut is branch1 (1x1x1 conv + BN) when the shape changes.
struct ResBlockImpl : torch::nn::Module, BnFoldable {
  // blockIdx: the block's index in its stage (X3D puts squeeze-excitation on even blocks only).
  ResBlockImpl(int64_t dimIn, int64_t dimOut, int64_t tempKernel, int64_t stride, int64_t dimInner,
               int64_t numGroups, int64_t dilation, const BlockOptions& opt, int64_t blockIdx = 0);
  torch::Tensor forward(torch::Tensor x);
  // forward(cat(x, lateral) along channels) for a block whose input is split (setInputSplit):
  // the shortcut and the first conv take the two parts without concatenating them (conv_bn.h).
  torch::Tensor forwardWithLateral(torch::Tensor x, torch::Tensor lateral);
  // The first `channels` of the block's input channels come as x, the rest as `lateral`.
  void setInputSplit(int64_t channels);

  torch::nn::Conv3d branch1{nullptr};
  torch::nn::BatchNorm3d branch1_bn{nullptr};
  torch::nn::AnyModule branch2;
  ConvBn branch1Bn;
};
TORCH_MODULE(ResBlock);

// Blocks pathway{p}_res{i} of one stage, for each pathway, with a non-local block
// pathway{p}_nonlocal{i} after the blocks NONLOCAL.LOCATION lists.
struct ResStageImpl : torch::nn::Module {
  struct PathwaySpec {
    int64_t dimIn, dimOut, dimInner, numGroups, numBlocks, stride, dilation;
    std::vector<int64_t> tempKernelBasis;    // repeated over the blocks...
    int64_t numBlockTempKernel;              // ...for this many blocks, then 1
    std::vector<int64_t> nonlocalInds = {};  // blocks followed by a non-local block
    int64_t nonlocalGroup = 1;               // T is folded into the batch in this many groups
    std::vector<int64_t> nonlocalPool = {};  // {T, H, W} pool in front of phi and g
    // Of dimIn, the last lateralChannels come apart (SlowFast's fused Fast channels, pathway 0).
    int64_t lateralChannels = 0;
  };
  ResStageImpl(const std::vector<PathwaySpec>& pathways, const BlockOptions& opt);
  // One tensor per pathway; one more, when given, is pathway 0's lateral channels (its input is
  // cat(x[0], x.back()) along channels; the stage never concatenates them).
  std::vector<torch::Tensor> forward(std::vector<torch::Tensor> x);

  std::vector<std::vector<ResBlock>> blocks;     // [pathway][block]
  std::vector<std::vector<Nonlocal>> nonlocals;  // [pathway][block], empty holder where none
  std::vector<int64_t> nonlocalGroups;           // [pathway]
};
TORCH_MODULE(ResStage);

// Temporal kernel per block: (basis * numBlocks)[:numBlockTempKernel] + [1] * rest.
std::vector<int64_t> blockTemporalKernels(const std::vector<int64_t>& basis, int64_t numBlocks,
                                          int64_t numBlockTempKernel);

}  // namespace vidfeat::model
