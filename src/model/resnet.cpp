#include "vidfeat/model/resnet.h"

#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat::model {

namespace nn = torch::nn;

ArchTables archTables(const std::string& arch) {
  using K = std::vector<std::vector<std::vector<int64_t>>>;
  const K flat = {{{1}}, {{1}}, {{1}}, {{1}}, {{1}}};
  const K i3d = {{{5}}, {{3}}, {{3, 1}}, {{3, 1}}, {{1, 3}}};
  const K slow = {{{1}}, {{1}}, {{1}}, {{3}}, {{3}}};
  if (arch == "2d" || arch == "slow_c2d") return {flat, {{1, 1, 1}}};
  if (arch == "c2d") return {flat, {{2, 1, 1}}};
  if (arch == "c2d_nopool") return {flat, {{1, 1, 1}}};
  if (arch == "i3d") return {i3d, {{2, 1, 1}}};
  if (arch == "slow_i3d" || arch == "i3d_nopool") return {i3d, {{1, 1, 1}}};
  if (arch == "slow") return {slow, {{1, 1, 1}}};
  if (arch == "slowfast") {
    return {{{{1}, {5}}, {{1}, {3}}, {{1}, {3}}, {{3}, {3}}, {{3}, {3}}}, {{1, 1, 1}, {1, 1, 1}}};
  }
  if (arch == "x3d") return {{{{5}}, {{3}}, {{3}}, {{3}}, {{3}}}, {{1, 1, 1}}};
  throw Error("MODEL.ARCH '" + arch + "' is not a PySlowFast architecture");
}

std::vector<int64_t> stageDepths(int depth) {
  if (depth == 18) return {2, 2, 2, 2};
  if (depth == 50) return {3, 4, 6, 3};
  if (depth == 101) return {3, 4, 23, 3};
  throw Error("RESNET.DEPTH " + std::to_string(depth) + " is not supported (18, 50, 101)");
}

std::string nopoolArch(const std::string& arch) {
  if (arch == "c2d" || arch == "c2d_nopool") return "c2d_nopool";
  if (arch == "i3d" || arch == "i3d_nopool") return "i3d_nopool";
  throw Error("MODEL.MODEL_NAME ResNet_nopool needs MODEL.ARCH c2d or i3d (got '" + arch + "')");
}

void checkBackboneConfig(const Config& cfg) {
  if (cfg.get<bool>("DETECTION.ENABLE")) throw Error("DETECTION.ENABLE: detection heads are not supported");
  const auto norm = cfg.get<std::string>("BN.NORM_TYPE");
  // At inference every one of these is a plain BatchNorm3d with the same state-dict keys.
  if (norm != "batchnorm" && norm != "sync_batchnorm" && norm != "sync_batchnorm_apex") {
    throw Error("BN.NORM_TYPE '" + norm + "' is not supported (batchnorm, sync_batchnorm)");
  }
  if (cfg.get<int>("CONTRASTIVE.NUM_MLP_LAYERS") != 1) {
    throw Error("CONTRASTIVE.NUM_MLP_LAYERS: only the linear projection head (1) is supported");
  }
}

void setNonlocal(ResStageImpl::PathwaySpec& spec, const Config& cfg, size_t stage, size_t pathway) {
  const auto loc = cfg.get<std::vector<std::vector<std::vector<int>>>>("NONLOCAL.LOCATION");
  if (stage >= loc.size() || pathway >= loc[stage].size()) {
    throw Error("NONLOCAL.LOCATION must give a list of blocks per stage (4) and pathway");
  }
  spec.nonlocalInds.assign(loc[stage][pathway].begin(), loc[stage][pathway].end());
  if (spec.nonlocalInds.empty()) return;
  const auto group = cfg.get<std::vector<std::vector<int>>>("NONLOCAL.GROUP");
  if (stage >= group.size() || pathway >= group[stage].size()) {
    throw Error("NONLOCAL.GROUP must give a value per stage and pathway with non-local blocks");
  }
  spec.nonlocalGroup = group[stage][pathway];
  const auto pool = cfg.get<std::vector<std::vector<std::vector<int>>>>("NONLOCAL.POOL");
  if (stage >= pool.size() || pathway >= pool[stage].size() || pool[stage][pathway].size() != 3) {
    throw Error("NONLOCAL.POOL must give a [T, H, W] size per stage and pathway with non-local blocks");
  }
  spec.nonlocalPool.assign(pool[stage][pathway].begin(), pool[stage][pathway].end());
}

ResNetBasicHeadImpl::ResNetBasicHeadImpl(const std::vector<int64_t>& dimIn, int64_t numClasses,
                                         const std::vector<std::vector<int64_t>>& poolSize,
                                         const std::string& act_)
    : act(act_) {
  for (size_t p = 0; p < dimIn.size(); ++p) {
    nn::AnyModule pool;
    if (poolSize.empty()) {
      pool = nn::AnyModule(nn::AdaptiveAvgPool3d(nn::AdaptiveAvgPool3dOptions({1, 1, 1})));
    } else {
      pool = nn::AnyModule(nn::AvgPool3d(nn::AvgPool3dOptions(torch::IntArrayRef(poolSize[p])).stride(1)));
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
    pooled.push_back(pool3d([&](const torch::Tensor& t) { return avgpools[p].forward(t); }, toDense(x[p])));
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
  const auto tables = archTables(arch);
  if (tables.pool1.size() != 1) {
    throw Error("MODEL.ARCH '" + arch + "' has two pathways; MODEL.MODEL_NAME must be SlowFast");
  }
  checkBackboneConfig(cfg);

  const auto channels = cfg.get<std::vector<int>>("DATA.INPUT_CHANNEL_NUM");
  if (channels.size() != 1) {
    throw Error("DATA.INPUT_CHANNEL_NUM must list one pathway for MODEL.ARCH '" + arch + "'");
  }
  const auto depths = stageDepths(cfg.get<int>("RESNET.DEPTH"));
  const int64_t groups = cfg.get<int>("RESNET.NUM_GROUPS");
  const int64_t width = cfg.get<int>("RESNET.WIDTH_PER_GROUP");
  const int64_t inner = groups * width;
  const auto strides = cfg.get<std::vector<std::vector<int>>>("RESNET.SPATIAL_STRIDES");
  const auto dilations = cfg.get<std::vector<std::vector<int>>>("RESNET.SPATIAL_DILATIONS");
  const auto tempBlocks = cfg.get<std::vector<std::vector<int>>>("RESNET.NUM_BLOCK_TEMP_KERNEL");
  for (const auto* key : {"RESNET.SPATIAL_STRIDES", "RESNET.SPATIAL_DILATIONS", "RESNET.NUM_BLOCK_TEMP_KERNEL"}) {
    const auto v = cfg.get<std::vector<std::vector<int>>>(key);
    if (v.size() != 4) throw Error(std::string(key) + " must have 4 stages");
    for (const auto& s : v)
      if (s.empty()) throw Error(std::string(key) + " must give a value per pathway");
  }
  BlockOptions opt;
  opt.transFunc = cfg.get<std::string>("RESNET.TRANS_FUNC");
  opt.stride1x1 = cfg.get<bool>("RESNET.STRIDE_1X1");
  opt.nonlocalInstantiation = cfg.get<std::string>("NONLOCAL.INSTANTIATION");

  const auto& tk = tables.temporalKernels;
  const int64_t kt = tk[0][0][0];
  using Lists = std::vector<std::vector<int64_t>>;
  s1 = register_module("s1", VideoModelStem(std::vector<int64_t>{channels[0]}, std::vector<int64_t>{width},
                                            Lists{{kt, 7, 7}}, Lists{{1, 2, 2}}, Lists{{kt / 2, 3, 3}}));
  // Stage widths as PySlowFast: dim_out = width * {4, 8, 16, 32}, dim_inner = inner * {1, 2, 4, 8}
  // (whatever RESNET.TRANS_FUNC is).
  auto stage = [&](int i, int64_t dimIn, int64_t dimOut, int64_t dimInner) {
    ResStageImpl::PathwaySpec s{dimIn, dimOut, dimInner, groups, depths[size_t(i)], strides[size_t(i)][0],
                                dilations[size_t(i)][0], tk[size_t(i) + 1][0], tempBlocks[size_t(i)][0]};
    setNonlocal(s, cfg, size_t(i), 0);
    return ResStage(std::vector<ResStageImpl::PathwaySpec>{s}, opt);
  };
  const int64_t m = 4;
  s2 = register_module("s2", stage(0, width, width * m, inner));
  const auto& p1 = tables.pool1[0];
  pathway0_pool = register_module("pathway0_pool", nn::MaxPool3d(nn::MaxPool3dOptions(torch::IntArrayRef(p1)).stride(torch::IntArrayRef(p1))));
  s3 = register_module("s3", stage(1, width * m, width * m * 2, inner * 2));
  s4 = register_module("s4", stage(2, width * m * 2, width * m * 4, inner * 4));
  s5 = register_module("s5", stage(3, width * m * 4, width * m * 8, inner * 8));

  const int64_t dimOut = width * m * 8;
  std::vector<std::vector<int64_t>> pool;
  if (!cfg.get<bool>("MULTIGRID.SHORT_CYCLE")) {
    const int64_t frames = cfg.get<int>("DATA.NUM_FRAMES"), crop = cfg.get<int>("DATA.TRAIN_CROP_SIZE");
    pool.push_back({frames / p1[0], crop / 32 / p1[1], crop / 32 / p1[2]});
  }
  numClasses_ = cfg.get<int>("MODEL.NUM_CLASSES");
  head = register_module("head", ResNetBasicHead(std::vector<int64_t>{dimOut}, numClasses_, pool,
                                                 cfg.get<std::string>("MODEL.HEAD_ACT")));
  // The head pools all NUM_FRAMES / pool1 frames into one step, so the feature is C wide.
  featureDim_ = dimOut;
  description_ = std::to_string(featureDim_) + "-d: res5 output of the R" + std::to_string(cfg.get<int>("RESNET.DEPTH")) +
                 " (" + std::to_string(dimOut) + " channels), average-pooled over T, H and W; the input of head.projection";
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
