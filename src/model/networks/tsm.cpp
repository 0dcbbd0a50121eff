#include "networks/tsm.h"

#include "networks/backbone_config.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat::model {

namespace {

using torch::indexing::None;
using torch::indexing::Slice;

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

// torchvision's _make_layer: the first block takes the stride and, when the shape changes, a
// 1x1 conv + BN shortcut named downsample.0 / downsample.1.
torch::nn::Sequential makeLayer(int64_t& inplanes, int64_t planes, int64_t blocks, int64_t stride,
                                int64_t shiftSegments, int64_t foldDiv, int64_t shiftEvery) {
  torch::nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    // make_temporal_shift: with 'blockres' only every n_round-th block is shifted (n_round 2 when
    // layer3 has >= 23 blocks, i.e. ResNet-101), counted within each layer.
    const int64_t shift = (i % shiftEvery == 0) ? shiftSegments : 0;
    layer->push_back(TvBottleneck(inplanes, planes, i == 0 ? stride : 1, shift, foldDiv));
    inplanes = planes * TvBottleneckImpl::kExpansion;
  }
  return layer;
}

}  // namespace

torch::Tensor temporalShift(const torch::Tensor& x, int64_t segments, int64_t foldDiv) {
  const int64_t nt = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto v = x.view({nt / segments, segments, c, h, w});
  const int64_t fold = c / foldDiv;
  auto out = torch::zeros_like(v);
  out.index_put_({Slice(), Slice(None, -1), Slice(None, fold)},
                 v.index({Slice(), Slice(1, None), Slice(None, fold)}));
  out.index_put_({Slice(), Slice(1, None), Slice(fold, 2 * fold)},
                 v.index({Slice(), Slice(None, -1), Slice(fold, 2 * fold)}));
  out.index_put_({Slice(), Slice(), Slice(2 * fold, None)},
                 v.index({Slice(), Slice(), Slice(2 * fold, None)}));
  return out.view({nt, c, h, w});
}

TemporalShiftImpl::TemporalShiftImpl(torch::nn::Conv2d conv, int64_t segments_, int64_t foldDiv_)
    : net(register_module("net", conv)), segments(segments_), foldDiv(foldDiv_) {}

torch::Tensor TemporalShiftImpl::forward(const torch::Tensor& x) {
  return net(temporalShift(x, segments, foldDiv));
}

TvBottleneckImpl::TvBottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride,
                                   int64_t shiftSegments, int64_t foldDiv) {
  // Registration order follows torchvision's __init__, so named_parameters() lists keys in the
  // order of the published state dicts.
  conv1 = conv(inplanes, planes, 1, 1, 0);
  if (shiftSegments > 0) {
    shift = register_module("conv1", TemporalShift(conv1, shiftSegments, foldDiv));
  } else {
    register_module("conv1", conv1);
  }
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, stride, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  conv3 = register_module("conv3", conv(planes, planes * kExpansion, 1, 1, 0));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes * kExpansion));
  if (stride != 1 || inplanes != planes * kExpansion) {
    auto dsConv = conv(inplanes, planes * kExpansion, 1, stride, 0);
    torch::nn::BatchNorm2d dsBn(planes * kExpansion);
    downsample = register_module("downsample", torch::nn::Sequential(dsConv, dsBn));
    downsamplePair = ConvBn(dsConv, dsBn);
    addPair(downsamplePair);
  }
  bn1Pair = ConvBn(conv1, bn1);
  bn2Pair = ConvBn(conv2, bn2);
  bn3Pair = ConvBn(conv3, bn3);
  for (ConvBn* p : {&bn1Pair, &bn2Pair, &bn3Pair}) addPair(*p);
}

torch::Tensor TvBottleneckImpl::forward(const torch::Tensor& x) {
  // TemporalShift(conv1) is conv1 on the shifted input: conv1 and bn1 fold as any pair. The shift
  // moves slices of the strided layout; the convs run blocked when the switch is on.
  const torch::Tensor in = toBlocked(x);
  auto out =
      bn1Pair(shift ? toBlocked(temporalShift(toDense(x), shift->segments, shift->foldDiv)) : in)
          .relu_();
  out = bn2Pair(out).relu_();
  out = bn3Pair(out);
  out.add_(downsample ? downsamplePair(in) : in);
  return out.relu_();
}

TvResNetImpl::TvResNetImpl(const std::vector<int64_t>& depths, int64_t width, int64_t shiftSegments,
                           int64_t foldDiv, int64_t shiftEvery) {
  conv1 = register_module("conv1", conv(3, width, 7, 2, 3));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(width));
  bn1Pair = ConvBn(conv1, bn1);
  addPair(bn1Pair);
  int64_t inplanes = width;
  layer1 = register_module(
      "layer1", makeLayer(inplanes, width, depths[0], 1, shiftSegments, foldDiv, shiftEvery));
  layer2 = register_module(
      "layer2", makeLayer(inplanes, 2 * width, depths[1], 2, shiftSegments, foldDiv, shiftEvery));
  layer3 = register_module(
      "layer3", makeLayer(inplanes, 4 * width, depths[2], 2, shiftSegments, foldDiv, shiftEvery));
  layer4 = register_module(
      "layer4", makeLayer(inplanes, 8 * width, depths[3], 2, shiftSegments, foldDiv, shiftEvery));
  outDim = inplanes;
}

torch::Tensor TvResNetImpl::forward(torch::Tensor x) {
  x = bn1Pair(toBlocked(x)).relu_();
  x = torch::max_pool2d(x, 3, 2, 1);
  x = layer4->forward(layer3->forward(layer2->forward(layer1->forward(x))));
  // AdaptiveAvgPool2d(1) + flatten, as TSN sets base_model.avgpool.
  return toDense(x).mean({2, 3});
}

TsnImpl::TsnImpl(const Config& cfg) {
  const auto arch = cfg.get<std::string>("MODEL.ARCH");
  if (arch != "tsn" && arch != "tsm") {
    throw Error("MODEL.MODEL_NAME TSN needs MODEL.ARCH tsn or tsm (got '" + arch + "')");
  }
  const int depth = cfg.get<int>("RESNET.DEPTH");
  if (depth != 50 && depth != 101) {
    throw Error("RESNET.DEPTH " + std::to_string(depth) +
                " is not supported for TSN/TSM (50, 101: Bottleneck ResNets)");
  }
  if (cfg.get<int>("RESNET.NUM_GROUPS") != 1) {
    throw Error("RESNET.NUM_GROUPS must be 1 for TSN/TSM (torchvision's ResNet, not ResNeXt)");
  }
  const int64_t width = cfg.get<int>("RESNET.WIDTH_PER_GROUP");
  if (width < 1) throw Error("RESNET.WIDTH_PER_GROUP must be >= 1, got " + std::to_string(width));
  const auto consensus = cfg.get<std::string>("TSM.CONSENSUS");
  // 'identity' keeps one output per segment: no single feature per clip, so not offered.
  if (consensus != "avg") throw Error("TSM.CONSENSUS '" + consensus + "' is not supported (avg)");

  int64_t foldDiv = 1;
  if (arch == "tsm") {
    const auto place = cfg.get<std::string>("TSM.SHIFT_PLACE");
    // 'block' shifts the whole block input (identity path included) and renames its keys
    // (layerN.i.net.*); no published Kinetics checkpoint uses it.
    if (place != "blockres")
      throw Error("TSM.SHIFT_PLACE '" + place + "' is not supported (blockres)");
    foldDiv = cfg.get<int>("TSM.SHIFT_DIV");
    if (foldDiv < 1) throw Error("TSM.SHIFT_DIV must be >= 1, got " + std::to_string(foldDiv));
    shiftSegments_ = cfg.get<int>("DATA.NUM_FRAMES");
    if (shiftSegments_ < 1)
      throw Error("DATA.NUM_FRAMES must be >= 1, got " + std::to_string(shiftSegments_));
  }
  const int64_t shiftEvery = depth == 101 ? 2 : 1;

  base_model = register_module(
      "base_model", TvResNet(stageDepths(depth), width, shiftSegments_, foldDiv, shiftEvery));
  featureDim_ = base_model->outDim;
  numClasses_ = cfg.get<int>("MODEL.NUM_CLASSES");
  new_fc = register_module("new_fc", torch::nn::Linear(featureDim_, numClasses_));
  description_ = std::to_string(featureDim_) + "-d: torchvision ResNet-" + std::to_string(depth) +
                 " output, globally pooled per frame, averaged over the clip's " +
                 std::to_string(cfg.get<int>("DATA.NUM_FRAMES")) + " frames (" +
                 (arch == "tsm" ? "TSM consensus; 1/" + std::to_string(foldDiv) +
                                      " of the channels shifted each way"
                                : std::string("TSN consensus")) +
                 "), before dropout and new_fc";
}

NetOutput TsnImpl::forwardFeatures(std::vector<torch::Tensor> pathways, bool withLogits) {
  if (pathways.size() != 1)
    throw Error("internal: TSN/TSM take one pathway, got " + std::to_string(pathways.size()));
  const auto& clip = pathways[0];  // [B, C, T, H, W]
  const int64_t B = clip.size(0), C = clip.size(1), T = clip.size(2);
  if (shiftSegments_ > 0 && T != shiftSegments_) {
    // The shift mixes neighbouring rows of the frame batch: another T would mix videos.
    throw Error("TSM built for DATA.NUM_FRAMES " + std::to_string(shiftSegments_) +
                " got a clip of " + std::to_string(T) + " frames");
  }
  // TSM's input is [B, T*C, H, W], viewed as [B*T, C, H, W]: frames of one video adjacent.
  auto frames = clip.permute({0, 2, 1, 3, 4}).reshape({B * T, C, clip.size(3), clip.size(4)});
  auto perFrame = base_model->forward(frames);  // [B*T, D]
  NetOutput out;
  // ConsensusModule('avg'): mean over the segment dimension.
  out.features = perFrame.view({B, T, -1}).mean(1);
  if (withLogits) {
    // TSN.forward applies new_fc per segment, then the consensus (before_softmax: no softmax).
    out.logits = new_fc(perFrame).view({B, T, -1}).mean(1);
  }
  return out;
}

}  // namespace vidfeat::model
