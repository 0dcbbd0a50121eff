#include "networks/slowfast.h"

#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat::model {

namespace nn = torch::nn;

FuseFastToSlowImpl::FuseFastToSlowImpl(int64_t dimIn, int64_t channelRatio, int64_t kernel,
                                       int64_t alpha, double eps) {
  conv_f2s = register_module(
      "conv_f2s", nn::Conv3d(nn::Conv3dOptions(dimIn, dimIn * channelRatio, {kernel, 1, 1})
                                 .stride({alpha, 1, 1})
                                 .padding({kernel / 2, 0, 0})
                                 .bias(false)));
  bn = register_module(
      "bn", nn::BatchNorm3d(nn::BatchNorm3dOptions(dimIn * channelRatio).eps(eps).momentum(0.1)));
  convBn = ConvBn(conv_f2s, bn);
  addPair(convBn);
}

std::vector<torch::Tensor> FuseFastToSlowImpl::forward(std::vector<torch::Tensor> x) {
  // PySlowFast concatenates the fused channels to the Slow pathway's; the next stage takes them
  // apart instead (ResStageImpl::forward: {slow, fast, lateral}), with the same result.
  x.push_back(convBn(x[1]).relu_());
  return x;
}

SlowFastImpl::SlowFastImpl(const Config& cfg) {
  const BackboneSettings b = readBackbone(cfg, cfg.get<std::string>("MODEL.ARCH"), 2, "SlowFast");
  const auto& tables = b.tables;
  const auto& channels = b.channels;
  const auto& depths = b.depths;
  const int64_t groups = b.groups, width = b.width, inner = b.inner();
  const int64_t alpha = cfg.get<int>("SLOWFAST.ALPHA");
  const int64_t betaInv = cfg.get<int>("SLOWFAST.BETA_INV");
  const int64_t ratio = cfg.get<int>("SLOWFAST.FUSION_CONV_CHANNEL_RATIO");
  const int64_t fuseKernel = cfg.get<int>("SLOWFAST.FUSION_KERNEL_SZ");
  if (alpha < 1) throw Error("SLOWFAST.ALPHA must be >= 1");
  if (betaInv < 1 || width / betaInv < 1) {
    throw Error(
        "SLOWFAST.BETA_INV must be >= 1 and leave the Fast pathway at least one channel "
        "(RESNET.WIDTH_PER_GROUP / SLOWFAST.BETA_INV >= 1)");
  }
  if (ratio < 1 || betaInv / ratio < 1) {
    throw Error("SLOWFAST.FUSION_CONV_CHANNEL_RATIO must be between 1 and SLOWFAST.BETA_INV");
  }
  const int64_t outDimRatio = betaInv / ratio;
  // The fusion convs emit (c / BETA_INV) * RATIO channels while the next stage expects
  // c / (BETA_INV / RATIO) more; PySlowFast only works where the two agree.
  for (int64_t c : {width, width * 4, width * 8, width * 16}) {
    if (c / betaInv * ratio != c / outDimRatio) {
      throw Error(
          "SLOWFAST.BETA_INV / FUSION_CONV_CHANNEL_RATIO do not divide RESNET.WIDTH_PER_GROUP "
          "evenly (" +
          std::to_string(c) + " channels)");
    }
  }
  const auto strides = stageList(cfg, "RESNET.SPATIAL_STRIDES", 2);
  const auto dilations = stageList(cfg, "RESNET.SPATIAL_DILATIONS", 2);
  const auto tempBlocks = stageList(cfg, "RESNET.NUM_BLOCK_TEMP_KERNEL", 2);

  BlockOptions opt = b.block;
  // PySlowFast's SlowFast does not pass RESNET.STRIDE_1X1 to its stages: the stride is always on
  // the 3x3 conv.
  opt.stride1x1 = false;

  const auto& tk = tables.temporalKernels;
  using Lists = std::vector<std::vector<int64_t>>;
  const int64_t kSlow = tk[0][0][0], kFast = tk[0][1][0];
  s1 = register_module(
      "s1", VideoModelStem(std::vector<int64_t>{channels[0], channels[1]},
                           std::vector<int64_t>{width, width / betaInv},
                           Lists{{kSlow, 7, 7}, {kFast, 7, 7}}, Lists{{1, 2, 2}, {1, 2, 2}},
                           Lists{{kSlow / 2, 3, 3}, {kFast / 2, 3, 3}}));
  auto fuse = [&](int64_t fastDim) { return FuseFastToSlow(fastDim, ratio, fuseKernel, alpha); };
  // Stage i (0 = res2) with Slow channels c (input), cOut and inner width d: the Slow pathway takes
  // the fused Fast channels on top of its own.
  auto stage = [&](size_t i, int64_t c, int64_t cOut, int64_t d) {
    std::vector<ResStageImpl::PathwaySpec> specs;
    const int64_t dimIn[2] = {c + c / outDimRatio, c / betaInv};
    const int64_t dimOut[2] = {cOut, cOut / betaInv};
    const int64_t dimInner[2] = {d, d / betaInv};
    for (size_t p = 0; p < 2; ++p) {
      ResStageImpl::PathwaySpec s{dimIn[p],        dimOut[p],    dimInner[p],
                                  groups,          depths[i],    strides[i][p],
                                  dilations[i][p], tk[i + 1][p], tempBlocks[i][p]};
      setNonlocal(s, cfg, i, p);
      if (p == 0) s.lateralChannels = c / outDimRatio;  // the fused Fast channels
      specs.push_back(s);
    }
    return ResStage(specs, opt);
  };
  s1_fuse = register_module("s1_fuse", fuse(width / betaInv));
  s2 = register_module("s2", stage(0, width, width * 4, inner));
  s2_fuse = register_module("s2_fuse", fuse(width * 4 / betaInv));
  const auto& p1 = tables.pool1;
  pathway0_pool = register_module(
      "pathway0_pool",
      nn::MaxPool3d(
          nn::MaxPool3dOptions(torch::IntArrayRef(p1[0])).stride(torch::IntArrayRef(p1[0]))));
  pathway1_pool = register_module(
      "pathway1_pool",
      nn::MaxPool3d(
          nn::MaxPool3dOptions(torch::IntArrayRef(p1[1])).stride(torch::IntArrayRef(p1[1]))));
  s3 = register_module("s3", stage(1, width * 4, width * 8, inner * 2));
  s3_fuse = register_module("s3_fuse", fuse(width * 8 / betaInv));
  s4 = register_module("s4", stage(2, width * 8, width * 16, inner * 4));
  s4_fuse = register_module("s4_fuse", fuse(width * 16 / betaInv));
  s5 = register_module("s5", stage(3, width * 16, width * 32, inner * 8));

  std::vector<std::vector<int64_t>> pool;
  // Multigrid training's short cycle varies the clip size, so its head pools adaptively.
  if (!cfg.get<bool>("MULTIGRID.SHORT_CYCLE")) {
    const int64_t frames = cfg.get<int>("DATA.NUM_FRAMES"),
                  crop = cfg.get<int>("DATA.TRAIN_CROP_SIZE");
    pool.push_back({frames / alpha / p1[0][0], crop / 32 / p1[0][1], crop / 32 / p1[0][2]});
    pool.push_back({frames / p1[1][0], crop / 32 / p1[1][1], crop / 32 / p1[1][2]});
  }
  numClasses_ = cfg.get<int>("MODEL.NUM_CLASSES");
  const std::vector<int64_t> headDims = {width * 32, width * 32 / betaInv};
  head = register_module(
      "head", ResNetBasicHead(headDims, numClasses_, pool, cfg.get<std::string>("MODEL.HEAD_ACT")));
  featureDim_ = headDims[0] + headDims[1];
  description_ =
      std::to_string(featureDim_) + "-d: Slow res5 (" + std::to_string(headDims[0]) +
      ") and Fast res5 (" + std::to_string(headDims[1]) +
      ") outputs, each average-pooled over T, H and W, concatenated; the input of head.projection";
}

NetOutput SlowFastImpl::forwardFeatures(std::vector<torch::Tensor> x, bool withLogits) {
  if (x.size() != 2) throw Error("SlowFast: expected two pathways (slow, fast)");
  x = s1->forward(std::move(x));
  x = s1_fuse->forward(std::move(x));
  x = s2->forward(std::move(x));
  x = s2_fuse->forward(std::move(x));
  x[0] = maxPool3d(pathway0_pool, x[0]);
  x[1] = maxPool3d(pathway1_pool, x[1]);
  x[2] =
      maxPool3d(pathway0_pool, x[2]);  // the Slow pathway's lateral channels: a channel-wise pool
  x = s3->forward(std::move(x));
  x = s3_fuse->forward(std::move(x));
  x = s4->forward(std::move(x));
  x = s4_fuse->forward(std::move(x));
  x = s5->forward(std::move(x));
  return head->forward(x, withLogits);
}

}  // namespace vidfeat::model
