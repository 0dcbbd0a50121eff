// The model zoo beyond the plain ResNets: non-local I3D, C2D NOPOOL, SlowFast and X3D. Key names,
// shapes and parameter counts below were read off PySlowFast's own models (build_model on the same
// YAML, state_dict()), so a renamed or resized layer shows here even before any checkpoint loads.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "fixture_parity.h"
#include "networks/slowfast.h"
#include "networks/video_net.h"
#include "networks/x3d.h"
#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/checkpoint.h"
#include "vidfeat/model/feature_model.h"

using namespace vidfeat;
using Shape = std::vector<int64_t>;
using Shapes = std::map<std::string, Shape>;

namespace {

// `rel`: path under configs/, e.g. "Kinetics/X3D_S.yaml".
Config zooConfig(const std::string& rel, const std::vector<std::string>& overrides = {}) {
  return Config::load((vidfeat::testing::sourceDir() / "configs" / rel).string(), overrides);
}

Shapes shapesOf(const FeatureModel& m) {
  Shapes s;
  for (auto& [k, v] : m.stateShapes()) s[k] = v;
  return s;
}

// Learnable parameters only (no BN statistics), as sum(p.numel() for p in model.parameters()).
int64_t parameterCount(const Config& cfg) {
  auto net = model::buildVideoNet(cfg);
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

struct ZooEntry {
  const char* config;
  size_t stateKeys;    // len(model.state_dict()) in PySlowFast
  int64_t parameters;  // sum(p.numel() for p in model.parameters()) in PySlowFast
  int64_t featureDim;
  int64_t numClasses;
};

// PySlowFast 1.0 (current main) on these YAMLs; C2D NOPOOL against MODEL.ARCH slow_c2d, the name
// its c2d_nopool arch has there (see nopoolArch).
const ZooEntry kZoo[] = {
    {"Kinetics/I3D_NLN_8x8_R50.yaml", 385, 35401936, 2048, 400},
    {"Kinetics/c2/C2D_NOPOOL_8x8_R50.yaml", 320, 24327632, 2048, 400},
    {"Kinetics/SLOWFAST_8x8_R50.yaml", 662, 34566488, 2304, 400},
    {"Charades/SLOWFAST_16x8_R50.yaml", 662, 34006373, 2304, 157},
    {"Charades/SLOWFAST_16x8_R50_multigrid.yaml", 662, 34006373, 2304, 157},
    {"SSv2/SLOWFAST_16x8_R50.yaml", 662, 34045558, 2304, 174},
    {"Kinetics/c2/SLOWFAST_16x8_R101_50_50.yaml", 1274, 53774808, 2304, 400},
    {"Kinetics/X3D_S.yaml", 568, 3794322, 2048, 400},
    {"Kinetics/X3D_M.yaml", 568, 3794322, 2048, 400},
};

void expectShape(const Shapes& s, const std::string& key, const Shape& shape) {
  auto it = s.find(key);
  ASSERT_NE(it, s.end()) << "missing " << key;
  EXPECT_EQ(it->second, shape) << key;
}

std::vector<float> syntheticClips(const ClipShape& shape, int64_t batch) {
  std::vector<float> clips(size_t(batch * shape.numel()));
  for (size_t i = 0; i < clips.size(); ++i) clips[i] = float((i * 7919) % 1000) / 500.0f - 1.0f;
  return clips;
}

}  // namespace

TEST(ModelZoo, FullSizeModelsHavePySlowFastsKeyCountParametersAndFeatureDim) {
  for (const auto& e : kZoo) {
    SCOPED_TRACE(e.config);
    auto cfg = zooConfig(e.config);
    auto m = FeatureModel::build(cfg);
    EXPECT_EQ(m->stateShapes().size(), e.stateKeys);
    EXPECT_EQ(parameterCount(cfg), e.parameters);
    EXPECT_EQ(m->featureDim(), e.featureDim);
    EXPECT_EQ(m->numClasses(), e.numClasses);
  }
}

TEST(ModelZoo, NonlocalBlocksSitWhereI3DNlnPutsThem) {
  auto s = shapesOf(*FeatureModel::build(zooConfig("Kinetics/I3D_NLN_8x8_R50.yaml")));
  // NONLOCAL.LOCATION [[[]], [[1, 3]], [[1, 3, 5]], [[]]]: after blocks 1, 3 of res3 and 1, 3, 5 of
  // res4.
  for (const char* k : {"s3.pathway0_nonlocal1", "s3.pathway0_nonlocal3", "s4.pathway0_nonlocal1",
                        "s4.pathway0_nonlocal3", "s4.pathway0_nonlocal5"}) {
    EXPECT_EQ(s.count(std::string(k) + ".conv_g.weight"), 1u) << k;
  }
  EXPECT_EQ(s.count("s3.pathway0_nonlocal0.conv_g.weight"), 0u);
  EXPECT_EQ(s.count("s3.pathway0_nonlocal2.conv_g.weight"), 0u);
  EXPECT_EQ(s.count("s5.pathway0_nonlocal1.conv_g.weight"), 0u);
  expectShape(s, "s3.pathway0_nonlocal1.conv_theta.weight", {256, 512, 1, 1, 1});
  expectShape(s, "s3.pathway0_nonlocal1.conv_theta.bias", {256});
  expectShape(s, "s3.pathway0_nonlocal1.conv_out.weight", {512, 256, 1, 1, 1});
  expectShape(s, "s3.pathway0_nonlocal1.bn.running_var", {512});
  expectShape(s, "s4.pathway0_nonlocal1.conv_theta.weight", {512, 1024, 1, 1, 1});
  expectShape(s, "s4.pathway0_nonlocal5.conv_out.bias", {1024});
}

TEST(ModelZoo, SlowFastLateralsAndPathwayWidthsArePySlowFasts) {
  auto s = shapesOf(*FeatureModel::build(zooConfig("Kinetics/SLOWFAST_8x8_R50.yaml")));
  // FUSION_KERNEL_SZ 7, BETA_INV 8, FUSION_CONV_CHANNEL_RATIO 2.
  expectShape(s, "s1_fuse.conv_f2s.weight", {16, 8, 7, 1, 1});
  expectShape(s, "s1_fuse.bn.running_mean", {16});
  expectShape(s, "s2_fuse.conv_f2s.weight", {64, 32, 7, 1, 1});
  expectShape(s, "s3_fuse.conv_f2s.weight", {128, 64, 7, 1, 1});
  expectShape(s, "s4_fuse.conv_f2s.weight", {256, 128, 7, 1, 1});
  EXPECT_EQ(s.count("s5_fuse.conv_f2s.weight"), 0u);
  expectShape(s, "s1.pathway1_stem.conv.weight", {8, 3, 5, 7, 7});
  expectShape(s, "s2.pathway0_res0.branch2.a.weight", {64, 80, 1, 1, 1});  // 64 + 16 fused
  expectShape(s, "s2.pathway1_res0.branch2.a.weight", {8, 8, 3, 1, 1});
  expectShape(s, "s3.pathway1_res0.branch2.a.weight", {16, 32, 3, 1, 1});
  expectShape(s, "s5.pathway1_res0.branch2.a.weight", {64, 128, 3, 1, 1});
  expectShape(s, "head.projection.weight", {400, 2304});

  // R101: 23 res4 blocks, the temporal kernel only on the first NUM_BLOCK_TEMP_KERNEL (6).
  auto r = shapesOf(*FeatureModel::build(zooConfig("Kinetics/c2/SLOWFAST_16x8_R101_50_50.yaml")));
  expectShape(r, "s4.pathway0_res5.branch2.a.weight", {256, 1024, 3, 1, 1});
  expectShape(r, "s4.pathway0_res6.branch2.a.weight", {256, 1024, 1, 1, 1});
  expectShape(r, "s4.pathway0_res22.branch2.c_bn.weight", {1024});
  expectShape(r, "s1_fuse.conv_f2s.weight", {16, 8, 5, 1, 1});  // FUSION_KERNEL_SZ 5 there
}

TEST(ModelZoo, MultigridShortCycleHeadPoolsAdaptively) {
  auto pools = [](const std::string& rel) {
    auto net = model::buildVideoNet(zooConfig(rel));
    auto* sf = dynamic_cast<model::SlowFastImpl*>(net.get());
    EXPECT_NE(sf, nullptr);
    std::vector<std::string> names;
    for (auto& p : sf->head->avgpools) names.push_back(p.ptr()->name());
    return names;
  };
  auto mg = pools("Charades/SLOWFAST_16x8_R50_multigrid.yaml");
  ASSERT_EQ(mg.size(), 2u);
  EXPECT_NE(mg[0].find("AdaptiveAvgPool3d"), std::string::npos) << mg[0];
  EXPECT_NE(mg[1].find("AdaptiveAvgPool3d"), std::string::npos) << mg[1];
  auto plain = pools("Charades/SLOWFAST_16x8_R50.yaml");
  EXPECT_EQ(plain[0].find("Adaptive"), std::string::npos) << plain[0];
}

TEST(ModelZoo, X3DStemTransformSqueezeExcitationAndHeadArePySlowFasts) {
  auto s = shapesOf(*FeatureModel::build(zooConfig("Kinetics/X3D_M.yaml")));
  expectShape(s, "s1.pathway0_stem.conv_xy.weight", {24, 3, 1, 3, 3});
  expectShape(s, "s1.pathway0_stem.conv.weight", {24, 1, 5, 1, 1});  // depth-wise temporal
  expectShape(s, "s2.pathway0_res0.branch2.a.weight", {54, 24, 1, 1, 1});
  expectShape(s, "s2.pathway0_res0.branch2.b.weight", {54, 1, 3, 3, 3});  // channel-wise
  expectShape(s, "s2.pathway0_res0.branch2.c.weight", {24, 54, 1, 1, 1});
  expectShape(s, "s2.pathway0_res0.branch2.se.fc1.weight", {8, 54, 1, 1, 1});
  expectShape(s, "s2.pathway0_res0.branch2.se.fc2.bias", {54});
  expectShape(s, "s4.pathway0_res10.branch2.se.fc1.weight", {16, 216, 1, 1, 1});
  expectShape(s, "s5.pathway0_res0.branch2.b.weight", {432, 1, 3, 3, 3});
  expectShape(s, "s5.pathway0_res6.branch2.se.fc1.weight", {32, 432, 1, 1, 1});
  expectShape(s, "head.conv_5.weight", {432, 192, 1, 1, 1});
  expectShape(s, "head.conv_5_bn.running_mean", {432});
  expectShape(s, "head.lin_5.weight", {2048, 432, 1, 1, 1});
  expectShape(s, "head.projection.weight", {400, 2048});
  EXPECT_EQ(s.count("head.lin_5_bn.weight"), 0u);  // X3D.BN_LIN5 False
  // SE on even blocks only; DEPTH_FACTOR 2.2 gives 3, 5, 11, 7 blocks.
  EXPECT_EQ(s.count("s2.pathway0_res1.branch2.se.fc1.weight"), 0u);
  int se = 0;
  for (auto& [k, v] : s) se += k.find("branch2.se.fc1.weight") != std::string::npos;
  EXPECT_EQ(se, 2 + 3 + 6 + 4);
  EXPECT_EQ(s.count("s4.pathway0_res10.branch2.a.weight"), 1u);
  EXPECT_EQ(s.count("s4.pathway0_res11.branch2.a.weight"), 0u);
  EXPECT_EQ(s.count("s5.pathway0_res6.branch2.a.weight"), 1u);

  auto bn = shapesOf(*FeatureModel::build(zooConfig("Kinetics/X3D_S.yaml", {"X3D.BN_LIN5=True"})));
  expectShape(bn, "head.lin_5_bn.running_var", {2048});
}

TEST(ModelZoo, RoundWidthIsPySlowFasts) {
  EXPECT_EQ(model::roundWidth(12, 2.0), 24);
  EXPECT_EQ(model::roundWidth(12, 2.0, 1, 8), 24);
  EXPECT_EQ(model::roundWidth(54, 0.0625, 8, 8), 8);
  EXPECT_EQ(model::roundWidth(216, 0.0625, 8, 8), 16);
  EXPECT_EQ(model::roundWidth(432, 0.0625, 8, 8), 32);
  EXPECT_EQ(model::roundWidth(7, 0.0), 7);
}

TEST(ModelZoo, NopoolIsC2DWithoutTheTemporalPool) {
  // Same seeded weights: ResNet_nopool + c2d must be the old c2d_nopool, i.e. today's slow_c2d.
  const std::vector<std::string> tiny = {"RESNET.WIDTH_PER_GROUP=4", "DATA.NUM_FRAMES=4",
                                         "DATA.TRAIN_CROP_SIZE=64", "DATA.TEST_CROP_SIZE=64"};
  auto withArch = [&](const std::string& name, const std::string& arch) {
    auto o = tiny;
    o.push_back("MODEL.MODEL_NAME=" + name);
    o.push_back("MODEL.ARCH=" + arch);
    return FeatureModel::build(zooConfig("Kinetics/c2/C2D_NOPOOL_8x8_R50.yaml", o));
  };
  auto nopool = withArch("ResNet_nopool", "c2d");
  auto legacy = withArch("ResNet", "c2d_nopool");
  auto slowC2d = withArch("ResNet", "slow_c2d");
  auto c2d = withArch("ResNet", "c2d");
  EXPECT_EQ(shapesOf(*nopool), shapesOf(*c2d));
  std::vector<std::vector<float>> feats;
  for (auto* m : {nopool.get(), legacy.get(), slowC2d.get(), c2d.get()}) {
    m->randomizeWeights(11);
    auto clips = syntheticClips(m->inputShape(), 1);
    feats.emplace_back(size_t(m->featureDim()));
    m->extract(clips.data(), 1, feats.back().data());
  }
  EXPECT_EQ(feats[0], feats[1]);
  EXPECT_EQ(feats[0], feats[2]);
  EXPECT_NE(feats[0], feats[3]);  // c2d max-pools T by 2 after res2
}

TEST(ModelZoo, TinyForwardsAreFiniteDeterministicAndSizedRight) {
  struct Tiny {
    const char* config;
    std::vector<std::string> overrides;
    int64_t featureDim;
  };
  const std::vector<std::string> resnet = {"RESNET.WIDTH_PER_GROUP=4", "DATA.NUM_FRAMES=8",
                                           "DATA.TRAIN_CROP_SIZE=64", "DATA.TEST_CROP_SIZE=96"};
  // BETA_INV 8 needs at least 8 channels per group to leave the Fast pathway one.
  const std::vector<std::string> slowfast = {"RESNET.WIDTH_PER_GROUP=8", "DATA.NUM_FRAMES=16",
                                             "DATA.TRAIN_CROP_SIZE=64", "DATA.TEST_CROP_SIZE=96"};
  const std::vector<std::string> x3d = {"DATA.NUM_FRAMES=4", "DATA.TRAIN_CROP_SIZE=64",
                                        "DATA.TEST_CROP_SIZE=96"};
  const Tiny cases[] = {
      {"Kinetics/I3D_NLN_8x8_R50.yaml", resnet, 128},
      {"Kinetics/c2/C2D_NOPOOL_8x8_R50.yaml", resnet, 128},
      {"Kinetics/SLOWFAST_8x8_R50.yaml", slowfast, 256 + 32},
      {"Charades/SLOWFAST_16x8_R50.yaml", slowfast, 256 + 32},
      {"Charades/SLOWFAST_16x8_R50_multigrid.yaml", slowfast, 256 + 32},
      {"Kinetics/c2/SLOWFAST_16x8_R101_50_50.yaml", slowfast, 256 + 32},
      {"Kinetics/X3D_S.yaml", x3d, 2048},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.config);
    auto cfg = zooConfig(c.config, c.overrides);
    auto a = FeatureModel::build(cfg);
    auto b = FeatureModel::build(cfg);
    a->randomizeWeights(5);
    b->randomizeWeights(5);
    ASSERT_EQ(a->featureDim(), c.featureDim);
    auto clips = syntheticClips(a->inputShape(), 2);
    const size_t d = size_t(a->featureDim());
    std::vector<float> fa(2 * d), fb(2 * d), logits(size_t(2 * a->numClasses()));
    a->extract(clips.data(), 2, fa.data(), logits.data());
    b->extract(clips.data(), 2, fb.data());
    EXPECT_EQ(fa, fb);
    double norm = 0;
    for (float v : fa) {
      ASSERT_TRUE(std::isfinite(v));
      norm += double(v) * v;
    }
    EXPECT_GT(norm, 0.0);
    EXPECT_NE(std::vector<float>(fa.begin(), fa.begin() + long(d)),
              std::vector<float>(fa.begin() + long(d), fa.end()));
    for (float v : logits) {
      ASSERT_TRUE(std::isfinite(v));
      EXPECT_GE(v, 0.0f);  // softmax / sigmoid
      EXPECT_LE(v, 1.0f);
    }
  }
}

TEST(ModelZoo, UnsupportedValuesNameTheKey) {
  auto expectKey = [](const std::string& rel, const std::vector<std::string>& o,
                      const std::string& key) {
    try {
      FeatureModel::build(zooConfig(rel, o));
      ADD_FAILURE() << "expected an error about " << key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expectKey("Kinetics/c2/C2D_NOPOOL_8x8_R50.yaml", {"MODEL.ARCH=slow"}, "MODEL.ARCH");
  expectKey("Kinetics/SLOWFAST_8x8_R50.yaml", {"MODEL.ARCH=i3d"}, "MODEL.ARCH");
  expectKey("Kinetics/SLOWFAST_8x8_R50.yaml", {"DATA.INPUT_CHANNEL_NUM=[3]"},
            "DATA.INPUT_CHANNEL_NUM");
  expectKey("Kinetics/SLOWFAST_8x8_R50.yaml", {"SLOWFAST.BETA_INV=128"}, "SLOWFAST.BETA_INV");
  expectKey("Kinetics/SLOWFAST_8x8_R50.yaml", {"SLOWFAST.FUSION_CONV_CHANNEL_RATIO=16"},
            "SLOWFAST.FUSION_CONV_CHANNEL_RATIO");
  expectKey("Kinetics/SLOWFAST_8x8_R50.yaml", {"RESNET.SPATIAL_STRIDES=[[1], [2], [2], [2]]"},
            "RESNET.SPATIAL_STRIDES");
  expectKey("Kinetics/SLOWFAST_8x8_R50.yaml", {"RESNET.DEPTH=152"}, "RESNET.DEPTH");
  expectKey("Kinetics/I3D_NLN_8x8_R50.yaml", {"NONLOCAL.INSTANTIATION=gaussian"},
            "NONLOCAL.INSTANTIATION");
  expectKey("Kinetics/I3D_NLN_8x8_R50.yaml", {"NONLOCAL.LOCATION=[[[]], [[1, 9]], [[]], [[]]]"},
            "NONLOCAL.LOCATION");
  expectKey("Kinetics/I3D_NLN_8x8_R50.yaml",
            {"NONLOCAL.POOL=[[[1, 2]], [[1, 2]], [[1, 2]], [[1, 2]]]"}, "NONLOCAL.POOL");
  expectKey("Kinetics/X3D_S.yaml", {"MODEL.HEAD_ACT=none"}, "MODEL.HEAD_ACT");
  expectKey("Kinetics/X3D_S.yaml", {"RESNET.TRANS_FUNC=y_transform"}, "RESNET.TRANS_FUNC");
  expectKey("Kinetics/X3D_S.yaml", {"MODEL.ARCH=slowfast"}, "MODEL.ARCH");
}

// Parity with PySlowFast on the committed fixtures (tools/fixtures/make_fixtures.py: reduced
// widths, random weights and BN statistics, TEST_CROP_SIZE > TRAIN_CROP_SIZE so the head's pool
// slides). Unlike test_checkpoint's sweep, a model that fails to build here is a failure, not a
// skip.
TEST(ModelZoo, FixtureFeaturesEqualPySlowFastsInEveryCheckpointFormat) {
  vidfeat::testing::expectFixtureParity(
      {"I3D_NLN_8x8_R50", "C2D_NOPOOL_8x8_R50", "SLOWFAST_8x8_R50", "Charades_SLOWFAST_16x8_R50",
       "Charades_SLOWFAST_16x8_R50_multigrid", "SSv2_SLOWFAST_16x8_R50", "SLOWFAST_16x8_R101_50_50",
       "X3D_S", "X3D_M"},
      "zoo");
}
