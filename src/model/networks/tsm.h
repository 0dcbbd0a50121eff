#pragma once
// TSN and TSM (mit-han-lab/temporal-shift-module, ops/models.py TSN): torchvision's 2-D ResNet
// run on every frame of the clip, TSM's temporal shift (ops/temporal_shift.py, 'blockres' place)
// in front of each residual block's conv1, average consensus over the frames. Module names equal
// the TSN wrapper's state-dict keys after DataParallel's "module." (base_model.*, new_fc.*), so
// the published TSM_kinetics_RGB_resnet50_*.pth files load as they are.
#include <torch/torch.h>

#include "kernels/conv_bn.h"
#include "networks/video_net.h"

namespace vidfeat::model {

// TemporalShift.shift: x is [N*T, C, H, W] with T consecutive frames per video; the first
// C/foldDiv channels take the next frame's values, the next C/foldDiv the previous frame's (zeros
// past either end), the rest stay.
torch::Tensor temporalShift(const torch::Tensor& x, int64_t segments, int64_t foldDiv);

// TemporalShift(conv1): TSM wraps the block's conv1, whose weight is then "conv1.net.weight".
struct TemporalShiftImpl : torch::nn::Module {
  TemporalShiftImpl(torch::nn::Conv2d conv, int64_t segments, int64_t foldDiv);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d net{nullptr};
  int64_t segments;
  int64_t foldDiv;
};
TORCH_MODULE(TemporalShift);

// torchvision.models.resnet.Bottleneck (stride on the 3x3 conv, "ResNet v1.5"); when
// shiftSegments > 0 its conv1 is wrapped in TemporalShift.
struct TvBottleneckImpl : torch::nn::Module, BnFoldable {
  TvBottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride, int64_t shiftSegments,
                   int64_t foldDiv);
  torch::Tensor forward(const torch::Tensor& x);

  static constexpr int64_t kExpansion = 4;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
  TemporalShift shift{nullptr};  // registered as "conv1" in place of conv1 when shifting
  ConvBn bn1Pair, bn2Pair, bn3Pair, downsamplePair;
};
TORCH_MODULE(TvBottleneck);

// torchvision.models.ResNet up to the global average pool (TSN replaces fc with a Dropout, which
// has no parameters and is the identity at test time). `width` scales every channel count by
// width/64 (torchvision's is 64): small parity fixtures keep the published key names.
struct TvResNetImpl : torch::nn::Module, BnFoldable {
  TvResNetImpl(const std::vector<int64_t>& depths, int64_t width, int64_t shiftSegments,
               int64_t foldDiv, int64_t shiftEvery);
  torch::Tensor forward(torch::Tensor x);  // [N, 3, H, W] -> [N, 32 * width]

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  int64_t outDim = 0;
  ConvBn bn1Pair;
};
TORCH_MODULE(TvResNet);

// The TSN wrapper for MODEL.MODEL_NAME TSN; MODEL.ARCH tsm adds the shift, tsn does not.
// Reads RESNET.DEPTH (50, 101), RESNET.WIDTH_PER_GROUP (channel scale, 64 = published),
// MODEL.NUM_CLASSES, DATA.NUM_FRAMES (TSM's n_segment) and the vidfeat-only TSM.* keys.
class TsnImpl : public VideoNet {
 public:
  explicit TsnImpl(const Config& cfg);
  // pathways[0]: [B, C, T, H, W]; the T frames of a clip are TSM's segments.
  NetOutput forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) override;

  TvResNet base_model{nullptr};
  torch::nn::Linear new_fc{nullptr};

 private:
  int64_t shiftSegments_ = 0;  // 0 for TSN
};

}  // namespace vidfeat::model
