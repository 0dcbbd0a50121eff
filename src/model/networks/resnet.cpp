#include "networks/resnet.h"

#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat::model {

namespace nn = torch::nn;

ResNetBasicHeadImpl::ResNetBasicHeadImpl(const std::vector<int64_t>& dimIn, int64_t numClasses,
                                         const std::vector<std::vector<int64_t>>& poolSize,
                                         const std::string& act_)
    : act(act_) {
  for (size_t p = 0; p < dimIn.size(); ++p) {
    nn::AnyModule pool;
    if (poolSize.empty()) {
      pool = nn::AnyModule(nn::AdaptiveAvgPool3d(nn::AdaptiveAvgPool3dOptions({1, 1, 1})));
    } else {
      pool = nn::AnyModule(
          nn::AvgPool3d(nn::AvgPool3dOptions(torch::IntArrayRef(poolSize[p])).stride(1)));
    }
    register_module("pathway" + std::to_string(p) + "_avgpool", pool.ptr());
    avgpools.push_back(std::move(pool));
  }
  int64_t total = 0;
  for (auto d : dimIn) total += d;
  projection = register_module("projection", nn::Linear(total, numClasses));
  if (act != "softmax" && act != "sigmoid" && act != "none") {
    throw Error("MODEL.HEAD_ACT '" + act + "' is not supported (softmax, sigmoid, none)");
  }
}

NetOutput ResNetBasicHeadImpl::forward(const std::vector<torch::Tensor>& x, bool withLogits) {
  std::vector<torch::Tensor> pooled;
  for (size_t p = 0; p < x.size(); ++p) {
    pooled.push_back(
        pool3d([&](const torch::Tensor& t) { return avgpools[p].forward(t); }, toDense(x[p])));
  }
  torch::Tensor h = torch::cat(pooled, 1).permute({0, 2, 3, 4, 1});  // B, T, H, W, C
  NetOutput out;
  // The seed's feature: the projection's input averaged over W then H, flattened over T*C.
  out.features = h.mean(3).mean(2).reshape({h.size(0), -1});
  if (withLogits) {
    torch::Tensor y = projection(h);
    if (act == "softmax") y = torch::softmax(y, 4);
    if (act == "sigmoid") y = torch::sigmoid(y);
    if (y.size(1) * y.size(2) * y.size(3) > 1) y = y.mean({1, 2, 3});
    out.logits = y.reshape({y.size(0), -1});
  }
  return out;
}

ResNetImpl::ResNetImpl(const Config& cfg, bool nopool) {
  const auto cfgArch = cfg.get<std::string>("MODEL.ARCH");
  const auto arch = nopool ? nopoolArch(cfgArch) : cfgArch;
  const BackboneSettings b = readBackbone(cfg, arch, 1, nopool ? "ResNet_nopool" : "ResNet");
  const auto& tables = b.tables;
  const auto& channels = b.channels;
  const auto& depths = b.depths;
  const int64_t groups = b.groups, width = b.width, inner = b.inner();
  const auto strides = stageList(cfg, "RESNET.SPATIAL_STRIDES", 1);
  const auto dilations = stageList(cfg, "RESNET.SPATIAL_DILATIONS", 1);
  const auto tempBlocks = stageList(cfg, "RESNET.NUM_BLOCK_TEMP_KERNEL", 1);
  const BlockOptions& opt = b.block;

  const auto& tk = tables.temporalKernels;
  const int64_t kt = tk[0][0][0];
  using Lists = std::vector<std::vector<int64_t>>;
  s1 = register_module(
      "s1", VideoModelStem(std::vector<int64_t>{channels[0]}, std::vector<int64_t>{width},
                           Lists{{kt, 7, 7}}, Lists{{1, 2, 2}}, Lists{{kt / 2, 3, 3}}));
  // Stage widths as PySlowFast: dim_out = width * {4, 8, 16, 32}, dim_inner = inner * {1, 2, 4, 8}
  // (whatever RESNET.TRANS_FUNC is).
  auto stage = [&](int i, int64_t dimIn, int64_t dimOut, int64_t dimInner) {
    ResStageImpl::PathwaySpec s{dimIn,
                                dimOut,
                                dimInner,
                                groups,
                                depths[size_t(i)],
                                strides[size_t(i)][0],
                                dilations[size_t(i)][0],
                                tk[size_t(i) + 1][0],
                                tempBlocks[size_t(i)][0]};
    setNonlocal(s, cfg, size_t(i), 0);
    return ResStage(std::vector<ResStageImpl::PathwaySpec>{s}, opt);
  };
  const int64_t m = 4;
  s2 = register_module("s2", stage(0, width, width * m, inner));
  const auto& p1 = tables.pool1[0];
  pathway0_pool = register_module(
      "pathway0_pool",
      nn::MaxPool3d(nn::MaxPool3dOptions(torch::IntArrayRef(p1)).stride(torch::IntArrayRef(p1))));
  s3 = register_module("s3", stage(1, width * m, width * m * 2, inner * 2));
  s4 = register_module("s4", stage(2, width * m * 2, width * m * 4, inner * 4));
  s5 = register_module("s5", stage(3, width * m * 4, width * m * 8, inner * 8));

  const int64_t dimOut = width * m * 8;
  std::vector<std::vector<int64_t>> pool;
  if (!cfg.get<bool>("MULTIGRID.SHORT_CYCLE")) {
    const int64_t frames = cfg.get<int>("DATA.NUM_FRAMES"),
                  crop = cfg.get<int>("DATA.TRAIN_CROP_SIZE");
    pool.push_back({frames / p1[0], crop / 32 / p1[1], crop / 32 / p1[2]});
  }
  numClasses_ = cfg.get<int>("MODEL.NUM_CLASSES");
  head = register_module("head", ResNetBasicHead(std::vector<int64_t>{dimOut}, numClasses_, pool,
                                                 cfg.get<std::string>("MODEL.HEAD_ACT")));
  // The head pools all NUM_FRAMES / pool1 frames into one step, so the feature is C wide.
  featureDim_ = dimOut;
  description_ = std::to_string(featureDim_) + "-d: res5 output of the R" +
                 std::to_string(cfg.get<int>("RESNET.DEPTH")) + " (" + std::to_string(dimOut) +
                 " channels), average-pooled over T, H and W; the input of head.projection";
}

NetOutput ResNetImpl::forwardFeatures(std::vector<torch::Tensor> x, bool withLogits) {
  x = s1->forward(std::move(x));
  x = s2->forward(std::move(x));
  x[0] = maxPool3d(pathway0_pool, x[0]);
  x = s3->forward(std::move(x));
  x = s4->forward(std::move(x));
  x = s5->forward(std::move(x));
  return head->forward(x, withLogits);
}

}  // namespace vidfeat::model
