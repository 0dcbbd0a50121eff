#include "networks/x3d.h"

#include <algorithm>
#include <cmath>

#include "networks/backbone_config.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat::model {

namespace nn = torch::nn;

int64_t roundWidth(int64_t width, double multiplier, int64_t minWidth, int64_t divisor) {
  if (multiplier == 0.0) return width;
  // Python's arithmetic, step for step: float product, int() truncation, floor division.
  const double w = double(width) * multiplier;
  int64_t out = std::max(minWidth, int64_t(w + double(divisor) / 2.0) / divisor * divisor);
  if (double(out) < 0.9 * w) out += divisor;
  return out;
}

SEImpl::SEImpl(int64_t dimIn, double ratio) {
  const int64_t dimFc = roundWidth(dimIn, ratio, /*minWidth=*/8, /*divisor=*/8);
  avg_pool =
      register_module("avg_pool", nn::AdaptiveAvgPool3d(nn::AdaptiveAvgPool3dOptions({1, 1, 1})));
  fc1 = register_module("fc1", nn::Conv3d(nn::Conv3dOptions(dimIn, dimFc, 1).bias(true)));
  fc2 = register_module("fc2", nn::Conv3d(nn::Conv3dOptions(dimFc, dimIn, 1).bias(true)));
}

torch::Tensor SEImpl::forward(torch::Tensor x) {
  return x.mul_(torch::sigmoid(fc2(torch::relu(fc1(avg_pool(x))))));  // x is the block's own tensor
}

X3DTransformImpl::X3DTransformImpl(int64_t dimIn, int64_t dimOut, int64_t tempKernel,
                                   int64_t stride, int64_t dimInner, int64_t numGroups,
                                   int64_t dilation, const BlockOptions& opt, int64_t blockIdx,
                                   double seRatio) {
  const int64_t s1 = opt.stride1x1 ? stride : 1, s3 = opt.stride1x1 ? 1 : stride;
  a = register_module("a",
                      nn::Conv3d(conv3dNoBias(dimIn, dimInner, {1, 1, 1}, {1, s1, s1}, {0, 0, 0})));
  a_bn = register_module("a_bn", nn::BatchNorm3d(batchNorm3d(dimInner, opt.eps)));
  b = register_module("b",
                      nn::Conv3d(conv3dNoBias(dimInner, dimInner, {tempKernel, 3, 3}, {1, s3, s3},
                                              {tempKernel / 2, dilation, dilation})
                                     .groups(numGroups)
                                     .dilation({1, dilation, dilation})));
  b_bn = register_module("b_bn", nn::BatchNorm3d(batchNorm3d(dimInner, opt.eps)));
  if (seRatio > 0.0 && (blockIdx + 1) % 2 != 0) se = register_module("se", SE(dimInner, seRatio));
  c = register_module("c",
                      nn::Conv3d(conv3dNoBias(dimInner, dimOut, {1, 1, 1}, {1, 1, 1}, {0, 0, 0})));
  c_bn = register_module("c_bn", nn::BatchNorm3d(batchNorm3d(dimOut, opt.eps)));
  aBn = ConvBn(a, a_bn);
  bBn = ConvBn(b, b_bn);
  cBn = ConvBn(c, c_bn);
  for (ConvBn* p : {&aBn, &bBn, &cBn}) addPair(*p);
}

torch::Tensor X3DTransformImpl::forward(torch::Tensor x) {
  x = aBn(x).relu_();  // blocked when the block's input is (ResBlock)
  // SE and swish take the strided layout; so does the depth-wise kernel (conv_bn.h).
  x = bBn.depthwise() ? bBn(toDense(x)) : toDense(bBn(x));
  if (se) x = se(x);          // PySlowFast applies SE before the swish
  x.mul_(torch::sigmoid(x));  // swish, as PySlowFast's x * sigmoid(x)
  return cBn(toBlocked(x));
}

X3DStemImpl::X3DStemImpl(int64_t dimIn, int64_t dimOut, const std::vector<int64_t>& kernel,
                         const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                         double eps) {
  conv_xy = register_module(
      "conv_xy", nn::Conv3d(conv3dNoBias(dimIn, dimOut, {1, kernel[1], kernel[2]},
                                         {1, stride[1], stride[2]}, {0, padding[1], padding[2]})));
  this->conv =
      register_module("conv", nn::Conv3d(conv3dNoBias(dimOut, dimOut, {kernel[0], 1, 1},
                                                      {stride[0], 1, 1}, {padding[0], 0, 0})
                                             .groups(dimOut)));
  this->bn = register_module("bn", nn::BatchNorm3d(batchNorm3d(dimOut, eps)));
  convBn = ConvBn(this->conv, this->bn);
  addPair(convBn);
}

torch::Tensor X3DStemImpl::forward(torch::Tensor x) { return convBn(conv_xy(x)).relu_(); }

X3DHeadImpl::X3DHeadImpl(int64_t dimIn, int64_t dimInner, int64_t dimOut, int64_t numClasses,
                         const std::vector<int64_t>& poolSize, const std::string& act_, bool bnLin5,
                         double eps)
    : act(act_) {
  // X3DHead knows no "none" activation (unlike ResNetBasicHead).
  if (act != "softmax" && act != "sigmoid") {
    throw Error("MODEL.HEAD_ACT '" + act + "' is not supported by the X3D head (softmax, sigmoid)");
  }
  conv_5 = register_module(
      "conv_5", nn::Conv3d(conv3dNoBias(dimIn, dimInner, {1, 1, 1}, {1, 1, 1}, {0, 0, 0})));
  conv_5_bn = register_module("conv_5_bn", nn::BatchNorm3d(batchNorm3d(dimInner, eps)));
  if (poolSize.empty()) {
    avg_pool = nn::AnyModule(nn::AdaptiveAvgPool3d(nn::AdaptiveAvgPool3dOptions({1, 1, 1})));
  } else {
    avg_pool =
        nn::AnyModule(nn::AvgPool3d(nn::AvgPool3dOptions(torch::IntArrayRef(poolSize)).stride(1)));
  }
  register_module("avg_pool", avg_pool.ptr());
  lin_5 = register_module(
      "lin_5", nn::Conv3d(conv3dNoBias(dimInner, dimOut, {1, 1, 1}, {1, 1, 1}, {0, 0, 0})));
  if (bnLin5) lin_5_bn = register_module("lin_5_bn", nn::BatchNorm3d(batchNorm3d(dimOut, eps)));
  projection = register_module("projection", nn::Linear(dimOut, numClasses));
  conv5Bn = ConvBn(conv_5, conv_5_bn);
  addPair(conv5Bn);
  if (lin_5_bn) {
    lin5Bn = ConvBn(lin_5, lin_5_bn);
    addPair(lin5Bn);
  }
}

NetOutput X3DHeadImpl::forward(const torch::Tensor& in, bool withLogits) {
  torch::Tensor x = conv5Bn(in).relu_();
  x = pool3d([&](const torch::Tensor& t) { return avg_pool.forward(t); }, toDense(x));
  x = lin5Bn ? lin5Bn(x) : lin_5(x);
  torch::Tensor h = x.relu_().permute({0, 2, 3, 4, 1});  // B, T, H, W, C
  NetOutput out;
  out.features = h.mean(3).mean(2).reshape({h.size(0), -1});
  if (withLogits) {
    torch::Tensor y = projection(h);
    y = act == "softmax" ? torch::softmax(y, 4) : torch::sigmoid(y);
    out.logits = y.mean({1, 2, 3}).reshape({y.size(0), -1});
  }
  return out;
}

X3DImpl::X3DImpl(const Config& cfg) {
  const BackboneSettings b = readBackbone(cfg, cfg.get<std::string>("MODEL.ARCH"), 1, "X3D");
  const auto& tables = b.tables;
  const auto& channels = b.channels;

  const double expStage = 2.0;
  const int64_t dimC1 = cfg.get<int>("X3D.DIM_C1");
  const int64_t dimRes2 =
      cfg.get<bool>("X3D.SCALE_RES2") ? roundWidth(dimC1, expStage, 1, 8) : dimC1;
  const int64_t dimRes3 = roundWidth(dimRes2, expStage, 1, 8);
  const int64_t dimRes4 = roundWidth(dimRes3, expStage, 1, 8);
  const int64_t dimRes5 = roundWidth(dimRes4, expStage, 1, 8);
  struct Basis {
    int64_t blocks, channels, stride;
  };
  const Basis basis[4] = {{1, dimRes2, 2}, {2, dimRes3, 2}, {5, dimRes4, 2}, {3, dimRes5, 2}};

  const double wMul = cfg.get<double>("X3D.WIDTH_FACTOR");
  const double dMul = cfg.get<double>("X3D.DEPTH_FACTOR");
  const double bottleneck = cfg.get<double>("X3D.BOTTLENECK_FACTOR");
  const bool channelwise = cfg.get<bool>("X3D.CHANNELWISE_3x3x3");
  const int64_t groups = b.groups;
  const auto dilations = stageList(cfg, "RESNET.SPATIAL_DILATIONS", 1);
  const BlockOptions& opt = b.block;

  const auto& tk = tables.temporalKernels;
  const int64_t kt = tk[0][0][0];
  const int64_t dimRes1 = roundWidth(dimC1, wMul);
  s1 = register_module("s1", std::make_shared<nn::Module>());
  stem = s1->register_module(
      "pathway0_stem", X3DStem(channels[0], dimRes1, std::vector<int64_t>{kt, 3, 3},
                               std::vector<int64_t>{1, 2, 2}, std::vector<int64_t>{kt / 2, 1, 1}));

  int64_t dimIn = dimRes1, dimOut = 0, dimInner = 0;
  for (size_t i = 0; i < 4; ++i) {
    dimOut = roundWidth(basis[i].channels, wMul);
    dimInner = int64_t(bottleneck * double(dimOut));  // Python int(): truncation
    const int64_t reps =
        dMul == 0.0 ? basis[i].blocks : int64_t(std::ceil(dMul * double(basis[i].blocks)));
    ResStageImpl::PathwaySpec s{
        dimIn,           dimOut,   dimInner, channelwise ? dimInner : groups, reps, basis[i].stride,
        dilations[i][0], tk[1][0], reps};
    // PySlowFast's X3D reads the non-local settings of the first stage for every stage.
    setNonlocal(s, cfg, 0, 0);
    stages.push_back(register_module("s" + std::to_string(i + 2),
                                     ResStage(std::vector<ResStageImpl::PathwaySpec>{s}, opt)));
    dimIn = dimOut;
  }

  const int64_t spatial = int64_t(std::ceil(double(cfg.get<int>("DATA.TRAIN_CROP_SIZE")) / 32.0));
  const int64_t dimC5 = cfg.get<int>("X3D.DIM_C5");
  numClasses_ = cfg.get<int>("MODEL.NUM_CLASSES");
  // X3D's head pools by a fixed size even under MULTIGRID.SHORT_CYCLE, as PySlowFast's.
  head = register_module(
      "head", X3DHead(dimOut, dimInner, dimC5, numClasses_,
                      std::vector<int64_t>{cfg.get<int>("DATA.NUM_FRAMES"), spatial, spatial},
                      cfg.get<std::string>("MODEL.HEAD_ACT"), cfg.get<bool>("X3D.BN_LIN5")));
  featureDim_ = dimC5;
  description_ = std::to_string(featureDim_) + "-d: res5 (" + std::to_string(dimOut) +
                 " channels) -> conv_5 (" + std::to_string(dimInner) +
                 ") -> average pool over T, H and W -> lin_5 (" + std::to_string(dimC5) +
                 ") and ReLU; the input of head.projection";
}

NetOutput X3DImpl::forwardFeatures(std::vector<torch::Tensor> x, bool withLogits) {
  if (x.size() != 1) throw Error("X3D: expected one pathway");
  x[0] = stem->forward(x[0]);
  for (auto& s : stages) x = s->forward(std::move(x));
  return head->forward(x[0], withLogits);
}

}  // namespace vidfeat::model
