#include "networks/backbone_config.h"

#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

namespace vidfeat::model {

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
  if (cfg.get<bool>("DETECTION.ENABLE"))
    throw Error("DETECTION.ENABLE: detection heads are not supported");
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
    throw Error(
        "NONLOCAL.POOL must give a [T, H, W] size per stage and pathway with non-local blocks");
  }
  spec.nonlocalPool.assign(pool[stage][pathway].begin(), pool[stage][pathway].end());
}

namespace {
const char* pathwayCount(size_t n) {
  return n == 1 ? "one pathway" : n == 2 ? "two pathways" : "more pathways";
}
}  // namespace

BackboneSettings readBackbone(const Config& cfg, const std::string& arch, size_t pathways,
                              const std::string& family) {
  BackboneSettings b;
  b.tables = archTables(arch);
  if (b.tables.pool1.size() != pathways) {
    throw Error("MODEL.ARCH '" + arch + "' has " + pathwayCount(b.tables.pool1.size()) +
                "; MODEL.MODEL_NAME " + family + " needs " +
                (pathways == 2 ? "a two-pathway arch (slowfast)" : "a one-pathway arch"));
  }
  checkBackboneConfig(cfg);
  const auto channels = cfg.get<std::vector<int>>("DATA.INPUT_CHANNEL_NUM");
  if (channels.size() != pathways) {
    throw Error("DATA.INPUT_CHANNEL_NUM must list " + std::string(pathwayCount(pathways)) +
                " for MODEL.MODEL_NAME " + family + " (MODEL.ARCH '" + arch + "')");
  }
  b.channels.assign(channels.begin(), channels.end());
  // PySlowFast asserts a known depth even for X3D, which does not use it.
  b.depths = stageDepths(cfg.get<int>("RESNET.DEPTH"));
  b.groups = cfg.get<int>("RESNET.NUM_GROUPS");
  b.width = cfg.get<int>("RESNET.WIDTH_PER_GROUP");
  b.block.transFunc = cfg.get<std::string>("RESNET.TRANS_FUNC");
  b.block.stride1x1 = cfg.get<bool>("RESNET.STRIDE_1X1");
  b.block.nonlocalInstantiation = cfg.get<std::string>("NONLOCAL.INSTANTIATION");
  return b;
}

std::vector<std::vector<int>> stageList(const Config& cfg, const std::string& key,
                                        size_t pathways) {
  auto v = cfg.get<std::vector<std::vector<int>>>(key);
  if (v.size() != 4) throw Error(key + " must have 4 stages");
  for (const auto& s : v) {
    if (pathways > 1 ? s.size() != pathways : s.empty()) {
      throw Error(
          key + " must give a value per pathway" +
          (pathways > 1 ? " (" + std::to_string(pathways) + " for this model)" : std::string()));
    }
  }
  return v;
}

}  // namespace vidfeat::model
