#pragma once
// How the ResNet-family builders (ResNet, SlowFast, X3D) read their config: PySlowFast's arch
// tables, the RESNET.* / NONLOCAL.* keys they share and their checks, in one place, so a builder
// only reads what is its own.
#include <string>
#include <vector>

#include "networks/resnet_helper.h"

namespace vidfeat {
class Config;
}

namespace vidfeat::model {

// Temporal kernel basis per stage ({stem, res2..res5}, each a list) and the pool after res2, per
// PySlowFast's _TEMPORAL_KERNEL_BASIS / _POOL1 tables. Throws Error for an unknown MODEL.ARCH.
struct ArchTables {
  std::vector<std::vector<std::vector<int64_t>>> temporalKernels;  // [stage][pathway][basis]
  std::vector<std::vector<int64_t>> pool1;                         // [pathway][t,h,w]
};
ArchTables archTables(const std::string& arch);

// Blocks per stage for RESNET.DEPTH (18, 50, 101).
std::vector<int64_t> stageDepths(int depth);

// The arch MODEL.MODEL_NAME ResNet_nopool builds for MODEL.ARCH. PySlowFast's published
// configs/Kinetics/c2/C2D_NOPOOL_8x8_R50.yaml says ARCH c2d, MODEL_NAME ResNet_nopool, but no
// ResNet_nopool was ever registered: the config dates from PySlowFast's first release, where it
// read ARCH c2d_nopool (built by the ResNet class from the c2d_nopool / i3d_nopool table rows: c2d
// / i3d temporal kernels, pool1 [1, 1, 1]); those rows were renamed slow_c2d / slow_i3d in commit
// 99a655b. So c2d -> c2d_nopool, i3d -> i3d_nopool; anything else is an error naming the keys.
std::string nopoolArch(const std::string& arch);

// Config checks every ResNet-family builder shares; throws Error naming the key (DETECTION.ENABLE,
// BN.NORM_TYPE, CONTRASTIVE.NUM_MLP_LAYERS).
void checkBackboneConfig(const Config& cfg);

// What the three builders read alike, checked for a model of `pathways` pathways.
struct BackboneSettings {
  ArchTables tables;              // of `arch` (MODEL.ARCH, or the nopool arch)
  std::vector<int64_t> channels;  // DATA.INPUT_CHANNEL_NUM, one per pathway
  std::vector<int64_t> depths;    // blocks per stage, RESNET.DEPTH
  int64_t groups = 1;             // RESNET.NUM_GROUPS
  int64_t width = 64;             // RESNET.WIDTH_PER_GROUP
  int64_t inner() const { return groups * width; }
  BlockOptions block;  // RESNET.TRANS_FUNC, RESNET.STRIDE_1X1, NONLOCAL.INSTANTIATION
};
// checkBackboneConfig, then `arch`'s tables and DATA.INPUT_CHANNEL_NUM must have `pathways`
// pathways: Error naming MODEL.ARCH / DATA.INPUT_CHANNEL_NUM and `family` (MODEL.MODEL_NAME) else.
BackboneSettings readBackbone(const Config& cfg, const std::string& arch, size_t pathways,
                              const std::string& family);

// A per-stage RESNET list (RESNET.SPATIAL_STRIDES, ..., [stage][pathway]): 4 stages, each with a
// value per pathway (exactly `pathways` for two-pathway models, at least one otherwise). Error
// naming `key` else.
std::vector<std::vector<int>> stageList(const Config& cfg, const std::string& key, size_t pathways);

// Fills the non-local fields of `spec` from NONLOCAL.LOCATION / GROUP / POOL [stage][pathway].
void setNonlocal(ResStageImpl::PathwaySpec& spec, const Config& cfg, size_t stage, size_t pathway);

}  // namespace vidfeat::model
